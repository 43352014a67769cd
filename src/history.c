#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "ddl.h"
#include "lock.h"
#include "log.h"
#include "util.h"

static char *qualify(PGconn *conn, const char *schema, const char *table)
{
	char *s = db_quote_ident(conn, schema);
	char *t = db_quote_ident(conn, table);
	char *q = xasprintf("%s.%s", s, t);

	free(s);
	free(t);
	return q;
}

bool history_is_default(const struct config *cfg)
{
	return strcmp(cfg->history_schema, HISTORY_SCHEMA) == 0 &&
	       strcmp(cfg->history_table, HISTORY_TABLE) == 0;
}

/* Order of rows by (phase, file), bytewise, as history_find looks them up. */
static int key_cmp(const char *phase, const char *file, const struct history_row *r)
{
	int c = strcmp(phase, r->phase);
	return c ? c : strcmp(file, r->file);
}

static int key_ptr_cmp(const void *a, const void *b)
{
	const struct history_row *x = *(const struct history_row *const *)a;
	return key_cmp(x->phase, x->file, *(const struct history_row *const *)b);
}

/* Order of rows by when they were applied (the text sorts as the time does, to the second, within one UTC offset), then key. */
static int applied_cmp(const void *a, const void *b)
{
	const struct history_row *x = a, *y = b;
	int c = strcmp(x->applied_at, y->applied_at);
	return c ? c : key_cmp(x->phase, x->file, y);
}

/*
 * Whether the table h names exists; for the default table, when it does not
 * but the one earlier versions kept in public does, read that one instead
 * (h->legacy: history_adopt_legacy moves it).
 */
static enum status find_table(PGconn *conn, const struct config *cfg, struct history *h)
{
	const char *params[2] = { h->qualified, HISTORY_LEGACY };
	enum status st;
	PGresult *res = db_query(conn,
				 "SELECT to_regclass($1) IS NOT NULL,"
				 " to_regclass($1) IS NULL AND to_regclass($2) IS NOT NULL",
				 2, params, &st);

	if (!res)
		return st;
	h->exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	h->legacy = history_is_default(cfg) && strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	return ST_OK;
}

enum status history_load(PGconn *conn, const struct config *cfg, struct history *h)
{
	int total;
	char *sql;
	PGresult *res;
	enum status st;

	memset(h, 0, sizeof(*h));
	lock_key(cfg, h->lock_key, sizeof(h->lock_key));
	h->qualified = qualify(conn, cfg->history_schema, cfg->history_table);
	h->schema = xstrdup(cfg->history_schema);
	st = find_table(conn, cfg, h);
	if (st != ST_OK || (!h->exists && !h->legacy)) {
		if (st != ST_OK)
			history_free(h);
		return st;
	}
	sql = xasprintf(
		"SELECT phase, file, checksum, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ'),"
		" applied_by, outcome, duration_ms FROM %s",
		h->legacy ? HISTORY_LEGACY : h->qualified);
	res = db_query(conn, sql, 0, NULL, &st);
	free(sql);
	if (!res) {
		log_hint("The history table %s exists but cannot be read as pgprelude's.",
			 h->legacy ? HISTORY_LEGACY : h->qualified);
		history_free(h);
		return st;
	}
	h->exists = true;
	total = PQntuples(res);
	h->rows = xcalloc((size_t)total + 1, sizeof(*h->rows));
	h->by_key = xcalloc((size_t)total + 1, sizeof(*h->by_key));
	/* the files' rows first; the constraint files' digests after them, apart */
	h->converged = &h->rows[total];
	for (int i = 0; i < total; i++) {
		bool digest = strcmp(PQgetvalue(res, i, 5), HISTORY_CONVERGED) == 0;
		struct history_row *r = digest ? --h->converged : &h->rows[h->n++];
		h->nconverged += digest;
		r->phase = PQgetvalue(res, i, 0);
		r->file = PQgetvalue(res, i, 1);
		r->checksum = PQgetvalue(res, i, 2);
		r->applied_at = PQgetvalue(res, i, 3);
		r->applied_by = PQgetvalue(res, i, 4);
		r->outcome = PQgetvalue(res, i, 5);
		r->duration_ms = atol(PQgetvalue(res, i, 6));
	}
	/* Sorted here rather than by the server, whose first sort in a session costs more. */
	qsort(h->rows, (size_t)h->n, sizeof(*h->rows), applied_cmp);
	for (int i = 0; i < h->n; i++)
		h->by_key[i] = &h->rows[i];
	qsort(h->by_key, (size_t)h->n, sizeof(*h->by_key), key_ptr_cmp);
	h->res = res;
	return ST_OK;
}

/* Create h's schema unless it exists (CREATE SCHEMA IF NOT EXISTS wants a privilege even then). */
static enum status ensure_schema(PGconn *conn, const struct history *h)
{
	const char *params[1] = { h->schema };
	PGresult *res;
	enum status st;
	bool exists;

	res = db_query(conn, "SELECT to_regnamespace(quote_ident($1)) IS NOT NULL", 1, params, &st);
	if (!res)
		return st;
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists) {
		char *q = db_quote_ident(conn, h->schema);
		char *sql = xasprintf("CREATE SCHEMA %s", q);
		st = db_exec(conn, sql, NULL);
		free(sql);
		if (st != ST_OK) {
			log_error("could not create the schema of the history table %s",
				  h->qualified);
			log_hint(
				"Let the role create it (GRANT CREATE ON DATABASE), create it once "
				"as the owner (CREATE SCHEMA %s AUTHORIZATION the_role), or name "
				"another [history] table.",
				q);
		}
		free(q);
	}
	return st;
}

enum status history_adopt_legacy(PGconn *conn, struct history *h)
{
	enum status st;

	if (!h->legacy)
		return ST_OK;
	st = db_exec(conn, "BEGIN", NULL);
	if (st == ST_OK)
		st = ensure_schema(conn, h);
	if (st == ST_OK)
		st = db_exec(conn,
			     "ALTER TABLE " HISTORY_LEGACY " SET SCHEMA " HISTORY_SCHEMA ";"
			     " ALTER TABLE " HISTORY_SCHEMA
			     ".pgprelude_history RENAME TO " HISTORY_TABLE,
			     NULL);
	if (st == ST_OK)
		st = db_exec(conn, "COMMIT", NULL);
	if (st != ST_OK) {
		ddl_rollback(conn);
		log_error("could not move the history table " HISTORY_LEGACY " to %s",
			  h->qualified);
		return st;
	}
	log_info("moved the history table " HISTORY_LEGACY " to %s (%d row%s), out of the schema "
		 "that schema tools manage",
		 h->qualified, h->n, h->n == 1 ? "" : "s");
	h->legacy = false;
	return ST_OK;
}

enum status history_ensure(PGconn *conn, struct history *h)
{
	char *sql;
	enum status st;

	if (h->exists && !h->legacy)
		return ST_OK;
	/* made as the login role, whatever role the files run as ([database] role) */
	st = db_exec(conn, "RESET ROLE", NULL);
	if (st == ST_OK && h->legacy)
		return history_adopt_legacy(conn, h);
	if (st == ST_OK)
		st = ensure_schema(conn, h);
	if (st != ST_OK)
		return st;
	sql = xasprintf("CREATE TABLE IF NOT EXISTS %s ("
			" phase text NOT NULL,"
			" file text NOT NULL,"
			" checksum text NOT NULL,"
			" applied_at timestamptz NOT NULL DEFAULT now(),"
			" duration_ms integer NOT NULL,"
			" applied_by text NOT NULL DEFAULT current_user,"
			" applied_host text NOT NULL,"
			" pgprelude_version text NOT NULL,"
			" outcome text NOT NULL,"
			" previous_checksum text,"
			" accepted_by text,"
			" accepted_at timestamptz,"
			" PRIMARY KEY (phase, file))",
			h->qualified);
	st = db_exec(conn, sql, NULL);
	free(sql);
	if (st != ST_OK) {
		log_error("could not create the history table %s", h->qualified);
		return st;
	}
	log_info("created the history table %s", h->qualified);
	h->exists = true;
	return ST_OK;
}

enum status history_check_present(PGconn *conn, const struct history *h, const char *after)
{
	const char *params[1] = { h->qualified };
	enum status st;
	PGresult *res;
	bool present;

	if (!h->exists || h->legacy)
		return ST_OK;
	res = db_query(conn, "SELECT to_regclass($1) IS NOT NULL", 1, params, &st);
	if (!res)
		return st;
	present = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (present)
		return ST_OK;
	log_error("the history table %s is gone: %s dropped it", h->qualified, after);
	log_detail("Without it pgprelude cannot tell which files were applied; nothing more runs.");
	log_hint("Keep pgprelude's history out of the schemas the schema tool manages ([history] "
		 "table, default " HISTORY_SCHEMA "." HISTORY_TABLE
		 "), then restore the table from a "
		 "backup or record the applied files again with pgprelude baseline.");
	return ST_EXTERNAL;
}

void history_set_lock(struct history *h, int pid)
{
	snprintf(h->lock_pid, sizeof(h->lock_pid), "%d", pid);
}

/* The migration lock, granted to a backend whose pid is (pidcond) $2; $1 its key. */
#define LOCK_GRANTED(pidcond)                                                               \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted" \
	" AND classid = " LOCK_CLASSID " AND objid = hashtext($1)::oid AND objsubid = 2"    \
	" AND pid " pidcond " $2::integer)"
/* held by the backend h->lock_pid ($2) */
#define LOCK_HELD LOCK_GRANTED("=")
/* held by another backend than $2: a run is at work */
#define LOCK_ELSEWHERE LOCK_GRANTED("<>")

/* After a row was not written: say why (the lock is gone, or another run wrote it). */
static enum status explain_unrecorded(PGconn *conn, const struct history *h, const char *phase,
				      const char *file)
{
	const char *params[2] = { h->lock_key, h->lock_pid };
	enum status st;
	PGresult *res = db_query(conn, "SELECT " LOCK_HELD, 2, params, &st);
	bool held = res && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	PQclear(res);
	if (!res)
		return st;
	if (!held) {
		log_error("lost the migration lock: its session (pid %s) is gone, so %s/%s is not "
			  "recorded and its transaction is rolled back",
			  h->lock_pid, phase, file);
		log_detail("Another run may hold the lock now; this one stops before it changes "
			   "anything more.");
	} else {
		log_error("%s/%s was recorded by another run meanwhile: this run's work on it is "
			  "rolled back",
			  phase, file);
	}
	return ST_CONNLOST;
}

/*
 * Insert or update the row of (phase, file) where guard (over $1 = the lock
 * key, $2 = pid) holds, and over the row prev only (NULL: no row).  *written:
 * whether it was.  ST_OK, or the query's failure after logging.
 */
static enum status write_row(PGconn *conn, const struct history *h, const char *guard,
			     const char *pid, const char *phase, const char *file,
			     const char *checksum, long duration_ms, const char *outcome,
			     const struct history_row *prev, bool *written)
{
	char host[256] = "";
	char duration[24];
	const char *params[11] = { h->lock_key,
				   pid,
				   phase,
				   file,
				   checksum,
				   duration,
				   host,
				   PGPRELUDE_VERSION,
				   outcome,
				   prev ? prev->checksum : NULL,
				   prev ? prev->outcome : NULL };
	char *sql;
	PGresult *res;
	enum status st;

	gethostname(host, sizeof(host) - 1);
	snprintf(duration, sizeof(duration), "%ld", duration_ms);
	sql = xasprintf(
		"INSERT INTO %s AS h (phase, file, checksum, duration_ms, applied_host,"
		" pgprelude_version, outcome) SELECT $3, $4, $5, $6::integer, $7, $8, $9"
		" WHERE %s"
		" ON CONFLICT (phase, file) DO UPDATE SET checksum = excluded.checksum,"
		" applied_at = now(), duration_ms = excluded.duration_ms,"
		" applied_by = current_user, applied_host = excluded.applied_host,"
		" pgprelude_version = excluded.pgprelude_version, outcome = excluded.outcome"
		" WHERE h.checksum = $10 AND h.outcome = $11",
		h->qualified, guard);
	res = db_query(conn, sql, 11, params, &st);
	free(sql);
	if (!res) {
		log_error("could not record %s/%s in the history table %s", phase, file,
			  h->qualified);
		return st;
	}
	*written = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	return ST_OK;
}

enum status history_record(PGconn *conn, const struct history *h, const char *phase,
			   const char *file, const char *checksum, long duration_ms,
			   const char *outcome, const struct history_row *prev)
{
	bool written = false;
	/*
	 * Written only while this run's lock session holds the migration lock,
	 * and only over the row this run read (none for a new file): in the
	 * file's own transaction, so that "applied" and "recorded" fail together.
	 */
	enum status st = write_row(conn, h, LOCK_HELD, h->lock_pid, phase, file, checksum,
				   duration_ms, outcome, prev, &written);

	if (st != ST_OK || written)
		return st;
	return explain_unrecorded(conn, h, phase, file);
}

enum status history_record_digest(PGconn *conn, const struct history *h, const char *phase,
				  const char *file, const char *digest,
				  const struct history_row *prev)
{
	bool written = false;
	/* with or without the lock, but never while another run holds it: it may be at work */
	enum status st =
		write_row(conn, h, "NOT " LOCK_ELSEWHERE, h->lock_pid[0] ? h->lock_pid : "0", phase,
			  file, digest, 0, HISTORY_CONVERGED, prev, &written);

	if (st == ST_OK && !written)
		log_debug("%s/%s: its digest was not recorded (another run is at work, or "
			  "recorded it meanwhile)",
			  phase, file);
	return st;
}

enum status history_accept(PGconn *conn, const struct history *h, const char *phase,
			   const char *file, const char *checksum, const char *previous)
{
	const char *params[6] = { h->lock_key, h->lock_pid, checksum, previous, phase, file };
	char *sql;
	PGresult *res;
	enum status st;
	bool written;

	/* a table made by an earlier version gets the columns that keep what was accepted */
	sql = xasprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS previous_checksum text,"
			" ADD COLUMN IF NOT EXISTS accepted_by text,"
			" ADD COLUMN IF NOT EXISTS accepted_at timestamptz",
			h->qualified);
	st = db_exec(conn, sql, NULL);
	free(sql);
	if (st != ST_OK)
		return st;
	sql = xasprintf("UPDATE %s SET checksum = $3, previous_checksum = $4,"
			" accepted_by = current_user, accepted_at = now()"
			" WHERE phase = $5 AND file = $6 AND checksum = $4 AND " LOCK_HELD,
			h->qualified);
	res = db_query(conn, sql, 6, params, &st);
	free(sql);
	if (!res)
		return st;
	written = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	return written ? ST_OK : explain_unrecorded(conn, h, phase, file);
}

bool history_row_failed(const struct history_row *r)
{
	return r && r->outcome && strncmp(r->outcome, "failed", 6) == 0;
}

const struct history_row *history_find(const struct history *h, const char *phase, const char *file)
{
	size_t lo = 0, hi = (size_t)h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(phase, file, h->by_key[mid]);
		if (c == 0)
			return h->by_key[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct history_row *history_converged(const struct history *h, const char *phase,
					    const char *file)
{
	for (int i = 0; i < h->nconverged; i++)
		if (strcmp(h->converged[i].phase, phase) == 0 &&
		    strcmp(h->converged[i].file, file) == 0)
			return &h->converged[i];
	return NULL;
}

void history_free(struct history *h)
{
	free(h->rows);
	free(h->by_key);
	PQclear(h->res);
	free(h->qualified);
	free(h->schema);
	memset(h, 0, sizeof(*h));
}
