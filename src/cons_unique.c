/*
 * cons_unique.c — the unique kind of constraint spec (cons_kind.h): the
 * table's indexes compared with the spec, the duplicates pre-flight, and
 * the DDL that creates, adopts, rebuilds or replaces a unique.  What to do
 * is decided by cspec_decide_unique (pure).
 */
#include <stdlib.h>
#include <string.h>

#include "cons_kind.h"
#include "log.h"
#include "util.h"

/*
 * Every index of the table with its definition compared to the spec's but
 * for the predicate (the last column, compared by its normal form); params:
 * relid, attnums, nnd.  A deferrable unique (checked at commit only) is
 * another definition: ON CONFLICT and foreign keys refuse it.
 */
static const char sql_indexes[] =
	"SELECT ic.relname, coalesce(con.conname, ''), coalesce(con.contype::text, ''),"
	" i.indisvalid AND i.indisready,"
	" i.indisunique AND i.indkey::text = $2 AND i.indnkeyatts = i.indnatts"
	" AND i.indexprs IS NULL AND am.amname = 'btree'"
	" AND i.indimmediate AND NOT coalesce(con.condeferrable, false)"
	" AND %s = $3::boolean"
	" AND 0 = ALL (i.indoption::int2[])" /* ASC NULLS LAST, as a constraint's */
	/*
	 * Every key as a plain column would index it: the column's own
	 * collation, and the operator class the server picks by default for
	 * its type (for its base type, under a domain): the default one of
	 * that exact type if there is one, else a default one the type is
	 * binary-coercible to (text_ops for varchar).
	 */
	" AND NOT EXISTS (SELECT FROM unnest(i.indkey::int2[], i.indclass::oid[],"
	"     i.indcollation::oid[]) AS k(attnum, opc, coll)"
	"   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
	"   JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
	"   JOIN pg_catalog.pg_opclass o ON o.oid = k.opc"
	"   WHERE k.coll <> a.attcollation OR NOT o.opcdefault"
	"   OR EXISTS (SELECT FROM pg_catalog.pg_opclass d WHERE d.opcmethod = o.opcmethod"
	"     AND d.opcdefault AND d.oid <> o.oid AND d.opcintype ="
	"     CASE t.typtype WHEN 'd' THEN t.typbasetype ELSE t.oid END)),"
	" pg_catalog.pg_get_indexdef(i.indexrelid), pg_catalog.pg_get_expr(i.indpred, i.indrelid),"
	/* the foreign keys that depend on it (dropping it would fail) */
	" (SELECT string_agg(pg_catalog.quote_ident(f.conname) || ' on ' || f.conrelid::regclass::text,"
	"   ', ' ORDER BY f.conname) FROM pg_catalog.pg_constraint f"
	"   WHERE f.contype = 'f' AND f.conindid = i.indexrelid)"
	" FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
	" JOIN pg_catalog.pg_am am ON am.oid = ic.relam"
	" LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid"
	"   AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')"
	" WHERE i.indrelid = $1::oid ORDER BY ic.relname";

/* The name in the table's schema: another relation, or a constraint of another kind. */
static const char sql_name_taken[] =
	"SELECT (SELECT CASE c.relkind WHEN 'i' THEN 'an index of table ' ||"
	"   (SELECT i.indrelid::regclass::text FROM pg_catalog.pg_index i WHERE i.indexrelid = c.oid)"
	"   ELSE 'the relation ' || c.oid::regclass::text END"
	"   FROM pg_catalog.pg_class c WHERE c.relnamespace = t.relnamespace AND c.relname = $2"
	"   AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indexrelid = c.oid"
	"     AND i.indrelid = t.oid)),"
	" (SELECT 'a constraint of this table: ' || pg_catalog.pg_get_constraintdef(con.oid)"
	"   FROM pg_catalog.pg_constraint con WHERE con.conrelid = t.oid AND con.conname = $2"
	"   AND con.contype NOT IN ('p', 'u', 'x'))"
	" FROM pg_catalog.pg_class t WHERE t.oid = $1::oid";

/* Whether s's name is taken by something else: l->taken says what. */
static enum status load_taken(struct cons_run *r, const struct cspec *s,
			      const struct cons_resolved *rv, struct cspec_indexes *l)
{
	const char *params[2] = { rv->relid, s->name };
	enum status st;
	PGresult *res = cons_query(r, sql_name_taken, 2, params, &st);

	if (!res)
		return st;
	if (PQntuples(res) == 1) {
		int col = !PQgetisnull(res, 0, 0) ? 0 : !PQgetisnull(res, 0, 1) ? 1 : -1;
		if (col >= 0)
			l->taken = xstrdup(PQgetvalue(res, 0, col));
	}
	PQclear(res);
	return ST_OK;
}

/*
 * Whether an index with the predicate indpred (NULL: none) has s's: the
 * same normal form, a predicate the server reduces to true counting as none.
 */
static enum status same_predicate(struct cons_run *r, const struct cspec *s,
				  const struct cons_resolved *rv, const char *indpred, bool *same)
{
	PGresult *err = NULL;
	char *form = NULL, *always = NULL;

	/* the same text reads the same on the same table: no need to ask */
	if ((!indpred && !rv->pred) ||
	    (indpred && rv->pred && s->where && strcmp(indpred, s->where) == 0)) {
		*same = true;
		return ST_OK;
	}
	form = cons_normal_form(r, rv, indpred ? indpred : "true", &err);
	if (form && !rv->pred)
		always = cons_normal_form(r, rv, "true", &err);
	if (!form || (!rv->pred && !always)) {
		if (err)
			db_report_error(err, NULL);
		log_detail("while comparing the predicate of an index on %s with [unique %s]",
			   rv->shown, s->name);
		PQclear(err);
		free(form);
		return db_failure_status(r->conn);
	}
	*same = strcmp(form, rv->pred ? rv->pred : always) == 0;
	free(form);
	free(always);
	return ST_OK;
}

/* The query of sql_indexes for s on rv's table (malloc'd), and its parameters into params[3]. */
static char *indexes_query(const struct cons_run *r, const struct cspec *s,
			   const struct cons_resolved *rv, const char **params)
{
	params[0] = rv->relid;
	params[1] = rv->attnums;
	params[2] = s->nulls_not_distinct ? "t" : "f";
	return xasprintf(sql_indexes,
			 PQserverVersion(r->conn) >= 150000 ? "i.indnullsnotdistinct" : "false");
}

/* Every index of the table, compared with s; and whether s's name is taken by something else. */
static enum status load_indexes(struct cons_run *r, const struct cspec *s,
				const struct cons_resolved *rv, struct cspec_indexes *l)
{
	const char *params[3];
	char *sql = indexes_query(r, s, rv, params);
	enum status st;
	PGresult *res;

	memset(l, 0, sizeof(*l));
	res = cons_spec_query(r, s, sql, 3, params, &st);
	free(sql);
	if (!res)
		return st;
	l->v = xcalloc((size_t)PQntuples(res) + 1, sizeof(*l->v));
	for (int i = 0; i < PQntuples(res); i++) {
		struct cspec_index *x = &l->v[l->n++];
		x->name = xstrdup(PQgetvalue(res, i, 0));
		x->conname = xstrdup(PQgetvalue(res, i, 1));
		x->contype = PQgetvalue(res, i, 2)[0];
		x->valid = strcmp(PQgetvalue(res, i, 3), "t") == 0;
		x->matches = strcmp(PQgetvalue(res, i, 4), "t") == 0;
		x->def = xstrdup(PQgetvalue(res, i, 5));
		x->fks = PQgetisnull(res, i, 7) ? NULL : xstrdup(PQgetvalue(res, i, 7));
		if (x->matches)
			st = same_predicate(r, s, rv,
					    PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6),
					    &x->matches);
		if (st != ST_OK)
			break;
	}
	PQclear(res);
	if (st == ST_OK)
		st = load_taken(r, s, rv, l);
	if (st != ST_OK)
		cspec_indexes_free(l);
	return st;
}

/* Load the indexes and decide.  On failure nothing is left to free. */
static enum status load_and_decide(struct cons_run *r, const struct cspec *s,
				   const struct cons_resolved *rv, struct cspec_indexes *l,
				   struct cspec_udecision *d)
{
	enum status st = load_indexes(r, s, rv, l);

	if (st == ST_OK)
		cspec_decide_unique(s, l, d);
	return st;
}

/*
 * Count the duplicate groups under exactly the constraint's semantics.
 * Returns ST_OK (*failed set when there are any, after logging them).
 */
static enum status preflight(struct cons_run *r, const struct cspec *s,
			     const struct cons_resolved *rv, bool *failed)
{
	enum status st;
	PGresult *res = cons_preflight_count(r, s, cspec_sql_duplicates(s, rv->qfrom, true, 0),
					     failed, &st);
	char *list, *names, *all;

	if (!res)
		return st;
	names = cspec_plain_list(&s->columns);
	all = cspec_sql_duplicates(s, rv->qfrom, false, 0);
	list = cspec_sql_duplicates(s, rv->qfrom, false, CONS_SHOW_KEYS);
	log_at(LOG_ERROR, r->cf->path, s->line, 0,
	       "pre-flight failed for unique \"%s\" on %s (%s): %s duplicate group%s, %s rows",
	       s->name, rv->shown, names, PQgetvalue(res, 0, 0),
	       strcmp(PQgetvalue(res, 0, 0), "1") ? "s" : "", PQgetvalue(res, 0, 1));
	PQclear(res);
	res = cons_spec_query(r, s, list, 0, NULL, &st);
	if (res) {
		for (int i = 0; i < PQntuples(res); i++) {
			char *k = cons_key_text(names, s->columns.n, res, i);
			log_detail("%s: %s rows", k, PQgetvalue(res, i, s->columns.n));
			free(k);
		}
		log_hint(
			"See them all with: %s; pgprelude never deletes or changes data: resolve the duplicates, "
			"then start again.",
			all);
	}
	PQclear(res);
	free(names);
	free(all);
	free(list);
	return st;
}

static void log_drift(const struct cons_run *r, const struct cspec *s,
		      const struct cons_resolved *rv, const struct cspec_indexes *l,
		      const struct cspec_udecision *d)
{
	char *want = cspec_describe(s);

	if (d->drift >= 0) {
		log_at(LOG_ERROR, r->cf->path, s->line, 0,
		       "unique \"%s\" on %s exists with another definition", s->name, rv->shown);
		log_detail("The database has: %s%s", l->v[d->drift].def,
			   l->v[d->drift].contype ? " (a constraint)" : "");
	} else {
		log_at(LOG_ERROR, r->cf->path, s->line, 0, "the name \"%s\" is already taken by %s",
		       s->name, l->taken);
	}
	log_detail("The file declares: %s on %s", want, rv->shown);
	log_hint(
		"pgprelude does not change an existing constraint: drop or rename the one in the database, "
		"or change the file to match it.");
	free(want);
}

/* The statement that drops index x (its constraint, when one uses it). */
static char *sql_drop(const struct cons_resolved *rv, const struct cspec_index *x,
		      bool concurrently)
{
	return cspec_sql_drop(rv->qtable, rv->qschema, x->contype ? x->conname : x->name,
			      x->contype != 0, concurrently);
}

/* The statements that create s on qtable, into steps (at most 2); returns how many. */
static int create_steps(const struct cspec *s, const char *qtable, char **steps)
{
	int n = 0;

	steps[n++] = cspec_sql_create(s, qtable, s->concurrently);
	if (s->concurrently && !s->where)
		steps[n++] = cspec_sql_attach(s, qtable);
	return n;
}

/* Statement sql (taken) of s into ddl: converge runs them all in one transaction, or none. */
static void plan_sql(struct cons_ddl *ddl, const struct cspec *s, char *sql)
{
	cons_ddl_add(ddl, sql, s->concurrently ? CONS_DDL_ALONE : 0);
}

/* The plan's statements that create s on qtable, into ddl. */
static void plan_create(struct cons_ddl *ddl, const struct cspec *s, const char *qtable)
{
	char *steps[2];
	int n = create_steps(s, qtable, steps);

	for (int i = 0; i < n; i++)
		plan_sql(ddl, s, steps[i]);
}

/* The plan's lines for the decision d (ST_OK so far); runs the pre-flight of a create. */
static enum status plan_or_preflight(struct cons_run *r, const struct cspec *s,
				     const struct cons_resolved *rv, const struct cspec_indexes *l,
				     const struct cspec_udecision *d, bool *pf_failed)
{
	bool plan = r->mode == CONS_PLAN;
	struct cons_ddl ddl = { .n = 0 };
	enum status st = ST_OK;
	char *want;

	switch (d->act) {
	case CSPEC_U_DRIFT:
		break;
	case CSPEC_U_NOTHING:
		if (plan)
			cons_out_line(r, s, rv, "nothing to do");
		break;
	case CSPEC_U_ADOPT:
		if (plan)
			cons_out_line(r, s, rv, "adopt the existing %s \"%s\" (same definition)",
				      l->v[d->keep].contype ? "constraint" : "unique index",
				      l->v[d->keep].name);
		break;
	case CSPEC_U_ATTACH:
		if (!plan)
			break;
		plan_sql(&ddl, s, cspec_sql_attach(s, rv->qtable));
		cons_plan_line(r, s, rv, &ddl,
			       "add the constraint using its existing unique index");
		break;
	case CSPEC_U_CREATE:
		for (int i = 0; plan && i < d->n_invalid; i++) {
			const struct cspec_index *x = &l->v[d->invalid[i]];
			plan_sql(&ddl, s, sql_drop(rv, x, s->concurrently));
			cons_plan_line(r, s, rv, &ddl,
				       "drop the INVALID index \"%s\" to rebuild it", x->name);
		}
		if (r->mode == CONS_CHECK) /* a check only asks whether work is due */
			break;
		st = preflight(r, s, rv, pf_failed);
		if (!plan || st != ST_OK)
			break;
		want = cspec_describe(s);
		plan_create(&ddl, s, rv->qtable);
		cons_preflight_line(r, s, rv, &ddl, *pf_failed ? CONS_PF_FAILED : CONS_PF_PASSED,
				    "duplicates", "%s %s%s", d->n_invalid ? "rebuild" : "create",
				    want, s->concurrently ? " concurrently" : "");
		free(want);
		break;
	}
	return st;
}

/*
 * A replaces that names no index or constraint of the table: already
 * dropped (info) when the declared one is there, else a warning: a typo,
 * or another table.
 */
static void log_replaces_unmatched(const struct cons_run *r, const struct cspec *s,
				   const struct cons_resolved *rv, const struct cspec_indexes *l,
				   const struct cspec_udecision *d)
{
	if (!s->replaces)
		return;
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, s->replaces) == 0 ||
		    strcmp(l->v[i].conname, s->replaces) == 0)
			return;
	if (d->act == CSPEC_U_NOTHING || d->act == CSPEC_U_ADOPT)
		log_at(LOG_INFO, r->cf->path, s->replaces_line, 0,
		       "unique \"%s\" on %s: \"%s\" (replaced) is already gone", s->name, rv->shown,
		       s->replaces);
	else
		log_at(LOG_WARNING, r->cf->path, s->replaces_line, 0,
		       "unique \"%s\" on %s: \"%s\" (replaces) names no index or constraint of %s",
		       s->name, rv->shown, s->replaces, rv->shown);
}

/*
 * What the state of the database keeps decision d from running, though
 * the file is right: foreign keys that depend on the index to replace, a
 * role that may not alter the table.  Logs each; sets *pf_failed.
 */
static void check_state(struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
			const struct cspec_indexes *l, const struct cspec_udecision *d,
			bool *pf_failed)
{
	bool plan = r->mode == CONS_PLAN;
	bool ddl = d->act == CSPEC_U_ATTACH || d->act == CSPEC_U_CREATE || d->replaced >= 0 ||
		   d->n_invalid > 0;

	if (d->replaced >= 0 && l->v[d->replaced].fks) {
		const struct cspec_index *x = &l->v[d->replaced];
		log_at(LOG_ERROR, r->cf->path, s->replaces_line, 0,
		       "[unique %s]: \"%s\" (replaces) cannot be dropped: foreign keys depend on it",
		       s->name, x->contype ? x->conname : x->name);
		log_detail("Depending on it: %s.", x->fks);
		log_hint(
			"Make those foreign keys reference the new unique first (drop and add them again "
			"once it exists), or remove the \"replaces\".");
		if (plan)
			cons_verdict_line(r, s, rv, CONS_REFUSED, "foreign keys depend on \"%s\"",
					  x->name);
		*pf_failed = true;
	}
	if (ddl && !cons_check_owner(r, s, rv)) {
		if (plan)
			cons_verdict_line(r, s, rv, CONS_REFUSED,
					  "the role may not alter the table");
		*pf_failed = true;
	}
}

static enum status check(struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
			 bool *pf_failed)
{
	bool plan = r->mode == CONS_PLAN;
	struct cspec_indexes l;
	struct cspec_udecision d;
	enum status st = load_and_decide(r, s, rv, &l, &d);

	if (st != ST_OK)
		return st;
	if (d.act == CSPEC_U_DRIFT) {
		log_drift(r, s, rv, &l, &d);
		if (plan)
			cons_verdict_line(r, s, rv, CONS_DRIFT, "exists with another definition");
		st = ST_DRIFT;
	} else {
		log_replaces_unmatched(r, s, rv, &l, &d);
		st = plan_or_preflight(r, s, rv, &l, &d, pf_failed);
		if (st == ST_OK)
			check_state(r, s, rv, &l, &d, pf_failed);
		r->uptodate = d.act == CSPEC_U_NOTHING && d.replaced < 0 && d.n_invalid == 0;
	}
	if (plan && st == ST_OK && d.replaced >= 0) {
		struct cons_ddl ddl = { .n = 0 };
		plan_sql(&ddl, s, sql_drop(rv, &l.v[d.replaced], s->concurrently));
		cons_plan_line(r, s, rv, &ddl, "then drop \"%s\" (replaced)", l.v[d.replaced].name);
	}
	cspec_indexes_free(&l);
	return st;
}

/* The DDL for decision d, in order, into steps (at most 12); returns how many. */
static int build_steps(const struct cons_run *r, const struct cspec *s,
		       const struct cons_resolved *rv, const struct cspec_indexes *l,
		       const struct cspec_udecision *d, char **steps)
{
	bool conc = s->concurrently;
	int n = 0;

	for (int i = 0; i < d->n_invalid; i++) {
		const struct cspec_index *x = &l->v[d->invalid[i]];
		log_at(LOG_WARNING, r->cf->path, s->line, 0,
		       "dropping the INVALID index \"%s\" on %s (left by a failed concurrent build) to rebuild it",
		       x->name, rv->shown);
		steps[n++] = sql_drop(rv, x, conc);
	}
	switch (d->act) {
	case CSPEC_U_NOTHING:
		log_at(LOG_DEBUG, r->cf->path, s->line, 0, "unique \"%s\" on %s: up to date",
		       s->name, rv->shown);
		break;
	case CSPEC_U_ADOPT:
		log_at(LOG_INFO, r->cf->path, s->line, 0,
		       "unique \"%s\" on %s: adopted the existing %s \"%s\" (same definition); nothing created",
		       s->name, rv->shown, l->v[d->keep].contype ? "constraint" : "unique index",
		       l->v[d->keep].contype ? l->v[d->keep].conname : l->v[d->keep].name);
		break;
	case CSPEC_U_ATTACH:
		steps[n++] = cspec_sql_attach(s, rv->qtable);
		break;
	case CSPEC_U_CREATE:
		n += create_steps(s, rv->qtable, steps + n);
		break;
	case CSPEC_U_DRIFT:
		break;
	}
	if (d->replaced >= 0)
		steps[n++] = sql_drop(rv, &l->v[d->replaced], conc);
	return n;
}

/* What converge did, once its steps ran. */
static void log_done(const struct cons_run *r, const struct cspec *s,
		     const struct cons_resolved *rv, const struct cspec_indexes *l,
		     const struct cspec_udecision *d, long start)
{
	if (d->act == CSPEC_U_CREATE)
		log_at(LOG_INFO, r->cf->path, s->line, 0, "unique \"%s\" on %s: %s%s (%ld ms)",
		       s->name, rv->shown, d->n_invalid ? "rebuilt" : "created",
		       s->concurrently ? " concurrently" : "", clock_ms() - start);
	else if (d->act == CSPEC_U_ATTACH)
		log_at(LOG_INFO, r->cf->path, s->line, 0,
		       "unique \"%s\" on %s: added the constraint using its existing index",
		       s->name, rv->shown);
	if (d->replaced >= 0)
		log_at(LOG_INFO, r->cf->path, s->line, 0,
		       "unique \"%s\" on %s: dropped \"%s\" (replaced)", s->name, rv->shown,
		       l->v[d->replaced].name);
}

/* Converge one unique.  Its pre-flight already ran. */
static enum status converge(struct cons_run *r, const struct cspec *s,
			    const struct cons_resolved *rv)
{
	struct cspec_indexes l;
	struct cspec_udecision d;
	char *steps[CSPEC_MAX_INVALID + 4];
	int n;
	long start = clock_ms();
	enum status st = load_and_decide(r, s, rv, &l, &d);

	if (st != ST_OK)
		return st;
	if (d.act == CSPEC_U_DRIFT) {
		log_drift(r, s, rv, &l, &d);
		cspec_indexes_free(&l);
		return ST_DRIFT;
	}
	n = build_steps(r, s, rv, &l, &d, steps);
	if (n > 0)
		st = cons_run_steps(r, s, steps, n, !s->concurrently);
	if (st == ST_OK && n > 0) {
		r->changes++;
		log_done(r, s, rv, &l, &d, start);
	}
	for (int i = 0; i < n; i++)
		free(steps[i]);
	cspec_indexes_free(&l);
	return st;
}

/* What verify finds wrong with decision d, logged; ST_OK when nothing. */
static enum status verify_decision(const struct cons_run *r, const struct cspec *s,
				   const struct cons_resolved *rv, const struct cspec_indexes *l,
				   const struct cspec_udecision *d)
{
	const char *path = r->cf->path;

	switch (d->act) {
	case CSPEC_U_DRIFT:
		log_drift(r, s, rv, l, d);
		return ST_DRIFT;
	case CSPEC_U_CREATE:
		log_at(LOG_ERROR, path, s->line, 0, "unique \"%s\" on %s is missing%s", s->name,
		       rv->shown, d->n_invalid ? " (only an INVALID index is there)" : "");
		return ST_DRIFT;
	case CSPEC_U_ATTACH:
		log_at(LOG_ERROR, path, s->line, 0,
		       "unique \"%s\" on %s: the index is there but not the constraint", s->name,
		       rv->shown);
		return ST_DRIFT;
	case CSPEC_U_NOTHING:
	case CSPEC_U_ADOPT:
		break;
	}
	if (d->replaced >= 0) {
		log_at(LOG_ERROR, path, s->replaces_line, 0,
		       "unique \"%s\" on %s: \"%s\" (replaced) still exists", s->name, rv->shown,
		       l->v[d->replaced].name);
		return ST_DRIFT;
	}
	return ST_OK;
}

static enum status verify(struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
			  bool report)
{
	struct cspec_indexes l;
	struct cspec_udecision d;
	enum status st = load_and_decide(r, s, rv, &l, &d);

	if (st != ST_OK)
		return st;
	st = verify_decision(r, s, rv, &l, &d);
	if (st == ST_OK && report)
		cons_out_line(r, s, rv, d.act == CSPEC_U_ADOPT ? "ok (as \"%s\")" : "ok",
			      l.v[d.keep].name);
	cspec_indexes_free(&l);
	return st;
}

/*
 * After concurrent unique s failed for good: whether its build left an
 * INVALID index, which the next run drops and builds again.
 */
static void report_leftover(struct cons_run *r, const struct cspec *s,
			    const struct cons_resolved *rv)
{
	const char *params[2] = { rv->relid, s->name };
	PGresult *res;
	enum status st;

	if (!s->concurrently || PQstatus(r->conn) != CONNECTION_OK)
		return;
	res = db_query(r->conn,
		       "SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i"
		       " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
		       " WHERE i.indrelid = $1::oid AND c.relname = $2 AND NOT i.indisvalid",
		       2, params, &st);
	if (res && PQntuples(res) > 0) {
		log_at(LOG_WARNING, r->cf->path, s->line, 0,
		       "the failed concurrent build left the INVALID index \"%s\" on %s: %s",
		       s->name, rv->shown, PQgetvalue(res, 0, 0));
		log_hint("The next run drops it and builds it again.");
	}
	PQclear(res);
}

/* The plan of s on a table that does not exist yet: creating it. */
static void plan_absent(const struct cspec *s, const struct cons_resolved *rv, struct cons_ddl *ddl)
{
	plan_create(ddl, s, rv->qtable);
}

/*
 * What check reads for s, queued ahead: the indexes and the name (pass 0),
 * then the normal forms that compare the predicates of the indexes that
 * match but for them (pass 1).
 */
static bool prefetch(struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
		     int pass)
{
	const char *params[3];
	char *sql = indexes_query(r, s, rv, params);
	const char *taken[2] = { rv->relid, s->name };
	PGresult *res = NULL;

	if (pass == 0) {
		cons_queue(r, sql, "oid,text,boolean", 3, params);
		cons_queue(r, sql_name_taken, "oid,name", 2, taken);
	} else if (pass == 1) {
		res = cons_cached(r, sql, 3, params);
		for (int i = 0; res && i < PQntuples(res); i++) {
			char *form;
			if (strcmp(PQgetvalue(res, i, 4), "t") != 0 ||
			    (PQgetisnull(res, i, 6) && !s->where) ||
			    (!PQgetisnull(res, i, 6) && s->where &&
			     strcmp(PQgetvalue(res, i, 6), s->where) == 0))
				continue;
			form = cons_normal_form_sql(
				rv, PQgetisnull(res, i, 6) ? "true" : PQgetvalue(res, i, 6));
			cons_queue(r, form, NULL, 0, NULL);
			free(form);
			form = cons_normal_form_sql(rv, "true");
			cons_queue(r, form, NULL, 0, NULL);
			free(form);
		}
	}
	PQclear(res);
	free(sql);
	return pass == 0;
}

const struct cons_kind cons_unique = {
	.kind = CSPEC_UNIQUE,
	.check = check,
	.converge = converge,
	.verify = verify,
	.after_failure = report_leftover,
	.plan_absent = plan_absent,
	.prefetch = prefetch,
};
