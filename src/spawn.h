/*
 * spawn.h — start a command as a child process: the PATH search, fork and
 * exec with an error pipe, the child's clean slate (signals, process group,
 * descriptors, user), and the one report of why a command could not be
 * executed.  Used by proc (run steps, the exec hand-over) and init (the
 * supervised application); it knows nothing of signals received or of what
 * the child is for.
 */
#ifndef PGPRELUDE_SPAWN_H
#define PGPRELUDE_SPAWN_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "privdrop.h"
#include "status.h"
#include "util.h"

#ifndef NSIG
#define NSIG 65
#endif

/* How the child is set up before it executes the command. */
struct spawn_opts {
	const char *step;	   /* run step name for messages, or NULL: the application */
	int in_fd;		   /* becomes stdin, or -1 to keep stdin */
	int out_fd;		   /* becomes stdout and stderr, or -1 to keep them */
	const struct creds *creds; /* user to switch to, or NULL */
	bool foreground;	   /* make the child's group the terminal's foreground group */
	bool die_with_parent;	   /* SIGKILL the child when pgprelude dies */
	bool hints;		   /* add hint lines to the report of an exec failure */
};

/*
 * Start argv (argv->v[0] looked up in PATH as execvp does, no shell) as a
 * child in its own process group, with every signal disposition at its
 * default and an empty signal mask, set up as opts says.  argv->v[0] must
 * not be NULL.  Returns ST_OK with the child's pid in *pid once the exec
 * succeeded.  Otherwise the child (if any) has been reaped and the failure
 * logged; returns ST_NOTFOUND (no such command, or a missing #! interpreter),
 * ST_NOEXEC (not executable, or switching user failed), or ST_INTERNAL (no
 * pipe, no fork).
 */
enum status spawn_start(const struct strv *argv, const struct spawn_opts *opts, pid_t *pid)
	__attribute__((warn_unused_result));

/*
 * Log why cmd could not be executed: err is the errno of execve/execvp.
 * step names the run step for the message ("run step \"NAME\" could not be
 * started: command \"CMD\" not found"), or is NULL for the application
 * ("could not execute \"CMD\": No such file or directory").  With hints, a
 * hint line says what to check.  Returns ST_NOTFOUND (ENOENT, ENOTDIR, a
 * missing #! interpreter) or ST_NOEXEC (anything else).
 */
enum status spawn_report(const char *step, const char *cmd, int err, bool hints)
	__attribute__((warn_unused_result));

/*
 * Set every signal's disposition to SIG_DFL (an ignored signal would stay
 * ignored across exec).  When saved is not NULL (NSIG entries), the old
 * dispositions are stored there, SIG_DFL for the signals that cannot be
 * changed.  Async-signal-safe.
 */
void spawn_default_signals(struct sigaction *saved);

#endif
