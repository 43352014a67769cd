/*
 * migrate.h — a "dir" phase: a folder of *.sql files, run in byte order of
 * their names, each once, each in one transaction with its history row.
 *
 * Deciding (scan: which files, which state) is separate from doing (apply),
 * so that status, the drift check and the run share one view.
 */
#ifndef PGPRELUDE_MIGRATE_H
#define PGPRELUDE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

#include "config.h"
#include "history.h"
#include "sqlsplit.h"
#include "status.h"

enum file_state {
	FILE_PENDING,	/* never applied: will run */
	FILE_APPLIED,	/* applied, same checksum: nothing to do */
	FILE_CHANGED,	/* applied, checksum differs: refused */
	FILE_RERUN,	/* repeatable, checksum differs: will run again */
	FILE_MOVED,	/* applied under another phase with this checksum: not run */
	FILE_MISSING	/* in the history, but no longer in the folder */
};

struct mfile {
	char *name;		/* file name in the folder: the history key */
	char *path;		/* path shown in messages */
	char *text;		/* content, NUL-terminated */
	size_t len;
	struct sql_stmt *stmts; /* its statements (sqlsplit) */
	int nstmts;
	char checksum[65];	/* SHA-256, hex */
	bool repeatable;	/* "-- pgprelude: repeatable" */
	enum file_state state;
	const struct history_row *row;	/* this file's row (APPLIED, CHANGED, RERUN, MISSING) */
	const struct history_row *moved; /* the row under another phase (MOVED) */
};

struct mplan {
	const struct phase *phase;
	struct mfile *files; /* folder files in run order, then MISSING ones */
	int n;
};

/*
 * Read the phase's folder and classify every file against the history.
 * Paths in messages are shown relative to the folder of cfg->path.
 * Hidden and non-.sql files are skipped with a debug line.  Returns ST_OK,
 * or after logging: ST_USAGE for a bad folder or file (unreadable, not a
 * regular file, no statement in it, unknown directive), ST_SQL for an
 * unterminated quote or comment, ST_INTERNAL when out of memory.
 */
enum status migrate_scan(const struct config *cfg, const struct phase *ph, const struct history *h,
			 struct mplan *plan) __attribute__((warn_unused_result));

/*
 * Refuse changed files: logs each with both checksums and the way out, and
 * returns ST_DRIFT; reports moved files (a warning each).  ST_OK otherwise.
 */
enum status migrate_check(const struct mplan *plan, const struct history *h)
	__attribute__((warn_unused_result));

/*
 * Apply the pending and re-run files of plan on *work, opening that
 * connection first if it is NULL, and creating the history table if needed.
 * Logs each file with its duration.  Stops at the first failure (that file's
 * transaction rolled back) and returns its status.  *applied counts files run.
 */
enum status migrate_apply(const struct mplan *plan, struct history *h, const struct config *cfg,
			  PGconn **work, int *applied) __attribute__((warn_unused_result));

/* Name of a state, as status prints it ("applied", "pending", ...). */
const char *migrate_state_name(enum file_state st);

/* Compare file names in byte order (for qsort of char *). */
int migrate_name_cmp(const void *a, const void *b);

/*
 * Parse the "-- pgprelude: ..." directives at the top of text.  Returns true
 * and sets *repeatable, or false with *bad_line set to the line of an
 * unknown directive.
 */
bool migrate_directives(const char *text, bool *repeatable, int *bad_line);

void mplan_free(struct mplan *plan);

#endif
