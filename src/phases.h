/*
 * phases.h — run the configured phases in order: dir (migrate.h), run
 * (proc.h), wait_for; check each phase's expect; report status.
 */
#ifndef PGPRELUDE_PHASES_H
#define PGPRELUDE_PHASES_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "config.h"
#include "history.h"
#include "migrate.h"
#include "status.h"

struct phases {
	const struct config *cfg;
	PGconn *conn; /* the lock connection: reads and waits */
	PGconn *work; /* opened on first use: applies files */
	struct history hist;
	struct mplan *plans; /* one per phase; filled for dir phases */
	int next_read;	     /* the phase whose folder is being read */
	enum status read_st; /* how reading the folders went so far */
};

/* Set p up for cfg, nothing read yet.  Free with phases_free. */
enum status phases_init(struct phases *p, const struct config *cfg)
	__attribute__((warn_unused_result));

/*
 * db_wait, reading the folders ahead (a listing or a file at a time, the
 * messages kept for phases_prepare to show) whenever the server is busy
 * setting up the connection.
 */
enum status phases_wait(struct phases *p, PGconn **conn) __attribute__((warn_unused_result));

/*
 * Load the history, read what is left of the dir phases' folders (reading
 * and checksumming every file), and give each file its state.  With check,
 * refuse changed files before anything runs.  Returns ST_OK or the failure
 * status after logging.
 */
enum status phases_prepare(struct phases *p, PGconn *conn, bool check)
	__attribute__((warn_unused_result));

/* Run every phase in order; stops at the first failure and returns it. */
enum status phases_run(struct phases *p) __attribute__((warn_unused_result));

enum inspect {
	INSPECT_STATUS,	     /* print every file with its state */
	INSPECT_STATUS_JSON, /* the same as one JSON document */
	INSPECT_PLAN,	     /* every pending file and constraint action, with pre-flights */
	INSPECT_VERIFY	     /* applied files and declared constraints as they must be */
};

/*
 * Connect (waiting as db_wait does), read the history and the folders, and
 * report as what asks, changing nothing.  Returns the report's status
 * (ST_OK, or ST_PREFLIGHT / ST_DRIFT for plan and verify), or the failure
 * status after logging.
 */
enum status phases_inspect(const struct config *cfg, enum inspect what)
	__attribute__((warn_unused_result));

/* Print every file of every phase with its state: a table, or JSON. */
void phases_print_status(const struct phases *p, bool json);

/*
 * Names of the relations in names that do not exist (to_regclass is NULL),
 * as one comma-separated malloc'd string, or NULL when all exist.  *st is
 * set to the query's status.
 */
char *phases_missing_relations(PGconn *conn, const struct strv *names, enum status *st);

void phases_free(struct phases *p);

#endif
