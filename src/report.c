#include "report_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cons_kind.h"
#include "constraints.h"
#include "db.h"
#include "init.h"
#include "log.h"
#include "migrate.h"
#include "util.h"

void report_line(const char *file, int line, const char *fmt, ...)
{
	char *text;
	va_list ap;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	if (file && line > 0)
		printf("%s:%d: %s\n", file, line, text);
	else if (file)
		printf("%s: %s\n", file, text);
	else
		printf("%s\n", text);
	fflush(stdout);
	free(text);
}

/* ---- plan and verify ---- */

/* The more serious of two outcomes of plan/verify: drift over pre-flight over ok. */
static enum status worse(enum status a, enum status b)
{
	if (a == ST_DRIFT || b == ST_DRIFT)
		return ST_DRIFT;
	if (a == ST_PREFLIGHT || b == ST_PREFLIGHT)
		return ST_PREFLIGHT;
	return a != ST_OK ? a : b;
}

/* The drift check of phase i, for the kinds that have one. */
static enum status check_phase(const struct phases *p, int i)
{
	const struct phase_ops *k = phases_ops(p->cfg->phases[i].kind);

	return k->check ? k->check(p, i) : ST_OK;
}

/*
 * plan and verify as data (--json, --sql).  While one runs, `data` holds
 * what is gathered instead of printed, and the constraint lines come here
 * (report_constraint) instead of going to stdout.
 */

struct data {
	enum report_format fmt;
	PGconn *conn;
	struct sbuf doc;   /* JSON: the document so far */
	struct sbuf items; /* JSON: the constraint items of the file being read */
	struct sbuf msgs;  /* JSON: the log lines while its constraints are read */
	struct sbuf sql;   /* SQL: the script not printed yet (sql_emit) */
	bool stopped;	   /* SQL: the run would have stopped before what comes now */
	char *role;	   /* SQL: [database] role, quoted, or NULL */
	int nmsgs;
	int *seen; /* verify: the lines of the specs found ok */
	int nseen, capseen;
	/* SQL: the DDL of the spec being shown, printed when the next one starts */
	const struct cspec *spec;
	struct cons_ddl ddl;
	long lock_timeout_ms, statement_timeout_ms;
};

static struct data *data;

/* The log's lines while a constraint file is read: on stderr as always, and kept for the JSON. */
static void tee_line(const char *line, size_t len, void *arg)
{
	struct data *d = arg;
	size_t n = len;
	int saved = errno;
	char *text;

	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, line + (len - n), n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		n -= (size_t)w;
	}
	if (len > 0 && line[len - 1] == '\n')
		len--;
	text = xstrndup(line, len);
	sbuf_puts(&d->msgs, d->nmsgs++ ? "," : "");
	sbuf_put_json(&d->msgs, text);
	free(text);
	errno = saved;
}

static const char *result_name(enum status st)
{
	switch (st) {
	case ST_OK:
		return "ok";
	case ST_PREFLIGHT:
		return "preflight-failed";
	case ST_DRIFT:
		return "drift";
	default:
		return "error";
	}
}

static void json_strv(struct sbuf *b, const struct strv *v)
{
	sbuf_putc(b, '[');
	for (int i = 0; i < v->n; i++) {
		if (i)
			sbuf_putc(b, ',');
		sbuf_put_json(b, v->v[i]);
	}
	sbuf_putc(b, ']');
}

/* A count the server printed, as a JSON number (0 for anything else). */
static void json_count(struct sbuf *b, const char *name, const char *digits)
{
	bool ok = *digits != '\0' && strspn(digits, "0123456789") == strlen(digits);

	sbuf_printf(b, ",\"%s\":%s", name, ok ? digits : "0");
}

/* ---- --sql ---- */

/*
 * Print the script built so far.  Once the run would have stopped (a
 * pre-flight fails, or drift: data->stopped), each statement is printed as
 * a comment: migrate would not send it.
 */
static void sql_emit(void)
{
	const char *p = data->sql.p ? data->sql.p : "";
	bool stopped = data->stopped;

	for (const char *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		printf("%s%.*s\n", stopped && strncmp(p, "--", 2) != 0 ? "-- " : "",
		       nl ? (int)(nl - p) : (int)strlen(p), p);
	}
	sbuf_reset(&data->sql);
}

/*
 * What pgprelude sends before a step (ddl.h): the timeouts, and the owner
 * role when [database] role names one; in a transaction it opens (in_tx),
 * or for the session.
 */
static void sql_setup(bool in_tx, long lock_timeout_ms, long statement_timeout_ms)
{
	sbuf_printf(&data->sql, "%s lock_timeout = %ld; SET %sstatement_timeout = %ld;",
		    in_tx ? "BEGIN; SET LOCAL" : "SET", lock_timeout_ms, in_tx ? "LOCAL " : "",
		    statement_timeout_ms);
	if (data->role)
		sbuf_printf(&data->sql, " SET %sROLE %s;", in_tx ? "LOCAL " : "", data->role);
	sbuf_putc(&data->sql, '\n');
}

/* What pgprelude sends after the steps of a session-level sql_setup. */
static void sql_reset(void)
{
	sbuf_printf(&data->sql, "RESET lock_timeout; RESET statement_timeout;%s\n",
		    data->role ? " RESET ROLE;" : "");
}

/* Print the DDL of the spec shown last, as converge sends it, and forget it. */
static void sql_flush_spec(struct data *d)
{
	const struct cons_ddl *x = &d->ddl;

	for (int i = 0; i < x->n; i++) {
		bool last = i + 1 == x->n || x->txn[i + 1] != x->txn[i];
		if (i == 0 || x->txn[i] != x->txn[i - 1])
			sql_setup(x->txn[i] != CONS_DDL_ALONE, d->lock_timeout_ms,
				  d->statement_timeout_ms);
		sbuf_printf(&data->sql, "%s;\n", x->sql[i]);
		if (last && x->txn[i] == CONS_DDL_ALONE)
			sql_reset();
		else if (last)
			sbuf_puts(&data->sql, "COMMIT;\n");
	}
	cons_ddl_free(&d->ddl);
	d->spec = NULL;
}

/* One line of the comment text, "-- " before each line. */
static void sql_comment(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sql_comment(const char *fmt, ...)
{
	char *text;
	va_list ap;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	for (char *line = text, *nl; line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		sbuf_printf(&data->sql, "-- %.*s\n", nl ? (int)(nl - line) : (int)strlen(line),
			    line);
	}
	free(text);
}

/* What migrate sends for SQL file f of phase ph: its text as it will run. */
static void sql_file(const struct phase *ph, const struct mfile *f, const char *why,
		     const struct history *h)
{
	sql_comment("%s: %s", f->path, why);
	if (f->state != FILE_PENDING && f->state != FILE_RERUN && f->state != FILE_FAILED)
		return;
	if (f->directives.no_transaction) {
		sql_setup(false, ph->lock_timeout_ms, ph->statement_timeout_ms);
		for (int k = 0; k < f->nstmts; k++) {
			const struct sql_stmt *s = &f->stmts[k];
			size_t len = s->end - s->start;
			bool semi = len > 0 && f->text[s->end - 1] == ';';
			sbuf_printf(&data->sql, "%.*s%s\n", (int)len, f->text + s->start,
				    semi ? "" : "\n;");
		}
		sql_reset();
		sql_comment("(then pgprelude records %s in %s)", f->name, h->qualified);
	} else {
		size_t len = f->len;
		sql_setup(true, ph->lock_timeout_ms, ph->statement_timeout_ms);
		sbuf_putn(&data->sql, f->text, len);
		sbuf_printf(&data->sql, "\n;\n");
		sql_comment("(pgprelude records %s in %s here, in the same transaction)", f->name,
			    h->qualified);
		sbuf_printf(&data->sql, "COMMIT;\n");
	}
}

/* ---- what cons_out_line hands over ---- */

bool report_as_data(void)
{
	return data != NULL;
}

static bool seen(const struct data *d, int line)
{
	for (int i = 0; i < d->nseen; i++)
		if (d->seen[i] == line)
			return true;
	return false;
}

/* The pre-flight counts of s that failed, as JSON members. */
static void json_preflight_counts(struct sbuf *b, const struct cspec *s,
				  const struct cons_resolved *rv)
{
	enum status st;
	char *sql = s->kind == CSPEC_UNIQUE ? cspec_sql_duplicates(s, rv->qfrom, true, 0)
					    : cspec_sql_count_nulls(s, rv->qtable);
	PGresult *res = db_query(data->conn, sql, 0, NULL, &st);

	free(sql);
	if (res && PQntuples(res) > 0 && s->kind == CSPEC_UNIQUE && PQnfields(res) >= 2) {
		json_count(b, "duplicate_groups", PQgetvalue(res, 0, 0));
		json_count(b, "duplicate_rows", PQgetvalue(res, 0, 1));
	} else if (res && PQntuples(res) > 0) {
		json_count(b, "null_rows", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	if (s->kind != CSPEC_UNIQUE)
		return;
	sql = cspec_sql_duplicates(s, rv->qfrom, false, CONS_SHOW_KEYS);
	res = db_query(data->conn, sql, 0, NULL, &st);
	free(sql);
	if (res) {
		sbuf_puts(b, ",\"first_duplicates\":[");
		for (int i = 0; i < PQntuples(res); i++) {
			sbuf_puts(b, i ? ",{\"key\":[" : "{\"key\":[");
			for (int c = 0; c < s->columns.n; c++) {
				if (c)
					sbuf_putc(b, ',');
				sbuf_put_json(b, PQgetisnull(res, i, c) ? NULL
									: PQgetvalue(res, i, c));
			}
			sbuf_putc(b, ']');
			json_count(b, "rows", PQgetvalue(res, i, s->columns.n));
			sbuf_putc(b, '}');
		}
		sbuf_putc(b, ']');
	}
	PQclear(res);
}

/* A constraint item (after a comma when b has one), up to its action, left open. */
static void json_item_head(struct sbuf *b, const char *path, const struct cspec *s,
			   const char *table, const char *action)
{
	sbuf_puts(b, b->len ? ",{\"file\":" : "{\"file\":");
	sbuf_put_json(b, path);
	sbuf_printf(b, ",\"line\":%d,\"kind\":\"%s\",\"name\":", s->line, cspec_kind_word(s->kind));
	sbuf_put_json(b, s->name);
	sbuf_puts(b, ",\"table\":");
	sbuf_put_json(b, table);
	sbuf_puts(b, ",\"columns\":");
	json_strv(b, &s->columns);
	sbuf_puts(b, ",\"action\":");
	sbuf_put_json(b, action);
}

void report_constraint(const struct cons_run *r, const struct cspec *s,
		       const struct cons_resolved *rv, const struct cons_line *line,
		       struct cons_ddl *ddl)
{
	static const char *const pf_result[] = { [CONS_PF_PASSED] = "passed",
						 [CONS_PF_NOT_NEEDED] = "not-needed",
						 [CONS_PF_FAILED] = "failed" };
	struct data *d = data;
	const char *table = rv->shown ? rv->shown : s->table;

	if (d->fmt == REPORT_SQL) {
		if (d->spec != s)
			sql_flush_spec(d);
		d->spec = s;
		d->lock_timeout_ms =
			s->lock_timeout_ms >= 0 ? s->lock_timeout_ms : r->ph->lock_timeout_ms;
		d->statement_timeout_ms = s->statement_timeout_ms >= 0
						  ? s->statement_timeout_ms
						  : r->ph->statement_timeout_ms;
		sql_comment("%s:%d: %s \"%s\" on %s: %s", r->cf->path, s->line,
			    cspec_kind_word(s->kind), s->name, table, line->text);
		for (int i = 0; i < ddl->n; i++)
			cons_ddl_add(&d->ddl, ddl->sql[i], ddl->txn[i]);
		ddl->n = 0;
		return;
	}
	json_item_head(&d->items, r->cf->path, s, table, line->action);
	if (r->mode == CONS_VERIFY) {
		sbuf_puts(&d->items, ",\"ok\":true");
		if (d->nseen == d->capseen) {
			d->capseen = d->capseen ? 2 * d->capseen : 8;
			d->seen = xrealloc(d->seen, (size_t)d->capseen * sizeof(*d->seen));
		}
		d->seen[d->nseen++] = s->line;
	} else {
		sbuf_printf(&d->items, ",\"drift\":%s,\"refused\":%s,\"decided_later\":%s",
			    line->verdict == CONS_DRIFT ? "true" : "false",
			    line->verdict == CONS_REFUSED ? "true" : "false",
			    rv->absent ? "true" : "false");
		sbuf_puts(&d->items, ",\"sql\":[");
		for (int i = 0; i < ddl->n; i++) {
			if (i)
				sbuf_putc(&d->items, ',');
			sbuf_put_json(&d->items, ddl->sql[i]);
		}
		sbuf_puts(&d->items, "],\"preflight\":");
		if (line->pf == CONS_PF_NONE) {
			sbuf_puts(&d->items, "null");
		} else {
			sbuf_printf(&d->items, "{\"result\":\"%s\",\"text\":", pf_result[line->pf]);
			sbuf_put_json(&d->items, line->pf_text);
			if (line->pf == CONS_PF_FAILED)
				json_preflight_counts(&d->items, s, rv);
			sbuf_putc(&d->items, '}');
		}
	}
	sbuf_putc(&d->items, '}');
	cons_ddl_free(ddl);
}

/* ---- one file, one phase ---- */

/* Text mode's line for what plan does with f, or what it is (malloc'd). */
static char *plan_why(const struct mfile *f)
{
	switch (f->state) {
	case FILE_PENDING:
		if (f->late)
			return xasprintf("pending: will run, out of order (it sorts before \"%s\", "
					 "which is applied)",
					 f->late);
		return xstrdup("pending: will run");
	case FILE_RERUN:
		return xstrdup("changed (repeatable): will run again");
	case FILE_FAILED:
		return xasprintf("its last run %s: will run again from its first statement",
				 f->row->outcome);
	case FILE_CHANGED:
		return xstrdup("changed since it was applied: refused");
	case FILE_APPLIED:
		return xstrdup("applied: nothing to do");
	case FILE_MOVED:
		return xasprintf("applied under phase \"%s\" as %s: not run", f->moved->phase,
				 f->moved->file);
	case FILE_MISSING:
		return xasprintf("applied on %s, but no longer in the folder: nothing to do",
				 f->row->applied_at);
	case FILE_DECLARED:
		break;
	}
	return xstrdup("constraints: converged on every run");
}

static bool will_run(const struct mfile *f)
{
	return f->state == FILE_PENDING || f->state == FILE_RERUN || f->state == FILE_FAILED ||
	       f->state == FILE_DECLARED;
}

/* JSON: the start of file f's object, up to its last member, without the closing brace. */
static void json_file_head(struct sbuf *b, const struct mfile *f, bool first)
{
	sbuf_puts(b, first ? "{" : ",{");
	report_json_file_fields(b, f);
	sbuf_printf(b, ",\"no_transaction\":%s", f->directives.no_transaction ? "true" : "false");
}

/*
 * Converge (plan or verify) constraint file f of phase ph as data: the
 * items and the log lines go to the file's object (JSON) or its DDL to
 * stdout (SQL).
 */
static enum status data_constraints(struct phases *p, const struct phase *ph, const struct mfile *f,
				    enum cons_mode mode, bool later_ok, int *changes)
{
	struct data *d = data;
	enum status st;

	if (d->fmt == REPORT_SQL) {
		sql_comment("%s: constraints", f->path);
		sql_emit();
		st = constraints_converge(f->cons, ph, p->conn, NULL, mode, later_ok, changes);
		sql_flush_spec(d);
		if ((st == ST_PREFLIGHT || st == ST_DRIFT) && !d->stopped) {
			printf("-- %s: the run would stop at this file (%s): from here on, nothing is "
			       "sent\n",
			       f->path, st == ST_DRIFT ? "drift" : "a pre-flight fails");
			d->stopped = true;
		}
		sql_emit();
		return st;
	}
	sbuf_reset(&d->items);
	sbuf_reset(&d->msgs);
	d->nmsgs = 0;
	d->nseen = 0;
	log_set_output(tee_line, d);
	st = constraints_converge(f->cons, ph, p->conn, NULL, mode, later_ok, changes);
	log_set_output(NULL, NULL);
	for (int i = 0; mode == CONS_VERIFY && i < f->cons->n; i++) {
		const struct cspec *s = &f->cons->specs[i];
		char *table =
			s->schema ? xasprintf("%s.%s", s->schema, s->table) : xstrdup(s->table);
		if (seen(d, s->line)) {
			free(table);
			continue;
		}
		json_item_head(&d->items, f->path, s, table, NULL);
		sbuf_puts(&d->items, ",\"ok\":false}");
		free(table);
	}
	sbuf_puts(&d->doc, ",\"constraints\":[");
	sbuf_puts(&d->doc, d->items.p ? d->items.p : "");
	sbuf_puts(&d->doc, "],\"messages\":[");
	sbuf_puts(&d->doc, d->msgs.p ? d->msgs.p : "");
	sbuf_putc(&d->doc, ']');
	return st;
}

/* The verdict of run step i as JSON and why, for plan. */
static void json_run_step(struct sbuf *b, const struct phases *p, int i)
{
	const struct phase *ph = &p->cfg->phases[i];
	const struct run_state *rs = &p->runs[i];
	const char *verdict = "always", *why = "no inputs: it runs on every start";

	switch (rs->verdict) {
	case RUN_ALWAYS:
		break;
	case RUN_FIRST:
		verdict = "never-recorded";
		why = "never recorded with its inputs";
		break;
	case RUN_CHANGED:
		verdict = "inputs-changed";
		why = "its inputs or command changed";
		break;
	case RUN_UNMET:
		verdict = "expect-unmet";
		why = "inputs unchanged, but its expect does not hold";
		break;
	case RUN_UP_TO_DATE:
		verdict = "up-to-date";
		why = "up to date: inputs unchanged, expect holds";
		break;
	}
	sbuf_puts(b, ",\"step\":{\"command\":");
	json_strv(b, &ph->argv);
	sbuf_puts(b, ",\"inputs\":");
	json_strv(b, &ph->inputs);
	sbuf_printf(b, ",\"will_run\":%s,\"verdict\":\"%s\",\"why\":",
		    rs->verdict == RUN_UP_TO_DATE ? "false" : "true", verdict);
	sbuf_put_json(b, why);
	sbuf_puts(b, ",\"recorded_at\":");
	sbuf_put_json(b, rs->row ? rs->row->applied_at : NULL);
	sbuf_putc(b, '}');
}

/* JSON: the start of phase i's object, up to its "files" array, left open. */
static void json_phase_head(const struct phases *p, int i, const char *line)
{
	const struct phase *ph = &p->cfg->phases[i];
	const struct phase_ops *k = phases_ops(ph->kind);
	struct sbuf *b = &data->doc;

	sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
	sbuf_put_json(b, ph->name);
	sbuf_printf(b, ",\"kind\":\"%s\"", k->name);
	if (k->state) {
		sbuf_puts(b, ",\"state\":");
		sbuf_put_json(b, k->state(p, i));
	}
	if (line) {
		sbuf_puts(b, ",\"plan\":");
		sbuf_put_json(b, line);
	}
	if (ph->kind == PHASE_RUN && p->runs)
		json_run_step(b, p, i);
	sbuf_puts(b, ",\"files\":[");
}

/* --sql: what phase i is, as a comment. */
static void sql_phase(const struct phases *p, int i, const char *line)
{
	const struct phase *ph = &p->cfg->phases[i];

	if (ph->kind == PHASE_RUN && p->runs) {
		const struct run_state *rs = &p->runs[i];
		struct sbuf cmd = { 0 };
		for (int j = 0; j < ph->argv.n; j++)
			sbuf_printf(&cmd, "%s%s", j ? " " : "", ph->argv.v[j]);
		sql_comment("phase \"%s\" (run): %s: %s", ph->name, cmd.p ? cmd.p : "",
			    rs->verdict == RUN_UP_TO_DATE ? "will not run (up to date)"
			    : rs->verdict == RUN_ALWAYS	  ? "will run (no inputs: on every start)"
							  : "will run");
		if (line)
			sql_comment("  %s", line);
		sbuf_reset(&cmd);
		return;
	}
	sql_comment("phase \"%s\" (%s)%s%s", ph->name, phases_ops(ph->kind)->name, line ? ": " : "",
		    line ? line : "");
}

/* Start the document of cmd (JSON) or the script (SQL). */
static void data_begin(struct data *d, const struct phases *p, const char *cmd)
{
	if (d->fmt == REPORT_JSON) {
		sbuf_printf(&d->doc, "{\"command\":\"%s\",\"history\":", cmd);
		sbuf_put_json(&d->doc, p->hist.qualified);
		sbuf_puts(&d->doc, ",\"phases\":[");
	} else {
		sql_comment("pgprelude plan --sql: what migrate would send, in order; nothing "
			    "was sent.");
		sql_comment("History rows, locks and the checks around each step are left out.");
		d->role = p->cfg->db_role ? cspec_quote(p->cfg->db_role) : NULL;
		for (int i = 0; i < p->cfg->n_phases && !d->stopped; i++)
			for (int j = 0; j < p->plans[i].n; j++)
				d->stopped |= p->plans[i].files[j].state == FILE_CHANGED;
		if (d->stopped)
			sql_comment("A file changed since it was applied: migrate would refuse to "
				    "run anything (drift); all of it is shown as comments.");
		sql_emit();
	}
}

/* End the document with its outcome and print it; free what d holds. */
static void data_end(struct data *d, const char *count_name, int count, enum status result)
{
	if (d->fmt == REPORT_JSON) {
		sbuf_printf(&d->doc, "],\"%s\":%d,\"result\":\"%s\",\"exit_code\":%d}\n",
			    count_name, count, result_name(result),
			    status_exit_code(result, result == ST_SIGNAL ? init_stop_signal() : 0));
		fputs(d->doc.p, stdout);
	} else {
		d->stopped = false;
		sql_comment("plan: %s (exit code %d)", result_name(result),
			    status_exit_code(result, result == ST_SIGNAL ? init_stop_signal() : 0));
		sql_emit();
	}
	fflush(stdout);
	sbuf_reset(&d->doc);
	sbuf_reset(&d->items);
	sbuf_reset(&d->msgs);
	sbuf_reset(&d->sql);
	free(d->role);
	free(d->seen);
	data = NULL;
}

/* ---- plan ---- */

struct plan_sum {
	enum status result;
	bool earlier; /* an earlier step will run: it may create what is missing now */
	int pending;  /* files to apply */
};

/*
 * Print what will happen to file f of phase ph, adding it to sum.  Returns
 * ST_OK, or a failure other than drift or pre-flight (plan stops there).
 */
static enum status plan_file(struct phases *p, const struct phase *ph, const struct mfile *f,
			     struct plan_sum *sum, bool first)
{
	char *why = plan_why(f);
	enum status st = ST_OK;
	int actions = 0;

	if (data && data->fmt == REPORT_JSON) {
		json_file_head(&data->doc, f, first);
		sbuf_printf(&data->doc,
			    ",\"will_run\":%s,\"why\":", will_run(f) ? "true" : "false");
		sbuf_put_json(&data->doc, why);
	} else if (data && f->state != FILE_DECLARED) {
		sql_file(ph, f, why, &p->hist);
		sql_emit();
	}
	switch (f->state) {
	case FILE_PENDING:
	case FILE_RERUN:
	case FILE_FAILED:
		if (!data)
			report_line(f->path, 0, "%s", why);
		sum->pending++;
		sum->earlier = true;
		break;
	case FILE_CHANGED:
		if (!data)
			report_line(f->path, 0, "%s", why);
		break;
	case FILE_DECLARED:
		st = data ? data_constraints(p, ph, f, CONS_PLAN, sum->earlier, &actions)
			  : constraints_converge(f->cons, ph, p->conn, NULL, CONS_PLAN,
						 sum->earlier, &actions);
		if (st == ST_DRIFT || st == ST_PREFLIGHT) {
			sum->result = worse(sum->result, st);
			st = ST_OK;
		}
		break;
	case FILE_APPLIED:
	case FILE_MOVED:
	case FILE_MISSING:
		break;
	}
	if (data && data->fmt == REPORT_JSON)
		sbuf_putc(&data->doc, '}');
	free(why);
	return st;
}

enum status report_plan(struct phases *p, enum report_format fmt)
{
	const struct config *cfg = p->cfg;
	struct plan_sum sum = { .result = ST_OK };
	struct data d = { .fmt = fmt, .conn = p->conn };
	enum status st = ST_OK;

	if (fmt != REPORT_TEXT) {
		data = &d;
		data_begin(&d, p, "plan");
	}
	for (int i = 0; i < cfg->n_phases && st == ST_OK; i++) {
		const struct phase *ph = &cfg->phases[i];
		const struct phase_ops *k = phases_ops(ph->kind);
		char *line = k->plan_line ? k->plan_line(p, i) : NULL;

		if (fmt == REPORT_JSON)
			json_phase_head(p, i, line);
		else if (fmt == REPORT_SQL) {
			sql_phase(p, i, line);
			sql_emit();
		} else if (line)
			report_line(NULL, 0, "phase \"%s\": %s", ph->name, line);
		free(line);
		sum.earlier |= k->creates;
		sum.result = worse(sum.result, check_phase(p, i));
		for (int j = 0; j < p->plans[i].n && st == ST_OK; j++)
			st = plan_file(p, ph, &p->plans[i].files[j], &sum, j == 0);
		if (fmt == REPORT_JSON)
			sbuf_puts(&d.doc, "]}");
	}
	if (st == ST_OK && sum.result == ST_OK)
		log_info("plan: %d file%s to apply; the plan can run", sum.pending,
			 sum.pending == 1 ? "" : "s");
	else if (st == ST_OK)
		log_error("plan: the run would stop: %s",
			  sum.result == ST_DRIFT ? "the database or a file drifted (see above)"
						 : "a pre-flight check fails (see above)");
	if (fmt != REPORT_TEXT)
		data_end(&d, "pending", sum.pending, st != ST_OK ? st : sum.result);
	return st != ST_OK ? st : sum.result;
}

/* ---- verify ---- */

struct verify_sum {
	enum status result;
	int differences;
};

/*
 * Log how file f of phase ph differs from what it must be, adding it to
 * sum, or print that it matches.  Returns ST_OK, or a failure other than
 * drift (verify stops there).
 */
static enum status verify_file(struct phases *p, const struct phase *ph, const struct mfile *f,
			       struct verify_sum *sum)
{
	enum status st;
	int diffs = 0;

	switch (f->state) {
	case FILE_CHANGED:
		sum->differences++;
		return ST_OK;
	case FILE_PENDING:
	case FILE_RERUN:
		log_at(LOG_ERROR, f->path, 0, 0, "%s",
		       f->state == FILE_PENDING ? "not applied yet"
						: "changed (repeatable) and not applied again yet");
		break;
	case FILE_FAILED:
		log_at(LOG_ERROR, f->path, 0, 0, "not applied: its last run (%s) %s",
		       f->row->applied_at, f->row->outcome);
		break;
	case FILE_MISSING:
		if (p->allow_missing) { /* the database ahead of an older image: a rollback */
			if (!data)
				report_line(f->path, 0,
					    "applied on %s, no longer in the folder (allowed)",
					    f->row->applied_at);
			return ST_OK;
		}
		log_at(LOG_ERROR, f->path, 0, 0, "applied on %s, but no longer in the folder",
		       f->row->applied_at);
		break;
	case FILE_DECLARED:
		st = data ? data_constraints(p, ph, f, CONS_VERIFY, false, &diffs)
			  : constraints_converge(f->cons, ph, p->conn, NULL, CONS_VERIFY, false,
						 &diffs);
		if (st != ST_OK && st != ST_DRIFT)
			return st;
		sum->differences += diffs;
		sum->result = worse(sum->result, st);
		return ST_OK;
	case FILE_APPLIED:
		if (!data)
			report_line(f->path, 0, "applied, checksum matches");
		return ST_OK;
	case FILE_MOVED:
		return ST_OK;
	}
	sum->differences++;
	sum->result = ST_DRIFT;
	return ST_OK;
}

/* JSON: what verify finds for file f, as its object (without constraints). */
static void json_verify_file(const struct mfile *f, bool first, bool allow_missing)
{
	const char *why;
	char *own = NULL;

	switch (f->state) {
	case FILE_CHANGED:
		why = "changed since it was applied";
		break;
	case FILE_PENDING:
		why = "not applied yet";
		break;
	case FILE_RERUN:
		why = "changed (repeatable) and not applied again yet";
		break;
	case FILE_FAILED:
		why = own = xasprintf("not applied: its last run (%s) %s", f->row->applied_at,
				      f->row->outcome);
		break;
	case FILE_MISSING:
		why = own =
			xasprintf("applied on %s, but no longer in the folder", f->row->applied_at);
		break;
	case FILE_MOVED:
		why = "applied under another phase";
		break;
	case FILE_DECLARED:
		why = "declared constraints: see constraints";
		break;
	case FILE_APPLIED:
	default:
		why = "applied, checksum matches";
		break;
	}
	json_file_head(&data->doc, f, first);
	if (f->state != FILE_DECLARED)
		sbuf_printf(&data->doc, ",\"ok\":%s",
			    f->state == FILE_APPLIED || f->state == FILE_MOVED ||
					    (f->state == FILE_MISSING && allow_missing)
				    ? "true"
				    : "false");
	sbuf_puts(&data->doc, ",\"why\":");
	sbuf_put_json(&data->doc, why);
	free(own);
}

enum status report_verify(struct phases *p, enum report_format fmt)
{
	const struct config *cfg = p->cfg;
	struct verify_sum sum = { .result = ST_OK };
	struct data d = { .fmt = REPORT_JSON, .conn = p->conn };
	enum status st = ST_OK;

	if (fmt == REPORT_JSON) {
		data = &d;
		data_begin(&d, p, "verify");
	}
	for (int i = 0; i < cfg->n_phases && st == ST_OK; i++) {
		if (data)
			json_phase_head(p, i, NULL);
		if (check_phase(p, i) != ST_OK)
			sum.result = ST_DRIFT;
		for (int j = 0; j < p->plans[i].n && st == ST_OK; j++) {
			const struct mfile *f = &p->plans[i].files[j];
			int before = sum.differences;
			if (data)
				json_verify_file(f, j == 0, p->allow_missing);
			st = verify_file(p, &cfg->phases[i], f, &sum);
			if (data && f->state == FILE_DECLARED)
				sbuf_printf(&d.doc, ",\"ok\":%s",
					    sum.differences == before ? "true" : "false");
			if (data)
				sbuf_putc(&d.doc, '}');
		}
		if (data)
			sbuf_puts(&d.doc, "]}");
	}
	if (st == ST_OK && sum.result == ST_OK)
		log_info("verify: every applied file and every declared constraint matches");
	else if (st == ST_OK)
		log_error("verify: %d difference%s (see above)", sum.differences,
			  sum.differences == 1 ? "" : "s");
	if (fmt == REPORT_JSON)
		data_end(&d, "differences", sum.differences, st != ST_OK ? st : sum.result);
	return st != ST_OK ? st : sum.result;
}
