/*
 * cspec_sql.c — the SQL text of constraint specs and the decisions on what a
 * unique needs (see cspec.h); pure, like cspec.c, which reads the files.
 */
#include "cspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SQL text ----------------------------------------------------------- */

/* "a", "b" from a list of names. */
static void put_quoted_list(struct sbuf *b, const struct strv *names)
{
	for (int i = 0; i < names->n; i++) {
		char *q = cspec_quote(names->v[i]);
		sbuf_printf(b, "%s%s", i ? ", " : "", q);
		free(q);
	}
}

char *cspec_describe(const struct cspec *spec)
{
	struct sbuf b = { 0 };

	switch (spec->kind) {
	case CSPEC_NOT_NULL:
		sbuf_puts(&b, "NOT NULL (");
		put_quoted_list(&b, &spec->columns);
		sbuf_puts(&b, ")");
		break;
	case CSPEC_UNIQUE:
		sbuf_printf(&b, "UNIQUE%s (",
			    spec->nulls_not_distinct ? " NULLS NOT DISTINCT" : "");
		put_quoted_list(&b, &spec->columns);
		sbuf_puts(&b, ")");
		if (spec->where) {
			/* one line: a where continued on indented lines is joined by blanks */
			sbuf_puts(&b, " WHERE (");
			for (const char *p = spec->where; *p; p++) {
				if (*p != '\n' && *p != '\r') {
					sbuf_putc(&b, *p);
					continue;
				}
				while (p[1] == '\n' || p[1] == '\r' || p[1] == ' ' || p[1] == '\t')
					p++;
				sbuf_putc(&b, ' ');
			}
			sbuf_putc(&b, ')');
		}
		break;
	}
	return sbuf_take(&b);
}

char *cspec_sql_create(const struct cspec *spec, const char *qtable, bool index_only)
{
	struct sbuf b = { 0 };
	char *qname = cspec_quote(spec->name);

	if (index_only || spec->where) {
		sbuf_printf(&b, "CREATE UNIQUE INDEX %s%s ON %s (",
			    spec->concurrently ? "CONCURRENTLY " : "", qname, qtable);
		put_quoted_list(&b, &spec->columns);
		sbuf_printf(&b, ")%s", spec->nulls_not_distinct ? " NULLS NOT DISTINCT" : "");
		if (spec->where)
			sbuf_printf(&b, " WHERE (%s)", spec->where);
	} else {
		sbuf_printf(&b, "ALTER TABLE %s ADD CONSTRAINT %s UNIQUE%s (", qtable, qname,
			    spec->nulls_not_distinct ? " NULLS NOT DISTINCT" : "");
		put_quoted_list(&b, &spec->columns);
		sbuf_puts(&b, ")");
	}
	free(qname);
	return sbuf_take(&b);
}

char *cspec_sql_duplicates(const struct cspec *spec, const char *qtable, bool count, int limit)
{
	struct sbuf b = { 0 };
	struct sbuf cols = { 0 };
	const char *glue = " WHERE ";
	char *c;

	put_quoted_list(&cols, &spec->columns);
	c = sbuf_take(&cols);
	if (count)
		sbuf_printf(
			&b,
			"SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM %s",
			qtable);
	else
		sbuf_printf(&b, "SELECT %s, count(*) FROM %s", c, qtable);
	/* NULLs are distinct: a key with a NULL in it never conflicts. */
	for (int i = 0; !spec->nulls_not_distinct && i < spec->columns.n; i++) {
		char *q = cspec_quote(spec->columns.v[i]);
		sbuf_printf(&b, "%s%s IS NOT NULL", glue, q);
		glue = " AND ";
		free(q);
	}
	if (spec->where)
		sbuf_printf(&b, "%s(%s)", glue, spec->where);
	sbuf_printf(&b, " GROUP BY %s HAVING count(*) > 1", c);
	if (count)
		sbuf_puts(&b, ") AS duplicates");
	else {
		sbuf_printf(&b, " ORDER BY %s", c);
		if (limit > 0)
			sbuf_printf(&b, " LIMIT %d", limit);
	}
	free(c);
	return sbuf_take(&b);
}

char *cspec_sql_attach(const struct cspec *spec, const char *qtable)
{
	char *q = cspec_quote(spec->name);
	char *sql =
		xasprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", qtable, q, q);

	free(q);
	return sql;
}

char *cspec_sql_drop(const char *qtable, const char *qschema, const char *name, bool constraint,
		     bool concurrently)
{
	char *q = cspec_quote(name);
	char *sql;

	if (constraint)
		sql = xasprintf("ALTER TABLE %s DROP CONSTRAINT %s", qtable, q);
	else
		sql = xasprintf("DROP INDEX %s%s.%s", concurrently ? "CONCURRENTLY " : "", qschema,
				q);
	free(q);
	return sql;
}

char *cspec_sql_not_null(const struct cspec *spec, const char *qtable, enum cspec_nn_step step)
{
	char *qname = cspec_quote(spec->name);
	char *qcol = cspec_quote(spec->columns.v[0]);
	char *sql = NULL;

	switch (step) {
	case CSPEC_NN_ADD_CHECK:
		sql = xasprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
				qtable, qname, qcol);
		break;
	case CSPEC_NN_VALIDATE:
		sql = xasprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", qtable, qname);
		break;
	case CSPEC_NN_SET:
		sql = xasprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", qtable, qcol);
		break;
	case CSPEC_NN_DROP_CHECK:
		sql = xasprintf("ALTER TABLE %s DROP CONSTRAINT %s", qtable, qname);
		break;
	}
	free(qname);
	free(qcol);
	return sql ? sql : xstrdup("");
}

char *cspec_sql_count_nulls(const struct cspec *spec, const char *qtable)
{
	char *qcol = cspec_quote(spec->columns.v[0]);
	char *sql = xasprintf("SELECT count(*) FROM %s WHERE %s IS NULL", qtable, qcol);

	free(qcol);
	return sql;
}

char *cspec_sql_null_rows(const struct cspec *spec, const char *qtable, const char *keys, int limit)
{
	char *qcol = cspec_quote(spec->columns.v[0]);
	char *sql = xasprintf("SELECT %s FROM %s WHERE %s IS NULL ORDER BY %s LIMIT %d", keys,
			      qtable, qcol, keys, limit);

	free(qcol);
	return sql;
}

/* ---- deciding what a unique needs --------------------------------------- */

void cspec_indexes_free(struct cspec_indexes *l)
{
	for (int i = 0; l->v && i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].conname);
		free(l->v[i].def);
		free(l->v[i].fks);
	}
	free(l->v);
	free(l->taken);
	memset(l, 0, sizeof(*l));
}

static int find_index(const struct cspec_indexes *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0 || strcmp(l->v[i].conname, name) == 0)
			return i;
	return -1;
}

/* Absent under its name: adopt a valid index of the same definition, else note INVALID ones. */
static void decide_absent(const struct cspec_indexes *l, int byname, struct cspec_udecision *d)
{
	/* another name, same definition: prefer a constraint over a bare index */
	for (int i = 0; i < l->n; i++) {
		if (i == byname || !l->v[i].valid || !l->v[i].matches)
			continue;
		if (d->keep < 0 || (!l->v[d->keep].contype && l->v[i].contype))
			d->keep = i;
	}
	if (d->keep >= 0) {
		d->act = CSPEC_U_ADOPT;
		return;
	}
	for (int i = 0; i < l->n && d->n_invalid < CSPEC_MAX_INVALID; i++)
		if (i != byname && !l->v[i].valid && l->v[i].matches)
			d->invalid[d->n_invalid++] = i;
}

void cspec_decide_unique(const struct cspec *s, const struct cspec_indexes *l,
			 struct cspec_udecision *d)
{
	int byname = find_index(l, s->name);

	memset(d, 0, sizeof(*d));
	d->keep = d->drift = d->replaced = -1;
	d->act = CSPEC_U_CREATE;
	if (l->taken) {
		d->act = CSPEC_U_DRIFT;
		return;
	}
	if (byname >= 0) {
		const struct cspec_index *x = &l->v[byname];
		if (!x->valid) {
			d->invalid[d->n_invalid++] = byname;
		} else if (x->matches) {
			/*
			 * A valid unique index of the definition satisfies the
			 * spec, with or without a constraint using it, and is
			 * left as it is (an ORM may drop it by DROP INDEX).  Only
			 * a concurrent spec's own index gets its constraint: the
			 * shape it declares, left half-built by an interrupted run.
			 */
			d->keep = byname;
			d->act = (!s->where && !x->contype && s->concurrently) ? CSPEC_U_ATTACH
									       : CSPEC_U_NOTHING;
		} else {
			d->act = CSPEC_U_DRIFT;
			d->drift = byname;
			return;
		}
	}
	if (d->act == CSPEC_U_CREATE)
		decide_absent(l, byname, d);
	if (s->replaces) {
		int rep = find_index(l, s->replaces);
		bool dropping = false;
		for (int i = 0; i < d->n_invalid; i++)
			dropping = dropping || d->invalid[i] == rep;
		if (rep >= 0 && rep != d->keep && !dropping)
			d->replaced = rep;
	}
}

char *cspec_sql_regclass(const struct cspec *s)
{
	char *qt = cspec_quote(s->table);
	char *qs = s->schema ? cspec_quote(s->schema) : NULL;
	char *name = qs ? xasprintf("%s.%s", qs, qt) : xstrdup(qt);

	free(qs);
	free(qt);
	return name;
}

char *cspec_sql_text_array(const struct strv *v)
{
	struct sbuf b = { 0 };

	sbuf_putc(&b, '{');
	for (int i = 0; i < v->n; i++) {
		sbuf_puts(&b, i ? ",\"" : "\"");
		for (const char *p = v->v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				sbuf_putc(&b, '\\');
			sbuf_putc(&b, *p);
		}
		sbuf_putc(&b, '"');
	}
	sbuf_putc(&b, '}');
	return sbuf_take(&b);
}

bool cspec_attnums_cover(const char *have, const char *need)
{
	const char *p = need;

	while (*p) {
		char *end;
		long want = strtol(p, &end, 10);
		const char *h = have;
		bool found = false;

		if (end == p)
			break;
		if (want <= 0)
			return false;
		while (*h && !found) {
			char *hend;
			long got = strtol(h, &hend, 10);
			if (hend == h)
				break;
			found = got == want;
			h = hend;
		}
		if (!found)
			return false;
		p = end;
	}
	return true;
}
