/*
 * report_ddl.c — the DDL that converging a constraint spec runs, read off
 * its plan line, for plan --sql and plan --json (see report_int.h).
 */
#include "report_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cons_kind.h"
#include "db.h"
#include "util.h"

/* The table of s as the file names it, quoted: for a table that does not exist yet. */
static char *written_qtable(const struct cspec *s)
{
	struct sbuf b = { 0 };
	char *q;

	if (s->schema) {
		q = cspec_quote(s->schema);
		sbuf_printf(&b, "%s.", q);
		free(q);
	}
	q = cspec_quote(s->table);
	sbuf_puts(&b, q);
	free(q);
	return sbuf_take(&b);
}

/* The name in text between prefix and suffix ("drop \"x\" (replaced)"), malloc'd, or NULL. */
static char *name_between(const char *text, const char *prefix, const char *suffix)
{
	size_t n = strlen(text), lp = strlen(prefix), ls = strlen(suffix);

	if (n < lp + ls || strncmp(text, prefix, lp) != 0 || strcmp(text + n - ls, suffix) != 0)
		return NULL;
	return xstrndup(text + lp, n - lp - ls);
}

/* DROP of the index name that unique s replaces: its constraint when one uses it. */
static char *replaced_drop(PGconn *conn, const struct cons_resolved *rv, const struct cspec *s,
			   const char *name)
{
	const char *params[2] = { rv->relid, name };
	enum status st;
	PGresult *res = db_query(conn,
				 "SELECT c.conname FROM pg_catalog.pg_constraint c"
				 " JOIN pg_catalog.pg_class i ON i.oid = c.conindid"
				 " WHERE c.conrelid = $1::oid AND i.relname = $2"
				 " AND c.contype IN ('p', 'u', 'x')",
				 2, params, &st);
	char *sql;

	if (res && PQntuples(res) > 0)
		sql = cspec_sql_drop(rv->qtable, rv->qschema, PQgetvalue(res, 0, 0), true,
				     s->concurrently);
	else
		sql = cspec_sql_drop(rv->qtable, rv->qschema, name, false, s->concurrently);
	PQclear(res);
	return sql;
}

void report_ddl_add(char **ddl, int *txn, int *n, char *sql, int t)
{
	if (*n >= DDL_MAX) {
		free(sql);
		return;
	}
	ddl[*n] = sql;
	txn[*n] = t;
	(*n)++;
}

/*
 * The DDL that converging s runs for the plan line text (its pre-flight
 * left out), in order, into ddl with the transaction of each (a unique's in
 * one, a not_null's steps each in their own); for a table that does not
 * exist yet, what creating s on it would run.  Returns how many.
 */
int report_line_ddl(PGconn *conn, const struct cspec *s, const struct cons_resolved *rv,
		    const char *text, char **ddl, int *txn)
{
	char *qtable = rv->absent || !rv->qtable ? written_qtable(s) : xstrdup(rv->qtable);
	char *name = NULL;
	int n = 0;

	if (s->kind == CSPEC_UNIQUE) {
		bool conc = s->concurrently;
		if (rv->absent || strncmp(text, "create ", 7) == 0 ||
		    strncmp(text, "rebuild ", 8) == 0) {
			report_ddl_add(ddl, txn, &n, cspec_sql_create(s, qtable, conc), 0);
			if (conc && !s->where)
				report_ddl_add(ddl, txn, &n, cspec_sql_attach(s, qtable), 0);
		} else if (strncmp(text, "add the constraint using", 24) == 0) {
			report_ddl_add(ddl, txn, &n, cspec_sql_attach(s, qtable), 0);
		} else if ((name = name_between(text, "drop the INVALID index \"",
						"\" to rebuild it"))) {
			report_ddl_add(ddl, txn, &n,
				       cspec_sql_drop(qtable, rv->qschema, name, false, conc), 0);
		} else if ((name = name_between(text, "then drop \"", "\" (replaced)"))) {
			report_ddl_add(ddl, txn, &n, replaced_drop(conn, rv, s, name), 0);
		}
	} else if (s->kind == CSPEC_NOT_NULL) {
		bool all = rv->absent;
		int t = 0;
		if (strncmp(text, "drop the helper CHECK", 21) == 0)
			report_ddl_add(ddl, txn, &n,
				       cspec_sql_not_null(s, qtable, CSPEC_NN_DROP_CHECK), 0);
		if (all || strstr(text, "add CHECK NOT VALID"))
			report_ddl_add(ddl, txn, &n,
				       cspec_sql_not_null(s, qtable, CSPEC_NN_ADD_CHECK), t++);
		if (all || strstr(text, "validate it"))
			report_ddl_add(ddl, txn, &n,
				       cspec_sql_not_null(s, qtable, CSPEC_NN_VALIDATE), t++);
		if (all || strstr(text, "SET NOT NULL")) {
			report_ddl_add(ddl, txn, &n, cspec_sql_not_null(s, qtable, CSPEC_NN_SET),
				       t);
			report_ddl_add(ddl, txn, &n,
				       cspec_sql_not_null(s, qtable, CSPEC_NN_DROP_CHECK), t);
		}
	}
	free(name);
	free(qtable);
	return n;
}
