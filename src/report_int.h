/*
 * report_int.h — what the parts of the report module share: report.c (plan
 * and verify), report_status.c (status).  Not for other modules.
 */
#ifndef PGPRELUDE_REPORT_INT_H
#define PGPRELUDE_REPORT_INT_H

#include "cons_kind.h"
#include "migrate.h"
#include "report.h"
#include "util.h"

/* The JSON fields of file f that status prints (after its "file"), into b. */
void report_json_file_fields(struct sbuf *b, const struct mfile *f);

#endif
