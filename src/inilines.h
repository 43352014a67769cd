/*
 * inilines.h — read an INI file with inih, knowing the line of everything.
 *
 * Debian's inih is built without INI_HANDLER_LINENO, does not report
 * [section] headers to the handler, silently splits lines longer than
 * INI_MAX_LINE - 1 bytes and keeps going after an error.  This module feeds
 * the text to ini_parse_stream() through its own reader, which counts lines
 * and refuses over-long lines and NUL bytes, and leaves the grammar to inih:
 * sections and keys reach the callbacks in file order with their lines, a
 * key's value once it is complete (inih's indented continuation lines joined
 * with "\n"), and parsing stops at the first error.
 *
 * Syntax errors are logged here as "shown:LINE: error: …"; the callbacks log
 * their own errors and return false to stop.
 */
#ifndef PGPRELUDE_INILINES_H
#define PGPRELUDE_INILINES_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

struct inil_ops {
	/* A [section] header: the text between the brackets, trimmed, and its line. */
	bool (*section)(void *user, const char *name, int line);
	/*
	 * A complete "key = value": name and value as inih trimmed them, the
	 * key's line, and the value's first continuation line (0: one line).
	 * The value's memory is wiped once the callback returns (it may be a
	 * secret).
	 */
	bool (*key)(void *user, const char *name, const char *value, int line, int cont_line);
};

/*
 * Parse text (len bytes, the whole file) named shown in messages.
 * Returns ST_OK, or ST_USAGE after a syntax error (logged) or when a
 * callback returned false (it logged).  Out of memory exits (util.h).
 */
enum status inil_parse_text(const char *text, size_t len, const char *shown,
			    const struct inil_ops *ops, void *user)
	__attribute__((warn_unused_result));

#endif
