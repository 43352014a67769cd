#include "db.h"

#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"
#include "log.h"
#include "util.h"
#include "wait.h"

/* The file NOTICEs are reported against; only one file runs at a time. */
static const char *notice_file;

void db_notice_receiver(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	enum log_level level = LOG_INFO;
	(void)arg;

	if (!sev)
		sev = "NOTICE";
	if (strcmp(sev, "WARNING") == 0)
		level = LOG_WARNING;
	else if (strcmp(sev, "DEBUG") == 0)
		level = LOG_DEBUG;
	/* A WARNING is logged as a warning: its severity is the level already. */
	if (level == LOG_WARNING && notice_file)
		log_at(level, notice_file, 0, 0, "%s", msg ? msg : "");
	else if (level == LOG_WARNING)
		log_msg(level, "server: %s", msg ? msg : "");
	else if (notice_file)
		log_at(level, notice_file, 0, 0, "%s: %s", sev, msg ? msg : "");
	else
		log_msg(level, "server %s: %s", sev, msg ? msg : "");
	if (detail)
		log_detail("%s", detail);
}

void db_set_notice_file(PGconn *conn, const char *file)
{
	(void)conn;
	notice_file = file;
}

enum status db_failure_status(PGconn *conn)
{
	return PQstatus(conn) == CONNECTION_BAD ? ST_CONNLOST : ST_SQL;
}

bool db_pos_to_linecol(const char *text, long pos, int *line, int *col)
{
	long ch = 0;
	int l = 1, c = 1;
	const unsigned char *p = (const unsigned char *)text;

	for (; *p; p++) {
		if ((*p & 0xC0) == 0x80)
			continue; /* UTF-8 continuation byte: same character */
		ch++;
		if (ch == pos) {
			*line = l;
			*col = c;
			return true;
		}
		if (*p == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
	return pos == ch + 1;
}

/* The file position of an error: the server's position in where->sent, else the statement's start. */
static void error_linecol(const PGresult *res, const struct db_where *where, int *line, int *col)
{
	const char *position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);

	*line = 0;
	*col = 0;
	if (where && position && where->sent) {
		db_pos_to_linecol(where->sent, atol(position), line, col);
		if (where->sent_line > 1 || where->sent_col > 1) {
			if (*line == 1)
				*col += where->sent_col - 1;
			*line += where->sent_line - 1;
		}
	} else if (where && where->stmt_line > 0) {
		*line = where->stmt_line;
		*col = where->stmt_col;
	}
}

void db_report_error(const PGresult *res, const struct db_where *where)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	const char *context = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *iquery = PQresultErrorField(res, PG_DIAG_INTERNAL_QUERY);
	const char *ipos = PQresultErrorField(res, PG_DIAG_INTERNAL_POSITION);
	const char *file = where ? where->file : NULL;
	int line = 0, col = 0;

	if (!msg) {
		/* No server error fields: the connection broke, libpq's text says why. */
		const char *m = PQresultErrorMessage(res);
		char buf[512];
		one_line(buf, sizeof(buf), m && *m ? m : "unknown error");
		if (where && where->stmt_line > 0)
			log_at(LOG_ERROR, file, where->stmt_line, where->stmt_col, "%s", buf);
		else if (file)
			log_at(LOG_ERROR, file, 0, 0, "%s", buf);
		else
			log_error("%s", buf);
		return;
	}
	error_linecol(res, where, &line, &col);
	if (file)
		log_at(LOG_ERROR, file, line, col, "%s (%s)", msg, state ? state : "?????");
	else
		log_error("%s (%s)", msg, state ? state : "?????");
	if (detail)
		log_detail("%s", detail);
	if (hint)
		log_hint("%s", hint);
	if (iquery) {
		if (ipos)
			log_msg(LOG_CONTEXT, "in internal query at character %s: %s", ipos, iquery);
		else
			log_msg(LOG_CONTEXT, "in internal query: %s", iquery);
	}
	if (context) {
		/* one log line per context line */
		const char *c = context;
		while (*c) {
			const char *e = strchr(c, '\n');
			int len = e ? (int)(e - c) : (int)strlen(c);
			if (len > 0)
				log_msg(LOG_CONTEXT, "%.*s", len, c);
			c += len + (e ? 1 : 0);
		}
	}
}

/* Ask the server to cancel the running statement (a stop signal arrived). */
static void cancel_query(PGconn *conn, const char *file)
{
	char err[256] = "";
	PGcancel *cancel = PQgetCancel(conn);

	log_warning("signal %d received: cancelling the running statement%s%s", init_stop_signal(),
		    file ? " of " : "", file ? file : "");
	if (!cancel || !PQcancel(cancel, err, sizeof(err)))
		log_warning("could not cancel the statement: %s", err[0] ? err : "out of memory");
	PQfreeCancel(cancel);
}

/*
 * Who holds the locks backend pid waits for: one phrase per session, from
 * the watching connection.  "" when it waits for no lock (or the query
 * fails: progress is best effort and must not stop the run).
 */
#define BLOCKERS_SQL                                                                                    \
	"(SELECT string_agg(format('pid %s (user %s, application \"%s\", %s, transaction started %s, "  \
	"query started %s: %s)', b.pid, coalesce(b.usename, '?'), coalesce(b.application_name, ''),"    \
	" coalesce(b.state, '?'), coalesce(to_char(b.xact_start, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-')," \
	" coalesce(to_char(b.query_start, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-'),"                        \
	" left(regexp_replace(coalesce(b.query, ''), '\\s+', ' ', 'g'), 80)), '; ' ORDER BY b.pid)"     \
	" FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids($1::int)))"

/* Run a query on the watching connection; NULL (and a debug line) on any failure. */
static PGresult *watch_query(PGconn *watch, const char *sql, int pid)
{
	char param[24];
	const char *params[1] = { param };
	PGresult *res;

	if (!watch || PQstatus(watch) != CONNECTION_OK ||
	    PQtransactionStatus(watch) != PQTRANS_IDLE)
		return NULL;
	snprintf(param, sizeof(param), "%d", pid);
	res = PQexecParams(watch, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		char buf[256];
		one_line(buf, sizeof(buf), PQerrorMessage(watch));
		log_debug("progress query failed: %s", buf);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Note who holds the lock conn's backend waits for, if it waits for one. */
static void poll_blocker(struct db_run *run, PGconn *conn)
{
	PGresult *res = watch_query(run->watch, "SELECT " BLOCKERS_SQL, PQbackendPID(conn));

	if (!res)
		return;
	if (!PQgetisnull(res, 0, 0))
		snprintf(run->blocker, sizeof(run->blocker), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

/*
 * Log that the statement at line:col has run for elapsed_ms, and what it is
 * doing when that can be seen from run->watch.
 */
static void log_progress(struct db_run *run, PGconn *conn, int line, int col, long elapsed_ms)
{
	static const char sql[] =
		"SELECT a.wait_event_type, a.wait_event, p.phase, p.blocks_done, p.blocks_total,"
		"       p.tuples_done, p.tuples_total, p.lockers_done, p.lockers_total,"
		"       p.current_locker_pid, coalesce(nullif(p.index_relid, 0)::regclass::text, ''),"
		"       coalesce(p.relid::regclass::text, ''), " BLOCKERS_SQL ","
		"       (SELECT format('pid %s (%s, transaction started %s, query started %s)', l.pid,"
		"               coalesce(l.state, '?'),"
		"               coalesce(to_char(l.xact_start, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-'),"
		"               coalesce(to_char(l.query_start, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-'))"
		"          FROM pg_stat_activity l WHERE l.pid = p.current_locker_pid)"
		"  FROM pg_stat_activity a LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid"
		" WHERE a.pid = $1::int";
	const char *file = run->file;
	double secs = (double)elapsed_ms / 1000.0;
	PGresult *res = watch_query(run->watch, sql, PQbackendPID(conn));

	if (!res) {
		log_at(LOG_INFO, file, line, col, "still running after %.0f s", secs);
		return;
	}
	if (!PQgetisnull(res, 0, 12))
		snprintf(run->blocker, sizeof(run->blocker), "%s", PQgetvalue(res, 0, 12));
	if (!PQgetisnull(res, 0, 2)) {
		/* an index build: its phase, and the work done in it */
		char work[160] = "";
		long long bdone = atoll(PQgetvalue(res, 0, 3)),
			  btotal = atoll(PQgetvalue(res, 0, 4));
		long long tdone = atoll(PQgetvalue(res, 0, 5)),
			  ttotal = atoll(PQgetvalue(res, 0, 6));
		long long ldone = atoll(PQgetvalue(res, 0, 7)),
			  ltotal = atoll(PQgetvalue(res, 0, 8));
		const char *index = PQgetvalue(res, 0, 10);
		if (btotal > 0)
			snprintf(work, sizeof(work), ", blocks %lld of %lld (%lld %%)", bdone,
				 btotal, bdone * 100 / btotal);
		else if (ttotal > 0)
			snprintf(work, sizeof(work), ", tuples %lld of %lld (%lld %%)", tdone,
				 ttotal, tdone * 100 / ttotal);
		else if (ltotal > 0)
			snprintf(work, sizeof(work), ", transactions %lld of %lld, now %s", ldone,
				 ltotal, PQgetisnull(res, 0, 13) ? "?" : PQgetvalue(res, 0, 13));
		log_at(LOG_INFO, file, line, col,
		       "still running after %.0f s: index %s%son %s: %s%s", secs, index,
		       *index ? " " : "", PQgetvalue(res, 0, 11), PQgetvalue(res, 0, 2), work);
	} else if (strcmp(PQgetvalue(res, 0, 0), "Lock") == 0) {
		log_at(LOG_INFO, file, line, col,
		       "still running after %.0f s: waiting for a %s lock held by %s", secs,
		       PQgetvalue(res, 0, 1),
		       PQgetisnull(res, 0, 12) ? "session not seen" : PQgetvalue(res, 0, 12));
	} else if (*PQgetvalue(res, 0, 0)) {
		log_at(LOG_INFO, file, line, col, "still running after %.0f s (waiting on %s: %s)",
		       secs, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	} else {
		log_at(LOG_INFO, file, line, col, "still running after %.0f s", secs);
	}
	PQclear(res);
}

/* Where a running query stands, for await_result. */
struct waiting {
	bool cancelled;	    /* a stop signal arrived: the query was cancelled */
	long stmt_start;    /* when the statement whose result comes next started */
	long next_progress; /* when to log the next progress line */
	long next_poll;	    /* when to look for lock holders next (0: never) */
};

static void waiting_begin(struct waiting *w, const struct db_run *run)
{
	w->cancelled = false;
	w->stmt_start = clock_ms();
	w->next_progress = w->stmt_start + DB_PROGRESS_MS;
	w->next_poll = run->lock_poll_ms > 0 ? w->stmt_start + run->lock_poll_ms : 0;
}

/*
 * Wait until conn's next result can be read without blocking: a stop signal
 * cancels the query on the server (the result then comes as an error), and
 * progress lines (at line:col of run->file) and lock holders are looked for
 * as db_run says.  False when the connection broke.
 */
static bool await_result(PGconn *conn, struct db_run *run, struct waiting *w, int line, int col)
{
	while (PQisBusy(conn)) {
		long now = clock_ms();
		long wake = w->next_poll && w->next_poll < w->next_progress ? w->next_poll
									    : w->next_progress;
		int r = wait_fd(PQsocket(conn), POLLIN,
				w->cancelled ? -1 : (wake > now ? wake - now : 0));
		if (r < 0 && !w->cancelled) {
			cancel_query(conn, run->file);
			w->cancelled = true;
		}
		if (r > 0 && !PQconsumeInput(conn))
			return false;
		if (r != 0 || w->cancelled)
			continue;
		now = clock_ms();
		if (w->next_poll && now >= w->next_poll) {
			poll_blocker(run, conn);
			w->next_poll = clock_ms() + run->lock_poll_ms;
		}
		if (now >= w->next_progress) {
			log_progress(run, conn, line, col, now - w->stmt_start);
			w->next_progress = clock_ms() + DB_PROGRESS_MS;
		}
	}
	return true;
}

/* How much COPY data is handed to libpq at a time. */
#define COPY_CHUNK (64 * 1024)

/*
 * The server asks for the data of COPY … FROM STDIN statement s: send it
 * from text, then end it.  A stop signal ends it with a failure instead
 * (w->cancelled).  Whatever fails, the COPY's own result tells.
 */
static void send_copy_data(PGconn *conn, const char *text, const struct sql_stmt *s,
			   struct db_run *run, struct waiting *w)
{
	const char *p = text + s->data_start;
	size_t left = s->data_len;

	while (left > 0) {
		int n = left > COPY_CHUNK ? COPY_CHUNK : (int)left;
		if (wait_fd(-1, 0, 0) < 0) {
			cancel_query(conn, run->file);
			w->cancelled = true;
			PQputCopyEnd(conn, "stopped by a signal");
			return;
		}
		if (PQputCopyData(conn, p, n) != 1)
			break;
		p += n;
		left -= (size_t)n;
	}
	PQputCopyEnd(conn, NULL);
}

/*
 * The data line an error in COPY … FROM STDIN names in its context ("COPY
 * t, line 3, column a: …", translated too: the number after the first ", "
 * and one word in a line that starts with "COPY "), or 0.
 */
static long copy_error_line(const PGresult *res)
{
	const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);

	for (const char *l = ctx; l && *l;) {
		const char *eol = strchr(l, '\n');
		const char *end = eol ? eol : l + strlen(l);
		for (const char *c = l + 5; strncmp(l, "COPY ", 5) == 0 && c + 2 < end; c++) {
			/* ", " then a word, a blank and the number */
			const char *d = c + 2;
			char *after;
			long n;
			if (c[0] != ',' || c[1] != ' ')
				continue;
			while (d < end && *d != ' ' && !(*d >= '0' && *d <= '9'))
				d++;
			if (d == c + 2 || d >= end || *d != ' ' || !(d[1] >= '0' && d[1] <= '9'))
				continue;
			n = strtol(d + 1, &after, 10);
			if (n > 0 && (after == end || *after == ',' || *after == ':'))
				return n;
		}
		l = eol ? eol + 1 : end;
	}
	return 0;
}

/*
 * The failure res of statement index of run (copying: it took COPY data):
 * into run's out fields, and logged against where unless quiet about it
 * (cancelled, or a lock_timeout run->quiet_lock_timeout is told of).
 */
static void note_failure(const PGresult *res, struct db_run *run, int index, bool copying,
			 struct db_where *where, bool report)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (run->stmts && index < run->nstmts) {
		const struct sql_stmt *s = &run->stmts[index];
		long data_line = copying && s->has_data ? copy_error_line(res) : 0;
		where->stmt_line = s->line;
		where->stmt_col = s->col;
		if (data_line > 0 && data_line < INT_MAX - s->data_line) {
			/* a bad row: its line in the file */
			where->sent = NULL;
			where->stmt_line = s->data_line + (int)data_line - 1;
			where->stmt_col = 0;
		}
	}
	snprintf(run->sqlstate, sizeof(run->sqlstate), "%s", state ? state : "");
	if (msg)
		snprintf(run->message, sizeof(run->message), "%s", msg);
	else
		one_line(run->message, sizeof(run->message), PQresultErrorMessage(res));
	error_linecol(res, where, &run->err_line, &run->err_col);
	if (report && !(run->quiet_lock_timeout && strcmp(run->sqlstate, "55P03") == 0))
		db_report_error(res, where);
}

enum status db_run(PGconn *conn, const char *sql, struct db_run *run)
{
	enum status st = ST_OK;
	int index = 0;	      /* the statement whose result comes next */
	bool copying = false; /* it took COPY data */
	struct waiting w;
	int sent_line = run->sent_line > 0 ? run->sent_line : 1;
	int sent_col = run->sent_col > 0 ? run->sent_col : 1;
	/*
	 * The server sends the results of a script's statements only at its
	 * end: which one runs is known (for progress lines) for one statement only.
	 */
	int line = run->stmts && run->nstmts == 1 ? run->stmts[0].line : 0;
	int col = run->stmts && run->nstmts == 1 ? run->stmts[0].col : 0;
	PGresult *res;

	run->sqlstate[0] = '\0';
	run->message[0] = '\0';
	run->blocker[0] = '\0';
	run->err_line = run->err_col = 0;
	if (!(run->one_statement ? PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0)
				 : PQsendQuery(conn, sql))) {
		char buf[sizeof(run->message)];
		one_line(buf, sizeof(buf), PQerrorMessage(conn));
		memcpy(run->message, buf, sizeof(buf));
		if (run->file)
			log_at(LOG_ERROR, run->file, sent_line, sent_col,
			       "could not send the statement: %s", buf);
		else
			log_error("could not send query: %s", buf);
		return db_failure_status(conn);
	}
	waiting_begin(&w, run);
	for (;;) {
		ExecStatusType rs;

		(void)await_result(conn, run, &w, line, col); /* a broken connection ends below */
		res = PQgetResult(conn);
		if (!res)
			break;
		rs = PQresultStatus(res);
		if (rs == PGRES_COPY_IN || rs == PGRES_COPY_OUT) {
			/* the statement's own result comes after its data */
			const struct sql_stmt *s =
				run->stmts && index < run->nstmts ? &run->stmts[index] : NULL;
			char *buf;
			if (rs == PGRES_COPY_OUT)
				while (PQgetCopyData(conn, &buf, 0) > 0)
					PQfreemem(buf);
			else if (s && s->has_data && run->text)
				send_copy_data(conn, run->text, s, run, &w);
			else
				PQputCopyEnd(conn,
					     "COPY FROM STDIN is not supported in migration files");
			copying = rs == PGRES_COPY_IN;
			PQclear(res);
			continue;
		} else if (st == ST_OK && rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK &&
			   rs != PGRES_EMPTY_QUERY) {
			struct db_where where = { .file = run->file,
						  .sent = sql,
						  .sent_line = sent_line,
						  .sent_col = sent_col };
			note_failure(res, run, index, copying, &where, !w.cancelled);
			st = ST_SQL;
		}
		index++;
		copying = false;
		w.stmt_start = clock_ms();
		w.next_progress = w.stmt_start + DB_PROGRESS_MS;
		PQclear(res);
	}
	if (w.cancelled)
		return ST_SIGNAL;
	if (st != ST_OK)
		st = db_failure_status(conn);
	return st;
}

enum status db_exec_script(PGconn *conn, const char *sql, const char *file,
			   const struct sql_stmt *stmts, int nstmts)
{
	struct db_run run = { .file = file, .stmts = stmts, .nstmts = nstmts };
	return db_run(conn, sql, &run);
}

enum status db_exec(PGconn *conn, const char *sql, const char *file)
{
	return db_exec_script(conn, sql, file, NULL, 0);
}

PGresult *db_query_run(PGconn *conn, const char *sql, int nparams, const char *const *params,
		       struct db_run *run, enum status *st)
{
	PGresult *res = NULL, *next;
	struct waiting w;

	run->blocker[0] = '\0';
	run->sqlstate[0] = '\0';
	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
		char buf[256];
		one_line(buf, sizeof(buf), PQerrorMessage(conn));
		log_error("could not send query: %s", buf);
		*st = db_failure_status(conn);
		return NULL;
	}
	waiting_begin(&w, run);
	while (await_result(conn, run, &w, run->sent_line, run->sent_col) &&
	       (next = PQgetResult(conn)) != NULL) {
		PQclear(res);
		res = next;
	}
	while ((next = PQgetResult(conn)) != NULL) /* after a broken connection */
		PQclear(next);
	if (w.cancelled) {
		PQclear(res);
		*st = ST_SIGNAL;
		return NULL;
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK) {
		*st = ST_OK;
		return res;
	}
	if (res) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		snprintf(run->sqlstate, sizeof(run->sqlstate), "%s", state ? state : "");
		if (!(run->quiet_lock_timeout && strcmp(run->sqlstate, "55P03") == 0))
			db_report_error(res, NULL);
	} else {
		log_error("query failed: %s", PQstatus(conn) == CONNECTION_BAD
						      ? "the connection was lost"
						      : "out of memory");
	}
	PQclear(res);
	*st = db_failure_status(conn);
	return NULL;
}

PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   enum status *st)
{
	struct db_run run = { 0 };
	return db_query_run(conn, sql, nparams, params, &run, st);
}

char *db_quote_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	char *copy;
	if (!q)
		return NULL;
	copy = strdup(q);
	PQfreemem(q);
	return copy;
}
