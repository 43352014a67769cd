#include "phases.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "lock.h"
#include "log.h"

/* PHASE_NONE: config never lets one through; running it is an internal error. */
static enum status none_run(struct phases *p, int i)
{
	(void)p;
	(void)i;
	return ST_INTERNAL;
}

static const struct phase_ops phase_none_ops = { .name = "?", .run = none_run };

/* The kinds of phase, one row each. */
static const struct phase_ops *const kinds[] = {
	[PHASE_DIR] = &phase_dir_ops,
	[PHASE_RUN] = &phase_run_ops,
	[PHASE_WAIT_FOR] = &phase_wait_for_ops,
};

const struct phase_ops *phases_ops(enum phase_kind k)
{
	if ((size_t)k < sizeof(kinds) / sizeof(kinds[0]) && kinds[k])
		return kinds[k];
	return &phase_none_ops;
}

void phases_init(struct phases *p, const struct config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->plans = xcalloc((size_t)cfg->n_phases + 1, sizeof(*p->plans));
	p->runs = xcalloc((size_t)cfg->n_phases + 1, sizeof(*p->runs));
}

/* Whether every phase's folder is listed and read. */
static bool read_all(const struct phases *p)
{
	return p->next_read >= p->cfg->n_phases;
}

/* Read the next bit of the folders: one folder's listing, or one file. */
static enum status read_step(struct phases *p)
{
	for (; !read_all(p); p->next_read++) {
		const struct phase_ops *k = phases_ops(p->cfg->phases[p->next_read].kind);
		enum status st;

		if (k->read && k->read(p, p->next_read, &st))
			return st;
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

enum status phases_wait(struct phases *p, PGconn **conn)
{
	enum status st;

	db_set_idle(read_ahead, p);
	st = db_wait(p->cfg, conn);
	db_set_idle(NULL, NULL);
	return st;
}

enum status phases_prepare(struct phases *p, PGconn *conn)
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
		const struct phase_ops *k = phases_ops(cfg->phases[i].kind);
		st = k->match ? k->match(p, i) : ST_OK;
		if (st != ST_OK)
			return st;
	}
	return ST_OK;
}

enum status phases_prepare_locked(struct phases *p)
{
	const struct config *cfg = p->cfg;
	enum status st;

	/* the history kept in public by earlier versions moves to its own schema */
	st = history_adopt_legacy(p->conn, &p->hist);
	if (st != ST_OK)
		return st;
	history_set_lock(&p->hist, lock_holder_pid());
	/* Check every phase before running any, so a drift stops the start-up before it changes anything. */
	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase_ops *k = phases_ops(cfg->phases[i].kind);
		enum status cst = k->check ? k->check(p, i) : ST_OK;
		if (cst != ST_OK)
			st = cst;
	}
	return st;
}

char *phases_missing_relations(PGconn *conn, const struct strv *names, enum status *st)
{
	struct sbuf missing = { 0 };

	*st = ST_OK;
	for (int i = 0; i < names->n; i++) {
		const char *params[1] = { names->v[i] };
		PGresult *res = db_query(conn, "SELECT to_regclass($1) IS NOT NULL", 1, params, st);
		bool exists;

		if (!res) {
			sbuf_reset(&missing);
			return NULL;
		}
		exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (!exists)
			sbuf_printf(&missing, "%s%s", missing.len ? ", " : "", names->v[i]);
	}
	return missing.len ? sbuf_take(&missing) : NULL;
}

enum answer phases_ask(PGconn *conn, const char *query, enum status *st, char *got, size_t len)
{
	PGresult *res = db_query(conn, query, 0, NULL, st);
	enum answer a = ANSWER_FALSE;

	got[0] = '\0';
	if (!res)
		return ANSWER_FALSE;
	if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQftype(res, 0) != BOOLOID) {
		if (PQnfields(res) != 1 || PQntuples(res) != 1)
			snprintf(got, len, "%d row%s of %d column%s", PQntuples(res),
				 PQntuples(res) == 1 ? "" : "s", PQnfields(res),
				 PQnfields(res) == 1 ? "" : "s");
		else if (PQgetisnull(res, 0, 0))
			snprintf(got, len, "NULL, not of type boolean");
		else
			snprintf(got, len, "\"%.100s\", not a boolean", PQgetvalue(res, 0, 0));
		a = ANSWER_NOT_BOOL;
	} else if (PQgetisnull(res, 0, 0)) {
		snprintf(got, len, "NULL");
		a = ANSWER_NULL;
	} else {
		a = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? ANSWER_TRUE : ANSWER_FALSE;
		snprintf(got, len, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return a;
}

bool phases_expect_holds(struct phases *p, const struct phase *ph, enum status *st)
{
	char got[128];
	char *missing = NULL;

	*st = ST_OK;
	if (ph->expect.n)
		missing = phases_missing_relations(p->conn, &ph->expect, st);
	if (missing || *st != ST_OK) {
		free(missing);
		return false;
	}
	return !ph->expect_query ||
	       phases_ask(p->conn, ph->expect_query, st, got, sizeof(got)) == ANSWER_TRUE;
}

static enum status check_expect(struct phases *p, const struct phase *ph)
{
	const char *hint = phases_ops(ph->kind)->expect_hint;
	enum status st = ST_OK;
	char *missing = NULL;
	char got[128];
	enum answer a;

	if (ph->expect.n)
		missing = phases_missing_relations(p->conn, &ph->expect, &st);
	if (st != ST_OK)
		return st;
	if (missing) {
		log_error("phase \"%s\" finished, but %s %s not exist", ph->name, missing,
			  strchr(missing, ',') ? "do" : "does");
		log_detail("The phase's expect lists relations that must exist when it ends.");
		if (hint)
			log_hint("%s", hint);
		free(missing);
		return ST_EXTERNAL;
	}
	if (!ph->expect_query)
		return ST_OK;
	a = phases_ask(p->conn, ph->expect_query, &st, got, sizeof(got));
	if (st != ST_OK) {
		log_error("phase \"%s\": expect_query failed", ph->name);
		return st == ST_SQL ? ST_EXTERNAL : st;
	}
	if (a == ANSWER_TRUE)
		return ST_OK;
	if (a == ANSWER_NOT_BOOL) {
		log_error(
			"phase \"%s\": expect_query must return one boolean (one row, one column); "
			"it returned %s",
			ph->name, got);
		return ST_USAGE;
	}
	log_error("phase \"%s\" finished, but its expect_query returned %s", ph->name, got);
	if (hint)
		log_hint("%s", hint);
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

enum status phases_recheck(struct phases *p)
{
	const struct config *cfg = p->cfg;
	enum status st;

	for (int i = 0; i < cfg->n_phases; i++)
		if (p->plans[i].phase)
			migrate_unmatch(&p->plans[i]);
	history_free(&p->hist);
	st = history_load(p->conn, cfg, &p->hist);
	for (int i = 0; st == ST_OK && i < cfg->n_phases; i++) {
		const struct phase_ops *k = phases_ops(cfg->phases[i].kind);
		st = k->match ? k->match(p, i) : ST_OK;
	}
	return st;
}

bool phases_files_pending(const struct phases *p)
{
	for (int i = 0; i < p->cfg->n_phases; i++)
		for (int j = 0; j < p->plans[i].n; j++)
			if (!migrate_file_settled(&p->plans[i].files[j]))
				return true; /* to apply, or constraints to converge */
	return false;
}

bool phases_settled(struct phases *p, enum status *st)
{
	const struct config *cfg = p->cfg;

	*st = ST_OK;
	if (p->hist.legacy) /* moved under the lock */
		return false;
	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase_ops *k = phases_ops(cfg->phases[i].kind);
		if (!k->settled || !k->skip || !k->settled(p, i, st) || *st != ST_OK)
			return false;
		if (!phases_expect_holds(p, &cfg->phases[i], st) || *st != ST_OK)
			return false;
	}
	for (int i = 0; i < cfg->n_phases; i++)
		phases_ops(cfg->phases[i].kind)->skip(p, i);
	return true;
}

enum status phases_run(struct phases *p)
{
	const struct config *cfg = p->cfg;
	enum status st = ST_OK;

	for (int i = 0; i < cfg->n_phases && st == ST_OK; i++) {
		const struct phase *ph = &cfg->phases[i];

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
		st = phases_ops(ph->kind)->run(p, i);
		if (st == ST_OK)
			st = check_expect(p, ph);
		if (st == ST_OK && phases_ops(ph->kind)->done)
			st = phases_ops(ph->kind)->done(p, i);
	}
	return st;
}

void phases_free(struct phases *p)
{
	log_release(false);
	if (p->plans && p->cfg)
		for (int i = 0; i < p->cfg->n_phases; i++)
			mplan_free(&p->plans[i]);
	free(p->plans);
	free(p->runs);
	history_free(&p->hist);
	if (p->work)
		PQfinish(p->work);
	memset(p, 0, sizeof(*p));
}

enum status phases_open(struct phases *p, const struct config *cfg, bool read_only)
{
	PGconn *conn = NULL;
	enum status st;

	phases_init(p, cfg);
	db_allow_standby(true); /* reading is all these commands do */
	st = phases_wait(p, &conn);
	if (st != ST_OK)
		return st;
	st = phases_prepare(p, conn);
	/* plan and verify change nothing: every transaction of the session is read-only */
	if (st == ST_OK && read_only)
		st = db_exec(conn, "SET default_transaction_read_only = on", NULL);
	return st;
}

void phases_close(struct phases *p)
{
	PGconn *conn = p->conn;

	phases_free(p);
	if (conn)
		PQfinish(conn);
}
