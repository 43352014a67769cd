/*
 * sqlsplit.h — split SQL text into statements the way PostgreSQL does.
 *
 * A pure lexer: no I/O, no libpq.  It knows single quotes with '' escapes,
 * E'' strings with backslash escapes, quoted identifiers, dollar quotes with
 * tags, nested block comments, line comments, parentheses (a CREATE RULE's
 * action list) and BEGIN ATOMIC … END function bodies, so that a ';' inside
 * any of them does not end a statement.  Statements holding only blanks and
 * comments are dropped, as the server drops them.
 */
#ifndef PGPRELUDE_SQLSPLIT_H
#define PGPRELUDE_SQLSPLIT_H

#include <stddef.h>

struct sql_stmt {
	size_t start; /* byte offset of the statement's first token */
	size_t end;   /* byte offset just past its ';' (or the end of the text) */
	int line;     /* 1-based line of the first token */
	int col;      /* 1-based column (in characters) of the first token */
};

struct sqlsplit_error {
	const char *message; /* static: "unterminated quoted string", ... */
	int line;	     /* where the unterminated construct starts */
	int col;
};

/*
 * Split text (len bytes, need not be NUL-terminated) into statements.
 * Returns the number of statements and stores a malloc'd array in *out
 * (NULL when there are none; the caller frees it), or -1 with *err filled
 * for an unterminated quote, identifier, dollar quote or comment, or -2
 * when out of memory.
 */
int sqlsplit(const char *text, size_t len, struct sql_stmt **out, struct sqlsplit_error *err);

#endif
