/*
 * ddl.h — changing the schema safely, shared by SQL files and constraint
 * specs: each step under its own lock_timeout and statement_timeout, a step
 * that hits lock_timeout tried again after 1 s, 2 s, 4 s ... naming the
 * session that held the lock, and a rollback whatever happened.
 */
#ifndef PGPRELUDE_DDL_H
#define PGPRELUDE_DDL_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "db.h"
#include "status.h"

/*
 * Run every step after SET ROLE role (the owner of the objects the files
 * make, when pgprelude logs in as another user); NULL: as the login role.
 */
void ddl_set_role(const char *role);

/*
 * Set the timeouts (and the role, ddl_set_role) for what runs next on conn: in a transaction opened here
 * (in_tx: BEGIN; SET LOCAL ...), or for the session (autocommit steps; undo
 * with ddl_reset_timeouts).  Logs on failure.
 */
enum status ddl_set_timeouts(PGconn *conn, bool in_tx, long lock_timeout_ms,
			     long statement_timeout_ms) __attribute__((warn_unused_result));

/* Reset the session's timeouts after autocommit steps (best effort, nothing logged). */
void ddl_reset_timeouts(PGconn *conn);

/*
 * The statements that give a session back its state at login: settings,
 * role and session user, temporary tables, prepared statements and plans,
 * cursors, listens, sequence state; pgprelude's own settings again (no idle
 * timeout may end its sessions).  Not DISCARD ALL: that would let go of the
 * advisory locks.  malloc'd; run it outside a transaction, or after COMMIT in
 * the same query.
 */
char *ddl_clean_sql(PGconn *conn);

/* Run ddl_clean_sql on conn (outside a transaction).  Logs on failure. */
enum status ddl_clean_session(PGconn *conn) __attribute__((warn_unused_result));

/* Roll back whatever transaction conn is in; errors do not matter any more. */
void ddl_rollback(PGconn *conn);

/* Whether run failed on lock_timeout (SQLSTATE 55P03). */
bool ddl_is_lock_timeout(const struct db_run *run);

/* A run->lock_poll_ms for a lock_timeout: twice per timeout, within 50 ms .. 2.5 s (0: none). */
long ddl_lock_poll_ms(long lock_timeout_ms);

/* The wait before retry n (1-based) after a lock_timeout: 1 s, 2 s, 4 s, ... at most 30 s. */
long ddl_retry_delay_ms(int n);

/* Log who held the lock run timed out on (run->blocker), as a detail line. */
void ddl_log_lock_holder(const struct db_run *run);

/*
 * A step hit lock_timeout: log it as a warning at file:line:col ("retrying
 * WHAT in N s (retry n of max)"), who held the lock, and context (the
 * statement, may be NULL), then wait before retry n.  False when a stop
 * signal arrived meanwhile.
 */
bool ddl_retry_wait(const char *file, int line, int col, long lock_timeout_ms,
		    const struct db_run *run, int n, int max, const char *what,
		    const char *context);

/*
 * After the last retry: the hint to let the holder finish or raise the
 * settings.  of_what names where lock_timeout is set besides the phase
 * ("" or " (of [unique x] or of the phase)").
 */
void ddl_gave_up(int retries, const char *of_what, const char *phase);

#endif
