/*
 * cons_not_null.c — the not_null kind of constraint spec (cons_kind.h):
 * CHECK (c IS NOT NULL) NOT VALID → VALIDATE → SET NOT NULL → DROP the
 * CHECK, one transaction per step, each step guarded by what the catalog
 * says, after a pre-flight NULL count.  The CHECK is named like the spec, so
 * an interrupted run goes on from the step it reached.
 */
#include <stdlib.h>
#include <string.h>

#include "cons_kind.h"
#include "log.h"
#include "util.h"

/* The state of a not_null: the column's attnotnull and the helper CHECK named like the spec. */
struct nstate {
	bool notnull;
	bool check; /* a constraint with the spec's name exists */
	bool ours;  /* it is CHECK (col IS NOT NULL) */
	bool validated;
	char *def; /* its definition */
};

/* The column $3 of table $1 (oid) and the constraint named $2: struct nstate. */
static const char sql_state[] =
	"SELECT a.attnotnull, con.oid IS NOT NULL, coalesce(con.contype = 'c' AND"
	"   pg_catalog.regexp_replace(pg_catalog.pg_get_constraintdef(con.oid), ' NOT VALID$', '') ="
	"   pg_catalog.format('CHECK ((%s IS NOT NULL))', pg_catalog.quote_ident($3)), false),"
	" coalesce(con.convalidated, false), coalesce(pg_catalog.pg_get_constraintdef(con.oid), '')"
	" FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_constraint con"
	"   ON con.conrelid = a.attrelid AND con.conname = $2"
	" WHERE a.attrelid = $1::oid AND a.attname = $3";

static enum status load_state(struct cons_run *r, const struct cspec *s,
			      const struct cons_resolved *rv, struct nstate *ns)
{
	const char *params[3] = { rv->relid, s->name, s->columns.v[0] };
	PGresult *res;
	enum status st;

	memset(ns, 0, sizeof(*ns));
	res = cons_query(r, sql_state, 3, params, &st);
	if (!res)
		return st;
	if (PQntuples(res) != 1) {
		PQclear(res);
		log_at(LOG_ERROR, r->cf->path, s->columns_line, 0,
		       "column \"%s\" of table %s does not exist", s->columns.v[0], rv->shown);
		return ST_USAGE;
	}
	ns->notnull = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	ns->check = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	ns->ours = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	ns->validated = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	ns->def = xstrdup(PQgetvalue(res, 0, 4));
	PQclear(res);
	return ST_OK;
}

/* The name is used by another constraint: the error line (the rest is the caller's). */
static void log_taken(const struct cons_run *r, const struct cspec *s,
		      const struct cons_resolved *rv)
{
	log_at(LOG_ERROR, r->cf->path, s->line, 0,
	       "not_null \"%s\" on %s: a constraint with that name exists with another definition",
	       s->name, rv->shown);
}

/*
 * Log the first rows whose column is NULL, by primary key when there is one,
 * and how to see them all (unless the primary key could not be read).
 */
static enum status log_null_rows(struct cons_run *r, const struct cspec *s,
				 const struct cons_resolved *rv)
{
	const char *params[1] = { rv->relid };
	enum status st;
	PGresult *res = db_query(
		r->conn,
		"SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord), count(*)"
		" FROM pg_catalog.pg_index i CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)"
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
		" WHERE i.indrelid = $1::oid AND i.indisprimary",
		1, params, &st);
	char *pk, *sql, *qcol;
	int npk;

	if (!res)
		return st;
	pk = xstrdup(PQgetisnull(res, 0, 0) ? "ctid" : PQgetvalue(res, 0, 0));
	npk = PQgetisnull(res, 0, 0) ? 1 : atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	sql = cspec_sql_null_rows(s, rv->qtable, pk, CONS_SHOW_KEYS);
	res = cons_spec_query(r, s, sql, 0, NULL, &st);
	for (int i = 0; res && i < PQntuples(res); i++) {
		char *k = cons_key_text(pk, npk, res, i);
		log_detail("%s", k);
		free(k);
	}
	PQclear(res);
	free(sql);
	free(pk);
	qcol = cspec_quote(s->columns.v[0]);
	log_hint(
		"See them all with: SELECT * FROM %s WHERE %s IS NULL; pgprelude never changes data: fill "
		"them in (a backfill), then start again.",
		rv->qtable, qcol);
	free(qcol);
	return st;
}

/* Count the NULLs of the column.  Returns ST_OK (*failed set when there are any, logged). */
static enum status preflight(struct cons_run *r, const struct cspec *s,
			     const struct cons_resolved *rv, bool *failed)
{
	enum status st;
	PGresult *res =
		cons_preflight_count(r, s, cspec_sql_count_nulls(s, rv->qtable), failed, &st);

	if (!res)
		return st;
	log_at(LOG_ERROR, r->cf->path, s->line, 0,
	       "pre-flight failed for not_null \"%s\" on %s: %s row%s %s NULL in \"%s\"", s->name,
	       rv->shown, PQgetvalue(res, 0, 0), strcmp(PQgetvalue(res, 0, 0), "1") ? "s" : "",
	       strcmp(PQgetvalue(res, 0, 0), "1") ? "have" : "has", s->columns.v[0]);
	PQclear(res);
	return log_null_rows(r, s, rv);
}

/*
 * The statements that converge s from state ns on qtable, in order, into
 * ddl: each step in a transaction of its own, but SET NOT NULL and the drop
 * of the CHECK in one (with the CHECK validated, SET NOT NULL needs no scan
 * of the table).  None when the column is NOT NULL and no CHECK is left.
 */
static void build_steps(const struct cspec *s, const char *qtable, const struct nstate *ns,
			struct cons_ddl *ddl)
{
	int t = 0;

	if (ns->notnull && !ns->check)
		return;
	if (!ns->notnull && !ns->check)
		cons_ddl_add(ddl, cspec_sql_not_null(s, qtable, CSPEC_NN_ADD_CHECK), t++);
	if (!ns->notnull && !ns->validated)
		cons_ddl_add(ddl, cspec_sql_not_null(s, qtable, CSPEC_NN_VALIDATE), t++);
	if (!ns->notnull)
		cons_ddl_add(ddl, cspec_sql_not_null(s, qtable, CSPEC_NN_SET), t);
	cons_ddl_add(ddl, cspec_sql_not_null(s, qtable, CSPEC_NN_DROP_CHECK), t);
}

static enum status check(struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
			 bool *pf_failed)
{
	bool plan = r->mode == CONS_PLAN;
	struct cons_ddl ddl = { .n = 0 };
	struct nstate ns;
	enum status st = load_state(r, s, rv, &ns);

	if (st != ST_OK)
		return st;
	if (ns.check && !ns.ours) {
		log_taken(r, s, rv);
		log_detail("The database has: %s.", ns.def);
		if (plan)
			cons_verdict_line(r, s, rv, CONS_DRIFT,
					  "the name is used by another constraint");
		st = ST_DRIFT;
	} else if (ns.notnull) {
		r->uptodate = !ns.check;
		if (plan) {
			build_steps(s, rv->qtable, &ns, &ddl);
			cons_plan_line(r, s, rv, &ddl, "%s",
				       ns.check ? "drop the helper CHECK left by an interrupted run"
						: "nothing to do");
		}
	} else {
		if (!ns.validated &&
		    r->mode != CONS_CHECK) /* a check only asks whether work is due */
			st = preflight(r, s, rv, pf_failed);
		if (plan && st == ST_OK) {
			build_steps(s, rv->qtable, &ns, &ddl);
			cons_preflight_line(r, s, rv, &ddl,
					    *pf_failed	   ? CONS_PF_FAILED
					    : ns.validated ? CONS_PF_NOT_NEEDED
							   : CONS_PF_PASSED,
					    "NULLs", "%s%sSET NOT NULL, drop the CHECK",
					    ns.check ? "" : "add CHECK NOT VALID, ",
					    ns.validated ? "" : "validate it, ");
		}
	}
	/* any step to take needs the owner's privileges */
	if (st == ST_OK && !(ns.check && !ns.ours) && !(ns.notnull && !ns.check) &&
	    !cons_check_owner(r, s, rv)) {
		if (plan)
			cons_verdict_line(r, s, rv, CONS_REFUSED,
					  "the role may not alter the table");
		*pf_failed = true;
	}
	free(ns.def);
	return st;
}

/* Converge one not_null, going on from the step the catalog shows it reached. */
static enum status converge(struct cons_run *r, const struct cspec *s,
			    const struct cons_resolved *rv)
{
	struct nstate ns = { 0 };
	struct cons_ddl steps = { .n = 0 };
	long start = clock_ms();
	enum status st = load_state(r, s, rv, &ns);

	if (st != ST_OK)
		goto out;
	if (ns.check && !ns.ours) {
		char *qcol = cspec_quote(s->columns.v[0]);
		log_taken(r, s, rv);
		log_detail(
			"The database has: %s; pgprelude uses that name for CHECK (%s IS NOT NULL).",
			ns.def, qcol);
		log_hint(
			"Rename the constraint in the database, or give the not_null another name.");
		free(qcol);
		st = ST_DRIFT;
		goto out;
	}
	if (ns.notnull && !ns.check) {
		log_at(LOG_DEBUG, r->cf->path, s->line, 0, "not_null \"%s\" on %s: up to date",
		       s->name, rv->shown);
		goto out;
	}
	build_steps(s, rv->qtable, &ns, &steps);
	for (int i = 0, j; st == ST_OK && i < steps.n; i = j) {
		for (j = i + 1; j < steps.n && steps.txn[j] == steps.txn[i]; j++)
			; /* the statements of one transaction */
		st = cons_run_steps(r, s, steps.sql + i, j - i, true);
		if (st == ST_OK)
			r->changes++;
	}
	if (st != ST_OK)
		goto out;
	if (ns.notnull) {
		log_at(LOG_INFO, r->cf->path, s->line, 0,
		       "not_null \"%s\" on %s: dropped the helper CHECK left by an interrupted run",
		       s->name, rv->shown);
	} else {
		char *qcol = cspec_quote(s->columns.v[0]);
		log_at(LOG_INFO, r->cf->path, s->line, 0,
		       "not_null \"%s\" on %s: %s set NOT NULL (%ld ms)", s->name, rv->shown, qcol,
		       clock_ms() - start);
		free(qcol);
	}
out:
	free(ns.def);
	cons_ddl_free(&steps);
	return st;
}

static enum status verify(struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
			  bool report)
{
	struct nstate ns;
	enum status st = load_state(r, s, rv, &ns);

	if (st != ST_OK)
		return st;
	if (!ns.notnull) {
		log_at(LOG_ERROR, r->cf->path, s->line, 0,
		       "not_null \"%s\" on %s: column \"%s\" is nullable", s->name, rv->shown,
		       s->columns.v[0]);
		st = ST_DRIFT;
	} else if (report) {
		cons_out_line(r, s, rv, "ok");
	}
	free(ns.def);
	return st;
}

/*
 * After not_null s failed for good: whether its helper CHECK stays on the
 * table (a NULL written after the pre-flight makes VALIDATE fail), where it
 * rejects every new NULL, and what the next run does with it.
 */
static void report_leftover(struct cons_run *r, const struct cspec *s,
			    const struct cons_resolved *rv)
{
	struct nstate ns;
	char *qcol, *qname;

	if (PQstatus(r->conn) != CONNECTION_OK || load_state(r, s, rv, &ns) != ST_OK)
		return;
	if (ns.check && ns.ours && !ns.notnull) {
		qcol = cspec_quote(s->columns.v[0]);
		qname = cspec_quote(s->name);
		log_at(LOG_WARNING, r->cf->path, s->line, 0,
		       "not_null \"%s\" on %s: its helper CHECK (%s IS NOT NULL)%s stays on the table: "
		       "it rejects every new NULL in %s",
		       s->name, rv->shown, qcol, ns.validated ? "" : " NOT VALID", qcol);
		if (ns.validated)
			log_hint("The next run sets the column NOT NULL and drops the CHECK.");
		else
			log_hint(
				"The next run counts the NULLs again (its pre-flight stops while there are any), "
				"then validates the CHECK; to let NULLs in meanwhile: ALTER TABLE %s DROP "
				"CONSTRAINT %s",
				rv->qtable, qname);
		free(qcol);
		free(qname);
	}
	free(ns.def);
}

/* The plan of s on a table that does not exist yet: every step. */
static void plan_absent(const struct cspec *s, const struct cons_resolved *rv, struct cons_ddl *ddl)
{
	const struct nstate none = { .notnull = false };

	build_steps(s, rv->qtable, &none, ddl);
}

/* What check reads for s, queued ahead: the column's state and the helper CHECK's. */
static bool prefetch(struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
		     int pass)
{
	const char *params[3] = { rv->relid, s->name, s->columns.v[0] };

	if (pass == 0)
		cons_queue(r, sql_state, "oid,name,text", 3, params);
	return false;
}

const struct cons_kind cons_not_null = {
	.kind = CSPEC_NOT_NULL,
	.check = check,
	.converge = converge,
	.verify = verify,
	.after_failure = report_leftover,
	.plan_absent = plan_absent,
	.prefetch = prefetch,
};
