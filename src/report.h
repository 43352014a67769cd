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

/*
 * The plan command: print every pending file and every constraint action
 * of p (prepared, on a read-only session), with the pre-flight results.
 * Returns ST_OK when the plan can run, ST_PREFLIGHT when a pre-flight
 * fails, ST_DRIFT on drift or a changed file (drift wins over a
 * pre-flight), each with a closing log line, or another failure after
 * logging.
 */
enum status report_plan(struct phases *p) __attribute__((warn_unused_result));

/*
 * The verify command: every applied file of p (prepared, on a read-only
 * session) is there with its checksum, nothing is pending, and every
 * declared constraint is present and valid.  Logs each difference; returns
 * ST_OK, ST_DRIFT when there is any, or another failure after logging.
 */
enum status report_verify(struct phases *p) __attribute__((warn_unused_result));

#endif
