/*
 * cspec.h — constraint specs, the pure part: reading a constraint file
 * (DESIGN.md, "Declarative constraints"; the syntax is in constraints.h),
 * SQL identifiers, and every SQL text and decision that needs no server.
 * No libpq here: the fuzzer and the unit tests link this alone (with
 * inilines, config, log, util and status).
 *
 * Every string these functions return is malloc'd (the caller frees it)
 * and never NULL: allocation failure exits (util.h).
 */
#ifndef PGPRELUDE_CSPEC_H
#define PGPRELUDE_CSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "util.h"

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
 * ST_USAGE, *cf left empty.
 */
enum status constraints_parse(const char *text, size_t len, const char *path, struct cfile *cf)
	__attribute__((warn_unused_result));

/*
 * Whether a "replaces" of the first nmine of the n files names a constraint
 * that one of the n declares (the same file or another, of any phase): that
 * one would be dropped by one spec and created again by the other on every
 * run.  Logs "file:line: error: …" at each such replaces, naming where the
 * other is declared, and returns ST_USAGE; else ST_OK.  NULL entries are
 * skipped.
 */
enum status constraints_check_replaces(const struct cfile *const *files, int n, int nmine)
	__attribute__((warn_unused_result));

/* Free what cf holds and zero it.  A zeroed cfile: no-op. */
void cfile_free(struct cfile *cf);

/* The section word of kind ("unique", "not_null"). */
const char *cspec_kind_word(enum cspec_kind kind);

/*
 * Parse one SQL identifier at *s (leading blanks skipped): "quoted" (with ""
 * inside) kept as is, unquoted folded to lower case (ASCII only, as the
 * server does).  On success stores a malloc'd copy in *out, moves *s past it
 * and returns true; else sets *err to a static message and returns false.
 */
bool cspec_parse_ident(const char **s, char **out, const char **err);

/*
 * Parse a comma-separated list of identifiers (blanks and newlines around
 * them are ignored).  Returns true and fills *out (free with strv_free), or
 * false with a static message in *err (empty list, empty element, bad
 * quoting, a column named twice).
 */
bool cspec_parse_ident_list(const char *s, struct strv *out, const char **err);

/*
 * Check a where expression as the server's lexer would read it: parentheses
 * balanced outside 'strings', E'strings', $tag$strings$tag$, "names" and
 * comments (never closing more than were opened, so the text cannot end the
 * "(...)" it is wrapped in), and nothing left open at its end.  Returns true,
 * or false with a static message in *err.
 */
bool cspec_check_where(const char *s, const char **err);

/* true/false, yes/no, on/off, 1/0 (any case).  Returns false for anything else. */
bool cspec_parse_bool(const char *s, bool *out);

/* name in double quotes, inner quotes doubled. */
char *cspec_quote(const char *name);

/* "a, b": the names as the file gives them (unquoted), for messages. */
char *cspec_plain_list(const struct strv *names);

/*
 * The definition of spec as text, for messages: "UNIQUE NULLS NOT DISTINCT
 * ("a", "b") WHERE (x)" or "NOT NULL ("c")", on one line (a where written on
 * several lines is joined by blanks), never cut.
 */
char *cspec_describe(const struct cspec *spec);

/* ---- SQL text.  qtable is the table quoted and qualified ("s"."t"). ---- */

/*
 * The SQL that creates unique spec on qtable: ALTER TABLE … ADD CONSTRAINT …
 * UNIQUE [NULLS NOT DISTINCT] (…) for a plain unique, CREATE UNIQUE INDEX
 * [CONCURRENTLY] … for a partial or concurrent one (index_only).
 */
char *cspec_sql_create(const struct cspec *spec, const char *qtable, bool index_only);

/*
 * The pre-flight query of a unique spec on qtable: with count, one row
 * (duplicate groups, rows in them); else the duplicate keys with their row
 * count, in key order, limited to limit rows when limit > 0.
 */
char *cspec_sql_duplicates(const struct cspec *spec, const char *qtable, bool count, int limit);

/* ALTER TABLE qtable ADD CONSTRAINT name UNIQUE USING INDEX name (the index of that name). */
char *cspec_sql_attach(const struct cspec *spec, const char *qtable);

/*
 * Drop what is named name: with constraint, ALTER TABLE qtable DROP
 * CONSTRAINT; else DROP INDEX [CONCURRENTLY] qschema.name.
 */
char *cspec_sql_drop(const char *qtable, const char *qschema, const char *name, bool constraint,
		     bool concurrently);

/* The steps of a not_null, in order. */
enum cspec_nn_step {
	CSPEC_NN_ADD_CHECK, /* ADD CONSTRAINT name CHECK (col IS NOT NULL) NOT VALID */
	CSPEC_NN_VALIDATE,  /* VALIDATE CONSTRAINT name */
	CSPEC_NN_SET,	    /* ALTER COLUMN col SET NOT NULL */
	CSPEC_NN_DROP_CHECK /* DROP CONSTRAINT name */
};

/* The ALTER TABLE of one step of not_null spec on qtable. */
char *cspec_sql_not_null(const struct cspec *spec, const char *qtable, enum cspec_nn_step step);

/* SELECT count(*) FROM qtable WHERE col IS NULL, for not_null spec. */
char *cspec_sql_count_nulls(const struct cspec *spec, const char *qtable);

/* The first limit rows (by keys: "a, b" or ctid) whose not_null column is NULL. */
char *cspec_sql_null_rows(const struct cspec *spec, const char *qtable, const char *keys,
			  int limit);

/* The relation s names (its table and schema, quoted), as to_regclass() takes it. */
char *cspec_sql_regclass(const struct cspec *s);

/*
 * The names of v as a text[] literal for a query parameter: {"a","b\\"c"}
 * (each element quoted, " and \\ escaped).
 */
char *cspec_sql_text_array(const struct strv *v);

/*
 * Whether every attribute number of need ("1 3", as int2vector prints) is
 * in have ("3 2 1"); a 0 in need (an expression) is never covered.
 */
bool cspec_attnums_cover(const char *have, const char *need);

/* ---- deciding what a unique needs --------------------------------------- */

/* One index of the table, and how it compares with the spec. */
struct cspec_index {
	char *name;
	char *conname; /* "" when no constraint uses it */
	char contype;  /* 'p', 'u', 'x' or 0 */
	bool valid;
	bool matches; /* same definition as the spec */
	char *def;    /* pg_get_indexdef */
	char *fks;    /* the foreign keys that depend on it ("fk on t, ..."), or NULL */
};

struct cspec_indexes {
	struct cspec_index *v;
	int n;
	char *taken; /* the spec's name is used by something else: what, or NULL */
};

/* Free what l holds and zero it. */
void cspec_indexes_free(struct cspec_indexes *l);

enum cspec_uact {
	CSPEC_U_NOTHING, /* present under the spec's name (a constraint, or a bare unique index) */
	CSPEC_U_ADOPT,	 /* present under another name */
	CSPEC_U_ATTACH, /* concurrently: its index is there, its constraint is not (an interrupted run) */
	CSPEC_U_CREATE, /* absent (or only INVALID): create, after the pre-flight */
	CSPEC_U_DRIFT	/* the name is used with another definition */
};

#define CSPEC_MAX_INVALID 8

struct cspec_udecision {
	enum cspec_uact act;
	int keep;     /* the index that is (or becomes) the constraint, or -1 */
	int drift;    /* DRIFT: the index with the name, or -1 (then l->taken says why) */
	int replaced; /* the index to drop afterwards, or -1 */
	int invalid[CSPEC_MAX_INVALID]; /* INVALID indexes to drop first */
	int n_invalid;
};

/* What unique s needs given the table's indexes l; fills *d. */
void cspec_decide_unique(const struct cspec *s, const struct cspec_indexes *l,
			 struct cspec_udecision *d);

#endif
