#include "ddl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "wait.h"

/* SET ROLE for every step, quoted; NULL: the login role. */
static char *owner_role;

void ddl_set_role(const char *role)
{
	struct sbuf b = { 0 };

	free(owner_role);
	owner_role = NULL;
	if (!role)
		return;
	sbuf_putc(&b, '"');
	for (const char *c = role; *c; c++) {
		if (*c == '"')
			sbuf_putc(&b, '"'); /* doubled inside the quotes */
		sbuf_putc(&b, *c);
	}
	sbuf_putc(&b, '"');
	owner_role = sbuf_take(&b);
}

enum status ddl_set_timeouts(PGconn *conn, bool in_tx, long lock_timeout_ms,
			     long statement_timeout_ms)
{
	char *setup = xasprintf("%s lock_timeout = %ld; SET %s statement_timeout = %ld%s%s%s%s",
				in_tx ? "BEGIN; SET LOCAL" : "SET", lock_timeout_ms,
				in_tx ? "LOCAL" : "", statement_timeout_ms,
				owner_role ? "; SET " : "", owner_role && in_tx ? "LOCAL " : "",
				owner_role ? "ROLE " : "", owner_role ? owner_role : "");
	enum status st = db_exec(conn, setup, NULL);

	free(setup);
	return st;
}

void ddl_reset_timeouts(PGconn *conn)
{
	if (PQstatus(conn) == CONNECTION_OK) {
		PGresult *res =
			PQexec(conn, "RESET lock_timeout; RESET statement_timeout; RESET ROLE");
		PQclear(res);
	}
}

char *ddl_clean_sql(PGconn *conn)
{
	/* DISCARD ALL, but for the advisory locks (pg_advisory_unlock_all) pgprelude holds */
	return xasprintf("CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL;"
			 " UNLISTEN *; DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES;"
			 " SET idle_in_transaction_session_timeout = 0%s",
			 PQserverVersion(conn) >= 140000 ? "; SET idle_session_timeout = 0" : "");
}

enum status ddl_clean_session(PGconn *conn)
{
	char *sql;
	enum status st;

	if (PQstatus(conn) != CONNECTION_OK)
		return ST_CONNLOST;
	sql = ddl_clean_sql(conn);
	st = db_exec(conn, sql, NULL);
	free(sql);
	return st;
}

void ddl_rollback(PGconn *conn)
{
	if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
		PGresult *res = PQexec(conn, "ROLLBACK");
		PQclear(res);
	}
}

bool ddl_is_lock_timeout(const struct db_run *run)
{
	return strcmp(run->sqlstate, "55P03") == 0;
}

long ddl_lock_poll_ms(long lock_timeout_ms)
{
	long ms = lock_timeout_ms / 2;
	if (lock_timeout_ms <= 0)
		return 0;
	return ms < 50 ? 50 : ms > 2500 ? 2500 : ms;
}

long ddl_retry_delay_ms(int n)
{
	long ms = 1000;
	for (int i = 1; i < n && ms < 30000; i++)
		ms *= 2;
	return ms < 30000 ? ms : 30000;
}

void ddl_log_lock_holder(const struct db_run *run)
{
	if (run->blocker[0])
		log_detail("The lock was held by %s.", run->blocker);
	else
		log_detail(
			"The session holding the lock was not seen (it may have let go of it meanwhile).");
}

bool ddl_retry_wait(const char *file, int line, int col, long lock_timeout_ms,
		    const struct db_run *run, int n, int max, const char *what, const char *context)
{
	long delay = ddl_retry_delay_ms(n);

	log_at(LOG_WARNING, file, line, col,
	       "lock_timeout (%ld ms): %s; retrying %s in %.0f s (retry %d of %d)", lock_timeout_ms,
	       run->message, what, (double)delay / 1000.0, n, max);
	ddl_log_lock_holder(run);
	if (context)
		log_msg(LOG_CONTEXT, "while running: %s", context);
	return wait_sleep_ms(delay);
}

void ddl_gave_up(int retries, const char *of_what, const char *phase)
{
	log_hint("Gave up after %d retr%s. Let that session finish (or end it with SELECT "
		 "pg_terminate_backend(pid)), or raise lock_timeout%s or lock_retries in phase "
		 "\"%s\".",
		 retries, retries == 1 ? "y" : "ies", of_what, phase);
}
