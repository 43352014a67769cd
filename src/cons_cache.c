/*
 * cons_cache.c — reading the catalog ahead for a constraint file: the
 * queries that checking its specs will run are queued (cons_queue), sent in
 * a few pipelines, statements of one text combined over arrays of their
 * parameters, and answered from here (cons_cached); see cons_kind.h.
 */
#include "cons_kind.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "init.h"
#include "log.h"
#include "util.h"
#include "wait.h"

/* One statement read ahead: its text and parameters, and its result once read. */
struct centry {
	unsigned long long hash;
	char *sql;
	char *types; /* the SQL types of the parameters ("oid,text[]"), or NULL: sent alone */
	int nparams;
	char **params;
	PGresult *res; /* PGRES_TUPLES_OK, or NULL: not read (yet), or it failed */
};

struct cons_cache {
	struct centry *v;
	int n, cap;
	int sent; /* v[sent..n) are queued, not sent yet */
	bool broken;
	bool stopped;	  /* a stop signal cancelled a pipeline */
	const char *file; /* for the message that says so */
};

/* Statements per pipeline: their results stay far below what the sockets buffer. */
#define CACHE_CHUNK 256

/*
 * The first statement of every pipeline: a lock that another session holds
 * makes the read-ahead give up at once, and the statement waiting for it
 * goes again on its own (cons_spec_query: progress lines, who holds it).
 * Every query looks up a few rows by key for each table: nested loops over
 * the catalog's indexes, never a hash of a whole catalog for each table.
 * Local: the pipeline's implicit transaction ends them.
 */
static const char sql_ahead_limits[] = "SELECT pg_catalog.set_config('lock_timeout', '200', true),"
				       " pg_catalog.set_config('statement_timeout', '30000', true),"
				       " pg_catalog.set_config('enable_hashjoin', 'off', true),"
				       " pg_catalog.set_config('enable_mergejoin', 'off', true)";

/* A hash of sql and its parameters, 8 bytes at a time (the texts are long, the lookups many). */
static unsigned long long cache_hash(const char *sql, int nparams, const char *const *params)
{
	unsigned long long h = 1469598103934665603ULL;

	for (int i = -1; i < nparams; i++) {
		const char *p = i < 0 ? sql : params[i];
		size_t len = strlen(p), k = 0;
		for (; k + 8 <= len; k += 8) {
			unsigned long long w;
			memcpy(&w, p + k, 8);
			h = (h ^ w) * 1099511628211ULL;
			h ^= h >> 29;
		}
		for (; k < len; k++)
			h = (h ^ (unsigned char)p[k]) * 1099511628211ULL;
		h = (h ^ (unsigned long long)len) * 1099511628211ULL;
	}
	return h;
}

static struct centry *cache_find(const struct cons_cache *c, unsigned long long hash,
				 const char *sql, int nparams, const char *const *params)
{
	for (int i = 0; c && i < c->n; i++) {
		struct centry *e = &c->v[i];
		bool same = e->hash == hash && e->nparams == nparams && strcmp(e->sql, sql) == 0;
		for (int j = 0; same && j < nparams; j++)
			same = strcmp(e->params[j], params[j]) == 0;
		if (same)
			return e;
	}
	return NULL;
}

void cons_cache_drop(struct cons_run *r)
{
	struct cons_cache *c = r->cache;

	if (!c)
		return;
	for (int i = 0; i < c->n; i++) {
		free(c->v[i].sql);
		free(c->v[i].types);
		for (int j = 0; j < c->v[i].nparams; j++)
			free(c->v[i].params[j]);
		free(c->v[i].params);
		PQclear(c->v[i].res);
	}
	free(c->v);
	free(c);
	r->cache = NULL;
}

void cons_queue(struct cons_run *r, const char *sql, const char *types, int nparams,
		const char *const *params)
{
	struct cons_cache *c = r->cache;
	unsigned long long hash;
	struct centry *e;

	if (!c || c->broken)
		return;
	hash = cache_hash(sql, nparams, params);
	if (cache_find(c, hash, sql, nparams, params))
		return;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = xrealloc(c->v, (size_t)c->cap * sizeof(*c->v));
	}
	e = &c->v[c->n++];
	memset(e, 0, sizeof(*e));
	e->hash = hash;
	e->sql = xstrdup(sql);
	e->types = types ? xstrdup(types) : NULL;
	e->nparams = nparams;
	e->params = xcalloc((size_t)nparams + 1, sizeof(*e->params));
	for (int i = 0; i < nparams; i++)
		e->params[i] = xstrdup(params[i]);
}

PGresult *cons_cached(const struct cons_run *r, const char *sql, int nparams,
		      const char *const *params)
{
	const struct centry *e;

	if (!r->cache)
		return NULL;
	e = cache_find(r->cache, cache_hash(sql, nparams, params), sql, nparams, params);
	return e && e->res ? PQcopyResult(e->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES) : NULL;
}

PGresult *cons_query(struct cons_run *r, const char *sql, int nparams, const char *const *params,
		     enum status *st)
{
	PGresult *res = cons_cached(r, sql, nparams, params);

	if (res) {
		*st = ST_OK;
		return res;
	}
	return db_query(r->conn, sql, nparams, params, st);
}

/*
 * The statement that runs sql (whose parameters have the SQL types of the
 * comma-separated list types) for many parameter sets at once: $1 ... the
 * text arrays of each parameter's values, and in each row first the set's
 * ordinal (from 1), then the row sql gives for that set, in its order.
 */
static char *batch_sql(const char *sql, const char *types, int nparams)
{
	struct sbuf b = { 0 };
	char **type = xcalloc((size_t)nparams + 1, sizeof(*type));
	const char *p = types;

	for (int i = 0; i < nparams; i++) {
		size_t len = strcspn(p, ",");
		type[i] = xstrndup(p, len);
		p += len + (p[len] == ',');
	}
	sbuf_puts(&b, "SELECT ahead_.n, ahead_q.* FROM unnest(");
	for (int i = 0; i < nparams; i++)
		sbuf_printf(&b, "%s$%d::text[]", i ? ", " : "", i + 1);
	sbuf_puts(&b, ") WITH ORDINALITY AS ahead_(");
	for (int i = 0; i < nparams; i++)
		sbuf_printf(&b, "p%d, ", i + 1); /* no name of the catalog queries */
	sbuf_puts(&b, "n) CROSS JOIN LATERAL (");
	for (p = sql; *p; p++) {
		if (*p == '$' && p[1] >= '1' && p[1] <= '9') {
			char *end;
			long i = strtol(p + 1, &end, 10);
			if (i >= 1 && i <= nparams) {
				sbuf_printf(&b, "(ahead_.p%ld::%s)", i, type[i - 1]);
				p = end - 1;
				continue;
			}
		}
		sbuf_putc(&b, *p);
	}
	sbuf_puts(&b, ") AS ahead_q");
	for (int i = 0; i < nparams; i++)
		free(type[i]);
	free(type);
	return sbuf_take(&b);
}

/*
 * Split the result of batch_sql for the nm entries members (in the order of
 * their parameter sets) into one result each, as sql alone would have
 * given it.  Nothing is kept when it does not fit.
 */
static void batch_split(struct cons_cache *c, const PGresult *res, const int *members, int nm)
{
	int nf = PQnfields(res) - 1;
	PGresAttDesc *att = xcalloc((size_t)nf + 1, sizeof(*att));
	PGresult **out = xcalloc((size_t)nm + 1, sizeof(*out));
	bool ok = nf > 0;

	for (int f = 0; f < nf; f++) {
		att[f].name = PQfname(res, f + 1);
		att[f].tableid = PQftable(res, f + 1);
		att[f].columnid = PQftablecol(res, f + 1);
		att[f].typid = PQftype(res, f + 1);
		att[f].typlen = PQfsize(res, f + 1);
		att[f].atttypmod = PQfmod(res, f + 1);
	}
	for (int m = 0; ok && m < nm; m++) {
		out[m] = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
		ok = out[m] && PQsetResultAttrs(out[m], nf, att);
	}
	for (int row = 0; ok && row < PQntuples(res); row++) {
		int m = atoi(PQgetvalue(res, row, 0)) - 1;
		int tup;
		if (m < 0 || m >= nm) {
			ok = false;
			break;
		}
		tup = PQntuples(out[m]);
		for (int f = 0; ok && f < nf; f++)
			ok = PQgetisnull(res, row, f + 1)
				     ? PQsetvalue(out[m], tup, f, NULL, -1)
				     : PQsetvalue(out[m], tup, f, PQgetvalue(res, row, f + 1),
						  PQgetlength(res, row, f + 1));
	}
	for (int m = 0; m < nm; m++) {
		if (ok && !c->v[members[m]].res)
			c->v[members[m]].res = out[m];
		else
			PQclear(out[m]);
	}
	free(out);
	free(att);
}

/*
 * The next result of the pipeline on conn, waiting as db_query does for a
 * stop signal: the first one cancels what runs on the server (the rest of
 * the pipeline then fails) and sets c->stopped.
 */
static PGresult *pipe_result(PGconn *conn, struct cons_cache *c)
{
	while (PQisBusy(conn)) {
		int w = wait_fd(PQsocket(conn), POLLIN, -1);
		if (w < 0 && !c->stopped) {
			char err[256] = "";
			PGcancel *cancel = PQgetCancel(conn);
			c->stopped = true;
			log_warning("signal %d received: cancelling the running statement of %s",
				    init_stop_signal(), c->file);
			if (!cancel || !PQcancel(cancel, err, sizeof(err)))
				log_warning("could not cancel the statement: %s",
					    err[0] ? err : "out of memory");
			PQfreeCancel(cancel);
		} else if (w >= 0 && !PQconsumeInput(conn)) {
			break;
		}
	}
	return PQgetResult(conn);
}

/*
 * Send v[from..to) of the cache in one pipeline (one round trip) and keep
 * every result that is rows.  Entries that share their text (and have
 * types) go as one statement (batch_sql): planned and run once, not once
 * for each table.  A statement that fails leaves its entries and the rest
 * of the pipeline unread: asked for, they go to the server again, one by
 * one, and report their error as they always did.  Returns false when the
 * connection can no longer pipeline.
 */
static bool cache_pipeline(PGconn *conn, struct cons_cache *c, int from, int to)
{
	int n = to - from, nitems = 0;
	int *leader = xcalloc((size_t)n + 1, sizeof(*leader));
	int *count = xcalloc((size_t)n + 1, sizeof(*count));
	int *members = xcalloc((size_t)n + 1, sizeof(*members));
	int *items =
		xcalloc((size_t)n + 2, sizeof(*items)); /* i >= 0: entry or batch of from + i */
	bool ok;
	PGresult *res;

	for (int i = 0; i < n; i++) {
		const struct centry *e = &c->v[from + i];
		leader[i] = i;
		for (int j = 0; e->types && j < i && leader[i] == i; j++)
			if (c->v[from + j].types && strcmp(c->v[from + j].sql, e->sql) == 0 &&
			    strcmp(c->v[from + j].types, e->types) == 0)
				leader[i] = leader[j];
		count[leader[i]]++;
	}
	if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF || !PQenterPipelineMode(conn)) {
		ok = false;
		goto out;
	}
	ok = PQsendQueryParams(conn, sql_ahead_limits, 0, NULL, NULL, NULL, NULL, 0) == 1;
	items[nitems++] = -1;
	/* the batches first: a where that fails to parse stops only what follows it */
	for (int k = 0; ok && k < 2 * n; k++) {
		int i = k % n;
		const struct centry *e = &c->v[from + i];
		if (leader[i] != i || (k < n) != (count[i] > 1))
			continue;
		if (count[i] > 1) {
			char *sql = batch_sql(e->sql, e->types, e->nparams);
			char **arrays = xcalloc((size_t)e->nparams + 1, sizeof(*arrays));
			for (int p = 0; p < e->nparams; p++) {
				struct strv vals = { 0 };
				for (int j = i; j < n; j++)
					if (leader[j] == i)
						strv_push(&vals, xstrdup(c->v[from + j].params[p]));
				arrays[p] = cspec_sql_text_array(&vals);
				strv_free(&vals);
			}
			ok = PQsendQueryParams(conn, sql, e->nparams, NULL,
					       (const char *const *)arrays, NULL, NULL, 0) == 1;
			for (int p = 0; p < e->nparams; p++)
				free(arrays[p]);
			free(arrays);
			free(sql);
		} else {
			ok = PQsendQueryParams(conn, e->sql, e->nparams, NULL,
					       (const char *const *)e->params, NULL, NULL, 0) == 1;
		}
		if (ok)
			items[nitems++] = i;
	}
	if (PQpipelineSync(conn) != 1) {
		(void)PQexitPipelineMode(conn);
		ok = false;
		goto out;
	}
	for (int q = 0; q < nitems; q++) {
		int i = items[q];
		while ((res = pipe_result(conn, c))) {
			if (i >= 0 && PQresultStatus(res) == PGRES_TUPLES_OK && count[i] > 1) {
				int nm = 0;
				for (int j = i; j < n; j++)
					if (leader[j] == i)
						members[nm++] = from + j;
				batch_split(c, res, members, nm);
			} else if (i >= 0 && PQresultStatus(res) == PGRES_TUPLES_OK &&
				   !c->v[from + i].res) {
				c->v[from + i].res = res;
				continue;
			}
			PQclear(res);
		}
		if (PQstatus(conn) != CONNECTION_OK) {
			ok = false;
			goto out;
		}
	}
	res = pipe_result(conn, c);
	ok = ok && res && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
	PQclear(res);
	ok = PQexitPipelineMode(conn) == 1 && ok;
out:
	free(leader);
	free(count);
	free(members);
	free(items);
	return ok;
}

/* Send what is queued, in pipelines: a few round trips for the whole file. */
void cons_cache_fill(struct cons_run *r)
{
	struct cons_cache *c = r->cache;

	while (c && !c->broken && c->sent < c->n) {
		int to = c->n - c->sent > CACHE_CHUNK ? c->sent + CACHE_CHUNK : c->n;
		c->broken = !cache_pipeline(r->conn, c, c->sent, to) || c->stopped;
		c->sent = to;
	}
}

void cons_cache_start(struct cons_run *r, const char *file)
{
	r->cache = xcalloc(1, sizeof(*r->cache));
	r->cache->file = file;
}

bool cons_cache_stopped(const struct cons_run *r)
{
	return r->cache && r->cache->stopped;
}
