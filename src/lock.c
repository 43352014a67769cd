#include "lock.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "history.h"
#include "init.h"
#include "log.h"
#include "wait.h"

/* One of the two locks: its first key, and what its waits say. */
struct lock_def {
	const char *try_sql;
	const char *wait_sql; /* wait_free's statement: $1 the key's name, $2 the most ms */
	const char *unlock_sql;
	/* who holds it, logged while waiting (final: when giving up) */
	void (*report)(PGconn *conn, const char *name, long waited_ms, bool final);
	void (*got)(long waited_ms);
	void (*give_up)(long waited_ms);
};

/*
 * How a wait for a lock holder is done: in the server, which wakes the
 * waiter the moment the lock is let go (by the holder's release or the end
 * of its session, killed or not).  The statement takes the lock in shared
 * mode, which every other waiter can hold too, so that all of them wake
 * together, and lets go of it at once, in the same statement: a shared hold
 * never outlives it, nor does the lock_timeout that bounds the wait
 * (set_config local to the statement's transaction).  The nested subqueries
 * (OFFSET 0: not flattened; volatile: not dropped) fix the order: the
 * timeout, then the lock, then the unlock.
 *
 * A wait that runs out of time is an error in the server's log; so that a
 * long migration fills it with few of them, a wait lasts until the next
 * progress line (every PROGRESS_MS) or the timeout.
 */
#define WAIT_FREE_SQL(classid)                                              \
	"SELECT pg_advisory_unlock_shared(" classid ", hashtext($1))"       \
	"  FROM (SELECT pg_advisory_lock_shared(" classid ", hashtext($1))" \
	"          FROM (SELECT set_config('lock_timeout', $2, true)) t OFFSET 0) w OFFSET 0"

/* Interval of the progress lines while waiting for a lock. */
#define PROGRESS_MS 5000

/*
 * The second key: the history table's name, hashed by the server.  The
 * default table keeps the key of its old place (public.pgprelude_history),
 * so that replicas of an older version, rolling out beside newer ones, still
 * wait for each other.
 */
void lock_key(const struct config *cfg, char *buf, size_t len)
{
	if (history_is_default(cfg))
		snprintf(buf, len, "%s", HISTORY_LEGACY);
	else
		snprintf(buf, len, "%s.%s", cfg->history_schema, cfg->history_table);
}

static const struct lock_def migration_lock;

/* The backend that took the migration lock (its own pid: a pooler announces another). */
static int holder_pid;

int lock_holder_pid(void)
{
	return holder_pid;
}

/* While waiting for the migration lock: whether the work turned out to be done meanwhile. */
struct lock_unless {
	bool (*done)(void *arg);
	void *arg;
	bool ended; /* done said so: the lock was not taken */
};

/* Try d's lock once: *got says whether it was granted.  ST_OK or the failed query's status. */
static enum status try_once(PGconn *conn, const struct lock_def *d, const char *name, bool *got)
{
	const char *params[1] = { name };
	enum status st;
	PGresult *res = db_query(conn, d->try_sql, 1, params, &st);

	*got = false;
	if (!res)
		return st;
	*got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	if (*got && d == &migration_lock)
		holder_pid = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	return ST_OK;
}

/*
 * Wait in the server, at most ms, until no one holds d's lock (it is not
 * taken).  ST_OK when it was let go or the time ran out; else the failed
 * query's status, logged (ST_SIGNAL: a stop signal cancelled the wait).
 */
static enum status wait_free(PGconn *conn, const struct lock_def *d, const char *name, long ms)
{
	char most[24];
	const char *params[2] = { name, most };
	struct db_run run = { .quiet_lock_timeout = true };
	enum status st;
	PGresult *res;

	snprintf(most, sizeof(most), "%ld", ms);
	res = db_query_run(conn, d->wait_sql, 2, params, &run, &st);
	PQclear(res);
	if (res)
		return ST_OK;
	if (st == ST_SQL && strcmp(run.sqlstate, "55P03") == 0)
		return ST_OK; /* its lock_timeout: still held */
	return st;
}

/*
 * Take d's lock on conn: try it, and while another session holds it, wait in
 * the server for it to be let go and try again; until it is granted, the
 * wait times out, or a stop signal comes.  unless (NULL: none) is asked
 * after each wait: when the lock was let go, and every PROGRESS_MS while it
 * is held (the caller has just read before the first try).
 */
static enum status take(PGconn *conn, const struct config *cfg, const struct lock_def *d,
			struct lock_unless *unless)
{
	struct waiter w = { .timeout_ms = cfg->lock_wait_timeout_ms, .report_ms = PROGRESS_MS };
	char name[256];
	enum status st;

	lock_key(cfg, name, sizeof(name));
	waiter_start(&w);
	for (;;) {
		bool got;

		/* a stop signal that came while done or report read: their queries took it */
		if (init_stop_signal())
			return ST_SIGNAL;
		st = try_once(conn, d, name, &got);
		if (st != ST_OK)
			return st;
		if (got) {
			d->got(waiter_elapsed(&w));
			return ST_OK;
		}
		if (waiter_elapsed(&w) >= cfg->lock_wait_timeout_ms) {
			d->give_up(waiter_elapsed(&w));
			d->report(conn, name, waiter_elapsed(&w), true);
			return ST_LOCK;
		}
		if (waiter_report_due(&w))
			d->report(conn, name, waiter_elapsed(&w), false);
		if (init_stop_signal())
			return ST_SIGNAL;
		st = wait_free(conn, d, name, waiter_next_ms(&w, PROGRESS_MS));
		if (st != ST_OK)
			return st;
		/* the holder may have done all there was to do: then the lock is not needed */
		if (unless && unless->done(unless->arg)) {
			unless->ended = true;
			return ST_OK;
		}
	}
}

static void release(PGconn *conn, const struct config *cfg, const struct lock_def *d)
{
	if (d == &migration_lock && !holder_pid)
		return; /* not taken: a start with nothing to do */
	char name[256];
	const char *params[1] = { name };
	PGresult *res;

	if (!conn || PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
		return;
	lock_key(cfg, name, sizeof(name));
	res = PQexecParams(conn, d->unlock_sql, 1, NULL, params, NULL, NULL, 0);
	PQclear(res);
	if (d == &migration_lock)
		holder_pid = 0;
}

/* ---- the migration lock ---------------------------------------------------- */

static void migration_report(PGconn *conn, const char *name, long waited_ms, bool final)
{
	static const char sql[] =
		"SELECT a.pid, coalesce(a.usename, '?'), coalesce(a.application_name, ''),"
		"       coalesce(host(a.client_addr), 'local socket'),"
		"       coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '?'),"
		"       coalesce(a.state, '?')"
		"  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
		" WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock'"
		"   AND l.objsubid = 2 AND l.classid = " LOCK_CLASSID
		"   AND l.objid = hashtext($1)::oid"
		" LIMIT 1";
	const char *params[1] = { name };
	enum status st;
	PGresult *res = db_query(conn, sql, 1, params, &st);

	if (res && PQntuples(res) == 1)
		log_info(
			"waiting for the migration lock (%.0f s): held by pid %s, user %s, application "
			"\"%s\", client %s, connected since %s, state %s",
			(double)waited_ms / 1000.0, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
			PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4),
			PQgetvalue(res, 0, 5));
	else if (res)
		log_info("waiting for the migration lock (%.0f s): its holder just left",
			 (double)waited_ms / 1000.0);
	PQclear(res);
	if (final)
		log_hint("Another pgprelude is migrating this database; raise [database] "
			 "lock_wait_timeout, or end the session above if it is stuck.");
}

static void migration_got(long waited_ms)
{
	if (waited_ms > 100)
		log_info("took the migration lock after %ld ms", waited_ms);
	else
		log_debug("took the migration lock (%ld ms)", waited_ms);
}

static void migration_give_up(long waited_ms)
{
	log_error("gave up waiting for the migration lock after %ld s", waited_ms / 1000);
}

static const struct lock_def migration_lock = {
	.try_sql = "SELECT pg_try_advisory_lock(" LOCK_CLASSID ", hashtext($1)), pg_backend_pid()",
	.wait_sql = WAIT_FREE_SQL(LOCK_CLASSID),
	.unlock_sql = "SELECT pg_advisory_unlock(" LOCK_CLASSID ", hashtext($1))",
	.report = migration_report,
	.got = migration_got,
	.give_up = migration_give_up,
};

/*
 * Behind a pooler: whether it keeps a session's advisory lock with that
 * session.  A transaction pooler hands the server connection that took the
 * lock to whichever client comes next, once the statement is done; a second
 * connection of ours then finds itself on the backend holding the lock (a
 * pooler reuses its most recently freed connection).  That connection lets
 * go of the lock again, so that none is left on any server backend.
 */
static enum status check_pooler(const struct config *cfg)
{
	static const char sql[] =
		"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory'"
		" AND granted AND classid = " LOCK_CLASSID " AND objid = hashtext($1)::oid"
		" AND objsubid = 2 AND pid = pg_catalog.pg_backend_pid())";
	char name[256], err[512];
	const char *params[1] = { name };
	const char *reason = NULL;
	PGconn *probe = NULL;
	PGresult *res;
	enum status st;
	bool shared;

	if (!db_behind_proxy())
		return ST_OK;
	lock_key(cfg, name, sizeof(name));
	st = db_connect_once(cfg, 10000, &probe, &reason, err, sizeof(err));
	if (st != ST_OK) {
		log_error("could not open a second connection to %s: %s", db_describe(NULL),
			  reason);
		log_detail("%s", err);
		return st == ST_UNREACHABLE ? ST_CONNLOST : st;
	}
	res = db_query(probe, sql, 1, params, &st);
	shared = res && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (shared) {
		release(probe, cfg, &migration_lock);
		log_error(
			"the connection goes through a transaction pooler (such as PgBouncer with "
			"pool_mode = transaction): it does not keep the migration lock");
		log_detail(
			"The lock is a session-level advisory lock; a transaction pooler gives the "
			"session's server connection to other clients after each statement, so "
			"replicas could migrate at the same time.");
		log_hint(
			"Give pgprelude a direct connection to PostgreSQL (or one through a "
			"session-mode pool) in [database] url; the application may keep its pooled "
			"DATABASE_URL.");
		st = ST_USAGE;
	}
	PQfinish(probe);
	return st;
}

enum status lock_acquire_unless(PGconn *conn, const struct config *cfg, bool (*done)(void *arg),
				void *arg, bool *taken)
{
	struct lock_unless unless = { .done = done, .arg = arg };
	enum status st = take(conn, cfg, &migration_lock, done ? &unless : NULL);

	*taken = st == ST_OK && !unless.ended;
	if (st == ST_CONNLOST || st == ST_SQL)
		log_error("could not take the migration lock");
	if (st == ST_OK && *taken)
		st = check_pooler(cfg);
	return st;
}

enum status lock_acquire(PGconn *conn, const struct config *cfg)
{
	bool taken;

	return lock_acquire_unless(conn, cfg, NULL, NULL, &taken);
}

void lock_release(PGconn *conn, const struct config *cfg)
{
	release(conn, cfg, &migration_lock);
}

/* ---- the work lock ----------------------------------------------------------- */

static void work_report(PGconn *conn, const char *name, long waited_ms, bool final)
{
	static const char sql[] =
		"SELECT format('pid %s (application \"%s\", %s, query started %s: %s)', a.pid,"
		"       coalesce(a.application_name, ''), coalesce(a.state, '?'),"
		"       coalesce(to_char(a.query_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '-'),"
		"       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 80))"
		"  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
		" WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock'"
		"   AND l.classid = " LOCK_WORK_CLASSID
		"   AND l.objid = hashtext($1)::oid AND l.objsubid = 2 LIMIT 1";
	const char *params[1] = { name };
	enum status st;
	PGresult *res = db_query(conn, sql, 1, params, &st);
	const char *holder = res && PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";

	(void)waited_ms;
	if (final) {
		if (*holder)
			log_detail("It is %s.", holder);
		log_hint(
			"An earlier pgprelude was killed while that session ran a statement. Let it "
			"finish, end it with SELECT pg_terminate_backend(pid), or raise [database] "
			"lock_wait_timeout.");
	} else {
		log_warning("waiting for a session left by an earlier, killed run to end: %s",
			    *holder ? holder : "(it just ended)");
	}
	PQclear(res);
}

static void work_got(long waited_ms)
{
	if (waited_ms > 100)
		log_info("the session left by an earlier run has ended (waited %ld ms)", waited_ms);
}

static void work_give_up(long waited_ms)
{
	log_error("gave up after %ld s waiting for a session left by an earlier run to end",
		  waited_ms / 1000);
}

static const struct lock_def work_lock = {
	.try_sql = "SELECT pg_try_advisory_lock(" LOCK_WORK_CLASSID ", hashtext($1))",
	.wait_sql = WAIT_FREE_SQL(LOCK_WORK_CLASSID),
	.unlock_sql = "SELECT pg_advisory_unlock(" LOCK_WORK_CLASSID ", hashtext($1))",
	.report = work_report,
	.got = work_got,
	.give_up = work_give_up,
};

enum status lock_acquire_work(PGconn *work, const struct config *cfg)
{
	return take(work, cfg, &work_lock, NULL);
}

void lock_release_work(PGconn *work, const struct config *cfg)
{
	release(work, cfg, &work_lock);
}
