/*
 * constraints.h — declarative constraints: a "*.ini" file in a dir phase's
 * folder declares UNIQUE and NOT NULL constraints that pgprelude converges
 * the database to on every run (DESIGN.md, "Declarative constraints").
 *
 * The file (read with inih; ";" or "#" starts a comment; a value continues on
 * indented lines):
 *
 *   [unique organization_users_organization_id_user_id_key]
 *   table = public.organization_users   ; [schema.]table; no schema: the search_path
 *   columns = organization_id, user_id  ; ordered, comma-separated
 *   where = sku IS NOT NULL             ; optional: a partial unique index (SQL)
 *   nulls_not_distinct = false          ; optional (PostgreSQL 15+)
 *   replaces = invoices_number_key      ; optional: index or constraint to drop afterwards
 *   concurrently = true                 ; optional: CREATE UNIQUE INDEX CONCURRENTLY
 *   lock_timeout = 5s                   ; optional: else the phase's
 *   statement_timeout = 0               ; optional: else the phase's
 *
 *   [not_null users_workspace_id]       ; the name of the temporary CHECK
 *   table = users
 *   column = "workspaceId"
 *
 * The section name is the constraint's (or partial index's) name.  Names of
 * tables, columns and constraints are SQL identifiers: unquoted they fold to
 * lower case, "Quoted" they stay as written ("" is a quote inside).  They are
 * always sent to the server quoted; the where expression is the only text of
 * the file that is sent as SQL.  Booleans: true/false, yes/no, on/off, 1/0.
 *
 * Converging a unique (in file order, each looked up by definition: table,
 * columns in order, uniqueness, predicate as the server normalises it,
 * NULLS NOT DISTINCT, plain btree keys: columns, not expressions, each with
 * the column's own collation and its type's default operator class):
 *   - same name, same definition, valid: nothing to do;
 *   - same name, other definition: drift (ST_DRIFT), both definitions shown;
 *   - other name, same definition: adopted, nothing created;
 *   - an INVALID index with the name or the definition: dropped and rebuilt;
 *   - else created, after a pre-flight that counts the duplicate groups under
 *     exactly the constraint's semantics (ST_PREFLIGHT, nothing changed);
 *     without where: ALTER TABLE … ADD CONSTRAINT … UNIQUE, with where: a
 *     unique index; with concurrently: CREATE UNIQUE INDEX CONCURRENTLY in
 *     autocommit, then ADD CONSTRAINT … UNIQUE USING INDEX (not for a where);
 *   - replaces: dropped once the new one is there and valid, in the same
 *     transaction unless concurrently.
 * A not_null goes CHECK (c IS NOT NULL) NOT VALID → VALIDATE → SET NOT NULL
 * → DROP the check, one transaction per step, each step guarded, after a
 * pre-flight NULL count.  Data is never changed.
 */
#ifndef PGPRELUDE_CONSTRAINTS_H
#define PGPRELUDE_CONSTRAINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

#include "config.h"
#include "status.h"

enum cspec_kind {
	CSPEC_UNIQUE = 1,
	CSPEC_NOT_NULL
};

struct cspec {
	enum cspec_kind kind;
	char *name;   /* constraint / index name, folded */
	int line;     /* line of its [kind name] header */
	char *schema; /* folded, or NULL: the search_path decides */
	char *table;  /* folded */
	int table_line;
	struct strv columns; /* folded, in order; not_null: exactly one */
	int columns_line;
	char *where; /* unique: the predicate as written, or NULL */
	int where_line;
	bool nulls_not_distinct;
	char *replaces; /* folded, or NULL */
	int replaces_line;
	bool concurrently;
	long lock_timeout_ms;	   /* -1: the phase's */
	long statement_timeout_ms; /* -1: the phase's */
};

struct cfile {
	char *path; /* as shown in messages */
	struct cspec *specs;
	int n;
};

/*
 * Parse a constraint file (text of len bytes, shown as path).  On success
 * fills *cf (free with cfile_free) and returns ST_OK.  On any error logs one
 * line "path:LINE: error: …" (the line of the key or section) and returns
 * ST_USAGE (ST_INTERNAL when out of memory), *cf left empty.
 */
enum status constraints_parse(const char *text, size_t len, const char *path, struct cfile *cf)
	__attribute__((warn_unused_result));

void cfile_free(struct cfile *cf);

/*
 * Parse one SQL identifier at *s (leading blanks skipped): "quoted" (with ""
 * inside) kept as is, unquoted folded to lower case (ASCII only, as the
 * server does).  On success stores a malloc'd copy in *out, moves *s past it
 * and returns true; else sets *err to a static message and returns false.
 */
bool constraints_parse_ident(const char **s, char **out, const char **err);

/*
 * Parse a comma-separated list of identifiers (blanks and newlines around
 * them are ignored).  Returns true and fills *out (free with strv_free), or
 * false with a static message in *err (empty list, empty element, bad
 * quoting, a column named twice).
 */
bool constraints_parse_ident_list(const char *s, struct strv *out, const char **err);

/* true/false, yes/no, on/off, 1/0 (any case).  Returns false for anything else. */
bool constraints_parse_bool(const char *s, bool *out);

/* name in double quotes, inner quotes doubled; malloc'd, NULL when out of memory. */
char *constraints_quote(const char *name);

/*
 * The SQL that creates spec on table qtable (already quoted and qualified):
 * ALTER TABLE … ADD CONSTRAINT … UNIQUE [NULLS NOT DISTINCT] (…) for a plain
 * unique, CREATE UNIQUE INDEX [CONCURRENTLY] … for a partial or concurrent
 * one (index_only).  malloc'd, NULL when out of memory.
 */
char *constraints_sql_create(const struct cspec *spec, const char *qtable, bool index_only);

/*
 * The pre-flight query of a unique spec on qtable: with count, one row
 * (duplicate groups, rows in them); else the duplicate keys with their row
 * count, in key order, limited to limit rows when limit > 0.  malloc'd.
 */
char *constraints_sql_duplicates(const struct cspec *spec, const char *qtable, bool count,
				 int limit);

/*
 * The definition of spec as text, for messages: "UNIQUE NULLS NOT DISTINCT
 * ("a", "b") WHERE (x)" or "NOT NULL ("c")".  malloc'd.
 */
char *constraints_describe(const struct cspec *spec);

/* What constraints_converge does with the database. */
enum cons_mode {
	CONS_APPLY, /* converge: pre-flight, DDL, then assert */
	CONS_PLAN,  /* print the actions and pre-flight results, change nothing */
	CONS_VERIFY /* report every declared constraint that is absent or invalid */
};

/*
 * Converge (or plan, or verify) every spec of cf, in order, on conn.  The
 * phase gives the default lock_timeout and statement_timeout, and
 * lock_retries: a spec whose statement hits lock_timeout (55P03) is
 * converged again from the catalog after 1 s, 2 s, 4 s ... that many times
 * (an INVALID index its concurrent build left is dropped first), then the
 * failure is ST_SQL.  watch (may be NULL), another connection idle
 * meanwhile, shows the progress of long statements and who holds a lock
 * one waits for; a stop signal cancels the running statement (ST_SIGNAL).
 * Before any DDL of the file, every table and column is checked (ST_USAGE,
 * logged as "file:line: error: …") and every pre-flight is run
 * (ST_PREFLIGHT).  Drift is ST_DRIFT.  CONS_APPLY needs a connection that
 * may run DDL outside a transaction (the work connection); CONS_PLAN and
 * CONS_VERIFY only read (apart from a rolled-back temporary table that lets
 * the server normalise where).  With CONS_PLAN and later_ok, a missing table
 * is reported as "created by an earlier pending step" instead of an error.
 * *changes (may be NULL) counts DDL actions done (APPLY), planned (PLAN) or
 * differences found (VERIFY).  Everything is logged; returns the first
 * failure.
 */
enum status constraints_converge(const struct cfile *cf, const struct phase *ph, PGconn *conn,
				 PGconn *watch, enum cons_mode mode, bool later_ok, int *changes)
	__attribute__((warn_unused_result));

#endif
