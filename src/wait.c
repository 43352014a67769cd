#include "wait.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "init.h"
#include "util.h"

int wait_fd(int fd, short events, long ms)
{
	long deadline = ms >= 0 ? clock_ms() + ms : 0;
	for (;;) {
		struct pollfd pfd[2] = { { .fd = fd, .events = events },
					 { .fd = init_signal_fd(), .events = POLLIN } };
		long left = ms >= 0 ? deadline - clock_ms() : -1;
		int n;
		if (ms >= 0 && left < 0)
			left = 0;
		n = poll(pfd, 2, (int)left);
		if (n < 0 && errno != EINTR)
			return 0;
		if (n > 0 && pfd[1].revents) {
			int sig;
			while ((sig = init_take_signal()) != 0)
				if (init_is_stop(sig))
					return -1;
		}
		if (n > 0 && pfd[0].revents)
			return 1;
		if (n == 0)
			return 0;
	}
}

bool wait_sleep_ms(long ms)
{
	return wait_fd(-1, 0, ms) >= 0;
}

void waiter_start(struct waiter *w)
{
	w->start = clock_ms();
	w->next_report = w->start + w->first_report_ms;
}

long waiter_elapsed(const struct waiter *w)
{
	return clock_ms() - w->start;
}

bool waiter_expired(const struct waiter *w)
{
	return w->timeout_ms > 0 && waiter_elapsed(w) >= w->timeout_ms;
}

bool waiter_report_due(struct waiter *w)
{
	long now = clock_ms();

	if (now < w->next_report)
		return false;
	w->next_report = now + w->report_ms;
	return true;
}

long waiter_next_ms(const struct waiter *w, long most)
{
	long now = clock_ms(), ms = most;

	if (w->timeout_ms > 0 && w->start + w->timeout_ms - now < ms)
		ms = w->start + w->timeout_ms - now;
	if (w->next_report - now < ms)
		ms = w->next_report - now;
	return ms > 0 ? ms : 1;
}

enum status waiter_sleep(struct waiter *w)
{
	long ms = w->backoff_ms;

	if (w->jitter)
		ms = ms / 2 + (long)(rand() % (int)(ms / 2 + 1));
	if (w->timeout_ms > 0 && ms > w->timeout_ms - waiter_elapsed(w))
		ms = w->timeout_ms - waiter_elapsed(w);
	if (ms > 0 && !wait_sleep_ms(ms))
		return ST_SIGNAL;
	if (w->backoff_ms < w->backoff_max_ms)
		w->backoff_ms = w->backoff_ms * 2 < w->backoff_max_ms ? w->backoff_ms * 2
								      : w->backoff_max_ms;
	return ST_OK;
}
