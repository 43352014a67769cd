/*
 * status.h — what a step of pgprelude ended with, and the exit code for it.
 *
 * Every module returns an enum status; only main() turns one into an exit
 * code, with status_exit_code().  The exit codes are part of the interface
 * (documented in --help and the README) and never change meaning.
 */
#ifndef PGPRELUDE_STATUS_H
#define PGPRELUDE_STATUS_H

enum status {
	ST_OK = 0,
	ST_USAGE,	/* bad command line or configuration */
	ST_UNREACHABLE, /* database not reachable before the wait timeout */
	ST_AUTH,	/* authentication failed, unknown role or database */
	ST_LOCK,	/* migration lock not obtained in time */
	ST_SQL,		/* SQL error in a migration */
	ST_PREFLIGHT,	/* pre-flight check failed (dirty data) */
	ST_DRIFT,	/* applied file changed, or catalog differs from spec */
	ST_EXTERNAL,	/* run step failed, wait_for timed out, expect unmet */
	ST_CONNLOST,	/* connection lost in the middle of the run */
	ST_INTERNAL,	/* I/O error, out of memory, unexpected server answer */
	ST_SIGNAL,	/* stopped by a signal before the hand-over */
	ST_NOEXEC,	/* the command to hand over to is not executable */
	ST_NOTFOUND	/* the command to hand over to was not found */
};

enum exit_code {
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
	EXIT_AUTH = 4,
	EXIT_LOCK = 5,
	EXIT_SQL = 6,
	EXIT_PREFLIGHT = 7,
	EXIT_DRIFT = 8,
	EXIT_EXTERNAL = 9,
	EXIT_CONNLOST = 10,
	EXIT_INTERNAL = 11,
	EXIT_NOEXEC = 126,
	EXIT_NOTFOUND = 127,
	EXIT_SIGNAL_BASE = 128
};

/*
 * The exit code for a status.  signo is the signal number for ST_SIGNAL
 * (the result is 128 + signo) and ignored otherwise.
 */
int status_exit_code(enum status st, int signo);

/* A short English name of the status ("sql-error"), for logs and JSON. */
const char *status_name(enum status st);

#endif
