/*
 * report.h — what the status, plan and verify commands print on stdout, for
 * a person or a CI step to read (the log goes to stderr).
 */
#ifndef PGPRELUDE_REPORT_H
#define PGPRELUDE_REPORT_H

/*
 * Print one line, "file:line: text", "file: text" (line 0) or "text" (file
 * NULL), of any length, and flush it, so that it keeps its place among the
 * log lines on a shared terminal.
 */
void report_line(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
