/*
 * spawn.c — start a command as a child process.
 *
 *   parent                                  child
 *   ------                                  -----
 *   resolve argv[0] against PATH (malloc)
 *   pipe2(err) (O_CLOEXEC, as every
 *   descriptor of pgprelude)
 *   block every signal, fork  ------------> setpgid(0, 0)
 *   restore the signal mask                 the terminal, when asked
 *   setpgid(child, child)                   every disposition to SIG_DFL
 *   read(err): 0 bytes = exec succeeded     stdin, stdout+stderr as asked
 *              an int  = its errno          switch user when asked
 *                                           SIGKILL on parent death, if asked
 *                                           empty signal mask, execve() each
 *                                             PATH candidate; on failure write
 *                                             errno to err and _exit(127)
 *
 * The child calls only async-signal-safe functions (setpgid, prctl,
 * sigaction, sigprocmask, fcntl, dup2, setgroups/setgid/setuid, execve,
 * write, _exit): pgprelude may be linked statically and single-threaded
 * today, but nothing after fork may rely on that.  That is why the PATH
 * search (execvp's job) is done before the fork: POSIX does not list execvp
 * as async-signal-safe.  Like musl's execvp, and unlike glibc's, a file
 * without "#!" that fails with ENOEXEC is not retried with /bin/sh; it is
 * reported as not executable.
 *
 * Signals are blocked around fork() so that a handler the parent installed
 * can never run in the child before its dispositions are reset.
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

extern char **environ;

/* PATH when the environment has none (musl's and glibc's confstr default). */
#define SPAWN_DEFAULT_PATH "/usr/local/bin:/bin:/usr/bin"

/* The files execve() will try for argv[0], in order (execvp's PATH search). */
struct exec_plan {
	char **paths; /* NULL-terminated; paths[i] point into store */
	char *store;
};

/* Everything the child needs, prepared by the parent before fork(). */
struct child {
	const struct exec_plan *plan;
	char *const *argv;
	const struct spawn_opts *opts;
	int err_w;	/* write end of the exec-error pipe (O_CLOEXEC) */
	pid_t die_with; /* > 0: SIGKILL the child when this process (its parent) dies */
	sigset_t empty;
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
 * element is the current folder).
 */
static void plan_build(const char *name, struct exec_plan *plan)
{
	const char *path = getenv("PATH");
	size_t name_len = strlen(name);
	size_t n_elems = 1;
	char *p;
	int i = 0;

	if (name[0] == '\0' || strchr(name, '/')) {
		/* An empty name is tried as "" so that execve reports ENOENT. */
		plan->paths = xcalloc(2, sizeof(char *));
		plan->store = xstrdup(name);
		plan->paths[0] = plan->store;
		return;
	}

	if (!path)
		path = SPAWN_DEFAULT_PATH;
	for (const char *c = path; *c; c++)
		if (*c == ':')
			n_elems++;
	plan->paths = xcalloc(n_elems + 1, sizeof(char *));
	plan->store = xmalloc(strlen(path) + 1 + n_elems * (name_len + 3));

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
}

void spawn_default_signals(struct sigaction *saved)
{
	struct sigaction dfl;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		/* EINVAL for KILL, STOP, libc-internal: fine */
		if (sigaction(sig, &dfl, saved ? &saved[sig] : NULL) < 0 && saved)
			saved[sig].sa_handler = SIG_DFL;
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

/* Put in_fd on stdin and out_fd on stdout and stderr, as the options ask. */
static void child_stdio(const struct child *c)
{
	int in_fd = -1, out_fd = -1;

	/*
	 * Move the descriptors above 2 first, so that none of them is clobbered
	 * by a dup2 onto 0, 1 or 2 when pgprelude itself started without them.
	 */
	if (c->opts->in_fd >= 0 && (in_fd = fcntl(c->opts->in_fd, F_DUPFD_CLOEXEC, 3)) < 0)
		child_fail(c->err_w, errno);
	if (c->opts->out_fd >= 0 && (out_fd = fcntl(c->opts->out_fd, F_DUPFD_CLOEXEC, 3)) < 0)
		child_fail(c->err_w, errno);
	if (in_fd >= 0 && child_move_fd(in_fd, STDIN_FILENO) < 0)
		child_fail(c->err_w, errno);
	if (out_fd >= 0 &&
	    (child_move_fd(out_fd, STDOUT_FILENO) < 0 || child_move_fd(out_fd, STDERR_FILENO) < 0))
		child_fail(c->err_w, errno);
}

/*
 * The child between fork() and execve().  Only async-signal-safe calls:
 * no malloc, no stdio, no logging.  Never returns.
 */
static void child_exec(const struct child *c) __attribute__((noreturn));
static void child_exec(const struct child *c)
{
	int err = ENOENT;
	bool seen_eacces = false;

	/* Own process group, so that a timeout can kill everything it started. */
	setpgid(0, 0);
	/*
	 * An application on a terminal gets it as its foreground group (as tini
	 * does), so that the terminal's job control reaches it; SIGTTOU is still
	 * blocked here, so asking for it cannot stop us.
	 */
	if (c->opts->foreground)
		tcsetpgrp(STDIN_FILENO, getpid());

	spawn_default_signals(NULL);
	child_stdio(c);
	if (c->opts->creds) {
		int e = privdrop_apply(c->opts->creds);
		if (e != 0)
			child_fail(c->err_w, -e); /* negative: the switch of user failed */
	}
	/*
	 * A run step must not outlive a pgprelude killed with SIGKILL: the lock
	 * goes with pgprelude's session, and the next run would start the same
	 * step next to it; nor must a supervised application, left without its
	 * init.  After the switch of user: a change of credentials clears the
	 * parent-death signal.  getppid() catches a parent that died before prctl.
	 */
	if (c->die_with > 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != c->die_with)
			_exit(127);
	}

	/* Last: unblock everything (the parent blocked all signals around fork). */
	sigprocmask(SIG_SETMASK, &c->empty, NULL);

	/* execvp's search, with execvp's choice of which errno to report. */
	for (char *const *path = c->plan->paths; *path; path++) {
		execve(*path, c->argv, environ);
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
			child_fail(c->err_w, errno);
		}
	}
	child_fail(c->err_w, seen_eacces ? EACCES : err);
}

/*
 * When execve said ENOENT for cmd although the file exists, its "#!" line
 * names an interpreter that is missing: store that interpreter in interp and
 * return true.
 */
static bool missing_interpreter(const char *cmd, char *interp, size_t len)
{
	struct exec_plan plan;
	bool found = false;

	plan_build(cmd, &plan);
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

enum status spawn_report(const char *step, const char *cmd, int err, bool hints)
{
	enum status st = err == ENOENT || err == ENOTDIR ? ST_NOTFOUND : ST_NOEXEC;
	bool noexec = err == EACCES || err == ENOEXEC || err == EPERM;
	char interp[256];
	char *what =
		step ? xasprintf("run step \"%s\" could not be started: command \"%s\"", step, cmd)
		     : xasprintf("could not execute \"%s\"", cmd);

	if (err == ENOENT && missing_interpreter(cmd, interp, sizeof(interp))) {
		log_error("%s: its interpreter \"%s\" (#! line) was not found", what, interp);
		free(what);
		return ST_NOTFOUND;
	}
	if (step && st == ST_NOTFOUND)
		log_error("%s not found", what);
	else if (step && noexec)
		log_error("%s is not executable: %s", what, strerror(err));
	else
		log_error("%s: %s", what, strerror(err));
	free(what);

	if (!hints)
		return st;
	if (st == ST_NOTFOUND && !strchr(cmd, '/'))
		log_hint("Check that it is installed in the image and in PATH (%s).",
			 getenv("PATH") ? getenv("PATH") : SPAWN_DEFAULT_PATH);
	else if (err == EACCES || err == EPERM)
		log_hint(
			"Check the file's execute permission and that the file system is not mounted noexec.");
	else if (err == ENOEXEC)
		log_hint("A script needs a \"#!\" first line naming its interpreter.");
	return st;
}

/* fork() with every signal blocked; the child runs c and never returns. */
static pid_t spawn_fork(const struct child *c)
{
	sigset_t all, saved;
	pid_t pid;
	int fork_err;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = fork();
	if (pid == 0)
		child_exec(c);
	fork_err = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid > 0)
		/* Also here: whichever of parent and child runs first, the group exists. */
		setpgid(pid, pid);
	errno = fork_err;
	return pid;
}

/*
 * Wait for the exec (the O_CLOEXEC write end closes: 0 bytes) or its
 * failure (the child's errno).  Returns 0 or that errno (< 0: from
 * privdrop_apply).
 */
static int spawn_await_exec(int err_r)
{
	int child_err = 0;
	ssize_t n;

	do
		n = read(err_r, &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(child_err) ? child_err : 0;
}

enum status spawn_start(const struct strv *argv, const struct spawn_opts *opts, pid_t *pid_out)
{
	struct exec_plan plan;
	struct child c = { .argv = argv->v, .opts = opts, .err_w = -1 };
	int errp[2] = { -1, -1 };
	const char *cmd = argv->v[0];
	enum status st = ST_INTERNAL;
	int child_err;
	pid_t pid;

	*pid_out = -1;
	plan_build(cmd, &plan);
	if (pipe2(errp, O_CLOEXEC) < 0) {
		if (opts->step)
			log_error("run step \"%s\": could not create a pipe: %s", opts->step,
				  strerror(errno));
		else
			log_error("could not create a pipe: %s", strerror(errno));
		goto out;
	}
	c.plan = &plan;
	c.err_w = errp[1];
	c.die_with = opts->die_with_parent ? getpid() : 0;
	sigemptyset(&c.empty);

	pid = spawn_fork(&c);
	if (pid < 0) {
		if (opts->step)
			log_error("run step \"%s\" could not be started: fork failed: %s",
				  opts->step, strerror(errno));
		else
			log_error("could not start \"%s\": fork failed: %s", cmd, strerror(errno));
		goto out;
	}
	close_fd(&errp[1]);
	child_err = spawn_await_exec(errp[0]);
	if (child_err == 0) {
		*pid_out = pid;
		st = ST_OK;
		goto out;
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (child_err < 0 && opts->creds) {
		privdrop_report(opts->creds, -child_err);
		st = ST_NOEXEC;
	} else {
		st = spawn_report(opts->step, cmd, child_err, opts->hints);
	}
out:
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	plan_free(&plan);
	return st;
}
