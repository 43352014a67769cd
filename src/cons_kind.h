/*
 * cons_kind.h — what the converge driver (constraints.c) shares with the
 * code of each kind of constraint (cons_unique.c, cons_not_null.c): the
 * state of a run, a spec resolved against the catalog, and the table row a
 * kind fills in.  The driver decides the order (check every spec, run every
 * pre-flight, converge in order retrying on lock_timeout, verify every
 * spec); a kind only knows its own catalog state and DDL.
 */
#ifndef PGPRELUDE_CONS_KIND_H
#define PGPRELUDE_CONS_KIND_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "constraints.h"
#include "db.h"

#define CONS_SHOW_KEYS 5    /* offending keys shown by a failed pre-flight */
#define CONS_DDL_MAX 16	    /* statements of one spec */
#define CONS_DDL_ALONE (-1) /* a statement run outside a transaction (concurrently) */

/*
 * The DDL a plan line stands for: what converge would send, in order, each
 * statement with its transaction.  Consecutive statements of a spec with the
 * same txn (counted from 0 in the spec) run in one transaction; those of
 * CONS_DDL_ALONE one by one outside any, under timeouts set for the session.
 */
struct cons_ddl {
	char *sql[CONS_DDL_MAX];
	int txn[CONS_DDL_MAX];
	int n;
};

/* A spec resolved against the catalog. */
struct cons_resolved {
	bool absent; /* CONS_PLAN/VERIFY: the table does not exist (yet) */
	char relid[16];
	char *qtable;	  /* "schema"."table"; absent: the table as the file names it, quoted */
	char *qschema;	  /* "schema" */
	char *shown;	  /* schema.table, for messages */
	char *attnums;	  /* "2 3", as pg_index.indkey prints */
	char *qname;	  /* "table": the alias where's column references resolve against */
	char *qfrom;	  /* what a pre-flight of a unique reads: qtable, or ONLY qtable when
			  the table has inheritance children (an index does not cover them) */
	char *pred;	  /* the normal form of where (cons_normal_form), or NULL: none, or
			  one the server reduces to true */
	bool partitioned; /* relkind 'p' */
	char *partkey;	  /* its partition key's attnums ("1 2", 0 for an expression), or NULL */
	char *partcols;	  /* the same as names, for messages */
	bool owned;	  /* the role has the owner's privileges (ALTER TABLE may run) */
	char *owner;	  /* the table's owner */
	char *role;	  /* current_user */
	int max_keys;	  /* max_index_keys of the server */
};

struct cons_cache;

struct cons_run {
	const struct cfile *cf;
	const struct phase *ph;
	PGconn *conn;
	PGconn *watch; /* the idle lock connection: progress, lock holders; or NULL */
	bool quiet;    /* a lock_timeout will be tried again: cons_run_steps does not log it */
	struct db_run failed; /* the last statement cons_run_steps saw fail */
	char *failed_sql;     /* its text, or NULL */
	enum cons_mode mode;
	bool later_ok;
	bool named;    /* a failure's context named the spec (file:line, [kind name]) */
	bool uptodate; /* set by a kind's check: the spec needs no DDL and nothing to log */
	int changes;
	struct cons_resolved *res;
	/*
	 * Results of the catalog queries of the whole file read ahead in a few
	 * pipelines (a no-op run: a few round trips, not several per spec), or
	 * NULL.  Only while nothing has changed: dropped before any DDL.
	 */
	struct cons_cache *cache;
};

/*
 * One kind of constraint.  Each function logs what it finds; r->mode says
 * whether check also prints the plan (CONS_PLAN).
 */
struct cons_kind {
	enum cspec_kind kind;
	/*
	 * Decide what s needs, and run its pre-flight when it needs DDL that a
	 * pre-flight guards.  With CONS_PLAN, print the actions, each with the
	 * DDL converge would run for it (cons_plan_line).  Returns ST_OK
	 * (*pf_failed set when the pre-flight failed), ST_DRIFT, or a failure.
	 * Sets r->uptodate when s needs nothing at all: converge then has
	 * nothing to do or say as long as no DDL ran since.
	 */
	enum status (*check)(struct cons_run *r, const struct cspec *s,
			     const struct cons_resolved *rv, bool *pf_failed);
	/* Converge s (its pre-flight passed).  Counts r->changes; a failure is logged. */
	enum status (*converge)(struct cons_run *r, const struct cspec *s,
				const struct cons_resolved *rv);
	/*
	 * Whether s is present and valid: ST_OK, ST_DRIFT after logging the
	 * difference, or a failure.  With report, an ok line goes to stdout.
	 */
	enum status (*verify)(struct cons_run *r, const struct cspec *s,
			      const struct cons_resolved *rv, bool report);
	/* After s failed for good (not on a lost connection): what it left behind.  May be NULL. */
	void (*after_failure)(struct cons_run *r, const struct cspec *s,
			      const struct cons_resolved *rv);
	/*
	 * The DDL that converging s runs on rv's table, which does not exist
	 * yet (rv->absent): all of it, into ddl (for the plan).
	 */
	void (*plan_absent)(const struct cspec *s, const struct cons_resolved *rv,
			    struct cons_ddl *ddl);
	/*
	 * Queue (cons_queue) the catalog queries check will run for s on rv's
	 * table (relid, qtable, qname and attnums set; pred unknown) that the
	 * results of earlier passes (cons_cached) tell: pass 0, 1, ... until
	 * it returns false (nothing more to queue).  May be NULL.
	 */
	bool (*prefetch)(struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
			 int pass);
};

extern const struct cons_kind cons_unique;
extern const struct cons_kind cons_not_null;

/* ---- what the driver offers to the kinds ---- */

/*
 * The normal form of the predicate expr on rv's table, as the server's
 * planner reads it: the text of EXPLAIN (VERBOSE, COSTS OFF) SELECT 1 FROM a
 * row of the table's type WHERE (expr).  Two predicates with the same form
 * select the same rows.  Creates and locks nothing, so it needs no TEMP
 * privilege and runs on a standby and in a read-only transaction; expr goes
 * as one statement of the extended protocol (the server refuses a second).
 * Returns the malloc'd text, or NULL with *err set to the failed result
 * (PQclear it; NULL when the connection gave none).  Logs nothing.
 */
char *cons_normal_form(struct cons_run *r, const struct cons_resolved *rv, const char *expr,
		       PGresult **err);

/* The statement cons_normal_form sends for expr on rv's table (malloc'd). */
char *cons_normal_form_sql(const struct cons_resolved *rv, const char *expr);

/*
 * db_query, answered from r->cache when the same statement with the same
 * parameters was read ahead.  Returns the result (PQclear it), or NULL with
 * *st set (logged).
 */
PGresult *cons_query(struct cons_run *r, const char *sql, int nparams, const char *const *params,
		     enum status *st);

/*
 * Queue sql with params (copied) for the next read-ahead pipeline; a
 * statement already cached or queued is not queued again.  types, the SQL
 * types the server gives the parameters ("oid,name"; what sql written alone
 * makes of them), lets the statements of one text go as one; NULL: sql
 * goes alone.  No-op without r->cache.
 */
/* Read ahead for r's file (r->cache), whose messages name file. */
void cons_cache_start(struct cons_run *r, const char *file);

/* Send what is queued, in pipelines, and keep the results (cons_cached answers from them). */
void cons_cache_fill(struct cons_run *r);

/* Forget what was read ahead: it is stale once anything changed (before any DDL). */
void cons_cache_drop(struct cons_run *r);

/* Whether a stop signal cancelled a pipeline of the read-ahead. */
bool cons_cache_stopped(const struct cons_run *r);

void cons_queue(struct cons_run *r, const char *sql, const char *types, int nparams,
		const char *const *params);

/* The read-ahead result of sql with params (a copy: PQclear it), or NULL: none. */
PGresult *cons_cached(const struct cons_run *r, const char *sql, int nparams,
		      const char *const *params);

/*
 * A query for spec s that may wait for a lock on its table (reading the
 * table's index predicates, a pre-flight reading the whole table): progress
 * lines at s's line, naming whoever holds the lock; a stop signal cancels it.
 * Answered from r->cache when read ahead.  Returns the result (PQclear it), or NULL with *st set (logged).
 */
PGresult *cons_spec_query(struct cons_run *r, const struct cspec *s, const char *sql, int nparams,
			  const char *const *params, enum status *st);

/*
 * Run the count query sql (freed here) of s's pre-flight.  When its first
 * column is not "0", sets *failed and returns the result (PQclear it).
 * Else returns NULL: *st is ST_OK (nothing found) or the failure (logged).
 */
PGresult *cons_preflight_count(struct cons_run *r, const struct cspec *s, char *sql, bool *failed,
			       enum status *st);

/*
 * Run steps on r->conn with s's lock_timeout and statement_timeout: in one
 * transaction (in_tx), or one by one in autocommit (for CONCURRENTLY).  Each
 * goes through db_run, watched from r->watch: progress lines, who holds a
 * lock it waits for; a stop signal cancels it.  A failure is logged against
 * s's section, except a lock_timeout while r->quiet (the driver tries again
 * and says so); r->failed and r->failed_sql keep it.  Returns the status.
 */
enum status cons_run_steps(struct cons_run *r, const struct cspec *s, char *const *steps, int n,
			   bool in_tx) __attribute__((warn_unused_result));

/*
 * Whether the role may run s's DDL on rv's table (it has the owner's
 * privileges).  When not, logs the error at s (a state to fix, not the
 * file: the caller counts it as a failed pre-flight) and returns false.
 */
bool cons_check_owner(const struct cons_run *r, const struct cspec *s,
		      const struct cons_resolved *rv);

/* Append sql (taken) to d with its transaction txn; beyond CONS_DDL_MAX it is freed. */
void cons_ddl_add(struct cons_ddl *d, char *sql, int txn);

/* Free the statements of d and empty it. */
void cons_ddl_free(struct cons_ddl *d);

/* What a line of plan says of its spec, beside its text (plan --json). */
enum cons_verdict {
	CONS_SAYS,    /* what is, or what converge will do */
	CONS_DRIFT,   /* "drift: ...": the database has another definition */
	CONS_REFUSED, /* "cannot run: ...": what the database's state forbids */
};

/* The pre-flight a line of plan names ("...; pre-flight: TEXT"). */
enum cons_pf {
	CONS_PF_NONE, /* the line names none */
	CONS_PF_PASSED,
	CONS_PF_NOT_NEEDED,
	CONS_PF_FAILED,
};

/* One line of plan or verify, as report_constraint is handed it. */
struct cons_line {
	const char *text;   /* all of it, after "kind "name" on table: " */
	const char *action; /* text without the pre-flight part */
	enum cons_verdict verdict;
	enum cons_pf pf;
	const char *pf_text; /* after "; pre-flight: " (CONS_PF_NONE: NULL) */
};

/* One line of the plan or of verify on stdout: "file:line: kind "name" on table: text". */
void cons_out_line(const struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A line of the plan, "drift: TEXT" (CONS_DRIFT) or "cannot run: TEXT" (CONS_REFUSED). */
void cons_verdict_line(const struct cons_run *r, const struct cspec *s,
		       const struct cons_resolved *rv, enum cons_verdict verdict, const char *fmt,
		       ...) __attribute__((format(printf, 5, 6)));

/*
 * A line of the plan that stands for the DDL ddl (taken: emptied), which
 * plan --sql and --json show with it (report_constraint).
 */
void cons_plan_line(const struct cons_run *r, const struct cspec *s, const struct cons_resolved *rv,
		    struct cons_ddl *ddl, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * cons_plan_line for DDL behind a pre-flight pf, whose rows are what:
 * the line ends "; pre-flight: no WHAT", "not needed" or "FAILED (WHAT, see
 * above)".
 */
void cons_preflight_line(const struct cons_run *r, const struct cspec *s,
			 const struct cons_resolved *rv, struct cons_ddl *ddl, enum cons_pf pf,
			 const char *what, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/*
 * One offending key for a message: "a = 1" or "(a, b) = ('x,y', NULL)",
 * from the first ncols columns of row of res, named by names: numbers and
 * booleans as they are, every other value as a quoted SQL literal (so the
 * string 'NULL' is not NULL, and a comma inside a value is not a
 * separator).  malloc'd.
 */
char *cons_key_text(const char *names, int ncols, const PGresult *res, int row);

#endif
