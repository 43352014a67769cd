/*
 * lock.h — the migration lock: one session-level advisory lock, held on the
 * connection that waited for the database, for the whole run.  It dies with
 * the session, so a killed container never leaves a stale lock behind.
 */
#ifndef PGPRELUDE_LOCK_H
#define PGPRELUDE_LOCK_H

#include <libpq-fe.h>

#include "config.h"
#include "status.h"

/* The first key of the two-key advisory lock: "pgpr" in ASCII. */
#define LOCK_CLASSID "1885827186"

/*
 * Take the lock keyed by the history table's name, polling with
 * pg_try_advisory_lock.  While another session holds it, logs every few
 * seconds which backend does (pid, user, application, client, since when).
 * Returns ST_OK, ST_LOCK after cfg->lock_wait_timeout_ms, ST_CONNLOST or
 * ST_SQL on a failed query, ST_SIGNAL when interrupted; logs in every case.
 */
enum status lock_acquire(PGconn *conn, const struct config *cfg)
	__attribute__((warn_unused_result));

/* Release the lock (best effort; it also goes with the session). */
void lock_release(PGconn *conn, const struct config *cfg);

#endif
