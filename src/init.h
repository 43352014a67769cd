/*
 * init.h — pgprelude's duties as the container's first process.
 *
 * From the start every signal that can be caught (all but the seven fault
 * signals SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS, and KILL and STOP) is
 * blocked and read synchronously from a signalfd: there are no signal
 * handlers.  SIGPIPE and SIGXFSZ that pgprelude's own writes raise are
 * dropped, never passed on.  Before the hand-over, TERM, INT,
 * QUIT and HUP ask pgprelude to stop (it cancels what it is doing, rolls
 * back, releases the lock and exits 128+N); a run step gets every signal
 * forwarded to its process group.  After the hand-over, in supervise mode,
 * pgprelude forwards every signal to the application, reaps every zombie
 * (orphaned grandchildren too), and exits with the application's status.
 */
#ifndef PGPRELUDE_INIT_H
#define PGPRELUDE_INIT_H

#include <stdbool.h>
#include <sys/types.h>

#include "privdrop.h"
#include "status.h"
#include "util.h"

/* Block the signals and open the signalfd.  Logs and returns ST_INTERNAL on failure. */
enum status init_setup(void) __attribute__((warn_unused_result));

/* The signalfd to poll for POLLIN, or -1 before init_setup. */
int init_signal_fd(void);

/*
 * Read one pending signal from the signalfd without blocking.  Returns its
 * number, or 0 when none is pending.  A stop signal (TERM, INT, QUIT, HUP)
 * is also remembered for init_stop_signal.  SIGPIPE and SIGXFSZ that
 * pgprelude raised itself (its own write to a closed pipe, or past the file
 * size limit) are skipped: they are never passed on to anyone.
 */
int init_take_signal(void);

/*
 * Discard the SIGPIPE and SIGXFSZ that pgprelude raised itself (a log
 * write to a closed stderr) and that still wait in the blocked set, before
 * the signal mask is emptied for an exec: pending, they would kill it.  The
 * same signals sent by another process are left pending.
 */
void init_drop_own_signals(void);

/* The first stop signal received, or 0. */
int init_stop_signal(void);

/* Whether sig asks pgprelude to stop before the hand-over. */
bool init_is_stop(int sig);

/* Reap every exited child without waiting (zombies left by run steps). */
void init_reap(void);

/* Whether pgprelude runs as PID 1. */
bool init_is_pid1(void);

/*
 * Start argv as a child in its own process group (with creds applied in the
 * child when not NULL, and SIGKILL as its parent-death signal), then act as
 * its init until it exits: forward every signal, reap every zombie.  Not
 * being PID 1, become a child subreaper first.  On a terminal: the child
 * gets the terminal when pgprelude has it (at the start, and on SIGCONT,
 * which goes to the child's whole group); not PID 1, pgprelude stops itself
 * when the terminal stops the child (TSTP, TTIN, TTOU), so that a shell's
 * job control sees it.  Returns the exit code pgprelude must exit with: the child's
 * status, or 128+N when a signal killed it; on failure to start it logs and
 * returns 126 or 127 (not found).
 */
int init_supervise(const struct strv *argv, const struct creds *creds);

#endif
