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
 * columns in order, uniqueness checked at once (not deferrable), predicate
 * as the server's planner normalises it (none when it reduces to true),
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
 *
 * The code: cspec.c reads the file and builds every SQL text (pure,
 * cspec.h, which this header includes); constraints.c drives the order
 * below; cons_unique.c and cons_not_null.c hold what each kind does, one
 * row each of the table in cons_kind.h.  A converge first reads ahead what
 * checking the whole file needs from the catalog, in a few pipelines (the
 * queries of all specs that share a text go as one), so that a run with
 * nothing to do costs a few round trips, not several per spec; a start that
 * finds the file's digest unchanged since it was last found converged
 * (cdigest.h) does not check it at all.
 */
#ifndef PGPRELUDE_CONSTRAINTS_H
#define PGPRELUDE_CONSTRAINTS_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "config.h"
#include "cspec.h"
#include "status.h"

/* What constraints_converge does with the database. */
enum cons_mode {
	CONS_APPLY,  /* converge: pre-flight, DDL, then assert */
	CONS_PLAN,   /* print the actions and pre-flight results, change nothing */
	CONS_VERIFY, /* report every declared constraint that is absent or invalid */
	CONS_CHECK   /* whether anything needs DDL, read as converge reads, logging nothing of
			it itself: ST_OK when every spec is up to date, ST_DRIFT when not */
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
 * CONS_VERIFY only read, in one read-only transaction rolled back at the
 * end (the where of a file is sent as one statement: it cannot end it).  With CONS_PLAN and later_ok, a missing table
 * is reported as "created by an earlier pending step" instead of an error.
 * *changes (may be NULL) counts DDL actions done (APPLY), planned (PLAN) or
 * differences found (VERIFY).  Everything is logged; returns the first
 * failure.
 */
enum status constraints_converge(const struct cfile *cf, const struct phase *ph, PGconn *conn,
				 PGconn *watch, enum cons_mode mode, bool later_ok, int *changes)
	__attribute__((warn_unused_result));

struct mplan;

/*
 * The replaces of the constraint files of plans[i] checked against every
 * constraint file of the n plans (every phase; constraints_check_replaces).
 * Returns ST_OK, or ST_USAGE after logging.
 */
enum status constraints_check_plans(const struct mplan *plans, int n, int i)
	__attribute__((warn_unused_result));

#endif
