/*
 * lock.h — pgprelude's two advisory locks, both keyed by the history table's
 * name, so that two applications sharing a database do not block each other.
 *
 * The migration lock: one session-level advisory lock, held on the
 * connection that waited for the database, for the whole run.  It dies with
 * the session, so a killed container never leaves a stale lock behind.
 *
 * The work lock: held by the work connection while a dir phase applies its
 * files.  When pgprelude is killed, its lock session ends at once and the
 * migration lock with it, but a statement its work session was running goes
 * on in the server until it ends (the backend notices the client is gone
 * only when it next reads from it): an orphan.  That backend keeps the work
 * lock till then, so a run restarted at once waits for it instead of running
 * the same file next to it, or taking an index the orphan is still building
 * for done.
 */
#ifndef PGPRELUDE_LOCK_H
#define PGPRELUDE_LOCK_H

#include <libpq-fe.h>

#include "config.h"
#include "status.h"

/* The first key of the migration lock: "pgpr" in ASCII; the work lock's is one more. */
#define LOCK_CLASSID "1885827186"
#define LOCK_WORK_CLASSID "1885827187"

/*
 * Take the migration lock: pg_try_advisory_lock, and while another session
 * holds it, a wait in the server until it lets go (a stop signal cancels
 * it), then another try.  While waiting, logs every few seconds which
 * backend holds it (pid, user, application, client, since when).  Returns ST_OK, ST_LOCK after
 * cfg->lock_wait_timeout_ms, ST_CONNLOST or ST_SQL on a failed query,
 * ST_SIGNAL when interrupted; logs in every case.
 */
enum status lock_acquire(PGconn *conn, const struct config *cfg)
	__attribute__((warn_unused_result));

/*
 * lock_acquire, asking done(arg) while the lock is held by another session:
 * each time that session lets go of it, and every few seconds between.
 * When done says the work is done (the holder did it all), the wait ends
 * without the lock, ST_OK with *taken false.
 */
enum status lock_acquire_unless(PGconn *conn, const struct config *cfg, bool (*done)(void *arg),
				void *arg, bool *taken) __attribute__((warn_unused_result));

/* The second key of both locks, for cfg's history table, as the server hashes it. */
void lock_key(const struct config *cfg, char *buf, size_t len);

/* The backend (pg_backend_pid) that took the migration lock; 0 before. */
int lock_holder_pid(void);

/* Release the migration lock (best effort; it also goes with the session). */
void lock_release(PGconn *conn, const struct config *cfg);

/*
 * Take the work lock on work, waiting for an orphan of an earlier run at
 * most cfg->lock_wait_timeout_ms, naming it.  Statuses as lock_acquire.
 */
enum status lock_acquire_work(PGconn *work, const struct config *cfg)
	__attribute__((warn_unused_result));

/* Release the work lock (best effort; only outside a transaction). */
void lock_release_work(PGconn *work, const struct config *cfg);

#endif
