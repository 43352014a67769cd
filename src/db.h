/*
 * db.h — libpq wrappers: connect (and wait for the server; connect.c), run
 * statements, report errors in the compiler style, pass NOTICEs to the log
 * (db.c).
 */
#ifndef PGPRELUDE_DB_H
#define PGPRELUDE_DB_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "config.h"
#include "sqlsplit.h"
#include "status.h"

/*
 * Check that cfg->db_url is a valid conninfo string or URI.  Logs the
 * problem and returns ST_USAGE if it is not.
 */
enum status db_check_url(const struct config *cfg) __attribute__((warn_unused_result));

/*
 * Connect once and run SELECT 1.  On success stores the connection in *out
 * and returns ST_OK.  On failure *out is NULL, *reason (if not NULL) gets a
 * short static phrase ("connection refused", "the server is starting up",
 * "password authentication failed", ...), nothing is logged, and the status
 * says whether waiting can help: ST_UNREACHABLE (it can) or ST_AUTH (it
 * cannot: bad password, unknown role or database, TLS refused), or ST_USAGE
 * for settings libpq rejects (a port that is not a number).  errbuf
 * receives libpq's message (one line, no password in it).
 */
enum status db_connect_once(const struct config *cfg, long connect_timeout_ms, PGconn **out,
			    const char **reason, char *errbuf, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Whether a hot standby (a server in recovery) counts as ready.  By default
 * it does not: db_connect_once reports it as ST_UNREACHABLE ("the server is
 * a standby (in recovery)"), since a failover may promote it.  The read-only
 * commands allow it.
 */
void db_allow_standby(bool ok);

/*
 * Whether a connection made so far goes through a pooler or proxy (such as
 * PgBouncer): the process id the server end announced differs from the
 * backend's own.
 */
bool db_behind_proxy(void);

/*
 * Step 1 of the job: connect and SELECT 1 until it works, backing off with
 * jitter, for at most cfg->wait_timeout_ms.  Logs why it is still waiting
 * every few seconds, and the outcome.  Returns ST_OK with the connection in
 * *out, ST_AUTH at once for errors waiting cannot fix, ST_UNREACHABLE after
 * the timeout, ST_SIGNAL when a stop signal arrives (init.h).
 */
enum status db_wait(const struct config *cfg, PGconn **out) __attribute__((warn_unused_result));

/*
 * Work for the connecting to do while the server is busy with it: fn(arg)
 * is called again and again, each time doing a little, until it returns
 * false (nothing more to do) or the server answers.  NULL: none.
 */
void db_set_idle(bool (*fn)(void *arg), void *arg);

/* "127.0.0.1:5432/app as app" — never includes the password.  Static buffer. */
const char *db_describe(PGconn *conn);

/*
 * Run sql (one or more statements, simple query protocol) and expect
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK for every result.  On error logs it
 * (as a position in file when file is not NULL, else plainly) and returns
 * ST_SQL, or ST_CONNLOST when the connection is gone.
 */
enum status db_exec(PGconn *conn, const char *sql, const char *file)
	__attribute__((warn_unused_result));

/*
 * Run a query with text parameters and return its PGRES_TUPLES_OK (or
 * COMMAND_OK) result, which the caller PQclear()s.  On error logs it,
 * stores the status in *st and returns NULL.  It waits as db_run does: a
 * stop signal cancels it on the server (ST_SIGNAL), and a long one logs
 * progress lines.
 */
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   enum status *st) __attribute__((warn_unused_result));

/* Where a failed statement came from, to report the error against it. */
struct db_where {
	const char *file; /* the file shown in messages, or NULL */
	const char *sent; /* the text sent to the server (for the error position) */
	int sent_line;	  /* where sent starts in the file (1, 1 for a whole file) */
	int sent_col;
	int stmt_line; /* the failing statement's start, used when the */
	int stmt_col;  /* server gives no position (0: unknown) */
};

/*
 * Log an error result like a compiler, then its detail, hint and context:
 *   file:27:3: error: relation "x" does not exist (42P01)
 * The line and column come from the server's error position in where->sent,
 * else from the failing statement's start.  where may be NULL.
 */
void db_report_error(const PGresult *res, const struct db_where *where);

/*
 * Send sql (a whole file: many statements, one round trip) and report the
 * first failing statement against file; stmts (from sqlsplit, may be NULL)
 * tell which statement produced which result.  A stop signal cancels the
 * statement on the server (PQcancel).  Returns ST_OK, ST_SQL, ST_CONNLOST,
 * or ST_SIGNAL.
 */
enum status db_exec_script(PGconn *conn, const char *sql, const char *file,
			   const struct sql_stmt *stmts, int nstmts)
	__attribute__((warn_unused_result));

/*
 * One script or one statement to run with db_run, and what became of it.
 * Fill the "in" fields (the rest zeroed); db_run fills the "out" fields.
 */
struct db_run {
	/* in */
	const char *file; /* shown in messages, or NULL */
	const struct sql_stmt
		*stmts; /* the statements of sql, offsets relative to the file, or NULL */
	int nstmts;
	const char *text; /* the text stmts' offsets are in: the data of a COPY … FROM
			     STDIN among them is sent from there (NULL: such a COPY fails) */
	int sent_line;	  /* where sql starts in file (0: line 1, column 1) */
	int sent_col;
	PGconn *watch;		 /* another, idle connection (the lock connection) to watch
					 conn's backend from: progress and lock holders; or NULL */
	long lock_poll_ms;	 /* look for lock holders this often while waiting (0: only
					 with the progress lines) */
	bool quiet_lock_timeout; /* do not log a lock_timeout failure (55P03): the caller
					 retries; the other failures are logged as always */
	bool one_statement;	 /* send sql with the extended query protocol: the server
					 refuses more than one statement in it */
	/* out */
	char sqlstate[6]; /* the failure's SQLSTATE, "" when none */
	int err_line;	  /* the failure's position in file (0: unknown) */
	int err_col;
	char message[256]; /* the failure's primary message, one line */
	char blocker[640]; /* the sessions last seen holding a lock conn waited for, "" */
};

/*
 * Send sql (simple query protocol: one statement, or a whole file of them in
 * one round trip) on conn and read every result.  The first failing
 * statement is reported (db_report_error) against run->file, unless it is a
 * lock_timeout and run->quiet_lock_timeout is set.  sql holds no COPY data:
 * when a statement of run->stmts with has_data asks for it, its data is sent
 * from run->text through the COPY protocol, and an error in it is reported
 * at the data's line in the file (from the server's "COPY t, line N"
 * context).  While it runs:
 *  - a stop signal cancels it on the server (PQcancel), then ST_SIGNAL;
 *  - every DB_PROGRESS_MS a progress line is logged: elapsed time and, when
 *    run->watch is set, what the backend waits for (an index build's phase
 *    and blocks/tuples done from pg_stat_progress_create_index, or the pids
 *    holding the lock it waits for, with their transaction and query start);
 *  - every run->lock_poll_ms the holders of a lock it waits for are noted in
 *    run->blocker, so that a lock_timeout can say who held the lock.
 * Returns ST_OK, ST_SQL, ST_CONNLOST or ST_SIGNAL.
 */
enum status db_run(PGconn *conn, const char *sql, struct db_run *run)
	__attribute__((warn_unused_result));

/*
 * db_query, with run's file, sent_line and sent_col for its progress lines,
 * and run->watch and run->lock_poll_ms to name who holds a lock it waits for.
 * A failure's SQLSTATE goes to run->sqlstate; a lock_timeout one is not
 * logged when run->quiet_lock_timeout is set.
 */
PGresult *db_query_run(PGconn *conn, const char *sql, int nparams, const char *const *params,
		       struct db_run *run, enum status *st) __attribute__((warn_unused_result));

/* Interval of db_run's progress lines, in milliseconds. */
#define DB_PROGRESS_MS 5000

/* The status for a failed statement: ST_CONNLOST when the connection is gone, else ST_SQL. */
enum status db_failure_status(PGconn *conn);

/*
 * Convert PostgreSQL's 1-based character position pos in the UTF-8 text into
 * a 1-based line and column (both counted in characters).  Returns false when
 * pos is out of range (line/col then point at the end of the text).
 */
bool db_pos_to_linecol(const char *text, long pos, int *line, int *col);

/* libpq's notice receiver: NOTICEs and WARNINGs to the log, against db_set_notice_file's file. */
void db_notice_receiver(void *arg, const PGresult *res);

/* The file the NOTICEs of conn are reported against (NULL: none). */
void db_set_notice_file(PGconn *conn, const char *file);

/* Quote an identifier ("user" → "\"user\""), malloc'd; NULL when out of memory. */
char *db_quote_ident(PGconn *conn, const char *name);

/*
 * Sleep ms milliseconds.  Returns false as soon as a stop signal arrives
 * (init.h; the caller then stops with ST_SIGNAL).
 */
bool db_sleep_ms(long ms);

#endif
