/*
 * config.h — pgprelude's configuration: one INI file read with inih.
 *
 * Layout of the file (keys before any section are global):
 *
 *   log_format = text | json          log_level = debug | info | warning | error
 *   termination_log = /dev/termination-log   a failed start's summary, when that file exists
 *   [database]
 *   url = ${DATABASE_URL:-}            libpq conninfo or URI; empty: libpq's PG* vars
 *   wait_timeout = 60s                 total time to wait for the database
 *   lock_wait_timeout = 5m             total time to wait for the migration lock
 *   role = app_owner                   files and constraint DDL run after SET ROLE app_owner
 *   [history]
 *   table = pgprelude.history         [schema.]name of the guard table
 *   [phase NAME]                       one per phase, run in file order
 *   dir = db-init                      kind "dir": a folder of migrations
 *   run = directus schema apply --yes snapshot.yaml   kind "run": argv, no shell
 *   wait_for = directus_collections, public.users     kind "wait_for": relations
 *   wait_for_query = SELECT count(*) > 0 FROM x       kind "wait_for": a query
 *   timeout = 10m                      run / wait_for: give up after this long
 *   expect = organization_users, users relations that must exist afterwards
 *   expect_query = SELECT count(*) > 0 FROM directus_users   must return true afterwards
 *   inputs = snapshot.yaml, /directus/package.json   run: the step is skipped while these
 *                                      files and its argv are unchanged and its expect holds
 *   lock_timeout = 5s                  dir: lock_timeout for each file
 *   statement_timeout = 0              dir: statement_timeout for each file
 *   lock_retries = 5                   dir: retries after lock_timeout (1 s, 2 s, 4 s, ...)
 *   out_of_order = warn | refuse       dir: a pending file that sorts before an applied one
 *   [exec]
 *   command = npx directus start       used when no command follows "--"
 *   mode = auto | exec | supervise     auto: supervise when PID 1, else exec
 *   user = node | 1000 | 1000:1000     switch to this user before the hand-over
 *
 * Values may use ${VAR} and ${VAR:-default}; when VAR is unset and VAR_FILE
 * names a file, the file's content (without its trailing newline) is used.
 * Durations are a number with an optional unit ms, s, m, h (no unit: s).
 * Relative dir paths are taken relative to the folder of the config file.
 * A value may continue on following indented lines (inih's multi-line);
 * the pieces are joined with a newline.  Lines are at most 199 bytes.
 *
 * This module does no I/O beyond reading the config file and *_FILE secrets,
 * and knows nothing of libpq.  config.c loads the file, config_values.c
 * parses durations, words and lists, expand.c expands ${VAR}.
 */
#ifndef PGPRELUDE_CONFIG_H
#define PGPRELUDE_CONFIG_H

#include <stdbool.h>

#include "log.h"
#include "status.h"
#include "util.h"

enum phase_kind {
	PHASE_NONE = 0,
	PHASE_DIR,
	PHASE_RUN,
	PHASE_WAIT_FOR
};

enum exec_mode {
	EXEC_AUTO = 0, /* supervise when PID 1, exec otherwise */
	EXEC_EXEC,
	EXEC_SUPERVISE
};

struct phase {
	char *name;
	int line; /* line of the [phase NAME] header */
	enum phase_kind kind;
	char *dir;	       /* PHASE_DIR: resolved folder path */
	struct strv argv;      /* PHASE_RUN: the command, split into words */
	struct strv relations; /* PHASE_WAIT_FOR: relations to wait for */
	char *query;	       /* PHASE_WAIT_FOR: query that must return true, or NULL */
	struct strv expect;    /* relations that must exist when the phase ends */
	char *expect_query;    /* a query that must return true when the phase ends, or NULL */
	struct strv inputs; /* PHASE_RUN: files (globs) whose contents, with argv, fingerprint it */
	long timeout_ms;    /* run / wait_for; default 10 minutes; 0 = none */
	long lock_timeout_ms;	   /* dir; default 5000 */
	long statement_timeout_ms; /* dir; default 0 (none) */
	int lock_retries; /* dir; retries of a statement that hits lock_timeout; default 5 */
	bool out_of_order_refuse; /* dir: a pending file before an applied one stops the start */
};

struct config {
	char *path; /* the config file as given */
	enum log_format log_format;
	int log_level;	      /* enum log_level from log.h; default info */
	char *db_url;	      /* conninfo or URI; NULL or "" = libpq's PG* variables */
	char *db_password;    /* from PGPASSWORD_FILE when PGPASSWORD is unset, else NULL */
	char *db_url_raw;     /* [database] url as written, before ${...} expansion */
	char *db_role;	      /* [database] role: files and DDL run as it (SET ROLE), or NULL */
	long wait_timeout_ms; /* default 60000 */
	long lock_wait_timeout_ms; /* default 300000 */
	char *history_schema;	   /* default "pgprelude" */
	char *history_table;	   /* default "history" */
	struct phase *phases;
	int n_phases;
	struct strv exec_command; /* [exec] command, split into words; may be empty */
	enum exec_mode exec_mode;
	char *exec_user;       /* [exec] user as written, or NULL */
	char *termination_log; /* where a failed start leaves its summary ("": nowhere) */
};

/* Kubernetes' default terminationMessagePath: the summary goes there when it exists. */
#define CONFIG_TERMINATION_LOG "/dev/termination-log"

/*
 * Read and validate the config file at path.  On success returns ST_OK and
 * fills *cfg (free with config_free).  On any error logs one line naming
 * file, line and key (with a "did you mean" hint where a known key is close),
 * leaves *cfg freed, and returns ST_USAGE.  Out of memory exits (util.h).
 */
enum status config_load(const char *path, struct config *cfg) __attribute__((warn_unused_result));

/*
 * The connection string and the PGPASSWORD_FILE password as they are now,
 * for one connection attempt: ${VAR}s expanded again and *_FILE secrets read
 * again, so that a token a sidecar rotates is picked up while pgprelude
 * waits.  *url is NULL when the url is empty or has no reference (use
 * cfg->db_url), *password NULL when there is no PGPASSWORD_FILE; the caller
 * wipes and frees both.  ST_OK, or ST_UNREACHABLE with err (no secret in it)
 * when a secret cannot be read now.
 */
enum status config_secrets_now(const struct config *cfg, char **url, char **password, char *err,
			       size_t errlen) __attribute__((warn_unused_result));

/* Free everything cfg owns and zero it.  config_free on a zeroed config is a no-op. */
void config_free(struct config *cfg);

/*
 * Expand ${VAR} and ${VAR:-default} in s, looking variables up with getenv
 * (and VAR_FILE as described above).  "$$" yields "$"; a "$" not followed by
 * "{" is kept as is.  Returns a malloc'd string, or NULL with a one-line
 * message written into errbuf (errlen bytes): "unterminated ${",
 * "variable X is not set", "could not read X_FILE \"path\": reason".
 * (expand_value of expand.h, for callers outside the configuration.)
 */
char *config_expand(const char *s, char *errbuf, int errlen);

/*
 * Parse a duration ("250ms", "30s", "5m", "1h", "45" = seconds, "0").
 * Returns true and sets *ms, or false when s is not a duration.
 */
bool config_parse_duration(const char *s, long *ms);

/*
 * Split a command line into words like a POSIX shell does, without any
 * expansion: blanks separate words, '…' quotes literally, "…" quotes with
 * \" \\ \$ \` escapes, a backslash outside quotes escapes the next character.
 * Returns true and fills *out (free with strv_free), or false with a static
 * message in *err (unterminated quote, trailing backslash).
 */
bool config_split_words(const char *s, struct strv *out, const char **err);

/* Split a list of names separated by commas and/or blanks into *out (free with strv_free). */
void config_split_list(const char *s, struct strv *out);

/*
 * The known key closest to key (Levenshtein distance at most 2, or a
 * case-insensitive match), from the NULL-terminated list known, or NULL.
 */
const char *config_suggest(const char *key, const char *const *known);

#endif
