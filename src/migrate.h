/*
 * migrate.h — a "dir" phase: a folder of *.sql files, run in byte order of
 * their names, each once, each in one transaction with its history row; and
 * *.ini constraint files (constraints.h), converged on every run, in the
 * same byte order among them.
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
#include "constraints.h"
#include "history.h"
#include "sqlsplit.h"
#include "status.h"

enum file_state {
	FILE_PENDING,  /* never applied: will run */
	FILE_APPLIED,  /* applied, same checksum: nothing to do */
	FILE_CHANGED,  /* applied, checksum differs: refused */
	FILE_RERUN,    /* repeatable, checksum differs: will run again */
	FILE_MOVED,    /* applied under another phase with this checksum: not run */
	FILE_MISSING,  /* in the history, but no longer in the folder */
	FILE_DECLARED, /* a constraint file (*.ini): converged on every run, not in the history */
	FILE_FAILED    /* a no-transaction file whose last run failed part-way: will run again */
};

/* What a file's "-- pgprelude:" lines say. */
struct directives {
	bool repeatable;	   /* "repeatable": runs again whenever it changes */
	bool no_transaction;	   /* "no-transaction": statement by statement, autocommit */
	long lock_timeout_ms;	   /* "lock_timeout=10s": its own; -1: the phase's */
	long statement_timeout_ms; /* "statement_timeout=1h": its own; -1: the phase's */
};

struct mfile {
	char *name; /* file name in the folder: the history key */
	char *path; /* path shown in messages */
	char *text; /* content, NUL-terminated */
	size_t len;
	struct sql_stmt *stmts; /* its statements (sqlsplit) */
	int nstmts;
	char checksum[65];     /* SHA-256, hex, of the text with CRLF as LF and no leading BOM */
	char checksum_raw[65]; /* of its bytes as they are, when that differs ("" otherwise) */
	struct directives directives; /* from its "-- pgprelude:" lines */
	enum file_state state;
	const struct history_row
		*row; /* this file's row (APPLIED, CHANGED, RERUN, MISSING, FAILED) */
	const struct history_row *moved; /* the row under another phase (MOVED) */
	const char *late;		 /* PENDING: the applied file it sorts before, or NULL */
	struct cfile *cons;		 /* FILE_DECLARED: the parsed constraint file */
};

struct mplan {
	const struct phase *phase;
	const char *cfg_path; /* paths in messages are relative to its folder */
	struct mfile *files;  /* folder files in run order, then MISSING ones */
	int n;
	int nlisted; /* files found in the folder: files[0..nlisted), in name order */
	int nread;   /* folder files read so far (migrate_read_next) */
};

/*
 * List the phase's folder into plan: the *.sql and *.ini files in byte
 * order of their names, nothing read yet.  Paths in messages are shown
 * relative to the folder of cfg->path.  Hidden files and other files are
 * skipped with a debug line.  Returns ST_OK, or after logging ST_USAGE for a
 * folder that cannot be read.  Free plan with mplan_free.
 */
enum status migrate_list(const struct config *cfg, const struct phase *ph, struct mplan *plan)
	__attribute__((warn_unused_result));

/*
 * Read, check and checksum the next file of plan (files[nread]): split a
 * SQL file into statements and read its directives, parse a constraint file
 * (FILE_DECLARED).  A leading UTF-8 BOM is dropped from the text (the
 * checksum ignores it, and CRLF line ends).  A transactional SQL file
 * wrapped whole in BEGIN ... COMMIT has those two blanked out of its text
 * and dropped from its statements.  A file with no statement is kept, with
 * a warning (it is recorded as applied); look-alike directives are warned
 * about.  The \restrict and \unrestrict lines of a pg_dump are blanked
 * out of the text (no-ops).  Returns ST_OK, or after logging: ST_USAGE for a
 * bad file (unreadable, not a regular file, a NUL byte, another psql
 * meta-command, other transaction control in a transactional file, an
 * unknown directive, a bad constraint file), ST_SQL for an unterminated
 * quote or comment, or COPY … FROM STDIN data without its "\." line.
 */
enum status migrate_read_next(struct mplan *plan) __attribute__((warn_unused_result));

/*
 * Give every file read its state from the history, and add the files of
 * the phase's history rows that are gone (FILE_MISSING).  A row matches a
 * file when its checksum is either of the file's.  A new file holding what
 * a row of another phase records is FILE_MOVED only when that row's file is
 * gone from its folder: plans (nplans, the listed plans of every phase, of
 * other kinds zeroed) tell.  Returns ST_OK.
 */
enum status migrate_match(struct mplan *plan, const struct history *h, const struct mplan *plans,
			  int nplans) __attribute__((warn_unused_result));

/*
 * Refuse changed files: logs each with both checksums and the way out, and
 * returns ST_DRIFT; reports moved files (a warning each).  ST_OK otherwise.
 */
enum status migrate_check(const struct mplan *plan) __attribute__((warn_unused_result));

/*
 * Apply the pending, re-run and failed files of plan on *work, opening that
 * connection first if it is NULL, and creating the history table if needed,
 * and converge every constraint file, all in byte order of their names.
 * watch is the lock connection, idle meanwhile: it is used to show the
 * progress of long statements and who holds a lock a statement waits for
 * (may be NULL).  Logs each file with its duration.
 *
 * A file runs in one transaction with its history row; a statement that
 * hits lock_timeout (55P03) rolls it back, and it is tried again after 1 s,
 * 2 s, 4 s ... up to the phase's lock_retries times.  A no-transaction file
 * runs statement by statement in autocommit, only a statement that hits
 * lock_timeout being tried again; its history row is written after its last
 * statement, and when one fails a row with outcome "failed at line L:C: ..."
 * records it (FILE_FAILED on the next scan: reported, then run again from
 * its first statement).  Before each CREATE INDEX CONCURRENTLY, an INVALID
 * index of that name on that table (left by an earlier failed build) is
 * dropped with DROP INDEX CONCURRENTLY.
 *
 * Stops at the first failure and returns its status, logged.  *applied
 * counts .sql files run.  The work is done by apply.h.
 */
enum status migrate_apply(const struct mplan *plan, struct history *h, const struct config *cfg,
			  PGconn *watch, PGconn **work, int *applied)
	__attribute__((warn_unused_result));

/*
 * Open the work connection into *work (when NULL) and take the work lock on
 * it, waiting for a session that an earlier, killed run left applying a
 * file.  The lock is held until the session ends (taking it again, as
 * migrate_apply does, nests).  ST_OK or the failure after logging.
 */
enum status migrate_begin_work(const struct config *cfg, PGconn **work)
	__attribute__((warn_unused_result));

/*
 * Whether file f needs nothing done: applied, applied under another phase
 * (moved), or gone from the folder.  A constraint file (FILE_DECLARED) is
 * not: whether its constraints are there is the database's to say.
 */
static inline bool migrate_file_settled(const struct mfile *f)
{
	return f->state == FILE_APPLIED || f->state == FILE_MOVED || f->state == FILE_MISSING;
}

/* Name of a state, as status prints it ("applied", "pending", ...). */
const char *migrate_state_name(enum file_state st);

/* Compare file names in byte order (for qsort of char *). */
int migrate_name_cmp(const void *a, const void *b);

/*
 * Parse the "-- pgprelude: ..." directives among the leading blanks and
 * comments of text (line or block comments; "repeatable", "no-transaction",
 * "lock_timeout=DURATION", "statement_timeout=DURATION", comma- or
 * blank-separated, on one or more lines).  Returns true and fills *d, or
 * false with *bad_line set to the line of an unknown directive (not
 * logged).  When path is not NULL, a line
 * comment that looks like a directive but is none ("-- PgPrelude:", no
 * colon, ...) is logged as a warning against path.
 */
bool migrate_directives(const char *text, const char *path, struct directives *d, int *bad_line);

/*
 * Undo migrate_match (its MISSING entries, every file's state and rows), so
 * that plan can be matched again with a history read again.
 */
void migrate_unmatch(struct mplan *plan);

/* Free what plan holds and zero it. */
void mplan_free(struct mplan *plan);

#endif
