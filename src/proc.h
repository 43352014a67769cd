/*
 * proc.h — run an external command (a "run" phase) and hand over to the
 * application with exec.
 */
#ifndef PGPRELUDE_PROC_H
#define PGPRELUDE_PROC_H

#include "config.h"
#include "status.h"

/*
 * Run argv (argv.v[0] looked up in PATH, no shell) in its own process group,
 * with stdin from /dev/null and the environment intact.  Every line the
 * command writes to stdout or stderr is logged through log_output() under
 * the prefix (a partial last line too).  When timeout_ms > 0 and the command
 * is still running after it, its whole process group gets SIGTERM, then
 * SIGKILL 5 seconds later.
 *
 * Returns ST_OK when the command exited 0.  Otherwise logs one error line
 * ("run step \"NAME\" failed: command \"directus\" exited with status 3",
 * "... was killed by signal 9 (Killed)", "... timed out after 10 s",
 * "... could not be started: command not found") and returns ST_EXTERNAL.
 * Descriptors of pgprelude are not inherited (they are all O_CLOEXEC).
 */
enum status proc_run(const char *prefix, const struct strv *argv, long timeout_ms)
	__attribute__((warn_unused_result));

/*
 * Replace pgprelude with argv (looked up in PATH), environment intact.
 * Returns only on failure, after logging it: ST_NOTFOUND when the command
 * does not exist, ST_NOEXEC when it cannot be executed.
 */
enum status proc_exec(const struct strv *argv) __attribute__((warn_unused_result));

#endif
