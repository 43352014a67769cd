#include "lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* The second key: a hash of the history table, so that two apps sharing a database do not block each other. */
static void lock_name(const struct config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s.%s", cfg->history_schema, cfg->history_table);
}

static void log_holder(PGconn *conn, const char *name, long waited_ms)
{
	static const char sql[] =
		"SELECT a.pid, coalesce(a.usename, '?'), coalesce(a.application_name, ''),"
		"       coalesce(host(a.client_addr), 'local socket'),"
		"       coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '?'),"
		"       coalesce(a.state, '?')"
		"  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
		" WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
		"   AND l.classid = " LOCK_CLASSID "   AND l.objid = hashtext($1)::oid"
		" LIMIT 1";
	const char *params[1] = { name };
	enum status st;
	PGresult *res = db_query(conn, sql, 1, params, &st);

	if (!res)
		return;
	if (PQntuples(res) == 1)
		log_info(
			"waiting for the migration lock (%.0f s): held by pid %s, user %s, application "
			"\"%s\", client %s, connected since %s, state %s",
			(double)waited_ms / 1000.0, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
			PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4),
			PQgetvalue(res, 0, 5));
	else
		log_info("waiting for the migration lock (%.0f s): its holder just left",
			 (double)waited_ms / 1000.0);
	PQclear(res);
}

enum status lock_acquire(PGconn *conn, const struct config *cfg)
{
	static const char sql[] = "SELECT pg_try_advisory_lock(" LOCK_CLASSID ", hashtext($1))";
	char name[256];
	const char *params[1] = { name };
	long start = clock_ms();
	long next_report = start;
	long backoff = 50;
	enum status st;

	lock_name(cfg, name, sizeof(name));
	for (;;) {
		PGresult *res = db_query(conn, sql, 1, params, &st);
		bool got;
		long now;

		if (!res) {
			log_error("could not take the migration lock");
			return st;
		}
		got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		now = clock_ms();
		if (got) {
			if (now - start > 100)
				log_info("took the migration lock after %ld ms", now - start);
			else
				log_debug("took the migration lock (%ld ms)", now - start);
			return ST_OK;
		}
		if (now - start >= cfg->lock_wait_timeout_ms) {
			log_error("gave up waiting for the migration lock after %ld s",
				  (now - start) / 1000);
			log_holder(conn, name, now - start);
			log_hint("Another pgprelude is migrating this database; raise [database] "
				 "lock_wait_timeout, or end the session above if it is stuck.");
			return ST_LOCK;
		}
		if (now >= next_report) {
			log_holder(conn, name, now - start);
			next_report = now + 5000;
		}
		long sleep_ms = backoff / 2 + rand() % (backoff / 2 + 1);
		if (sleep_ms > cfg->lock_wait_timeout_ms - (now - start))
			sleep_ms = cfg->lock_wait_timeout_ms - (now - start);
		if (!db_sleep_ms(sleep_ms))
			return ST_SIGNAL;
		/*
		 * At most 200 ms: a replica learns soon after the holder is done
		 * (the holder's own no-op run takes ~10 ms), and even many waiting
		 * replicas send the server only a few cheap queries a second each.
		 */
		if (backoff < 200)
			backoff *= 2;
	}
}

void lock_release(PGconn *conn, const struct config *cfg)
{
	static const char sql[] = "SELECT pg_advisory_unlock(" LOCK_CLASSID ", hashtext($1))";
	char name[256];
	const char *params[1] = { name };
	PGresult *res;

	if (!conn || PQstatus(conn) != CONNECTION_OK)
		return;
	lock_name(cfg, name, sizeof(name));
	res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	PQclear(res);
}
