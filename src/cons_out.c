/*
 * cons_out.c — what the kinds of constraint show (see cons_kind.h): the
 * lines of plan and verify, with the DDL a plan line stands for, handed to
 * report.c as data for plan --sql and --json; an offending key of a failed
 * pre-flight; a role that may not alter a table.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "cons_kind.h"
#include "log.h"
#include "report.h"
#include "util.h"

void cons_ddl_add(struct cons_ddl *d, char *sql, int txn)
{
	if (d->n >= CONS_DDL_MAX) {
		free(sql);
		return;
	}
	d->sql[d->n] = sql;
	d->txn[d->n] = txn;
	d->n++;
}

void cons_ddl_free(struct cons_ddl *d)
{
	for (int i = 0; i < d->n; i++)
		free(d->sql[i]);
	d->n = 0;
}

/*
 * The line of s: fmt's text after the verdict's word, then the pre-flight
 * pf of rows what; standing for ddl (taken; NULL: none).
 */
static void out_line(const struct cons_run *r, const struct cspec *s,
		     const struct cons_resolved *rv, struct cons_ddl *ddl,
		     enum cons_verdict verdict, enum cons_pf pf, const char *what, const char *fmt,
		     va_list ap) __attribute__((format(printf, 8, 0)));

static void out_line(const struct cons_run *r, const struct cspec *s,
		     const struct cons_resolved *rv, struct cons_ddl *ddl,
		     enum cons_verdict verdict, enum cons_pf pf, const char *what, const char *fmt,
		     va_list ap)
{
	static const char *const word[] = {
		[CONS_SAYS] = "", [CONS_DRIFT] = "drift: ", [CONS_REFUSED] = "cannot run: "
	};
	struct cons_ddl none = { .n = 0 };
	char *said = xvasprintf(fmt, ap);
	char *action = xasprintf("%s%s", word[verdict], said);
	char *pf_text = pf == CONS_PF_FAILED	   ? xasprintf("FAILED (%s, see above)", what)
			: pf == CONS_PF_NOT_NEEDED ? xstrdup("not needed")
			: pf == CONS_PF_PASSED	   ? xasprintf("no %s", what)
						   : NULL;
	char *text = pf_text ? xasprintf("%s; pre-flight: %s", action, pf_text) : xstrdup(action);
	struct cons_line line = {
		.text = text, .action = action, .verdict = verdict, .pf = pf, .pf_text = pf_text
	};

	if (report_as_data()) /* plan or verify with --json or --sql */
		report_constraint(r, s, rv, &line, ddl ? ddl : &none);
	else
		report_line(r->cf->path, s->line, "%s \"%s\" on %s: %s", cspec_kind_word(s->kind),
			    s->name, rv->shown ? rv->shown : s->table, text);
	if (ddl)
		cons_ddl_free(ddl);
	free(text);
	free(pf_text);
	free(action);
	free(said);
}

void cons_out_line(const struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_line(r, s, rv, NULL, CONS_SAYS, CONS_PF_NONE, NULL, fmt, ap);
	va_end(ap);
}

void cons_verdict_line(const struct cons_run *r, const struct cspec *s,
		       const struct cons_resolved *rv, enum cons_verdict verdict, const char *fmt,
		       ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_line(r, s, rv, NULL, verdict, CONS_PF_NONE, NULL, fmt, ap);
	va_end(ap);
}

void cons_plan_line(const struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
		    struct cons_ddl *ddl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_line(r, s, rv, ddl, CONS_SAYS, CONS_PF_NONE, NULL, fmt, ap);
	va_end(ap);
}

void cons_preflight_line(const struct cons_run *r, const struct cspec *s,
			 const struct cons_resolved *rv, struct cons_ddl *ddl, enum cons_pf pf,
			 const char *what, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_line(r, s, rv, ddl, CONS_SAYS, pf, what, fmt, ap);
	va_end(ap);
}

/* Whether values of type oid print as SQL would read them without quotes: numbers, booleans. */
static bool plain_type(Oid type)
{
	/* bool, int8, int2, int4, oid, float4, float8, numeric (pg_type.dat) */
	static const Oid plain[] = { 16, 20, 21, 23, 26, 700, 701, 1700 };

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (plain[i] == type)
			return true;
	return false;
}

/* text as an SQL string literal: 'it''s', so that 'NULL' is not NULL and a comma stays inside. */
static void put_literal(struct sbuf *b, const char *text)
{
	sbuf_puts(b, "'");
	for (const char *p = text; *p; p++) {
		if (*p == '\'')
			sbuf_putc(b, '\'');
		sbuf_putc(b, *p);
	}
	sbuf_putc(b, '\'');
}

char *cons_key_text(const char *names, int ncols, const PGresult *res, int row)
{
	struct sbuf b = { 0 };

	sbuf_printf(&b, ncols > 1 ? "(%s) = (" : "%s = ", names);
	for (int c = 0; c < ncols; c++) {
		sbuf_puts(&b, c ? ", " : "");
		if (PQgetisnull(res, row, c))
			sbuf_puts(&b, "NULL");
		else if (plain_type(PQftype(res, c)))
			sbuf_puts(&b, PQgetvalue(res, row, c));
		else
			put_literal(&b, PQgetvalue(res, row, c));
	}
	if (ncols > 1)
		sbuf_puts(&b, ")");
	return sbuf_take(&b);
}

bool cons_check_owner(const struct cons_run *r, const struct cspec *s,
		      const struct cons_resolved *rv)
{
	if (rv->owned)
		return true;
	log_at(LOG_ERROR, r->cf->path, s->line, 0,
	       "[%s %s]: the role \"%s\" may not alter %s, owned by \"%s\"",
	       cspec_kind_word(s->kind), s->name, rv->role, rv->shown, rv->owner);
	log_detail(
		"Only the owner of a table (or a member of the owner's role) may add or drop its "
		"constraints and indexes.");
	log_hint("Connect as \"%s\" (or a member of it), or change the table's owner.", rv->owner);
	return false;
}
