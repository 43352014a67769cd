/*
 * proc.h — run an external command (a "run" phase) and hand over to the
 * application with exec.
 */
#ifndef PGPRELUDE_PROC_H
#define PGPRELUDE_PROC_H

#include "status.h"
#include "util.h"

/* After SIGTERM on timeout, or a stop signal, the process group gets SIGKILL this much later. */
#define PROC_KILL_GRACE_MS 5000

/*
 * Run argv (argv.v[0] looked up in PATH, no shell) in its own process group,
 * with stdin from /dev/null and the environment intact.  Every line the
 * command writes to stdout or stderr is logged through log_output() under
 * the prefix (a partial last line too).  When timeout_ms > 0 and the command
 * is still running after it, its whole process group gets SIGTERM, then
 * SIGKILL PROC_KILL_GRACE_MS (5 s) later.  Every signal pgprelude receives
 * meanwhile (init_take_signal) is passed on to the group; a stop signal
 * also ends the step, with SIGKILL after the same grace time.
 *
 * Returns ST_OK when the command exited 0.  Otherwise logs one error line
 * ("run step \"NAME\" failed: command \"directus\" exited with status 3",
 * "... was killed by signal 9 (Killed)", "... timed out after 10 s",
 * "... could not be started: command not found") and returns ST_EXTERNAL;
 * after a stop signal logs "run step \"NAME\" stopped: ..." and returns
 * ST_SIGNAL; ST_USAGE when argv is empty, ST_INTERNAL when no pipe or
 * process could be had.  Descriptors of pgprelude are not inherited (they
 * are all O_CLOEXEC).
 */
enum status proc_run(const char *prefix, const struct strv *argv, long timeout_ms)
	__attribute__((warn_unused_result));

/* proc_run with grace_ms instead of PROC_KILL_GRACE_MS between SIGTERM (or a stop signal) and SIGKILL. */
enum status proc_run_grace(const char *prefix, const struct strv *argv, long timeout_ms,
			   long grace_ms) __attribute__((warn_unused_result));

/*
 * Replace pgprelude with argv (looked up in PATH), environment intact.
 * Returns only on failure, after logging it: ST_NOTFOUND when the command
 * does not exist, ST_NOEXEC when it cannot be executed.
 */
enum status proc_exec(const struct strv *argv) __attribute__((warn_unused_result));

#endif
