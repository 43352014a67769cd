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
	PGconn *conn;		/* the lock connection: reads and waits */
	PGconn *work;		/* opened on first use: applies files */
	struct history hist;
	struct mplan *plans;	/* one per phase; filled for dir phases */
};

/*
 * Load the history and scan every dir phase (reading and checksumming every
 * file).  With check, refuse changed files before anything runs.  Returns
 * ST_OK or the failure status after logging.  Free with phases_free.
 */
enum status phases_prepare(struct phases *p, const struct config *cfg, PGconn *conn, bool check)
	__attribute__((warn_unused_result));

/* Run every phase in order; stops at the first failure and returns it. */
enum status phases_run(struct phases *p) __attribute__((warn_unused_result));

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
