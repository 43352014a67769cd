/*
 * phases.h — run the configured phases in order, each through the row of
 * its kind (dir: phase_dir.c, run: phase_run.c, wait_for: phase_wait_for.c),
 * and check each phase's expect.  What status, plan and verify print is
 * report.h's.
 */
#ifndef PGPRELUDE_PHASES_H
#define PGPRELUDE_PHASES_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "config.h"
#include "history.h"
#include "migrate.h"
#include "status.h"
#include "util.h"

/* What a run step's inputs say about it (phase_run.c). */
enum run_verdict {
	RUN_ALWAYS,    /* no inputs: it runs on every start */
	RUN_FIRST,     /* never recorded with its inputs */
	RUN_CHANGED,   /* its inputs or its command changed */
	RUN_UNMET,     /* unchanged, but its expect does not hold */
	RUN_UP_TO_DATE /* unchanged and its expect holds: not run */
};

struct run_state {
	enum run_verdict verdict;
	char fingerprint[65];
	const struct history_row *row; /* its row in the history, or NULL */
};

struct phases {
	const struct config *cfg;
	PGconn *conn; /* the lock connection: reads and waits */
	PGconn *work; /* opened on first use: applies files */
	struct history hist;
	struct mplan *plans;	/* one per phase; filled for the kinds with files (dir) */
	struct run_state *runs; /* one per phase; filled for run steps */
	bool allow_missing;	/* verify: applied files gone from the folder are no difference */
	int next_read;		/* the phase whose folder is being read */
	enum status read_st;	/* how reading the folders went so far */
};

/*
 * One kind of phase: what the phases do with it, one hook each.  A NULL
 * hook: the kind has nothing to do at that step.  Phase i of p is
 * p->cfg->phases[i], its files p->plans[i].
 */
struct phase_ops {
	const char *name; /* as config and status spell it: "dir", "run", "wait_for" */
	bool has_files;	  /* status lists its files (else one row of "-") */
	bool creates;	  /* plan: running it may create what a later constraint needs */
	/*
	 * Read the next bit of phase i ahead (a listing or a file): true with
	 * *st its outcome (logged), or false when all of it is read.
	 */
	bool (*read)(struct phases *p, int i, enum status *st);
	/* Give what was read its state from p->hist.  ST_OK or the status after logging. */
	enum status (*match)(struct phases *p, int i);
	/* Refuse drift before anything runs: ST_OK, or ST_DRIFT after logging. */
	enum status (*check)(const struct phases *p, int i);
	/* Run phase i.  ST_OK, or the failure status after logging. */
	enum status (*run)(struct phases *p, int i);
	/* After phase i ran and its expect holds.  ST_OK, or the failure status after logging. */
	enum status (*done)(struct phases *p, int i);
	/*
	 * Whether phase i has nothing to do (read only, before the lock: a
	 * start where every phase is settled hands over without taking it).
	 * *st carries a failed query.  NULL: never settled.
	 */
	bool (*settled)(struct phases *p, int i, enum status *st);
	/* Phase i is settled and not run: log what running it would have said. */
	void (*skip)(struct phases *p, int i);
	/* status: the state of a kind without files ("applied", "pending", ...), or NULL. */
	const char *(*state)(const struct phases *p, int i);
	/* plan: what it will do, as malloc'd text for the caller to free, or NULL for nothing. */
	char *(*plan_line)(const struct phases *p, int i);
	/* Hint when it ended without creating what expect lists, or NULL. */
	const char *expect_hint;
};

extern const struct phase_ops phase_dir_ops, phase_run_ops, phase_wait_for_ops;

/* The row of kind k (a row that runs nothing for PHASE_NONE); never NULL. */
const struct phase_ops *phases_ops(enum phase_kind k) __attribute__((returns_nonnull));

/* Set p up for cfg, nothing read yet.  Free with phases_free. */
void phases_init(struct phases *p, const struct config *cfg);

/*
 * db_wait, reading the folders ahead (a listing or a file at a time, the
 * messages kept for phases_prepare to show) whenever the server is busy
 * setting up the connection.
 */
enum status phases_wait(struct phases *p, PGconn **conn) __attribute__((warn_unused_result));

/*
 * Load the history, read what is left of the dir phases' folders (reading
 * and checksumming every file), and give each file its state; nothing
 * refused yet (phases_prepare_locked does that).  Returns ST_OK or the failure
 * status after logging.
 */
enum status phases_prepare(struct phases *p, PGconn *conn) __attribute__((warn_unused_result));

/*
 * Once the migration lock is held and the history read under it
 * (phases_prepare or phases_recheck): move the history kept by earlier
 * versions to its own schema, note the lock in p->hist, and refuse drift
 * (every phase's check) before anything runs.  Returns ST_OK or the
 * failure status after logging.
 */
enum status phases_prepare_locked(struct phases *p) __attribute__((warn_unused_result));

/* Run every phase in order; stops at the first failure and returns it. */
enum status phases_run(struct phases *p) __attribute__((warn_unused_result));

/*
 * For status, plan and verify: set p up for cfg, connect (waiting as
 * db_wait does), and read the history and the folders, changing nothing;
 * with read_only, every transaction of the session is read-only.  Returns
 * ST_OK, or the failure status after logging.  Either way, p->conn is the
 * connection or NULL, and phases_close frees p and closes it.
 */
enum status phases_open(struct phases *p, const struct config *cfg, bool read_only)
	__attribute__((warn_unused_result));

/* phases_free, and close p->conn. */
void phases_close(struct phases *p);

/*
 * Names of the relations in names that do not exist (to_regclass is NULL),
 * as one comma-separated malloc'd string for the caller to free, or NULL
 * when all exist or the query failed.  *st is set to the query's status (a
 * failure is logged).
 */
char *phases_missing_relations(PGconn *conn, const struct strv *names, enum status *st);

/*
 * Read the history again and give every file and step its state again
 * (after phases_prepare; nothing read from the folders again).  ST_OK, or
 * the failure status after logging.
 */
enum status phases_recheck(struct phases *p) __attribute__((warn_unused_result));

/* Whether a phase with files has any to apply or a constraint file (read without the lock). */
bool phases_files_pending(const struct phases *p);

/*
 * Whether every phase is settled (its kind's settled hook) and its expect
 * holds: then nothing needs the lock.  Logs what each dir phase would have
 * logged.  *st carries a failure (logged).
 */
bool phases_settled(struct phases *p, enum status *st);

#define BOOLOID 16 /* pg_type.oid of boolean */

/* What a query that must return one boolean returned. */
enum answer {
	ANSWER_TRUE,
	ANSWER_FALSE,
	ANSWER_NULL,
	ANSWER_NOT_BOOL /* not one row of one boolean column */
};

/*
 * Ask conn a query that must return one boolean (wait_for_query,
 * expect_query).  got (len bytes) says what it returned, for messages:
 * "t", "NULL", "\"42\", not a boolean", "2 rows of 1 column".  *st carries
 * a query failure (logged); a failed query answers ANSWER_FALSE.
 */
enum answer phases_ask(PGconn *conn, const char *query, enum status *st, char *got, size_t len);

/*
 * Whether phase ph's expect relations exist and its expect_query returns
 * true, read only, nothing logged but a failing query (*st).
 */
bool phases_expect_holds(struct phases *p, const struct phase *ph, enum status *st);

/* Free what p holds (not p->conn); p is zeroed. */
void phases_free(struct phases *p);

#endif
