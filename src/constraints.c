/*
 * constraints.c — converging declarative constraint files (see
 * constraints.h): the driver.  It resolves every table and column, lets the
 * server normalise where, and keeps the order: check every spec and run
 * every pre-flight, then converge in file order (again after a lock_timeout),
 * then verify every spec.  What a kind of constraint does is its row
 * (cons_kind.h: cons_unique.c, cons_not_null.c); the file's text is read by
 * cspec.c.  Every identifier from a file goes to the server quoted
 * (cspec_quote), or as a query parameter.
 */
#include "constraints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cons_kind.h"
#include "db.h"
#include "ddl.h"
#include "init.h"
#include "log.h"
#include "migrate.h"
#include "util.h"

static const struct cons_kind *const kinds[] = { &cons_unique, &cons_not_null };

/* The row of s's kind, or NULL after logging (a kind the parser knows and no row serves). */
static const struct cons_kind *kind_of(const struct cons_run *r, const struct cspec *s)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->kind == s->kind)
			return kinds[i];
	log_at(LOG_ERROR, r->cf->path, s->line, 0, "internal error: no code for [%s %s]",
	       cspec_kind_word(s->kind), s->name);
	return NULL;
}

static long lock_timeout_of(const struct cons_run *r, const struct cspec *s)
{
	return s->lock_timeout_ms >= 0 ? s->lock_timeout_ms : r->ph->lock_timeout_ms;
}

static long statement_timeout_of(const struct cons_run *r, const struct cspec *s)
{
	return s->statement_timeout_ms >= 0 ? s->statement_timeout_ms : r->ph->statement_timeout_ms;
}

static void resolved_free(struct cons_resolved *rv)
{
	free(rv->qtable);
	free(rv->qschema);
	free(rv->shown);
	free(rv->attnums);
	free(rv->qname);
	free(rv->qfrom);
	free(rv->pred);
	free(rv->owner);
	free(rv->role);
	free(rv->partkey);
	free(rv->partcols);
	memset(rv, 0, sizeof(*rv));
}

/* ---- the catalog -------------------------------------------------------- */

/*
 * The table of s, named (quoted) as the file writes it, is not there: fine
 * for a plan with later_ok and for verify (rv->absent), else ST_USAGE.
 */
static enum status table_missing(const struct cons_run *r, const struct cspec *s,
				 struct cons_resolved *rv, const char *name, const char *written)
{
	if (r->mode != CONS_APPLY && (r->later_ok || r->mode == CONS_VERIFY)) {
		rv->absent = true;
		rv->qtable = xstrdup(name);
		return ST_OK;
	}
	log_at(LOG_ERROR, r->cf->path, s->table_line, 0, "table \"%s\" does not exist", written);
	if (!s->schema)
		log_hint(
			"Without a schema the search_path decides; write schema.table to be explicit.");
	return ST_USAGE;
}

/* The table named $1 (as to_regclass takes it): what resolve_table keeps of it. */
static const char sql_table[] =
	"SELECT c.oid, n.nspname, c.relname, c.relkind,"
	" pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),"
	" c.relkind = 'r' AND c.relhassubclass,"
	/* what ALTER TABLE needs: the owner's privileges (a superuser has them) */
	" pg_catalog.pg_has_role(c.relowner, 'USAGE'), pg_catalog.pg_get_userbyid(c.relowner),"
	" current_user, pg_catalog.current_setting('max_index_keys'),"
	" p.partattrs::text, (SELECT string_agg(coalesce(pg_catalog.quote_ident(a.attname),"
	"   '(an expression)'), ', ' ORDER BY k.ord) FROM unnest(p.partattrs::int2[])"
	"   WITH ORDINALITY AS k(attnum, ord) LEFT JOIN pg_catalog.pg_attribute a"
	"   ON a.attrelid = c.oid AND a.attnum = k.attnum)"
	" FROM pg_catalog.pg_class c"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" LEFT JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = c.oid"
	" WHERE c.oid = pg_catalog.to_regclass($1)";

/*
 * The columns named $2 (text[]) of table $1 (oid), in order: attnum (NULL:
 * none), the name a case-insensitive match has, whether the type has a
 * default btree operator class (see resolve_columns), the type.
 */
static const char sql_columns[] =
	"SELECT a.attnum, (SELECT b.attname FROM pg_catalog.pg_attribute b"
	"   WHERE b.attrelid = $1::oid AND lower(b.attname) = lower(k.name) AND b.attnum > 0"
	"   AND NOT b.attisdropped ORDER BY b.attnum LIMIT 1),"
	" EXISTS (SELECT FROM pg_catalog.pg_opclass o"
	"   JOIN pg_catalog.pg_am m ON m.oid = o.opcmethod"
	"   WHERE m.amname = 'btree' AND o.opcdefault AND (o.opcintype = t.oid"
	"   OR o.opcintype::regtype::text = CASE WHEN t.typelem <> 0 AND t.typlen = -1"
	"     THEN 'anyarray' WHEN t.typtype = 'e' THEN 'anyenum' WHEN t.typtype = 'r'"
	"     THEN 'anyrange' WHEN t.typtype = 'm' THEN 'anymultirange'"
	"     WHEN t.typtype = 'c' THEN 'record' END"
	"   OR EXISTS (SELECT FROM pg_catalog.pg_cast c WHERE c.castsource = t.oid"
	"     AND c.casttarget = o.opcintype AND c.castmethod = 'b'))) OR t.typtype = 'd',"
	" pg_catalog.format_type(a.atttypid, a.atttypmod)"
	" FROM unnest($2::text[]) WITH ORDINALITY AS k(name, ord)"
	" LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::oid AND a.attname = k.name"
	"   AND a.attnum > 0 AND NOT a.attisdropped"
	" LEFT JOIN pg_catalog.pg_type d ON d.oid = a.atttypid"
	" LEFT JOIN pg_catalog.pg_type t ON t.oid ="
	"   CASE d.typtype WHEN 'd' THEN d.typbasetype ELSE d.oid END"
	" ORDER BY k.ord";

/*
 * Find the table of s: fills rv (relid, qtable, qschema, shown), or sets
 * rv->absent when a missing table is allowed.  Logs; ST_USAGE for a missing
 * table or one that is not a table.
 */
static enum status resolve_table(struct cons_run *r, const struct cspec *s,
				 struct cons_resolved *rv)
{
	char *name = cspec_sql_regclass(s);
	char *written = s->schema ? xasprintf("%s.%s", s->schema, s->table) : xstrdup(s->table);
	const char *params[1] = { name };
	enum status st;
	PGresult *res = cons_query(r, sql_table, 1, params, &st);

	if (!res)
		goto out;
	if (PQntuples(res) == 0) {
		st = table_missing(r, s, rv, name, written);
	} else if (strcmp(PQgetvalue(res, 0, 3), "r") != 0 &&
		   strcmp(PQgetvalue(res, 0, 3), "p") != 0) {
		log_at(LOG_ERROR, r->cf->path, s->table_line, 0, "\"%s\" is not a table", written);
		st = ST_USAGE;
	} else {
		char *qt = cspec_quote(PQgetvalue(res, 0, 2));
		snprintf(rv->relid, sizeof(rv->relid), "%s", PQgetvalue(res, 0, 0));
		rv->qschema = cspec_quote(PQgetvalue(res, 0, 1));
		rv->shown = xstrdup(PQgetvalue(res, 0, 4));
		rv->qtable = xasprintf("%s.%s", rv->qschema, qt);
		rv->qfrom = strcmp(PQgetvalue(res, 0, 5), "t") == 0
				    ? xasprintf("ONLY %s", rv->qtable)
				    : xstrdup(rv->qtable);
		rv->qname = qt;
		rv->partitioned = strcmp(PQgetvalue(res, 0, 3), "p") == 0;
		rv->owned = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
		rv->owner = xstrdup(PQgetvalue(res, 0, 7));
		rv->role = xstrdup(PQgetvalue(res, 0, 8));
		rv->max_keys = atoi(PQgetvalue(res, 0, 9));
		rv->partkey = PQgetisnull(res, 0, 10) ? NULL : xstrdup(PQgetvalue(res, 0, 10));
		rv->partcols = PQgetisnull(res, 0, 11) ? NULL : xstrdup(PQgetvalue(res, 0, 11));
	}
out:
	PQclear(res);
	free(name);
	free(written);
	return st;
}

/*
 * Find the columns of s in rv's table, in one query: rv->attnums.  A unique
 * also needs a default btree operator class for each key's type (the one
 * CREATE INDEX would pick: of the type, of its base type under a domain, of
 * a type it is binary-coercible to, or the polymorphic one of arrays,
 * enums, ranges and composites); json or point has none.  Logs; ST_USAGE
 * for an unknown column or a key type without one.
 */
static enum status resolve_columns(struct cons_run *r, const struct cspec *s,
				   struct cons_resolved *rv)
{
	char *names = cspec_sql_text_array(&s->columns);
	const char *params[2] = { rv->relid, names };
	struct sbuf attnums = { 0 };
	enum status st;
	PGresult *res = cons_query(r, sql_columns, 2, params, &st);

	free(names);
	for (int i = 0; res && st == ST_OK && i < PQntuples(res) && i < s->columns.n; i++) {
		if (PQgetisnull(res, i, 0)) {
			log_at(LOG_ERROR, r->cf->path, s->columns_line, 0,
			       "column \"%s\" of table %s does not exist", s->columns.v[i],
			       rv->shown);
			if (!PQgetisnull(res, i, 1))
				log_hint(
					"Did you mean \"%s\"? A name with capitals must be written in double "
					"quotes: columns = \"%s\".",
					PQgetvalue(res, i, 1), PQgetvalue(res, i, 1));
			st = ST_USAGE;
		} else if (s->kind == CSPEC_UNIQUE && strcmp(PQgetvalue(res, i, 2), "t") != 0) {
			log_at(LOG_ERROR, r->cf->path, s->columns_line, 0,
			       "[unique %s]: column \"%s\" of %s has type %s, which has no default btree "
			       "operator class: no unique index can hold it",
			       s->name, s->columns.v[i], rv->shown, PQgetvalue(res, i, 3));
			log_hint("Declare the unique on other columns (json: use jsonb).");
			st = ST_USAGE;
		}
		sbuf_printf(&attnums, "%s%s", i ? " " : "", PQgetvalue(res, i, 0));
	}
	PQclear(res);
	if (st == ST_OK)
		rv->attnums = sbuf_take(&attnums);
	sbuf_reset(&attnums);
	return st;
}

/*
 * What can never work for unique s on rv's table, before anything runs:
 * more keys than an index takes (max_index_keys), a partitioned table
 * without every column of its partition key among the columns (or with an
 * expression in it), CONCURRENTLY on a partitioned table.  Logs; ST_USAGE.
 */
static enum status check_shape(const struct cons_run *r, const struct cspec *s,
			       const struct cons_resolved *rv)
{
	const char *path = r->cf->path;

	if (s->kind != CSPEC_UNIQUE)
		return ST_OK;
	if (rv->max_keys > 0 && s->columns.n > rv->max_keys) {
		log_at(LOG_ERROR, path, s->columns_line, 0,
		       "[unique %s]: %d columns, but an index of this server takes at most %d",
		       s->name, s->columns.n, rv->max_keys);
		return ST_USAGE;
	}
	if (!rv->partitioned)
		return ST_OK;
	if (s->concurrently) {
		log_at(LOG_ERROR, path, s->line, 0,
		       "[unique %s]: concurrently on the partitioned table %s: CREATE INDEX "
		       "CONCURRENTLY cannot build an index on a partitioned table",
		       s->name, rv->shown);
		log_hint("Remove \"concurrently\" (the index is built on each partition in turn).");
		return ST_USAGE;
	}
	if (rv->partkey && !cspec_attnums_cover(rv->attnums, rv->partkey)) {
		log_at(LOG_ERROR, path, s->columns_line, 0,
		       "[unique %s]: %s is partitioned, and a unique on it must contain every column "
		       "of its partition key",
		       s->name, rv->shown);
		log_detail("Its partition key: %s.", rv->partcols ? rv->partcols : rv->partkey);
		return ST_USAGE;
	}
	return ST_OK;
}

char *cons_normal_form_sql(const struct cons_resolved *rv, const char *expr)
{
	/*
	 * A row of the table's type from a function the planner cannot see
	 * into: no index, partition or policy of the table changes the plan,
	 * and the table is not even locked.
	 */
	return xasprintf("EXPLAIN (VERBOSE, COSTS OFF) SELECT 1 FROM"
			 " pg_catalog.jsonb_populate_record(NULL::%s, NULL) AS %s WHERE (%s)",
			 rv->qtable, rv->qname, expr);
}

char *cons_normal_form(struct cons_run *r, const struct cons_resolved *rv, const char *expr,
		       PGresult **err)
{
	char *sql = cons_normal_form_sql(rv, expr);
	PGresult *res = cons_cached(r, sql, 0, NULL);
	struct sbuf b = { 0 };

	if (!res)
		res = PQexecParams(r->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
	free(sql);
	*err = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		*err = res;
		return NULL;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *row = PQgetvalue(res, i, 0);
		if (strstr(row, "Query Identifier:") == row + strspn(row, " "))
			continue; /* differs from query to query */
		sbuf_printf(&b, "%s\n", row);
	}
	PQclear(res);
	return sbuf_take(&b);
}

/*
 * Let the server read s->where on the table and keep its normal form
 * (cons_normal_form), or none when it reduces to true (an index WHERE (true)
 * is stored without a predicate).  A bad expression is a bad file.
 */
static enum status normalise_where(struct cons_run *r, const struct cspec *s,
				   struct cons_resolved *rv)
{
	PGresult *err = NULL;
	char *form = cons_normal_form(r, rv, s->where, &err);
	char *always = form ? cons_normal_form(r, rv, "true", &err) : NULL;
	const char *why = NULL;
	enum status st = ST_OK;

	if (!form || !always) {
		struct db_where where = { .file = r->cf->path, .stmt_line = s->where_line };
		if (!err || PQstatus(r->conn) != CONNECTION_OK) {
			log_at(LOG_ERROR, r->cf->path, s->where_line, 0,
			       "the server could not read the \"where\": %s",
			       PQstatus(r->conn) == CONNECTION_OK ? "out of memory"
								  : "the connection was lost");
			st = db_failure_status(r->conn);
		} else {
			db_report_error(err, &where);
			if (!cspec_check_where(s->where, &why))
				log_detail("The \"where\" has %s.", why);
			log_detail(
				"The \"where\" of [%s %s] must be a valid index predicate on %s.",
				cspec_kind_word(s->kind), s->name, rv->shown);
			st = db_failure_status(r->conn) == ST_CONNLOST ? ST_CONNLOST : ST_USAGE;
		}
	} else if (!cspec_check_where(s->where, &why)) {
		log_at(LOG_ERROR, r->cf->path, s->where_line, 0, "bad \"where\": %s", why);
		st = ST_USAGE;
	} else if (strcmp(form, always) == 0) {
		log_at(LOG_DEBUG, r->cf->path, s->where_line, 0,
		       "the \"where\" of [%s %s] is always true: no predicate",
		       cspec_kind_word(s->kind), s->name);
	} else {
		rv->pred = form;
		form = NULL;
	}
	PQclear(err);
	free(form);
	free(always);
	return st;
}

/* ---- what the kinds use ------------------------------------------------- */

PGresult *cons_spec_query(struct cons_run *r, const struct cspec *s, const char *sql, int nparams,
			  const char *const *params, enum status *st)
{
	struct db_run run = { .file = r->cf->path, .sent_line = s->line, .watch = r->watch };
	PGresult *res = cons_cached(r, sql, nparams, params);

	if (res) {
		*st = ST_OK;
		return res;
	}
	return db_query_run(r->conn, sql, nparams, params, &run, st);
}

PGresult *cons_preflight_count(struct cons_run *r, const struct cspec *s, char *sql, bool *failed,
			       enum status *st)
{
	PGresult *res = cons_spec_query(r, s, sql, 0, NULL, st);

	free(sql);
	if (res && strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
		PQclear(res);
		res = NULL;
	}
	*failed = res != NULL;
	return res;
}

/*
 * After s failed with st: a statement or a query of it failed (ST_SQL, exit
 * 6), so name the spec, once, whatever logged the error: its file and line,
 * and [kind name].
 */
static void name_spec(struct cons_run *r, const struct cspec *s, enum status st)
{
	if (st != ST_SQL || r->named)
		return;
	r->named = true;
	log_msg(LOG_CONTEXT, "in [%s %s] at %s:%d", cspec_kind_word(s->kind), s->name, r->cf->path,
		s->line);
}

/* Keep what step sql's run failed with, and log it unless a retry will say so. */
static void note_failure(struct cons_run *r, const struct cspec *s, const struct db_run *run,
			 const char *sql, enum status st)
{
	r->failed = *run;
	r->failed.stmts = NULL; /* the caller's statement is gone when it returns */
	free(r->failed_sql);
	r->failed_sql = xstrdup(sql);
	if (st == ST_SIGNAL)
		log_at(LOG_ERROR, r->cf->path, s->line, 0,
		       "cancelled by signal %d while running: %s", init_stop_signal(), sql);
	else if (st == ST_SQL && !(r->quiet && ddl_is_lock_timeout(run))) {
		if (ddl_is_lock_timeout(run))
			ddl_log_lock_holder(run);
		log_msg(LOG_CONTEXT, "while running: %s", sql);
		name_spec(r, s, st);
	}
}

enum status cons_run_steps(struct cons_run *r, const struct cspec *s, char *const *steps, int n,
			   bool in_tx)
{
	long lock_timeout = lock_timeout_of(r, s);
	const struct sql_stmt at = { .line = s->line };
	enum status st;

	cons_cache_drop(r); /* what was read ahead is stale from now on */
	st = ddl_set_timeouts(r->conn, in_tx, lock_timeout, statement_timeout_of(r, s));
	for (int i = 0; st == ST_OK && i < n; i++) {
		struct db_run run = { .file = r->cf->path,
				      .stmts = &at,
				      .nstmts = 1,
				      .sent_line = s->line,
				      .watch = r->watch,
				      .lock_poll_ms = ddl_lock_poll_ms(lock_timeout),
				      .quiet_lock_timeout = r->quiet,
				      .one_statement = true };
		log_debug("%s:%d: %s", r->cf->path, s->line, steps[i]);
		st = db_run(r->conn, steps[i], &run);
		if (st != ST_OK)
			note_failure(r, s, &run, steps[i], st);
	}
	if (st == ST_OK && in_tx)
		st = db_exec(r->conn, "COMMIT", r->cf->path);
	if (st != ST_OK)
		ddl_rollback(r->conn);
	if (!in_tx)
		ddl_reset_timeouts(r->conn);
	return st;
}

/* ---- the order ---------------------------------------------------------- */

/*
 * Converge s.  When a statement hits lock_timeout, converge it again from
 * what the catalog then says (an INVALID index that a timed-out concurrent
 * build left is dropped and built again; a not_null goes on from the step it
 * reached) after 1 s, 2 s, 4 s ... up to the phase's lock_retries times,
 * saying each time who held the lock.
 */
static enum status converge_spec(struct cons_run *r, const struct cons_kind *k,
				 const struct cspec *s, const struct cons_resolved *rv)
{
	int retries = r->ph->lock_retries;
	enum status st;

	for (int attempt = 0;; attempt++) {
		memset(&r->failed, 0, sizeof(r->failed));
		r->quiet = attempt < retries;
		st = k->converge(r, s, rv);
		if (st == ST_SQL && ddl_is_lock_timeout(&r->failed) && r->quiet) {
			char what[160];
			snprintf(what, sizeof(what), "%s \"%s\"", cspec_kind_word(s->kind),
				 s->name);
			if (ddl_retry_wait(r->cf->path, s->line, 0, lock_timeout_of(r, s),
					   &r->failed, attempt + 1, retries, what,
					   r->failed_sql ? r->failed_sql : "?"))
				continue;
			st = ST_SIGNAL;
		}
		break;
	}
	r->quiet = false;
	if (st == ST_SQL && ddl_is_lock_timeout(&r->failed)) {
		char of_what[200];
		snprintf(of_what, sizeof(of_what), " (of [%s %s] or of the phase)",
			 cspec_kind_word(s->kind), s->name);
		ddl_gave_up(retries, of_what, r->ph->name);
	}
	name_spec(r, s, st);
	if (st != ST_OK && st != ST_CONNLOST && k->after_failure)
		k->after_failure(r, s, rv);
	return st;
}

/* Check s (and its pre-flight), printing the plan with CONS_PLAN; see struct cons_kind. */
static enum status check_spec(struct cons_run *r, const struct cons_kind *k, const struct cspec *s,
			      const struct cons_resolved *rv, bool *pf_failed)
{
	enum status st;

	*pf_failed = false;
	if (rv->absent) {
		struct cons_ddl ddl = { .n = 0 };
		if (r->mode == CONS_PLAN && k->plan_absent)
			k->plan_absent(s, rv, &ddl);
		cons_plan_line(
			r, s, rv, &ddl,
			"the table does not exist yet: decided when the earlier pending steps have run");
		return ST_OK;
	}
	st = k->check(r, s, rv, pf_failed);
	name_spec(r, s, st);
	return st;
}

/* Whether s is present and valid; see struct cons_kind. */
static enum status verify_spec(struct cons_run *r, const struct cons_kind *k, const struct cspec *s,
			       const struct cons_resolved *rv, bool report)
{
	enum status st;

	if (rv->absent) {
		log_at(LOG_ERROR, r->cf->path, s->table_line, 0,
		       "%s \"%s\": table \"%s\" does not exist", cspec_kind_word(s->kind), s->name,
		       s->table);
		return ST_DRIFT;
	}
	st = k->verify(r, s, rv, report);
	name_spec(r, s, st);
	return st;
}

/*
 * Read ahead, in a few pipelines, every catalog query that checking the
 * file's specs runs when nothing needs to change: their tables, columns,
 * the normal forms of their where, and what each kind reads (cons_kind's
 * prefetch).  Only on a connection outside a transaction (converge): a
 * failed statement ends the pipeline's own transaction, not the caller's.
 * What is not read ahead, or failed, is asked again when needed.  Returns
 * ST_SIGNAL when a stop signal cancelled it (logged), else ST_OK.
 */
static enum status prefetch_all(struct cons_run *r, const struct cons_kind *const *k)
{
	const struct cfile *cf = r->cf;
	struct cons_resolved *pre;
	char **names;
	bool more = true;

	if ((r->mode != CONS_APPLY && r->mode != CONS_CHECK) ||
	    PQtransactionStatus(r->conn) != PQTRANS_IDLE)
		return ST_OK;
	cons_cache_start(r, cf->path);
	pre = xcalloc((size_t)cf->n + 1, sizeof(*pre));
	names = xcalloc((size_t)cf->n + 1, sizeof(*names));
	for (int i = 0; i < cf->n; i++) {
		const char *params[1];
		names[i] = cspec_sql_regclass(&cf->specs[i]);
		params[0] = names[i];
		cons_queue(r, sql_table, "text", 1, params);
	}
	cons_cache_fill(r);
	for (int i = 0; i < cf->n; i++) {
		const struct cspec *s = &cf->specs[i];
		const char *params[2] = { names[i], NULL };
		PGresult *res = cons_cached(r, sql_table, 1, params);
		char *cols;

		if (res && PQntuples(res) == 1) {
			snprintf(pre[i].relid, sizeof(pre[i].relid), "%s", PQgetvalue(res, 0, 0));
			pre[i].qname = cspec_quote(PQgetvalue(res, 0, 2));
			pre[i].qschema = cspec_quote(PQgetvalue(res, 0, 1));
			pre[i].qtable = xasprintf("%s.%s", pre[i].qschema, pre[i].qname);
			cols = cspec_sql_text_array(&s->columns);
			params[0] = pre[i].relid;
			params[1] = cols;
			cons_queue(r, sql_columns, "oid,text[]", 2, params);
			free(cols);
			if (s->where) {
				char *sql = cons_normal_form_sql(&pre[i], s->where);
				cons_queue(r, sql, NULL, 0, NULL);
				free(sql);
				sql = cons_normal_form_sql(&pre[i], "true");
				cons_queue(r, sql, NULL, 0, NULL);
				free(sql);
			}
		}
		PQclear(res);
	}
	cons_cache_fill(r);
	for (int i = 0; i < cf->n; i++) {
		const struct cspec *s = &cf->specs[i];
		char *cols = cspec_sql_text_array(&s->columns);
		const char *params[2] = { pre[i].relid, cols };
		PGresult *res = pre[i].qtable ? cons_cached(r, sql_columns, 2, params) : NULL;
		struct sbuf attnums = { 0 };
		bool all = res && PQntuples(res) == s->columns.n;

		for (int c = 0; all && c < s->columns.n; c++) {
			all = !PQgetisnull(res, c, 0);
			sbuf_printf(&attnums, "%s%s", c ? " " : "", PQgetvalue(res, c, 0));
		}
		if (all)
			pre[i].attnums = sbuf_take(&attnums);
		sbuf_reset(&attnums);
		PQclear(res);
		free(cols);
	}
	for (int pass = 0; more && pass < 4; pass++) {
		more = false;
		for (int i = 0; i < cf->n; i++)
			if (pre[i].attnums && k[i]->prefetch &&
			    k[i]->prefetch(r, &cf->specs[i], &pre[i], pass))
				more = true;
		cons_cache_fill(r);
	}
	for (int i = 0; i < cf->n; i++) {
		resolved_free(&pre[i]);
		free(names[i]);
	}
	free(pre);
	free(names);
	return cons_cache_stopped(r) ? ST_SIGNAL : ST_OK;
}

/* 1. Every kind, table, column and where of the file, before anything else. */
static enum status resolve_all(struct cons_run *r, const struct cons_kind **k)
{
	const struct cfile *cf = r->cf;
	enum status st = ST_OK;

	for (int i = 0; i < cf->n; i++) {
		k[i] = kind_of(r, &cf->specs[i]);
		if (!k[i])
			return ST_INTERNAL;
	}
	st = prefetch_all(r, k);
	for (int i = 0; i < cf->n && st == ST_OK; i++) {
		const struct cspec *s = &cf->specs[i];
		st = resolve_table(r, s, &r->res[i]);
		if (st == ST_OK && !r->res[i].absent)
			st = resolve_columns(r, s, &r->res[i]);
		if (st == ST_OK && !r->res[i].absent)
			st = check_shape(r, s, &r->res[i]);
		if (st == ST_OK && s->where && !r->res[i].absent)
			st = normalise_where(r, s, &r->res[i]);
		name_spec(r, s, st);
	}
	return st;
}

/* CONS_VERIFY: every spec, each difference counted as a change.  Returns the first drift. */
static enum status verify_all(struct cons_run *r, const struct cons_kind **k)
{
	enum status worst = ST_OK;

	for (int i = 0; i < r->cf->n; i++) {
		enum status st = verify_spec(r, k[i], &r->cf->specs[i], &r->res[i], true);
		if (st == ST_DRIFT)
			r->changes++;
		else if (st != ST_OK)
			return st;
		if (worst == ST_OK)
			worst = st;
	}
	return worst;
}

/* 2. Drift and pre-flight for every spec, before any DDL; up[i]: spec i needs nothing. */
static enum status check_all(struct cons_run *r, const struct cons_kind **k, bool *up)
{
	enum status worst = ST_OK;

	for (int i = 0; i < r->cf->n; i++) {
		bool pf = false;
		enum status st;

		r->uptodate = false;
		st = check_spec(r, k[i], &r->cf->specs[i], &r->res[i], &pf);
		up[i] = st == ST_OK && r->uptodate;
		if (st != ST_OK && st != ST_DRIFT)
			return st;
		if (worst == ST_OK)
			worst = st != ST_OK ? st : pf ? ST_PREFLIGHT : ST_OK;
		if (st == ST_DRIFT && (r->mode == CONS_APPLY || r->mode == CONS_CHECK))
			break;
	}
	cons_cache_drop(r); /* converge reads the catalog as it is then */
	if (worst != ST_OK && r->mode == CONS_APPLY)
		log_at(LOG_INFO, r->cf->path, 0, 0, "nothing changed: %s",
		       worst == ST_DRIFT
			       ? "resolve the drift first"
			       : "every pre-flight of the file must pass before any DDL runs");
	return worst;
}

/*
 * 3. Converge, in order; 4. every declared constraint must now be present
 * and valid.  A spec check found up to date (up[i]) is not read again while
 * no DDL has run since, and when none ran at all the catalog is as check
 * read it: a no-op start reads it once.
 */
static enum status apply_all(struct cons_run *r, const struct cons_kind **k, const bool *up)
{
	const struct cfile *cf = r->cf;
	enum status st = ST_OK;

	for (int i = 0; i < cf->n && st == ST_OK; i++) {
		const struct cspec *s = &cf->specs[i];
		if (!up[i] || r->changes > 0)
			st = converge_spec(r, k[i], s, &r->res[i]);
		else
			log_at(LOG_DEBUG, cf->path, s->line, 0, "%s \"%s\" on %s: up to date",
			       cspec_kind_word(s->kind), s->name, r->res[i].shown);
	}
	for (int i = 0; i < cf->n && st == ST_OK && r->changes > 0; i++) {
		st = verify_spec(r, k[i], &cf->specs[i], &r->res[i], false);
		if (st == ST_DRIFT)
			log_hint(
				"It was converged just now; something else changed it concurrently.");
	}
	return st;
}

enum status constraints_converge(const struct cfile *cf, const struct phase *ph, PGconn *conn,
				 PGconn *watch, enum cons_mode mode, bool later_ok, int *changes)
{
	struct cons_run r = {
		.cf = cf, .ph = ph, .conn = conn, .watch = watch, .mode = mode, .later_ok = later_ok
	};
	const struct cons_kind **k = xcalloc((size_t)cf->n + 1, sizeof(*k));
	bool *up = xcalloc((size_t)cf->n + 1, sizeof(*up));
	enum status st;

	r.res = xcalloc((size_t)cf->n + 1, sizeof(*r.res));
	/*
	 * plan and verify read in one read-only transaction, rolled back: a
	 * where (the file's only text sent as SQL, one statement each) can
	 * neither end it nor write in it.
	 */
	bool autocommit = mode == CONS_APPLY || mode == CONS_CHECK; /* reads ahead in pipelines */

	st = autocommit ? ST_OK : db_exec(conn, "BEGIN READ ONLY", NULL);
	/* a check gives up at once behind another session's lock: the converge under the lock waits */
	if (st == ST_OK && mode == CONS_CHECK)
		st = db_exec(conn, "SET lock_timeout = 200", NULL);
	if (st == ST_OK)
		st = resolve_all(&r, k);
	if (st == ST_OK && mode == CONS_VERIFY)
		st = verify_all(&r, k);
	else if (st == ST_OK) {
		st = check_all(&r, k, up);
		if (st == ST_OK && mode == CONS_APPLY)
			st = apply_all(&r, k, up);
		for (int i = 0; st == ST_OK && mode == CONS_CHECK && i < cf->n; i++)
			if (!up[i])
				st = ST_DRIFT; /* something to do */
			else
				log_at(LOG_DEBUG, cf->path, cf->specs[i].line, 0,
				       "%s \"%s\" on %s: up to date",
				       cspec_kind_word(cf->specs[i].kind), cf->specs[i].name,
				       r.res[i].shown);
	}
	if (!autocommit)
		ddl_rollback(conn);
	if (mode == CONS_CHECK && PQstatus(conn) == CONNECTION_OK)
		PQclear(PQexec(conn, "RESET lock_timeout"));
	if (changes)
		*changes = r.changes;
	for (int i = 0; i < cf->n; i++)
		resolved_free(&r.res[i]);
	free(r.res);
	cons_cache_drop(&r);
	free(r.failed_sql);
	free(up);
	free(k);
	return st;
}

enum status constraints_check_plans(const struct mplan *plans, int n, int i)
{
	const struct cfile **files;
	int total = 0, k = 0, mine = 0;
	enum status st;

	for (int j = 0; j < n; j++)
		total += plans[j].n;
	files = xcalloc((size_t)total + 1, sizeof(*files));
	for (int pass = 0; pass < 2; pass++) {
		for (int j = 0; j < n; j++) {
			if ((pass == 0) != (j == i))
				continue;
			for (int f = 0; f < plans[j].n; f++)
				if (plans[j].files[f].cons)
					files[k++] = plans[j].files[f].cons;
		}
		if (pass == 0)
			mine = k;
	}
	st = mine ? constraints_check_replaces(files, k, mine) : ST_OK;
	free(files);
	return st;
}
