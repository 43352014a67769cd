/*
 * apply.c — running one SQL file of a dir phase on the work connection.
 *
 * A file runs in one transaction with its history row, again from its start
 * after a lock_timeout; a no-transaction file runs statement by statement in
 * autocommit.  A failed CREATE INDEX CONCURRENTLY leaves an INVALID index
 * behind: the statements that can (sqlsplit_index_targets) tell which
 * INVALID indexes to report against the file, and the one a statement of the
 * file builds by name is dropped before that statement runs again.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ddl.h"
#include "init.h"
#include "log.h"
#include "sqlsplit.h"
#include "util.h"

/* After the last retry of a lock_timeout: who held the lock and what to do. */
/* f's own lock_timeout and statement_timeout ("-- pgprelude: statement_timeout=1h"), else ph's. */
static long lock_timeout_of(const struct mfile *f, const struct phase *ph)
{
	return f->directives.lock_timeout_ms >= 0 ? f->directives.lock_timeout_ms
						  : ph->lock_timeout_ms;
}

static long statement_timeout_of(const struct mfile *f, const struct phase *ph)
{
	return f->directives.statement_timeout_ms >= 0 ? f->directives.statement_timeout_ms
						       : ph->statement_timeout_ms;
}

static void gave_up(const struct phase *ph, const struct db_run *run)
{
	if (run->blocker[0])
		log_detail("The lock was held by %s.", run->blocker);
	ddl_gave_up(ph->lock_retries, "", ph->name);
}

/*
 * The text of f to send as one script, then tail: its COPY data is sent
 * apart (db_run), so only the data's line ends are kept, for the lines
 * after it to keep their numbers.  Malloc'd.
 */
static char *script_text(const struct mfile *f, const char *tail)
{
	struct sbuf b = { 0 };
	size_t from = 0;

	for (int k = 0; k < f->nstmts; k++) {
		const struct sql_stmt *s = &f->stmts[k];
		if (!s->has_data)
			continue;
		sbuf_putn(&b, f->text + from, s->data_start - from);
		for (size_t i = s->data_start; i < s->data_after; i++)
			if (f->text[i] == '\n')
				sbuf_putc(&b, '\n');
		from = s->data_after;
	}
	sbuf_putn(&b, f->text + from, f->len - from);
	sbuf_puts(&b, tail);
	return sbuf_take(&b);
}

/*
 * One attempt at f: the file and its history row in one transaction, on a
 * session left clean for the next file.  run gets the file's outcome.
 */
static enum status try_tx(const struct mplan *plan, const struct mfile *f, struct history *h,
			  PGconn *conn, struct db_run *run, long start)
{
	const struct phase *ph = plan->phase;
	/* the history row is written as the connecting role, whatever role the file took */
	char *body = script_text(f, "\n;SET SESSION AUTHORIZATION DEFAULT; RESET ROLE");
	char *clean = ddl_clean_sql(conn);
	char *done = xasprintf("COMMIT; %s", clean);
	enum status st =
		ddl_set_timeouts(conn, true, lock_timeout_of(f, ph), statement_timeout_of(f, ph));

	if (st == ST_OK) {
		db_set_notice_file(conn, f->path);
		st = db_run(conn, body, run);
		db_set_notice_file(conn, NULL);
	}
	if (st == ST_OK && PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		log_at(LOG_ERROR, f->path, 0, 0,
		       "the file ended pgprelude's transaction itself (COMMIT or ROLLBACK in it)");
		log_detail("The file is not recorded as applied.");
		log_hint(
			"Remove BEGIN/COMMIT from the file: pgprelude runs each file in a transaction "
			"(or mark it \"-- pgprelude: no-transaction\").");
		st = ST_SQL;
	}
	if (st == ST_OK)
		st = history_record(conn, h, ph->name, f->name, f->checksum, clock_ms() - start,
				    f->state == FILE_RERUN ? "reapplied" : "applied", f->row);
	if (st == ST_OK)
		st = db_exec(conn, done, f->path);
	if (st != ST_OK) {
		ddl_rollback(conn);
		if (st != ST_CONNLOST && PQstatus(conn) == CONNECTION_OK &&
		    db_exec(conn, clean, NULL) != ST_OK)
			st = db_failure_status(conn);
	}
	free(body);
	free(clean);
	free(done);
	return st;
}

/* Run one file and its history row in one transaction, again from its start after a lock_timeout. */
static enum status apply_tx(const struct mplan *plan, const struct mfile *f, struct history *h,
			    PGconn *conn, PGconn *watch)
{
	const struct phase *ph = plan->phase;
	long start = clock_ms();
	enum status st;

	for (int attempt = 0;; attempt++) {
		struct db_run run = { .file = f->path,
				      .stmts = f->stmts,
				      .nstmts = f->nstmts,
				      .text = f->text,
				      .watch = watch,
				      .lock_poll_ms = ddl_lock_poll_ms(lock_timeout_of(f, ph)),
				      .quiet_lock_timeout = attempt < ph->lock_retries };
		st = try_tx(plan, f, h, conn, &run, start);
		if (st == ST_OK)
			break;
		if (st == ST_SQL && ddl_is_lock_timeout(&run) && attempt < ph->lock_retries) {
			if (!ddl_retry_wait(f->path, run.err_line, run.err_col,
					    lock_timeout_of(f, ph), &run, attempt + 1,
					    ph->lock_retries, "the whole file", NULL))
				return ST_SIGNAL;
			continue;
		}
		if (st == ST_SQL && ddl_is_lock_timeout(&run))
			gave_up(ph, &run);
		if (st == ST_SQL && strcmp(run.sqlstate, "25001") == 0)
			log_hint(
				"A statement such as CREATE INDEX CONCURRENTLY cannot run in a transaction: "
				"put \"-- pgprelude: no-transaction\" at the top of the file to run its "
				"statements one by one.");
		return st;
	}
	log_info("applied %s%s (%ld ms)", f->path,
		 f->state == FILE_RERUN ? " again (repeatable, changed)" : "", clock_ms() - start);
	return ST_OK;
}

/* INVALID indexes, not being built right now: qualified name, table, definition. */
#define INVALID_INDEXES_SQL                                                         \
	"SELECT format('%I.%I', n.nspname, c.relname), i.indrelid::regclass::text," \
	"       pg_get_indexdef(i.indexrelid)"                                      \
	"  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"                 \
	"  JOIN pg_namespace n ON n.oid = c.relnamespace"                           \
	" WHERE NOT i.indisvalid"                                                   \
	"   AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p"          \
	"                    WHERE p.index_relid = i.indexrelid)"

/*
 * Run query on the index that statement s of f builds, when s is a CREATE
 * INDEX CONCURRENTLY of a named index: $1 is the name and $2 the table, as
 * written.  Returns the result (the caller clears it), or NULL when s is no
 * such statement (*st ST_OK) or the query failed (*st says how, logged).
 */
static PGresult *query_cic(PGconn *conn, const struct mfile *f, const struct sql_stmt *s,
			   const char *query, enum status *st)
{
	char *name, *table;
	const char *params[2];
	PGresult *res;

	*st = ST_OK;
	if (!sqlsplit_parse_cic(f->text + s->start, s->end - s->start, &name, &table))
		return NULL;
	params[0] = name;
	params[1] = table;
	res = db_query(conn, query, 2, params, st);
	free(name);
	free(table);
	return res;
}

/*
 * The INVALID index (qualified, malloc'd) that statement s of f, a CREATE
 * INDEX CONCURRENTLY, would build, left by an earlier failed build of it;
 * NULL when there is none, or s is no such statement, or on failure (*st
 * says which).
 */
static char *find_twin(PGconn *conn, const struct mfile *f, const struct sql_stmt *s,
		       enum status *st)
{
	char *twin = NULL;
	PGresult *res = query_cic(conn, f, s,
				  INVALID_INDEXES_SQL " AND i.indrelid = to_regclass($2)"
						      " AND c.relname = (parse_ident($1))[1]",
				  st);

	if (res && PQntuples(res) > 0)
		twin = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return twin;
}

/*
 * Before statement s of f: if it is a CREATE INDEX CONCURRENTLY whose index
 * an earlier failed build left INVALID, drop that index (concurrently), so
 * that the statement builds it again rather than failing on the name or,
 * with IF NOT EXISTS, skipping it.
 */
static enum status drop_twin(const struct mfile *f, const struct sql_stmt *s, PGconn *conn)
{
	enum status st;
	char *twin = find_twin(conn, f, s, &st);
	char *drop;

	if (!twin)
		return st;
	log_at(LOG_WARNING, f->path, s->line, s->col,
	       "dropping the INVALID index %s that an earlier failed CREATE INDEX CONCURRENTLY of this "
	       "statement left, to build it again",
	       twin);
	drop = xasprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", twin);
	st = db_exec(conn, drop, NULL);
	if (st != ST_OK)
		log_at(LOG_ERROR, f->path, s->line, s->col, "could not drop the INVALID index %s",
		       twin);
	free(drop);
	free(twin);
	return st;
}

/*
 * Say which INVALID indexes there are on the tables that f's statements
 * build, rebuild or drop indexes of (sqlsplit_index_targets): those a statement
 * of f builds with CREATE INDEX CONCURRENTLY are dropped and built again by
 * the next run; for the others, how to remove them.  INVALID indexes of
 * other tables are none of f's doing, and not reported against it.
 */
static void report_invalid_indexes(const struct mfile *f, PGconn *conn, bool this_run)
{
	struct sbuf tables = { 0 }, indexes = { 0 };
	const char *params[2];
	PGresult *res = NULL;
	enum status st;

	for (int k = 0; k < f->nstmts; k++)
		sqlsplit_index_targets(f->text + f->stmts[k].start,
				       f->stmts[k].end - f->stmts[k].start, &tables, &indexes);
	if (tables.len == 0 && indexes.len == 0)
		goto out;
	params[0] = tables.len ? tables.p : "{}";
	params[1] = indexes.len ? indexes.p : "{}";
	res = db_query(
		conn,
		INVALID_INDEXES_SQL
		"   AND i.indrelid IN (SELECT to_regclass(x)::oid FROM unnest($1::text[]) AS x"
		"     UNION SELECT j.indrelid FROM pg_index j, unnest($2::text[]) AS x"
		"      WHERE j.indexrelid = to_regclass(x))"
		" ORDER BY 1",
		2, params, &st);
	for (int r = 0; res && r < PQntuples(res); r++) {
		const char *index = PQgetvalue(res, r, 0);
		bool mine = false;
		for (int k = 0; k < f->nstmts && !mine; k++) {
			char *twin = find_twin(conn, f, &f->stmts[k], &st);
			mine = twin && strcmp(twin, index) == 0;
			free(twin);
		}
		log_at(LOG_WARNING, f->path, 0, 0, "INVALID index %s on %s is left behind: %s",
		       index, PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
		if (mine)
			log_detail(
				"A failed CREATE INDEX CONCURRENTLY of this file left it; %s drops it (DROP "
				"INDEX CONCURRENTLY) before the statement builds it again.",
				this_run ? "this run" : "the file's next run");
		else
			log_hint(
				"It is no index this file builds by name: remove it with DROP INDEX "
				"CONCURRENTLY %s; or build it again with REINDEX INDEX CONCURRENTLY %s;",
				index, index);
	}
out:
	PQclear(res);
	sbuf_reset(&tables);
	sbuf_reset(&indexes);
}

/*
 * Statement k of no-transaction file f, alone, in autocommit; only it again
 * after a lock_timeout.  run receives the outcome of the last attempt.
 */
static enum status run_statement(const struct phase *ph, const struct mfile *f, int k, PGconn *conn,
				 PGconn *watch, struct db_run *run)
{
	const struct sql_stmt *s = &f->stmts[k];
	char *sql = xstrndup(f->text + s->start, s->end - s->start);
	enum status st;

	for (int attempt = 0;; attempt++) {
		/* Within the file's own BEGIN … COMMIT a statement cannot be tried again alone. */
		bool may_retry =
			attempt < ph->lock_retries && PQtransactionStatus(conn) == PQTRANS_IDLE;
		st = drop_twin(f, s, conn);
		if (st != ST_OK)
			break;
		*run = (struct db_run){ .file = f->path,
					.stmts = s,
					.nstmts = 1,
					.text = f->text,
					.sent_line = s->line,
					.sent_col = s->col,
					.watch = watch,
					.lock_poll_ms = ddl_lock_poll_ms(lock_timeout_of(f, ph)),
					.quiet_lock_timeout = may_retry };
		log_debug("%s:%d:%d: statement %d of %d", f->path, s->line, s->col, k + 1,
			  f->nstmts);
		st = db_run(conn, sql, run);
		if (st == ST_SQL && ddl_is_lock_timeout(run) && may_retry) {
			if (!ddl_retry_wait(f->path, run->err_line, run->err_col,
					    lock_timeout_of(f, ph), run, attempt + 1,
					    ph->lock_retries, "the statement", NULL)) {
				st = ST_SIGNAL;
				break;
			}
			continue;
		}
		if (st == ST_SQL && ddl_is_lock_timeout(run))
			gave_up(ph, run);
		break;
	}
	free(sql);
	return st;
}

/*
 * No-transaction file f stopped at statement k with st: say what stays
 * committed and what it left, and record the failure (outcome "failed at
 * line L:C: ...") so that the next run reports it and runs the file again.
 */
static void record_failure(const struct mplan *plan, const struct mfile *f, struct history *h,
			   PGconn *conn, int k, const struct db_run *run, enum status st,
			   long start)
{
	const struct sql_stmt *s = &f->stmts[k < f->nstmts ? k : f->nstmts - 1];
	char outcome[400];

	if (st == ST_SIGNAL) {
		snprintf(outcome, sizeof(outcome), "failed at line %d:%d: stopped by signal %d",
			 s->line, s->col, init_stop_signal());
		log_at(LOG_ERROR, f->path, s->line, s->col,
		       "cancelled by signal %d while running this statement", init_stop_signal());
	} else
		snprintf(outcome, sizeof(outcome), "failed at line %d:%d: %s%s%s%s",
			 run->err_line ? run->err_line : s->line,
			 run->err_line ? run->err_col : s->col, run->message,
			 run->sqlstate[0] ? " (" : "", run->sqlstate, run->sqlstate[0] ? ")" : "");
	if (k == 1)
		log_detail(
			"The file runs without a transaction: its first statement was committed and "
			"stays. The file is not recorded as applied.");
	else if (k > 1)
		log_detail(
			"The file runs without a transaction: its first %d statements (before line %d) "
			"were committed and stay. The file is not recorded as applied.",
			k, s->line);
	else
		log_detail(
			"The file runs without a transaction; it stopped at its first statement. It is "
			"not recorded as applied.");
	if (PQstatus(conn) != CONNECTION_OK)
		return;
	if (history_record(conn, h, plan->phase->name, f->name, f->checksum, clock_ms() - start,
			   outcome, f->row) != ST_OK)
		return;
	report_invalid_indexes(f, conn, false);
	log_hint(
		"The next run reports this and runs the file again from its first statement, so every "
		"statement in it must be re-runnable (IF NOT EXISTS, CREATE OR REPLACE, ...). Fix the "
		"cause above, then start again.");
}

/*
 * After no-transaction file f ran: the index that its statement k builds
 * with CREATE INDEX CONCURRENTLY must be valid (IF NOT EXISTS skips a name
 * already taken, even by an INVALID index or one another session is still
 * building).  Logs and returns ST_SQL, with run filled, when it is not.
 */
static enum status check_built(const struct mfile *f, int k, PGconn *conn, struct db_run *run)
{
	const struct sql_stmt *s = &f->stmts[k];
	enum status st;
	PGresult *res = query_cic(
		conn, f, s,
		"SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i"
		"  JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE i.indrelid = to_regclass($2) AND c.relname = (parse_ident($1))[1]"
		"   AND NOT i.indisvalid",
		&st);

	if (res && PQntuples(res) > 0) {
		log_at(LOG_ERROR, f->path, s->line, s->col,
		       "the index %s that this statement builds is not valid after the file ran",
		       PQgetvalue(res, 0, 0));
		log_detail(
			"Another session is still building it, or a build of it failed; IF NOT EXISTS "
			"took the name for done.");
		*run = (struct db_run){ .err_line = s->line, .err_col = s->col };
		snprintf(run->message, sizeof(run->message), "index %s is not valid",
			 PQgetvalue(res, 0, 0));
		st = ST_SQL;
	}
	PQclear(res);
	return st;
}

/*
 * Run no-transaction file f statement by statement in autocommit (so that
 * CREATE INDEX CONCURRENTLY works), then record it.  lock_timeout and
 * statement_timeout are set in the session for the file (each statement
 * gets its own statement_timeout; a SET in the file itself holds for the
 * statements after it) and reset after it.
 */
static enum status apply_no_tx(const struct mplan *plan, const struct mfile *f, struct history *h,
			       PGconn *conn, PGconn *watch)
{
	const struct phase *ph = plan->phase;
	long start = clock_ms();
	struct db_run run = { 0 };
	enum status st;
	int k;

	st = ddl_set_timeouts(conn, false, lock_timeout_of(f, ph), statement_timeout_of(f, ph));
	if (st != ST_OK)
		return st;
	db_set_notice_file(conn, f->path);
	for (k = 0; k < f->nstmts; k++) {
		st = run_statement(ph, f, k, conn, watch, &run);
		if (st != ST_OK)
			break;
	}
	db_set_notice_file(conn, NULL);
	if (st == ST_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
		k = f->nstmts - 1;
		log_at(LOG_ERROR, f->path, f->stmts[k].line, f->stmts[k].col,
		       "the file ends inside a transaction it opened (BEGIN without COMMIT)");
		snprintf(run.message, sizeof(run.message),
			 "the file ends inside a transaction it opened");
		run.sqlstate[0] = '\0';
		run.err_line = f->stmts[k].line;
		run.err_col = f->stmts[k].col;
		st = ST_SQL;
	}
	ddl_rollback(conn);
	/* the session as at login again, for the checks, the history row and the next file */
	if (st != ST_CONNLOST && ddl_clean_session(conn) != ST_OK && st == ST_OK)
		st = db_failure_status(conn);
	for (int j = 0; st == ST_OK && j < f->nstmts; j++) {
		st = check_built(f, j, conn, &run);
		if (st != ST_OK)
			k = j;
	}
	if (st == ST_OK) {
		st = history_record(conn, h, ph->name, f->name, f->checksum, clock_ms() - start,
				    f->state == FILE_RERUN ? "reapplied" : "applied", f->row);
		if (st != ST_OK) {
			log_at(LOG_ERROR, f->path, 0, 0,
			       "ran to its end, but could not be recorded as applied");
			log_hint("The next run runs it again from its first statement.");
			return st;
		}
		log_info("applied %s%s (no transaction, %d statement%s, %ld ms)", f->path,
			 f->state == FILE_RERUN ? " again (repeatable, changed)" : "", f->nstmts,
			 f->nstmts == 1 ? "" : "s", clock_ms() - start);
		return ST_OK;
	}
	if (st != ST_INTERNAL)
		record_failure(plan, f, h, conn, k, &run, st, start);
	return st;
}

/* Before running f again: what its failed last run left. */
static void report_last_failure(const struct mfile *f, PGconn *conn)
{
	log_at(LOG_WARNING, f->path, 0, 0, "its last run (%s) %s", f->row->applied_at,
	       f->row->outcome);
	log_detail(
		"Its statements before that one were committed then. It is not recorded as applied: "
		"running it again from its first statement%s.",
		strcmp(f->row->checksum, f->checksum) != 0 ? " (the file has changed since)" : "");
	report_invalid_indexes(f, conn, true);
}

enum status apply_file(const struct mplan *plan, const struct mfile *f, struct history *h,
		       PGconn *conn, PGconn *watch)
{
	if (f->state == FILE_FAILED)
		report_last_failure(f, conn);
	return f->directives.no_transaction ? apply_no_tx(plan, f, h, conn, watch)
					    : apply_tx(plan, f, h, conn, watch);
}
