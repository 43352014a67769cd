/*
 * proc.c — run an external command for a "run" phase, and hand over to the
 * application with exec.
 *
 * proc_run() in outline:
 *
 *   parent                                  child
 *   ------                                  -----
 *   resolve argv[0] against PATH (malloc)
 *   pipe2(out), pipe2(err), open /dev/null  (all O_CLOEXEC)
 *   block every signal, fork  ------------> setpgid(0, 0)
 *   restore the signal mask                 every disposition to SIG_DFL
 *   setpgid(child, child)                   stdin /dev/null, stdout+stderr out
 *   read(err): 0 bytes = exec succeeded     empty signal mask, execve() each
 *              an int  = its errno            PATH candidate; on failure write
 *   poll(out) → lines → log_output()           errno to err and _exit(127)
 *   waitpid(WNOHANG) every tick; timeout → SIGTERM to the group, SIGKILL 5 s later
 *
 * The child calls only async-signal-safe functions (setpgid, sigaction,
 * sigprocmask, fcntl, dup2, execve, write, _exit): pgprelude may be linked
 * statically and single-threaded today, but nothing after fork may rely on
 * that.  That is why the PATH search (execvp's job) is done before the fork:
 * POSIX does not list execvp as async-signal-safe.  Like musl's execvp, and
 * unlike glibc's, a file without "#!" that fails with ENOEXEC is not retried
 * with /bin/sh; it is reported as not executable.
 *
 * Signals are blocked around fork() so that a handler the parent installed
 * can never run in the child before its dispositions are reset.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "log.h"
#include "privdrop.h"

extern char **environ;

#ifndef NSIG
#define NSIG 65
#endif

/* Output lines longer than this are passed on in pieces of this size. */
#define PROC_LINE_PIECE 4000
/* After SIGTERM on timeout, the process group gets SIGKILL this much later. */
#define PROC_KILL_GRACE_MS 5000
/* How long output is still read after the command itself has exited. */
#define PROC_LINGER_MS 1000
/* How often waitpid(WNOHANG) is tried while output is open / after its EOF. */
#define PROC_TICK_MS 100
#define PROC_TICK_EOF_MS 5
/* PATH when the environment has none (musl's and glibc's confstr default). */
#define PROC_DEFAULT_PATH "/usr/local/bin:/bin:/usr/bin"

/* The files execve() will try for argv[0], in order (execvp's PATH search). */
struct exec_plan {
	char **paths; /* NULL-terminated; paths[i] point into one malloc'd block */
	char *store;
};

/* Everything the child needs, prepared by the parent before fork(). */
struct spawn {
	const struct exec_plan *plan;
	char *const *argv;
	int devnull; /* read end for stdin, or -1 to keep stdin */
	int out_w;   /* write end of the output pipe, becomes fd 1 and 2; -1: keep them */
	int err_w;   /* write end of the exec-error pipe (O_CLOEXEC) */
	const struct creds *creds; /* user to switch to, or NULL */
	bool foreground;	   /* take the terminal for the new process group */
	pid_t die_with;		   /* > 0: SIGKILL the child when this process (its parent) dies */
	sigset_t empty;
};

/* A partial line of output waiting for its newline. */
struct linebuf {
	const char *prefix;
	size_t len;
	char buf[PROC_LINE_PIECE];
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void plan_free(struct exec_plan *plan)
{
	free(plan->paths);
	free(plan->store);
	plan->paths = NULL;
	plan->store = NULL;
}

/*
 * Build the list of files execvp would try for name: name itself when it
 * contains a slash, else every PATH element joined with name (an empty
 * element is the current folder).  Returns false only when out of memory.
 */
static bool plan_build(const char *name, struct exec_plan *plan)
{
	const char *path;
	size_t name_len = strlen(name);
	size_t n_elems = 1;
	size_t store_len;
	char *p;
	int i = 0;

	plan->paths = NULL;
	plan->store = NULL;

	if (name[0] == '\0' || strchr(name, '/')) {
		plan->paths = calloc(2, sizeof(char *));
		plan->store = strdup(name);
		if (!plan->paths || !plan->store) {
			plan_free(plan);
			return false;
		}
		/* An empty name is tried as "" so that execve reports ENOENT. */
		plan->paths[0] = plan->store;
		return true;
	}

	path = getenv("PATH");
	if (!path)
		path = PROC_DEFAULT_PATH;
	for (const char *c = path; *c; c++)
		if (*c == ':')
			n_elems++;

	store_len = strlen(path) + 1 + n_elems * (name_len + 3);
	plan->paths = calloc(n_elems + 1, sizeof(char *));
	plan->store = malloc(store_len);
	if (!plan->paths || !plan->store) {
		plan_free(plan);
		return false;
	}

	p = plan->store;
	for (const char *elem = path;;) {
		const char *end = strchr(elem, ':');
		size_t elem_len = end ? (size_t)(end - elem) : strlen(elem);

		plan->paths[i++] = p;
		if (elem_len == 0) {
			*p++ = '.';
		} else {
			memcpy(p, elem, elem_len);
			p += elem_len;
		}
		*p++ = '/';
		memcpy(p, name, name_len + 1);
		p += name_len + 1;

		if (!end)
			break;
		elem = end + 1;
	}
	plan->paths[i] = NULL;
	return true;
}

/*
 * Make fd "from" appear as fd "to" without FD_CLOEXEC.  dup2 onto itself
 * keeps the flag, hence the fcntl.  Async-signal-safe.
 */
static int child_move_fd(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

/* Report errno to the parent over the exec-error pipe and leave. */
static void child_fail(int err_w, int err) __attribute__((noreturn));
static void child_fail(int err_w, int err)
{
	ssize_t n;
	do
		n = write(err_w, &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	_exit(127);
}

/*
 * The child between fork() and execve().  Only async-signal-safe calls:
 * no malloc, no stdio, no logging.  Never returns.
 */
static void child_exec(const struct spawn *sp) __attribute__((noreturn));
static void child_exec(const struct spawn *sp)
{
	struct sigaction dfl;
	int in_fd, out_fd;
	int err = ENOENT;
	bool seen_eacces = false;

	/* Own process group, so that a timeout can kill everything it started. */
	setpgid(0, 0);
	/*
	 * A run step must not outlive a pgprelude killed with SIGKILL: the lock
	 * goes with pgprelude's session, and the next run would start the same
	 * step next to it.  getppid() catches a parent that died before prctl.
	 */
	if (sp->die_with > 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != sp->die_with)
			_exit(127);
	}
	/*
	 * An application on a terminal gets it as its foreground group (as tini
	 * does), so that the terminal's job control reaches it; SIGTTOU is still
	 * blocked here, so asking for it cannot stop us.
	 */
	if (sp->foreground)
		tcsetpgrp(STDIN_FILENO, getpid());

	/* Every disposition back to the default (ignored ones survive exec). */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL); /* EINVAL for KILL, STOP, libc-internal: fine */

	/*
	 * Move the descriptors above 2 first, so that none of them is clobbered
	 * by a dup2 onto 0, 1 or 2 when pgprelude itself started without them.
	 */
	if (sp->devnull >= 0) {
		in_fd = fcntl(sp->devnull, F_DUPFD_CLOEXEC, 3);
		out_fd = fcntl(sp->out_w, F_DUPFD_CLOEXEC, 3);
		if (in_fd < 0 || out_fd < 0)
			child_fail(sp->err_w, errno);
		if (child_move_fd(in_fd, STDIN_FILENO) < 0 ||
		    child_move_fd(out_fd, STDOUT_FILENO) < 0 ||
		    child_move_fd(out_fd, STDERR_FILENO) < 0)
			child_fail(sp->err_w, errno);
	}
	if (sp->creds) {
		int e = privdrop_apply(sp->creds);
		if (e != 0)
			child_fail(sp->err_w, -e); /* negative: the switch of user failed */
	}

	/* Last: unblock everything (the parent blocked all signals around fork). */
	sigprocmask(SIG_SETMASK, &sp->empty, NULL);

	/* execvp's search, with execvp's choice of which errno to report. */
	for (char *const *path = sp->plan->paths; *path; path++) {
		execve(*path, sp->argv, environ);
		switch (errno) {
		case EACCES:
			seen_eacces = true;
			/* fall through */
		case ENOENT:
		case ENOTDIR:
		case ESTALE:
		case ENODEV:
		case ETIMEDOUT:
			err = errno;
			continue;
		default:
			child_fail(sp->err_w, errno);
		}
	}
	child_fail(sp->err_w, seen_eacces ? EACCES : err);
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

/*
 * Read what is available on *fd into lb.  On EOF or a read error closes *fd
 * (sets it to -1).
 */
static void drain_once(int *fd, struct linebuf *lb)
{
	char chunk[4096];
	ssize_t n = read(*fd, chunk, sizeof(chunk));
	if (n > 0) {
		lb_feed(lb, chunk, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0)
		log_warning("could not read the output of run step \"%s\": %s", lb->prefix,
			    strerror(errno));
	close_fd(fd);
}

/* "10 s" for whole seconds, "300 ms" otherwise. */
static void format_duration(char *buf, size_t len, long ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%ld s", ms / 1000);
	else
		snprintf(buf, len, "%ld ms", ms);
}

/* Log why the command could not be started; errno value err came from the child. */
/*
 * When execve said ENOENT for cmd although the file exists, its "#!" line
 * names an interpreter that is missing: store that interpreter in interp and
 * return true.
 */
static bool missing_interpreter(const char *cmd, char *interp, size_t len)
{
	struct exec_plan plan;
	bool found = false;

	if (!plan_build(cmd, &plan))
		return false;
	for (char **path = plan.paths; *path && !found; path++) {
		char line[256];
		ssize_t n;
		int fd = open(*path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, line, sizeof(line) - 1);
		close(fd);
		if (n < 3 || line[0] != '#' || line[1] != '!')
			break; /* the first file that exists is the one execve ran */
		line[n] = '\0';
		char *p = line + 2;
		p += strspn(p, " \t");
		snprintf(interp, len, "%.*s", (int)strcspn(p, " \t\r\n"), p);
		found = interp[0] != '\0';
	}
	plan_free(&plan);
	return found;
}

static void report_exec_error(const char *prefix, const char *cmd, int err)
{
	char interp[256];

	if (err == ENOENT && missing_interpreter(cmd, interp, sizeof(interp))) {
		log_error(
			"run step \"%s\" could not be started: command \"%s\": its interpreter \"%s\" "
			"(#! line) was not found",
			prefix, cmd, interp);
	} else if (err == ENOENT || err == ENOTDIR) {
		log_error("run step \"%s\" could not be started: command \"%s\" not found", prefix,
			  cmd);
		if (!strchr(cmd, '/'))
			log_hint("Check that it is installed in the image and in PATH (%s).",
				 getenv("PATH") ? getenv("PATH") : PROC_DEFAULT_PATH);
	} else if (err == EACCES || err == ENOEXEC || err == EPERM) {
		log_error(
			"run step \"%s\" could not be started: command \"%s\" is not executable: %s",
			prefix, cmd, strerror(err));
		if (err == ENOEXEC)
			log_hint("A script needs a \"#!\" first line naming its interpreter.");
		else
			log_hint(
				"Check the file's execute permission and that the file system is not mounted noexec.");
	} else {
		log_error("run step \"%s\" could not be started: command \"%s\": %s", prefix, cmd,
			  strerror(err));
	}
}

/*
 * Pass the pending signals on to the run step's process group.  A stop
 * signal also ends the step: the group gets SIGKILL after the grace time
 * if it is still there.
 */
static void forward_signals(pid_t pid, bool exited, bool *stopping, long *kill_at)
{
	int sig;
	while ((sig = init_take_signal()) != 0) {
		if (sig == SIGCHLD)
			continue;
		if (!exited)
			kill(-pid, sig);
		if (init_is_stop(sig) && !*stopping) {
			*stopping = true;
			*kill_at = clock_ms() + PROC_KILL_GRACE_MS;
		}
	}
}

enum status proc_run(const char *prefix, const struct strv *argv, long timeout_ms)
{
	enum status st = ST_INTERNAL;
	struct exec_plan plan = { NULL, NULL };
	struct spawn sp;
	struct linebuf *lb = NULL;
	int out[2] = { -1, -1 };
	int errp[2] = { -1, -1 };
	int devnull = -1;
	sigset_t all, saved;
	pid_t pid;
	int child_err = 0;
	int fork_err;
	ssize_t n;
	long start, exited_at = 0, term_at = 0, kill_at = 0;
	bool exited = false, timed_out = false, killed = false, lingered = false, stopping = false;
	int wstatus = 0;
	const char *cmd;
	char dur[32];

	if (!argv || argv->n <= 0 || !argv->v || !argv->v[0]) {
		log_error("run step \"%s\" has no command", prefix);
		return ST_USAGE;
	}
	cmd = argv->v[0];

	lb = malloc(sizeof(*lb));
	if (!lb || !plan_build(cmd, &plan)) {
		log_error("out of memory");
		goto out;
	}
	lb->prefix = prefix;
	lb->len = 0;

	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		log_error("run step \"%s\": could not create a pipe: %s", prefix, strerror(errno));
		goto out;
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0) {
		log_error("run step \"%s\": could not open file \"/dev/null\": %s", prefix,
			  strerror(errno));
		goto out;
	}

	sp.plan = &plan;
	sp.argv = argv->v;
	sp.devnull = devnull;
	sp.out_w = out[1];
	sp.err_w = errp[1];
	sp.creds = NULL;
	sp.foreground = false;
	sp.die_with = getpid();
	sigemptyset(&sp.empty);

	log_debug("run step \"%s\": starting \"%s\" with %d argument(s)", prefix, cmd, argv->n - 1);

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	start = clock_ms();
	pid = fork();
	if (pid == 0)
		child_exec(&sp);
	fork_err = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0) {
		log_error("run step \"%s\" could not be started: fork failed: %s", prefix,
			  strerror(fork_err));
		goto out;
	}
	/* Also here: whichever of parent and child runs first, the group exists. */
	setpgid(pid, pid);

	close_fd(&out[1]);
	close_fd(&errp[1]);
	close_fd(&devnull);

	/* 0 bytes: the exec succeeded and closed the O_CLOEXEC write end. */
	do
		n = read(errp[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close_fd(&errp[0]);
	if (n == (ssize_t)sizeof(child_err)) {
		while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
			;
		report_exec_error(prefix, cmd, child_err);
		st = ST_EXTERNAL;
		goto out;
	}

	if (timeout_ms > 0)
		term_at = start + timeout_ms;

	for (;;) {
		long now = clock_ms();
		long wait_ms;

		if (!exited) {
			pid_t r = waitpid(pid, &wstatus, WNOHANG);
			if (r == pid) {
				exited = true;
				exited_at = now;
			} else if (r < 0 && errno != EINTR) {
				log_error("run step \"%s\": could not wait for process %ld: %s",
					  prefix, (long)pid, strerror(errno));
				goto out;
			}
		}

		if (timeout_ms > 0 && !timed_out && !exited && now >= term_at) {
			timed_out = true;
			kill(-pid, SIGTERM);
			kill_at = now + PROC_KILL_GRACE_MS;
		}
		if ((timed_out || stopping) && !killed && now >= kill_at) {
			killed = true;
			kill(-pid, SIGKILL);
		}

		if (exited) {
			if (out[0] < 0)
				break;
			/*
			 * The command is gone but someone it started still holds the
			 * pipe open.  After a timeout keep reading until SIGKILL has
			 * gone to the group; otherwise give up reading after a while.
			 */
			if (now >= exited_at + PROC_LINGER_MS && (!timed_out || killed)) {
				lingered = true;
				break;
			}
		}

		wait_ms = out[0] >= 0 ? PROC_TICK_MS : PROC_TICK_EOF_MS;
		if (!exited && timeout_ms > 0 && !timed_out && term_at - now < wait_ms)
			wait_ms = term_at - now;
		if ((timed_out || stopping) && !killed && kill_at - now < wait_ms)
			wait_ms = kill_at - now;
		if (exited && (!timed_out || killed) && exited_at + PROC_LINGER_MS - now < wait_ms)
			wait_ms = exited_at + PROC_LINGER_MS - now;
		if (wait_ms < 0)
			wait_ms = 0;

		{
			/* out[0] is -1 once the output closed: poll skips it. */
			struct pollfd pfd[2] = { { .fd = out[0], .events = POLLIN },
						 { .fd = init_signal_fd(), .events = POLLIN } };
			int pr = poll(pfd, 2, (int)wait_ms);
			if (pr > 0 && pfd[1].revents)
				forward_signals(pid, exited, &stopping, &kill_at);
			if (pr > 0 && pfd[0].revents)
				drain_once(&out[0], lb);
			else if (pr < 0 && errno != EINTR) {
				/* Cannot happen with valid pollfds; stop reading, keep waiting. */
				log_warning("run step \"%s\": poll failed: %s", prefix,
					    strerror(errno));
				close_fd(&out[0]);
			}
		}
	}

	lb_flush(lb);
	/* Whatever of the group survived the command's own exit after a timeout. */
	if ((timed_out || stopping) && !killed)
		kill(-pid, SIGKILL);

	if (stopping) {
		log_error("run step \"%s\" stopped: signal %d was passed on to it", prefix,
			  init_stop_signal());
		st = ST_SIGNAL;
		goto out;
	}
	if (timed_out) {
		format_duration(dur, sizeof(dur), timeout_ms);
		log_error("run step \"%s\" timed out after %s; its process group was killed",
			  prefix, dur);
		st = ST_EXTERNAL;
		goto out;
	}
	if (lingered)
		log_warning("run step \"%s\": a process it started still holds its output open; "
			    "that output is no longer shown",
			    prefix);

	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
		log_info("run step \"%s\" finished in %ld ms", prefix, clock_ms() - start);
		st = ST_OK;
	} else if (WIFEXITED(wstatus)) {
		log_error("run step \"%s\" failed: command \"%s\" exited with status %d", prefix,
			  cmd, WEXITSTATUS(wstatus));
		log_detail("It ran for %ld ms.", exited_at - start);
		st = ST_EXTERNAL;
	} else if (WIFSIGNALED(wstatus)) {
		log_error("run step \"%s\" failed: command \"%s\" was killed by signal %d (%s)",
			  prefix, cmd, WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
		log_detail("It ran for %ld ms.", exited_at - start);
		st = ST_EXTERNAL;
	} else {
		log_error("run step \"%s\" failed: command \"%s\" ended with wait status %d",
			  prefix, cmd, wstatus);
		st = ST_EXTERNAL;
	}

out:
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	close_fd(&devnull);
	plan_free(&plan);
	free(lb);
	return st;
}

enum status proc_exec(const struct strv *argv)
{
	static struct sigaction saved_act[NSIG];
	struct sigaction dfl;
	sigset_t all, empty, saved_mask;
	char interp[256];
	const char *cmd;
	int err;

	if (!argv || argv->n <= 0 || !argv->v || !argv->v[0] || !argv->v[0][0]) {
		log_error("no command to execute");
		log_hint("Give one after \"--\" or set command in the [exec] section.");
		return ST_NOTFOUND;
	}
	cmd = argv->v[0];

	/*
	 * The application must not inherit pgprelude's signal set-up: a blocked
	 * mask and ignored dispositions survive exec.  Reset both (with every
	 * signal blocked meanwhile), and put them back if the exec fails.
	 */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigfillset(&all);
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &all, &saved_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, &dfl, &saved_act[sig]) < 0)
			saved_act[sig].sa_handler = SIG_DFL; /* KILL, STOP, libc-internal */
	sigprocmask(SIG_SETMASK, &empty, NULL);

	log_debug("executing \"%s\" with %d argument(s)", cmd, argv->n - 1);
	execvp(cmd, argv->v);
	err = errno;

	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &saved_act[sig], NULL);
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);

	if (err == ENOENT && missing_interpreter(cmd, interp, sizeof(interp))) {
		log_error(
			"could not execute \"%s\": its interpreter \"%s\" (#! line) was not found",
			cmd, interp);
		return ST_NOTFOUND;
	}
	log_error("could not execute \"%s\": %s", cmd, strerror(err));
	if (err == ENOENT || err == ENOTDIR) {
		if (!strchr(cmd, '/'))
			log_hint("Check that it is installed in the image and in PATH (%s).",
				 getenv("PATH") ? getenv("PATH") : PROC_DEFAULT_PATH);
		return ST_NOTFOUND;
	}
	if (err == EACCES || err == EPERM)
		log_hint(
			"Check the file's execute permission and that the file system is not mounted noexec.");
	else if (err == ENOEXEC)
		log_hint("A script needs a \"#!\" first line naming its interpreter.");
	return ST_NOEXEC;
}

enum status proc_spawn(const struct strv *argv, const struct creds *creds, pid_t *pid_out)
{
	struct exec_plan plan = { NULL, NULL };
	struct spawn sp;
	int errp[2] = { -1, -1 };
	int child_err = 0;
	char interp[256];
	sigset_t all, saved;
	enum status st = ST_INTERNAL;
	const char *cmd;
	pid_t pid;
	ssize_t n;

	*pid_out = -1;
	if (!argv || argv->n <= 0 || !argv->v || !argv->v[0] || !argv->v[0][0]) {
		log_error("no command to start");
		return ST_NOTFOUND;
	}
	cmd = argv->v[0];
	if (!plan_build(cmd, &plan)) {
		log_error("out of memory");
		return ST_INTERNAL;
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		log_error("could not create a pipe: %s", strerror(errno));
		goto out;
	}
	sp.plan = &plan;
	sp.argv = argv->v;
	sp.devnull = -1;
	sp.out_w = -1;
	sp.err_w = errp[1];
	sp.creds = creds;
	sp.foreground = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
	sp.die_with = 0;
	sigemptyset(&sp.empty);

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = fork();
	if (pid == 0)
		child_exec(&sp);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0) {
		log_error("could not start \"%s\": fork failed: %s", cmd, strerror(errno));
		goto out;
	}
	setpgid(pid, pid);
	close_fd(&errp[1]);
	do
		n = read(errp[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(child_err)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (child_err < 0) {
			privdrop_report(creds, -child_err);
			st = ST_NOEXEC;
		} else if (child_err == ENOENT &&
			   missing_interpreter(cmd, interp, sizeof(interp))) {
			log_error(
				"could not execute \"%s\": its interpreter \"%s\" (#! line) was not found",
				cmd, interp);
			st = ST_NOTFOUND;
		} else {
			log_error("could not execute \"%s\": %s", cmd, strerror(child_err));
			st = child_err == ENOENT || child_err == ENOTDIR ? ST_NOTFOUND : ST_NOEXEC;
		}
		goto out;
	}
	*pid_out = pid;
	st = ST_OK;
out:
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	plan_free(&plan);
	return st;
}
