/*
 * proc.h — run an external command (a "run" phase) and hand over to the
 * application with exec.
 */
#ifndef PGPRELUDE_PROC_H
#define PGPRELUDE_PROC_H

#include <sys/types.h>

#include "config.h"
#include "privdrop.h"
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

/*
 * Start argv as the supervised application: a child in its own process
 * group (the terminal's foreground group when stdin is a terminal), stdio
 * inherited, signal mask and dispositions reset, creds applied first when
 * not NULL.  Returns ST_OK with its pid in *pid, or logs and returns
 * ST_NOTFOUND, ST_NOEXEC (also when switching user failed), ST_INTERNAL.
 */
enum status proc_spawn(const struct strv *argv, const struct creds *creds, pid_t *pid)
	__attribute__((warn_unused_result));

#endif
