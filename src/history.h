/*
 * history.h — the guard table: one row per applied file, keyed by
 * (phase, file).  A file and its row are written in one transaction.
 */
#ifndef PGPRELUDE_HISTORY_H
#define PGPRELUDE_HISTORY_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "config.h"
#include "status.h"

/* A row as read; its strings point into the query result the history keeps. */
struct history_row {
	const char *phase;
	const char *file;
	const char *checksum; /* SHA-256, 64 hex digits */
	const char *applied_at;
	const char *applied_by;
	const char *outcome;
	long duration_ms;
};

/* The default history table, and where versions before 0.2 kept it. */
#define HISTORY_SCHEMA "pgprelude"
#define HISTORY_TABLE "history"
#define HISTORY_LEGACY "public.pgprelude_history"

/*
 * The outcome of a constraint file's row: its checksum is the digest of the
 * catalog as it was when the file was last found converged (cdigest.h).
 */
#define HISTORY_CONVERGED "converged"

struct history {
	char *qualified; /* "schema"."table", quoted */
	char *schema;	 /* the schema, unquoted */
	bool exists;
	bool legacy;		  /* read from HISTORY_LEGACY: history_adopt_legacy moves it */
	char lock_key[256];	  /* the migration lock's second key (lock_key) */
	char lock_pid[16];	  /* the backend holding it; "" before the lock is taken */
	struct history_row *rows; /* the files', in the order they were applied */
	int n;
	/* constraint files' digests (outcome HISTORY_CONVERGED; not files: not in rows) */
	struct history_row *converged;
	int nconverged;
	const struct history_row **by_key; /* the rows sorted by (phase, file) */
	PGresult *res;
};

/*
 * Read the whole table (an absent table is an empty history).  Returns
 * ST_OK, or the failure status after logging.  Free with history_free.
 */
enum status history_load(PGconn *conn, const struct config *cfg, struct history *h)
	__attribute__((warn_unused_result));

/* Whether cfg names the default history table. */
bool history_is_default(const struct config *cfg);

/*
 * Move the history that h->legacy says was read from HISTORY_LEGACY to the
 * default place, keeping its rows, in one transaction (under the migration
 * lock).  ST_OK (nothing to do when not legacy), or the failure after
 * logging.
 */
enum status history_adopt_legacy(PGconn *conn, struct history *h)
	__attribute__((warn_unused_result));

/*
 * After a step that may drop tables (a run step): when the history table
 * existed and is gone now, log that it is, naming after (the step: "run step
 * \"schema\""), and return ST_EXTERNAL; ST_OK while it is there.
 */
enum status history_check_present(PGconn *conn, const struct history *h, const char *after)
	__attribute__((warn_unused_result));

/* Create the table (and its schema) if it does not exist yet, or move the legacy one.  Logs on failure. */
enum status history_ensure(PGconn *conn, struct history *h) __attribute__((warn_unused_result));

/* Note that this run holds the migration lock on backend pid, for history_record. */
void history_set_lock(struct history *h, int pid);

/*
 * Insert or update the row of (phase, file) inside the caller's open
 * transaction, proving on conn's own backend that the migration lock is
 * still held by this run (history_set_lock), and that the row is still prev
 * as this run read it (NULL: no row).  Logs on failure: ST_CONNLOST when the
 * lock is gone or another run wrote the row meanwhile (the caller rolls
 * back), else the query's failure.
 */
enum status history_record(PGconn *conn, const struct history *h, const char *phase,
			   const char *file, const char *checksum, long duration_ms,
			   const char *outcome, const struct history_row *prev)
	__attribute__((warn_unused_result));

/*
 * Record digest as the HISTORY_CONVERGED row of constraint file file of
 * phase, over the row prev as read (NULL: none), with or without the
 * migration lock, unless another run holds it.  Not written (another run at
 * work, or it wrote the row meanwhile) is not a failure: ST_OK, or the
 * query's failure after logging.
 */
enum status history_record_digest(PGconn *conn, const struct history *h, const char *phase,
				  const char *file, const char *digest,
				  const struct history_row *prev)
	__attribute__((warn_unused_result));

/*
 * Whether row r records a failed run of a no-transaction file (its outcome
 * starts with "failed"): such a row does not count as applied.  NULL: false.
 */
bool history_row_failed(const struct history_row *r);

/*
 * Record checksum as the applied one of (phase, file), whose row has
 * previous, keeping previous, who accepted it and when (columns added to a
 * table made by an earlier version), inside the caller's transaction, with
 * the lock proved as history_record does.  Logs on failure.
 */
enum status history_accept(PGconn *conn, const struct history *h, const char *phase,
			   const char *file, const char *checksum, const char *previous)
	__attribute__((warn_unused_result));

/* The row of (phase, file), or NULL. */
const struct history_row *history_find(const struct history *h, const char *phase,
				       const char *file);

/* The digest row (HISTORY_CONVERGED) of constraint file file of phase, or NULL. */
const struct history_row *history_converged(const struct history *h, const char *phase,
					    const char *file);

void history_free(struct history *h);

#endif
