/*
 * sqlsplit.h — split SQL text into statements the way PostgreSQL does.
 *
 * A pure lexer: no I/O, no libpq.  It knows single quotes with '' escapes,
 * E'' strings with backslash escapes, quoted identifiers, dollar quotes with
 * tags, nested block comments, line comments, parentheses (a CREATE RULE's
 * action list) and BEGIN ATOMIC … END function bodies, so that a ';' inside
 * any of them does not end a statement.  Statements holding only blanks and
 * comments are dropped, as the server drops them.
 *
 * The same tokens (words, quoted identifiers, strings, dollar quotes, other
 * characters; blanks and comments between them) serve to read the few
 * statements whose failure can leave an INVALID index behind: CREATE INDEX,
 * REINDEX, DROP INDEX.
 */
#ifndef PGPRELUDE_SQLSPLIT_H
#define PGPRELUDE_SQLSPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

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
 * for an unterminated quote, identifier, dollar quote or comment (*out
 * NULL).  Logs nothing.
 */
int sqlsplit(const char *text, size_t len, struct sql_stmt **out, struct sqlsplit_error *err);

/* What a top-level statement does to the transaction it runs in. */
enum sql_txctl {
	TXCTL_NONE,   /* nothing: any other statement, SAVEPOINT, RELEASE, ROLLBACK TO */
	TXCTL_BEGIN,  /* BEGIN [WORK | TRANSACTION] [modes], START TRANSACTION [modes] */
	TXCTL_COMMIT, /* COMMIT / END [WORK | TRANSACTION] [AND NO CHAIN] */
	TXCTL_OTHER   /* ROLLBACK / ABORT, COMMIT / ROLLBACK AND CHAIN, PREPARE TRANSACTION,
			 COMMIT PREPARED, ROLLBACK PREPARED */
};

/*
 * What statement sql (len bytes, or up to a NUL byte; one of those sqlsplit
 * gives) does to its transaction.  Logs nothing.
 */
enum sql_txctl sqlsplit_tx_control(const char *sql, size_t len);

/*
 * When statement sql (len bytes, or up to a NUL byte) is BEGIN or START
 * TRANSACTION with transaction modes (ISOLATION LEVEL ..., READ ONLY, ...):
 * the byte offset in sql of its first mode; 0 for one without modes, or
 * another statement.  Logs nothing.
 */
size_t sqlsplit_begin_modes(const char *sql, size_t len);

/*
 * The first backslash of text (len bytes) outside quotes, identifiers,
 * dollar quotes and comments: where a psql meta-command (\i, \set, ...)
 * stands, which the server does not know.  True with its byte offset, line
 * and column (as sqlsplit counts them) in *at (start only; end is the end
 * of the word after it); false when there is none or the text does not
 * split.  Logs nothing.
 */
bool sqlsplit_find_backslash(const char *text, size_t len, struct sql_stmt *at);

/*
 * The index statements below read statement sql (len bytes, or up to a NUL
 * byte), one of those sqlsplit gives.  Names are returned as written: quoted
 * or not, schema-qualified or not, for to_regclass() and parse_ident().
 */

/*
 * When sql is CREATE [UNIQUE] INDEX [CONCURRENTLY] [[IF NOT EXISTS] name] ON
 * [ONLY] table: true, with the table and the name (NULL for an unnamed
 * index) in malloc'd strings the caller frees, and whether it is
 * CONCURRENTLY.  Otherwise false, with *name and *table NULL.
 */
bool sqlsplit_parse_create_index(const char *sql, size_t len, bool *concurrently, char **name,
				 char **table);

/*
 * When sql is CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON
 * [ONLY] table: true, with name and table in malloc'd strings the caller
 * frees.  Otherwise (an unnamed index too) false, with both NULL.
 */
bool sqlsplit_parse_cic(const char *sql, size_t len, char **name, char **table);

/*
 * Add the relations whose indexes a failure of statement sql can leave
 * INVALID to two text[] literals ({"a","b"}; empty while nothing was added):
 * to tables, the table of CREATE INDEX … ON table and of REINDEX
 * [(options)] TABLE [CONCURRENTLY] name; to indexes, the index of REINDEX
 * [(options)] INDEX [CONCURRENTLY] name, and those of DROP INDEX
 * [CONCURRENTLY] [IF EXISTS] a, b, ….  Other statements add nothing.
 */
void sqlsplit_index_targets(const char *sql, size_t len, struct sbuf *tables, struct sbuf *indexes);

#endif
