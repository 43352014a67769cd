#include "phases.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "init.h"
#include "log.h"
#include "proc.h"
#include "util.h"
#include "wait.h"

static const char *kind_name(enum phase_kind k)
{
	switch (k) {
	case PHASE_DIR:
		return "dir";
	case PHASE_RUN:
		return "run";
	case PHASE_WAIT_FOR:
		return "wait_for";
	case PHASE_NONE:
		break;
	}
	return "?";
}

enum status phases_init(struct phases *p, const struct config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->plans = calloc((size_t)cfg->n_phases + 1, sizeof(*p->plans));
	if (!p->plans) {
		log_error("out of memory");
		return ST_INTERNAL;
	}
	return ST_OK;
}

/* Whether every dir phase's folder is listed and read. */
static bool read_all(const struct phases *p)
{
	return p->next_read >= p->cfg->n_phases;
}

/* Read the next bit of the folders: one folder's listing, or one file. */
static enum status read_step(struct phases *p)
{
	for (; !read_all(p); p->next_read++) {
		const struct phase *ph = &p->cfg->phases[p->next_read];
		struct mplan *plan = &p->plans[p->next_read];
		if (ph->kind != PHASE_DIR)
			continue;
		if (!plan->phase)
			return migrate_list(p->cfg, ph, plan);
		if (plan->nread < plan->n)
			return migrate_read_next(plan);
	}
	return ST_OK;
}

/*
 * Read a little more of the folders (one listing or one file), keeping the
 * messages for phases_prepare to show: db_set_idle's work.  Returns false
 * once everything is read, or a read failed (phases_prepare reports it).
 */
static bool read_ahead(void *arg)
{
	struct phases *p = arg;

	if (p->read_st != ST_OK || read_all(p))
		return false;
	log_hold(true);
	p->read_st = read_step(p);
	log_hold(false);
	return p->read_st == ST_OK && !read_all(p);
}

enum status phases_prepare(struct phases *p, PGconn *conn, bool check)
{
	const struct config *cfg = p->cfg;
	enum status st;

	p->conn = conn;
	st = history_load(conn, cfg, &p->hist);
	/* What was read ahead is reported here, after the history, as if read now. */
	log_release(st == ST_OK);
	if (st != ST_OK)
		return st;
	while (p->read_st == ST_OK && !read_all(p))
		p->read_st = read_step(p);
	if (p->read_st != ST_OK)
		return p->read_st;
	for (int i = 0; i < cfg->n_phases; i++) {
		if (cfg->phases[i].kind != PHASE_DIR)
			continue;
		st = migrate_match(&p->plans[i], &p->hist);
		if (st != ST_OK)
			return st;
	}
	if (!check)
		return ST_OK;
	/* Check every phase before running any, so a drift stops the start-up before it changes anything. */
	for (int i = 0; i < cfg->n_phases; i++) {
		if (cfg->phases[i].kind != PHASE_DIR)
			continue;
		enum status cst = migrate_check(&p->plans[i], &p->hist);
		if (cst != ST_OK)
			st = cst;
	}
	return st;
}

char *phases_missing_relations(PGconn *conn, const struct strv *names, enum status *st)
{
	char *missing = NULL;
	size_t len = 0;

	*st = ST_OK;
	for (int i = 0; i < names->n; i++) {
		const char *params[1] = { names->v[i] };
		PGresult *res = db_query(conn, "SELECT to_regclass($1) IS NOT NULL", 1, params, st);
		bool exists;
		if (!res) {
			free(missing);
			return NULL;
		}
		exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (exists)
			continue;
		size_t add = strlen(names->v[i]) + 2;
		char *m = realloc(missing, len + add + 1);
		if (!m) {
			free(missing);
			*st = ST_INTERNAL;
			return NULL;
		}
		missing = m;
		len += (size_t)sprintf(missing + len, "%s%s", len ? ", " : "", names->v[i]);
	}
	return missing;
}

/* Whether the phase's query returns true.  *st carries a query failure. */
static bool query_true(PGconn *conn, const char *query, enum status *st)
{
	PGresult *res = db_query(conn, query, 0, NULL, st);
	bool yes;
	if (!res)
		return false;
	yes = PQntuples(res) == 1 && PQnfields(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return yes;
}

static enum status run_wait_for(struct phases *p, const struct phase *ph)
{
	struct waiter w = { .timeout_ms = ph->timeout_ms,
			    .backoff_ms = 100,
			    .backoff_max_ms = 1000,
			    .first_report_ms = 2000,
			    .report_ms = 5000 };
	enum status st;

	waiter_start(&w);
	for (;;) {
		char *missing = phases_missing_relations(p->conn, &ph->relations, &st);
		bool ok = false;
		double secs;

		if (st != ST_OK) {
			log_error("phase \"%s\": could not check the relations to wait for",
				  ph->name);
			return st;
		}
		if (!missing && ph->query) {
			ok = query_true(p->conn, ph->query, &st);
			if (st != ST_OK) {
				log_error("phase \"%s\": wait_for_query failed", ph->name);
				return st == ST_SQL ? ST_EXTERNAL : st;
			}
		} else {
			ok = !missing;
		}
		secs = (double)waiter_elapsed(&w) / 1000.0;
		if (ok) {
			free(missing);
			log_info("phase \"%s\": condition met after %ld ms", ph->name,
				 waiter_elapsed(&w));
			return ST_OK;
		}
		if (waiter_expired(&w)) {
			if (missing)
				log_error(
					"phase \"%s\": timed out after %ld s waiting for %s to exist",
					ph->name, waiter_elapsed(&w) / 1000, missing);
			else
				log_error(
					"phase \"%s\": timed out after %ld s waiting for wait_for_query to "
					"return true",
					ph->name, waiter_elapsed(&w) / 1000);
			free(missing);
			return ST_EXTERNAL;
		}
		if (waiter_report_due(&w)) {
			if (missing)
				log_info("phase \"%s\": waiting for %s (%.0f s)", ph->name, missing,
					 secs);
			else
				log_info(
					"phase \"%s\": waiting for wait_for_query to return true (%.0f s)",
					ph->name, secs);
		}
		free(missing);
		st = waiter_sleep(&w);
		if (st != ST_OK)
			return st;
	}
}

static enum status check_expect(struct phases *p, const struct phase *ph)
{
	enum status st;
	char *missing;

	if (ph->expect.n == 0)
		return ST_OK;
	missing = phases_missing_relations(p->conn, &ph->expect, &st);
	if (st != ST_OK)
		return st;
	if (!missing)
		return ST_OK;
	log_error("phase \"%s\" finished, but %s %s not exist", ph->name, missing,
		  strchr(missing, ',') ? "do" : "does");
	log_detail("The phase's expect lists relations that must exist when it ends.");
	if (ph->kind == PHASE_RUN)
		log_hint("The command exited 0 without creating them; look at its output above "
			 "(a schema tool may skip its work on a database it has not initialised).");
	free(missing);
	return ST_EXTERNAL;
}

/*
 * Whether the lock connection is still there, without a round trip: a
 * session the server closed (a restart, a terminated backend) has left its
 * goodbye on the socket.  The lock lives only as long as that session.
 */
static bool lock_alive(PGconn *conn)
{
	struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };

	/* The server's FATAL message comes first, its end of the stream on the next read. */
	for (int i = 0; i < 8 && PQstatus(conn) == CONNECTION_OK; i++) {
		if (poll(&pfd, 1, 0) <= 0)
			break;
		if (!PQconsumeInput(conn))
			return false;
	}
	return PQstatus(conn) == CONNECTION_OK;
}

enum status phases_run(struct phases *p)
{
	const struct config *cfg = p->cfg;
	enum status st = ST_OK;

	for (int i = 0; i < cfg->n_phases && st == ST_OK; i++) {
		const struct phase *ph = &cfg->phases[i];
		long start = clock_ms();
		int applied = 0;

		if (!lock_alive(p->conn)) {
			char err[512];
			snprintf(err, sizeof(err), "%s", PQerrorMessage(p->conn));
			err[strcspn(err, "\n")] = '\0';
			log_error(
				"lost the migration lock before phase \"%s\": its session is gone (%s)",
				ph->name, err);
			log_detail(
				"Another run may hold the lock now; this one stops before it changes "
				"anything more.");
			st = ST_CONNLOST;
			break;
		}
		switch (ph->kind) {
		case PHASE_DIR:
			st = migrate_apply(&p->plans[i], &p->hist, cfg, p->conn, &p->work,
					   &applied);
			if (st == ST_OK)
				log_info("phase \"%s\": %d file%s applied, %d up to date (%ld ms)",
					 ph->name, applied, applied == 1 ? "" : "s",
					 p->plans[i].n - applied, clock_ms() - start);
			break;
		case PHASE_RUN:
			st = proc_run(ph->name, &ph->argv, ph->timeout_ms);
			init_reap(); /* what it left behind, when we are PID 1 or a subreaper */
			break;
		case PHASE_WAIT_FOR:
			st = run_wait_for(p, ph);
			break;
		case PHASE_NONE:
			st = ST_INTERNAL;
			break;
		}
		if (st == ST_OK)
			st = check_expect(p, ph);
	}
	return st;
}

/* Print s as a JSON string. */
static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

void phases_print_status(const struct phases *p, bool json)
{
	const struct config *cfg = p->cfg;

	if (json) {
		printf("{\"history\":");
		json_str(p->hist.qualified);
		printf(",\"phases\":[");
	} else
		printf("%-12s %-9s %-40s %-8s %-25s %s\n", "PHASE", "KIND", "FILE", "STATE",
		       "APPLIED AT", "CHECKSUM");
	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase *ph = &cfg->phases[i];
		const struct mplan *plan = &p->plans[i];
		if (json) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(ph->name);
			printf(",\"kind\":\"%s\",\"files\":[", kind_name(ph->kind));
		} else if (ph->kind != PHASE_DIR) {
			printf("%-12s %-9s %-40s %-8s %-25s %s\n", ph->name, kind_name(ph->kind),
			       "-", "-", "-", "-");
		}
		for (int j = 0; j < plan->n; j++) {
			const struct mfile *f = &plan->files[j];
			const char *at = f->row	    ? f->row->applied_at
					 : f->moved ? f->moved->applied_at
						    : "";
			if (json) {
				printf("%s{\"file\":", j ? "," : "");
				json_str(f->name);
				printf(",\"path\":");
				json_str(f->path);
				printf(",\"state\":\"%s\",\"checksum\":\"%s\",\"repeatable\":%s,\"applied_at\":",
				       migrate_state_name(f->state), f->checksum,
				       f->repeatable ? "true" : "false");
				if (*at)
					json_str(at);
				else
					printf("null");
				if (f->row && strcmp(f->row->checksum, f->checksum) != 0) {
					printf(",\"applied_checksum\":");
					json_str(f->row->checksum);
				}
				if (f->state == FILE_FAILED) {
					printf(",\"last_outcome\":");
					json_str(f->row->outcome);
				}
				if (f->moved) {
					printf(",\"moved_from\":{\"phase\":");
					json_str(f->moved->phase);
					printf(",\"file\":");
					json_str(f->moved->file);
					printf("}");
				}
				printf("}");
			} else {
				printf("%-12s %-9s %-40s %-8s %-25s %.12s\n", ph->name, "dir",
				       f->name, migrate_state_name(f->state), *at ? at : "-",
				       f->checksum);
			}
		}
		if (json)
			printf("]}");
	}
	if (json)
		printf("]}\n");
	fflush(stdout);
}

enum status phases_wait(struct phases *p, PGconn **conn)
{
	enum status st;

	db_set_idle(read_ahead, p);
	st = db_wait(p->cfg, conn);
	db_set_idle(NULL, NULL);
	return st;
}

void phases_free(struct phases *p)
{
	log_release(false);
	if (p->plans && p->cfg)
		for (int i = 0; i < p->cfg->n_phases; i++)
			mplan_free(&p->plans[i]);
	free(p->plans);
	history_free(&p->hist);
	if (p->work)
		PQfinish(p->work);
	memset(p, 0, sizeof(*p));
}

/* The more serious of two outcomes of plan/verify: drift over pre-flight over ok. */
static enum status worse(enum status a, enum status b)
{
	if (a == ST_DRIFT || b == ST_DRIFT)
		return ST_DRIFT;
	if (a == ST_PREFLIGHT || b == ST_PREFLIGHT)
		return ST_PREFLIGHT;
	return a != ST_OK ? a : b;
}

/*
 * The plan command: print every pending file and every constraint action,
 * with the pre-flight results, changing nothing (phases_inspect has made the
 * session read-only; only the rolled-back probe that normalises a where
 * writes, to a temporary table).  Returns ST_OK when the plan can run,
 * ST_PREFLIGHT when a pre-flight fails, ST_DRIFT on drift or a changed file
 * (drift wins over a pre-flight), or another failure after logging.
 */
static enum status phases_plan(struct phases *p)
{
	const struct config *cfg = p->cfg;
	enum status st, result = ST_OK;
	bool earlier = false; /* an earlier step will run: it may create what is missing now */
	int pending = 0;

	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase *ph = &cfg->phases[i];
		const struct mplan *plan = &p->plans[i];

		if (ph->kind == PHASE_RUN) {
			printf("phase \"%s\": run %s\n", ph->name, ph->argv.n ? ph->argv.v[0] : "");
			earlier = true;
			continue;
		}
		if (ph->kind == PHASE_WAIT_FOR) {
			printf("phase \"%s\": wait_for\n", ph->name);
			continue;
		}
		if (ph->kind != PHASE_DIR)
			continue;
		result = worse(result, migrate_check(plan, &p->hist));
		for (int j = 0; j < plan->n; j++) {
			const struct mfile *f = &plan->files[j];
			int actions = 0;

			switch (f->state) {
			case FILE_PENDING:
			case FILE_RERUN:
				printf("%s: %s\n", f->path,
				       f->state == FILE_PENDING
					       ? "pending: will run"
					       : "changed (repeatable): will run again");
				pending++;
				earlier = true;
				break;
			case FILE_FAILED:
				printf("%s: its last run %s: will run again from its first statement\n",
				       f->path, f->row->outcome);
				pending++;
				earlier = true;
				break;
			case FILE_CHANGED:
				printf("%s: changed since it was applied: refused\n", f->path);
				break;
			case FILE_DECLARED:
				st = constraints_converge(f->cons, ph, p->conn, NULL, CONS_PLAN,
							  earlier, &actions);
				if (st != ST_OK && st != ST_DRIFT && st != ST_PREFLIGHT)
					goto out;
				result = worse(result, st);
				break;
			case FILE_APPLIED:
			case FILE_MOVED:
			case FILE_MISSING:
				break;
			}
		}
	}
	st = result;
	if (st == ST_OK)
		log_info("plan: %d file%s to apply; the plan can run", pending,
			 pending == 1 ? "" : "s");
	else
		log_error("plan: the run would stop: %s",
			  st == ST_DRIFT ? "the database or a file drifted (see above)"
					 : "a pre-flight check fails (see above)");
out:
	fflush(stdout);
	return st;
}

/*
 * The verify command, read-only: every applied file is there with its
 * checksum, nothing is pending, and every declared constraint is present
 * and valid.  Logs each difference; returns ST_OK, ST_DRIFT when there is
 * any, or another failure.
 */
static enum status phases_verify(struct phases *p)
{
	const struct config *cfg = p->cfg;
	enum status st, result = ST_OK;
	int differences = 0;

	for (int i = 0; i < cfg->n_phases; i++) {
		const struct mplan *plan = &p->plans[i];

		if (cfg->phases[i].kind != PHASE_DIR)
			continue;
		if (migrate_check(plan, &p->hist) != ST_OK)
			result = ST_DRIFT;
		for (int j = 0; j < plan->n; j++) {
			const struct mfile *f = &plan->files[j];
			int diffs = 0;

			switch (f->state) {
			case FILE_CHANGED:
				differences++;
				break;
			case FILE_PENDING:
			case FILE_RERUN:
				log_at(LOG_ERROR, f->path, 0, 0, "%s",
				       f->state == FILE_PENDING
					       ? "not applied yet"
					       : "changed (repeatable) and not applied again yet");
				differences++;
				result = ST_DRIFT;
				break;
			case FILE_FAILED:
				log_at(LOG_ERROR, f->path, 0, 0,
				       "not applied: its last run (%s) %s", f->row->applied_at,
				       f->row->outcome);
				differences++;
				result = ST_DRIFT;
				break;
			case FILE_MISSING:
				log_at(LOG_ERROR, f->path, 0, 0,
				       "applied on %s, but no longer in the folder",
				       f->row->applied_at);
				differences++;
				result = ST_DRIFT;
				break;
			case FILE_DECLARED:
				st = constraints_converge(f->cons, &cfg->phases[i], p->conn, NULL,
							  CONS_VERIFY, false, &diffs);
				if (st != ST_OK && st != ST_DRIFT)
					goto out;
				differences += diffs;
				result = worse(result, st);
				break;
			case FILE_APPLIED:
				printf("%s: applied, checksum matches\n", f->path);
				break;
			case FILE_MOVED:
				break;
			}
		}
	}
	st = result;
	if (st == ST_OK)
		log_info("verify: every applied file and every declared constraint matches");
	else
		log_error("verify: %d difference%s (see above)", differences,
			  differences == 1 ? "" : "s");
out:
	fflush(stdout);
	return st;
}

enum status phases_inspect(const struct config *cfg, enum inspect what)
{
	struct phases p;
	PGconn *conn = NULL;
	enum status st = phases_init(&p, cfg);

	if (st != ST_OK)
		return st;
	st = phases_wait(&p, &conn);
	if (st != ST_OK) {
		phases_free(&p);
		return st;
	}
	st = phases_prepare(&p, conn, false);
	/* plan and verify change nothing: every transaction of the session is read-only */
	if (st == ST_OK && (what == INSPECT_PLAN || what == INSPECT_VERIFY))
		st = db_exec(conn, "SET default_transaction_read_only = on", NULL);
	if (st == ST_OK && what == INSPECT_PLAN)
		st = phases_plan(&p);
	else if (st == ST_OK && what == INSPECT_VERIFY)
		st = phases_verify(&p);
	else if (st == ST_OK)
		phases_print_status(&p, what == INSPECT_STATUS_JSON);
	phases_free(&p);
	PQfinish(conn);
	return st;
}
