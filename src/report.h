/*
 * report.h — what the status, plan and verify commands print on stdout, for
 * a person or a CI step to read (the log goes to stderr).  Each kind of
 * phase shows itself through its row (phases.h); files through their state
 * (migrate.h).
 */
#ifndef PGPRELUDE_REPORT_H
#define PGPRELUDE_REPORT_H

#include <stdbool.h>

#include "phases.h"
#include "status.h"

/*
 * Print one line, "file:line: text", "file: text" (line 0) or "text" (file
 * NULL), of any length, and flush it, so that it keeps its place among the
 * log lines on a shared terminal.
 */
void report_line(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The status command: every file of every phase of p (prepared) with its state, as a table or JSON. */
void report_status(const struct phases *p, bool json);

/* How plan and verify print what they find. */
enum report_format {
	REPORT_TEXT, /* lines for a person (what they always printed) */
	REPORT_JSON, /* one JSON document (README, "plan and verify as JSON") */
	REPORT_SQL   /* plan only: the SQL migrate would send, as a script */
};

/*
 * The plan command: print every pending file and every constraint action
 * of p (prepared, on a read-only session), with the pre-flight results, in
 * fmt.  Returns ST_OK when the plan can run, ST_PREFLIGHT when a pre-flight
 * fails, ST_DRIFT on drift or a changed file (drift wins over a
 * pre-flight), each with a closing log line, or another failure after
 * logging.  With REPORT_JSON the document is printed whatever the outcome
 * (its "result" and "exit_code" say it); with REPORT_SQL nothing is sent to
 * the server but the reads plan always does.
 */
enum status report_plan(struct phases *p, enum report_format fmt)
	__attribute__((warn_unused_result));

/*
 * The verify command: every applied file of p (prepared, on a read-only
 * session) is there with its checksum, nothing is pending, and every
 * declared constraint is present and valid.  Logs each difference; returns
 * ST_OK, ST_DRIFT when there is any, or another failure after logging.
 * fmt is REPORT_TEXT or REPORT_JSON (one document, printed whatever the
 * outcome).
 */
enum status report_verify(struct phases *p, enum report_format fmt)
	__attribute__((warn_unused_result));

struct cons_ddl;
struct cons_line;
struct cons_run;
struct cons_resolved;
struct cspec;

/*
 * Whether plan or verify is gathering data (--json, --sql): then a
 * constraint's plan or verify line goes to report_constraint instead of
 * stdout.
 */
bool report_as_data(void);

/*
 * One plan or verify line of constraint spec s (resolved as rv) in run r,
 * taken as data: an item of the constraint file's "constraints" (JSON), with ddl,
 * the DDL converging s would run for the line (cons_kind.h), and, when its
 * pre-flight failed, the counts (read again on r's connection, in plan's
 * read-only transaction); or comments and that DDL (SQL).  Only while
 * report_as_data(); line is the caller's, ddl's statements are taken (ddl
 * left empty).
 */
void report_constraint(const struct cons_run *r, const struct cspec *s,
		       const struct cons_resolved *rv, const struct cons_line *line,
		       struct cons_ddl *ddl);

#endif
