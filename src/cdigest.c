/*
 * cdigest.c — the digest of what checking a constraint file reads, and its
 * row in the history (see cdigest.h).
 */
#include "cdigest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "history.h"
#include "log.h"
#include "migrate.h"
#include "util.h"

/*
 * $1: the relations the specs name (each once), as to_regclass takes them; $2: what else
 * the digest covers.  Every column that checking a spec reads, and the
 * names of the indexes, go in as text (a NULL as "" after a "t" saying so);
 * %s: the column that says NULLS NOT DISTINCT (PostgreSQL 15+), or false.
 * The rows are looked up through the catalogs' indexes by the tables' oids.
 */
static const char sql_digest[] =
	"WITH r AS (SELECT u.name, pg_catalog.to_regclass(u.name)::oid AS rel"
	"   FROM pg_catalog.unnest($1::text[]) AS u(name))"
	" SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.concat_ws("
	"   E'\\n', $2::text, pg_catalog.current_setting('server_version_num'),"
	"   (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', r.name, r.rel), ';'"
	"     ORDER BY r.name) FROM r),"
	"   (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', a.attrelid, a.attnum, a.attname,"
	"     a.atttypid, a.atttypmod, a.attnotnull, a.attcollation), ';'"
	"     ORDER BY a.attrelid, a.attnum)"
	"     FROM pg_catalog.pg_attribute a WHERE a.attrelid = ANY (ARRAY(SELECT r.rel FROM r))"
	"     AND a.attnum > 0 AND NOT a.attisdropped),"
	"   (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', i.indrelid, i.indexrelid,"
	"     ic.relname, ic.relam, i.indkey, i.indclass, i.indcollation, i.indoption,"
	"     i.indisunique, %s, i.indimmediate, i.indisvalid, i.indisready, i.indislive,"
	"     i.indnatts, i.indnkeyatts, i.indexprs IS NULL, i.indexprs, i.indpred IS NULL,"
	"     i.indpred), ';' ORDER BY i.indexrelid)"
	"     FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
	"     WHERE i.indrelid = ANY (ARRAY(SELECT r.rel FROM r))),"
	"   (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', k.oid, k.conrelid, k.confrelid,"
	"     k.conname, k.contype, k.condeferrable, k.condeferred, k.convalidated, k.conindid,"
	"     k.conkey, k.conbin IS NULL, k.conbin), ';' ORDER BY k.oid)"
	"     FROM pg_catalog.pg_constraint k WHERE k.conrelid = ANY (ARRAY(SELECT r.rel FROM r))"
	"     OR k.confrelid = ANY (ARRAY(SELECT r.rel FROM r)))),"
	"   'UTF8')), 'hex')";

enum status cdigest_compute(const struct mfile *f, PGconn *conn, char out[65])
{
	const struct cfile *cf = f->cons;
	struct strv names = { 0 };
	const char *params[2];
	char *sql, *what;
	PGresult *res;
	enum status st;

	out[0] = '\0';
	if (PQserverVersion(conn) < 110000) /* no sha256() */
		return ST_OK;
	for (int i = 0; i < cf->n; i++) { /* each table once: specs come a few per table */
		char *name = cspec_sql_regclass(&cf->specs[i]);
		bool seen = false;
		for (int j = names.n - 1; j >= 0 && !seen; j--)
			seen = strcmp(names.v[j], name) == 0;
		if (seen)
			free(name);
		else
			strv_push(&names, name);
	}
	params[0] = cspec_sql_text_array(&names);
	params[1] = what = xasprintf("pgprelude %s\n%s", PGPRELUDE_VERSION, f->checksum);
	sql = xasprintf(sql_digest,
			PQserverVersion(conn) >= 150000 ? "i.indnullsnotdistinct" : "false");
	res = db_query(conn, sql, 2, params, &st);
	if (res && PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 64)
		memcpy(out, PQgetvalue(res, 0, 0), 65);
	else if (res)
		st = ST_SQL; /* not what the query gives: never taken for a match */
	PQclear(res);
	free(sql);
	free(what);
	free((char *)params[0]);
	strv_free(&names);
	return st;
}

bool cdigest_unchanged(const struct mfile *f, const char *phase, const struct history *h,
		       PGconn *conn, char now[65], enum status *st)
{
	const struct history_row *row = history_converged(h, phase, f->name);
	enum status dst = cdigest_compute(f, conn, now);

	if (dst != ST_OK) {
		*st = dst;
		return false;
	}
	if (!row || !now[0] || strcmp(now, row->checksum) != 0)
		return false;
	log_debug("%s: its tables are as they were when it was last found converged (%s): up "
		  "to date",
		  f->path, row->applied_at);
	return true;
}

enum status cdigest_record(const struct mfile *f, const char *phase, struct history *h,
			   PGconn *conn, const char *before)
{
	const struct history_row *row = history_converged(h, phase, f->name);
	char digest[65];
	enum status st = cdigest_compute(f, conn, digest);

	if (st != ST_OK || !digest[0] || (before && strcmp(before, digest) != 0) ||
	    (row && strcmp(row->checksum, digest) == 0))
		return st;
	if (!before)
		st = history_ensure(conn, h);
	else if (!h->exists || h->legacy) /* made, or moved, under the lock only */
		return ST_OK;
	if (st == ST_OK)
		st = history_record_digest(conn, h, phase, f->name, digest, row);
	return st;
}
