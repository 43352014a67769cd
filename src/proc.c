/*
 * proc.c — run an external command for a "run" phase, and hand over to the
 * application with exec.
 *
 * A run step in outline (spawn.c starts the command):
 *
 *   pipe2(out), open /dev/null (O_CLOEXEC); spawn_start: the command's stdin
 *   is /dev/null, its stdout and stderr the write end of out
 *   loop until the command has exited and its output is closed:
 *     waitpid(WNOHANG)                     → child exit
 *     the timeout passed                   → SIGTERM to the group, SIGKILL
 *                                            a grace time later
 *     poll(out, signalfd):  output ready   → lines → log_output()
 *                           a signal       → passed on to the group; a stop
 *                                            signal ends the step (SIGKILL
 *                                            after the grace time)
 *
 * The state of one step is a struct run, and each event has its function.
 *
 * The exit of the child is noticed by polling waitpid(WNOHANG) on a short
 * tick rather than through SIGCHLD: the signal set and its delivery belong
 * to main/init (signalfd), and proc must not steal or depend on it.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "log.h"
#include "spawn.h"
#include "util.h"

/* Output lines longer than this are passed on in pieces of this size. */
#define PROC_LINE_PIECE 4000
/* How long output is still read after the command itself has exited. */
#define PROC_LINGER_MS 1000
/* How often waitpid(WNOHANG) is tried while output is open / after its EOF. */
#define PROC_TICK_MS 100
#define PROC_TICK_EOF_MS 5

/* A partial line of output waiting for its newline. */
struct linebuf {
	const char *prefix;
	size_t len;
	char buf[PROC_LINE_PIECE];
};

/* One run step, from its start to its end. */
struct run {
	const char *prefix; /* the step's name */
	const char *cmd;    /* argv[0] */
	long timeout_ms;    /* 0: none */
	long grace_ms;	    /* from SIGTERM (timeout) or a stop signal to SIGKILL */
	pid_t pid;
	int out; /* read end of the output pipe; -1 once it closed */
	struct linebuf lb;
	long start, exited_at, term_at, kill_at;
	bool exited;	/* the command was reaped: wstatus is its status */
	bool timed_out; /* SIGTERM went to the group after timeout_ms */
	bool stopping;	/* a stop signal was passed on to the group */
	bool killed;	/* SIGKILL went to the group after the grace time */
	bool lingered;	/* gave up reading output someone else still held open */
	int wstatus;
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Pass one complete line (or piece) on, without its newline or a trailing CR. */
static void lb_emit(struct linebuf *lb, bool strip_cr)
{
	size_t len = lb->len;
	if (strip_cr && len > 0 && lb->buf[len - 1] == '\r')
		len--;
	log_output(lb->prefix, lb->buf, (int)len);
	lb->len = 0;
}

/* Split data into lines; a line that fills the buffer is passed on as a piece. */
static void lb_feed(struct linebuf *lb, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			lb_emit(lb, true);
			continue;
		}
		lb->buf[lb->len++] = data[i];
		if (lb->len == sizeof(lb->buf))
			lb_emit(lb, false);
	}
}

/* The last line, when the output did not end with a newline. */
static void lb_flush(struct linebuf *lb)
{
	if (lb->len > 0)
		lb_emit(lb, true);
}

/* "10 s" for whole seconds, "300 ms" otherwise. */
static void format_duration(char *buf, size_t len, long ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%ld s", ms / 1000);
	else
		snprintf(buf, len, "%ld ms", ms);
}

/*
 * Start the command with stdin from /dev/null and its output on a pipe.
 * Returns ST_OK, or logs and returns ST_EXTERNAL (it could not be executed)
 * or ST_INTERNAL.
 */
static enum status run_start(struct run *r, const struct strv *argv)
{
	int out[2] = { -1, -1 };
	int devnull = -1;
	enum status st = ST_INTERNAL;
	struct spawn_opts opts = { .step = r->prefix, .die_with_parent = true, .hints = true };

	if (pipe2(out, O_CLOEXEC) < 0) {
		log_error("run step \"%s\": could not create a pipe: %s", r->prefix,
			  strerror(errno));
		return ST_INTERNAL;
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0) {
		log_error("run step \"%s\": could not open file \"/dev/null\": %s", r->prefix,
			  strerror(errno));
		goto out;
	}
	opts.in_fd = devnull;
	opts.out_fd = out[1];

	log_debug("run step \"%s\": starting \"%s\" with %d argument(s)", r->prefix, r->cmd,
		  argv->n - 1);
	r->start = clock_ms();
	st = spawn_start(argv, &opts, &r->pid);
	if (st == ST_NOTFOUND || st == ST_NOEXEC)
		st = ST_EXTERNAL;
	if (st == ST_OK) {
		r->out = out[0];
		out[0] = -1;
		if (r->timeout_ms > 0)
			r->term_at = r->start + r->timeout_ms;
	}
out:
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&devnull);
	return st;
}

/* Event: the command may have exited.  Returns false (logged) when waitpid fails. */
static bool run_on_exit(struct run *r, long now)
{
	pid_t w;

	if (r->exited)
		return true;
	w = waitpid(r->pid, &r->wstatus, WNOHANG);
	if (w == r->pid) {
		r->exited = true;
		r->exited_at = now;
	} else if (w < 0 && errno != EINTR) {
		log_error("run step \"%s\": could not wait for process %ld: %s", r->prefix,
			  (long)r->pid, strerror(errno));
		return false;
	}
	return true;
}

/* Event: the clock passed the timeout (SIGTERM) or the end of the grace time (SIGKILL). */
static void run_on_clock(struct run *r, long now)
{
	if (r->timeout_ms > 0 && !r->timed_out && !r->exited && now >= r->term_at) {
		r->timed_out = true;
		kill(-r->pid, SIGTERM);
		r->kill_at = now + r->grace_ms;
	}
	if ((r->timed_out || r->stopping) && !r->killed && now >= r->kill_at) {
		r->killed = true;
		kill(-r->pid, SIGKILL);
	}
}

/*
 * Event: signals arrived.  They are passed on to the step's process group.
 * A stop signal also ends the step: the group gets SIGKILL after the grace
 * time if it is still there.
 */
static void run_on_signals(struct run *r)
{
	int sig;
	while ((sig = init_take_signal()) != 0) {
		if (sig == SIGCHLD)
			continue;
		if (!r->exited)
			kill(-r->pid, sig);
		if (init_is_stop(sig) && !r->stopping) {
			r->stopping = true;
			r->kill_at = clock_ms() + r->grace_ms;
		}
	}
}

/* Event: output is ready (or closed, or failed: then out is closed). */
static void run_on_output(struct run *r)
{
	char chunk[4096];
	ssize_t n = read(r->out, chunk, sizeof(chunk));
	if (n > 0) {
		lb_feed(&r->lb, chunk, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0)
		log_warning("could not read the output of run step \"%s\": %s", r->prefix,
			    strerror(errno));
	close_fd(&r->out);
}

/* Whether the always-running SIGKILL deadline still waits for its time. */
static bool run_kill_pending(const struct run *r)
{
	return (r->timed_out || r->stopping) && !r->killed;
}

/*
 * Whether the step is over: the command exited and its output closed, or
 * someone it started still holds the output open after the linger time.
 * After a timeout, output is read until SIGKILL has gone to the group.
 */
static bool run_finished(struct run *r, long now)
{
	if (!r->exited)
		return false;
	if (r->out < 0)
		return true;
	if (now >= r->exited_at + PROC_LINGER_MS && (!r->timed_out || r->killed)) {
		r->lingered = true;
		return true;
	}
	return false;
}

/* How long to wait for the next event: the tick, or the nearest deadline. */
static long run_wait_ms(const struct run *r, long now)
{
	long wait_ms = r->out >= 0 ? PROC_TICK_MS : PROC_TICK_EOF_MS;

	if (!r->exited && r->timeout_ms > 0 && !r->timed_out && r->term_at - now < wait_ms)
		wait_ms = r->term_at - now;
	if (run_kill_pending(r) && r->kill_at - now < wait_ms)
		wait_ms = r->kill_at - now;
	if (r->exited && (!r->timed_out || r->killed) &&
	    r->exited_at + PROC_LINGER_MS - now < wait_ms)
		wait_ms = r->exited_at + PROC_LINGER_MS - now;
	return wait_ms < 0 ? 0 : wait_ms;
}

/* Wait for output or a signal, at most wait_ms, and handle what came. */
static void run_poll(struct run *r, long wait_ms)
{
	/* out is -1 once the output closed: poll skips it. */
	struct pollfd pfd[2] = { { .fd = r->out, .events = POLLIN },
				 { .fd = init_signal_fd(), .events = POLLIN } };
	int n = poll(pfd, 2, (int)wait_ms);

	if (n > 0 && pfd[1].revents)
		run_on_signals(r);
	if (n > 0 && pfd[0].revents) {
		run_on_output(r);
	} else if (n < 0 && errno != EINTR) {
		/* Cannot happen with valid pollfds; stop reading, keep waiting. */
		log_warning("run step \"%s\": poll failed: %s", r->prefix, strerror(errno));
		close_fd(&r->out);
	}
}

/* Handle events until the step is over.  Returns false (logged) when waitpid failed. */
static bool run_loop(struct run *r)
{
	for (;;) {
		long now = clock_ms();

		if (!run_on_exit(r, now))
			return false;
		run_on_clock(r, now);
		if (run_finished(r, now))
			break;
		run_poll(r, run_wait_ms(r, now));
	}
	lb_flush(&r->lb);
	/* Whatever of the group survived the command's own exit after a timeout. */
	if (run_kill_pending(r))
		kill(-r->pid, SIGKILL);
	return true;
}

/* Log how the step ended and return its status. */
static enum status run_report(const struct run *r)
{
	char dur[32];
	int ws = r->wstatus;

	if (r->stopping) {
		log_error("run step \"%s\" stopped: signal %d was passed on to it", r->prefix,
			  init_stop_signal());
		return ST_SIGNAL;
	}
	if (r->timed_out) {
		format_duration(dur, sizeof(dur), r->timeout_ms);
		log_error("run step \"%s\" timed out after %s; its process group was killed",
			  r->prefix, dur);
		return ST_EXTERNAL;
	}
	if (r->lingered)
		log_warning("run step \"%s\": a process it started still holds its output open; "
			    "that output is no longer shown",
			    r->prefix);

	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
		log_info("run step \"%s\" finished in %ld ms", r->prefix, clock_ms() - r->start);
		return ST_OK;
	}
	if (WIFEXITED(ws))
		log_error("run step \"%s\" failed: command \"%s\" exited with status %d", r->prefix,
			  r->cmd, WEXITSTATUS(ws));
	else if (WIFSIGNALED(ws))
		log_error("run step \"%s\" failed: command \"%s\" was killed by signal %d (%s)",
			  r->prefix, r->cmd, WTERMSIG(ws), strsignal(WTERMSIG(ws)));
	else
		log_error("run step \"%s\" failed: command \"%s\" ended with wait status %d",
			  r->prefix, r->cmd, ws);
	if (WIFEXITED(ws) || WIFSIGNALED(ws))
		log_detail("It ran for %ld ms.", r->exited_at - r->start);
	return ST_EXTERNAL;
}

enum status proc_run_grace(const char *prefix, const struct strv *argv, long timeout_ms,
			   long grace_ms)
{
	struct run *r;
	enum status st;

	if (!argv || argv->n <= 0 || !argv->v || !argv->v[0]) {
		log_error("run step \"%s\" has no command", prefix);
		return ST_USAGE;
	}
	r = xcalloc(1, sizeof(*r));
	r->prefix = prefix;
	r->cmd = argv->v[0];
	r->timeout_ms = timeout_ms;
	r->grace_ms = grace_ms;
	r->out = -1;
	r->lb.prefix = prefix;

	st = run_start(r, argv);
	if (st == ST_OK)
		st = run_loop(r) ? run_report(r) : ST_INTERNAL;
	close_fd(&r->out);
	free(r);
	return st;
}

enum status proc_run(const char *prefix, const struct strv *argv, long timeout_ms)
{
	return proc_run_grace(prefix, argv, timeout_ms, PROC_KILL_GRACE_MS);
}

enum status proc_exec(const struct strv *argv)
{
	static struct sigaction saved_act[NSIG];
	sigset_t all, empty, saved_mask;
	const char *cmd;
	int err;

	if (!argv || argv->n <= 0 || !argv->v || !argv->v[0] || !argv->v[0][0]) {
		log_error("no command to execute");
		log_hint("Give one after \"--\" or set command in the [exec] section.");
		return ST_NOTFOUND;
	}
	cmd = argv->v[0];

	/* Before the reset: with SIGPIPE at its default, a log write to a closed stderr would kill us. */
	log_debug("executing \"%s\" with %d argument(s)", cmd, argv->n - 1);

	/*
	 * The application must not inherit pgprelude's signal set-up: a blocked
	 * mask and ignored dispositions survive exec.  Reset both (with every
	 * signal blocked meanwhile), and put them back if the exec fails.  A
	 * SIGPIPE or SIGXFSZ that our own writes raised is dropped first: once
	 * unblocked, it would kill pgprelude before the exec.
	 */
	sigfillset(&all);
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &all, &saved_mask);
	init_drop_own_signals();
	spawn_default_signals(saved_act);
	sigprocmask(SIG_SETMASK, &empty, NULL);

	execvp(cmd, argv->v);
	err = errno;

	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &saved_act[sig], NULL);
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);

	return spawn_report(NULL, cmd, err, true);
}
