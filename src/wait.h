/*
 * wait.h — waiting, the one way pgprelude does it: for a descriptor, for a
 * while, or for a condition (the database, a lock, relations) with a
 * deadline, jittered backoff and progress lines.  A stop signal (init.h)
 * ends every wait at once.
 */
#ifndef PGPRELUDE_WAIT_H
#define PGPRELUDE_WAIT_H

#include <stdbool.h>

#include "status.h"

/*
 * Wait until fd is ready for events, a stop signal arrives, or ms pass
 * (ms < 0: no limit; fd < 0: only the signal and the time).  Returns 1 when
 * fd is ready, 0 on timeout, -1 on a stop signal.  Other signals are
 * consumed and ignored: before the hand-over only the stop signals mean
 * something.
 */
int wait_fd(int fd, short events, long ms);

/* Sleep ms milliseconds.  False as soon as a stop signal arrives. */
bool wait_sleep_ms(long ms);

/*
 * A wait for a condition that is tried again and again.  Fill the settings,
 * then call waiter_start; between tries, waiter_expired, waiter_report_due
 * and waiter_sleep.
 */
struct waiter {
	/* settings */
	long timeout_ms;      /* give up after this long; 0: never */
	long backoff_ms;      /* the first sleep */
	long backoff_max_ms;  /* sleeps double up to this */
	bool jitter;	      /* sleep between 50 % and 100 % of the backoff */
	long first_report_ms; /* the first progress line after this long (0: at once) */
	long report_ms;	      /* then one every this long */
	/* state */
	long start;
	long next_report;
};

void waiter_start(struct waiter *w);

/* Milliseconds since waiter_start. */
long waiter_elapsed(const struct waiter *w);

/* Whether the timeout has passed. */
bool waiter_expired(const struct waiter *w);

/* Whether a progress line is due now; when it is, the next one is scheduled. */
bool waiter_report_due(struct waiter *w);

/*
 * How long to wait before looking again: until the timeout or the next
 * progress line, whichever comes first, and at most most; at least 1 ms.
 */
long waiter_next_ms(const struct waiter *w, long most);

/*
 * Sleep the backoff (jittered, never past the timeout), then double it up
 * to its maximum.  ST_OK, or ST_SIGNAL when a stop signal arrived.
 */
enum status waiter_sleep(struct waiter *w) __attribute__((warn_unused_result));

#endif
