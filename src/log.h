/*
 * log.h — one line per event on stderr, written with one write().
 *
 * Text lines follow PostgreSQL's frontend style:
 *   pgprelude: error: could not open file "x": No such file or directory
 *   pgprelude: detail: A full sentence.
 *   pgprelude: hint: A full sentence.
 * and, for a position in a file, the compiler style:
 *   db-init/001_x.sql:27:3: error: relation "x" does not exist (42P01)
 * With LOG_FORMAT_JSON each line is one JSON object:
 *   {"ts":"2026-11-21T05:00:00.123Z","level":"error","msg":"…","file":"…","line":27,"col":3}
 * Nothing that is logged may contain a password: callers log host, port,
 * database and user only.
 */
#ifndef PGPRELUDE_LOG_H
#define PGPRELUDE_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON
};

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_WARNING,
	LOG_ERROR,
	LOG_DETAIL, /* continuation lines of the previous message */
	LOG_HINT,
	LOG_CONTEXT
};

/* Set the output format and the lowest level shown (details follow their message). */
void log_setup(enum log_format format, enum log_level min_level);

/* Parse "debug", "info", "warning", "error"; -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A message about a position in a file; line/col 0 are left out. */
void log_at(enum log_level level, const char *file, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * The first error logged, with the detail, hint and context lines that
 * followed it, in text form ("file:27:3: error: ...\ndetail: ...\n"), at
 * most 4 KiB; "" when nothing failed.  Remembered whatever the level shown
 * and the format, for a summary at exit (a termination log).
 */
const char *log_first_error(void);

/* A line of output from an external command, shown under a prefix ("[schema] …"). */
void log_output(const char *prefix, const char *line, int len);

/*
 * Send every line (one event, ending in a newline) to fn instead of stderr;
 * NULL: stderr again.  For tests that look at what was logged.
 */
void log_set_output(void (*fn)(const char *line, size_t len, void *arg), void *arg);

/*
 * While on, lines are kept instead of written (for work done ahead of its
 * turn); log_release writes them (show) or drops them, and ends holding.
 */
void log_hold(bool on);
void log_release(bool show);

/*
 * Copy s into out (cap bytes, NUL-terminated) with every byte that is not
 * part of valid UTF-8 written as \xNN, for names shown in messages.
 * Returns the length written.
 */
size_t log_escape_bytes(const char *s, char *out, size_t cap);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_detail(...) log_msg(LOG_DETAIL, __VA_ARGS__)
#define log_hint(...) log_msg(LOG_HINT, __VA_ARGS__)

#endif
