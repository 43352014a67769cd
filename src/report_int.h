/*
 * report_int.h — what the parts of the report module share: report.c (plan
 * and verify), report_status.c (status), report_ddl.c (the DDL of a
 * constraint's plan line).  Not for other modules.
 */
#ifndef PGPRELUDE_REPORT_INT_H
#define PGPRELUDE_REPORT_INT_H

#include "cons_kind.h"
#include "migrate.h"
#include "report.h"
#include "util.h"

#define DDL_MAX 16 /* DDL statements of one spec */

/* The JSON fields of file f that status prints (after its "file"), into b. */
void report_json_file_fields(struct sbuf *b, const struct mfile *f);

/* Append sql (taken) to ddl with its transaction t, at most DDL_MAX; *n counts. */
void report_ddl_add(char **ddl, int *txn, int *n, char *sql, int t);

/*
 * The DDL that converging s runs for the plan line text (its pre-flight
 * left out), in order, into ddl with the transaction of each (a unique's in
 * one, a not_null's steps each in their own); for a table that does not
 * exist yet, what creating s on it would run; conn tells how a replaced
 * index is dropped.  Returns how many.
 */
int report_line_ddl(PGconn *conn, const struct cspec *s, const struct cons_resolved *rv,
		    const char *text, char **ddl, int *txn);

#endif
