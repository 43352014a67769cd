#include "init.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "spawn.h"

static int sigfd = -1;
static int stop_sig;

enum status init_setup(void)
{
	sigset_t set;

	/*
	 * Everything but the signals the kernel sends for a fault of our own
	 * (they must kill us, not wait in a queue) is blocked and read from
	 * the signalfd.  A blocked signal is queued even for PID 1, which the
	 * kernel otherwise spares every signal it has no handler for.
	 */
	sigfillset(&set);
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	sigdelset(&set, SIGABRT);
	sigdelset(&set, SIGTRAP);
	sigdelset(&set, SIGSYS);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
		log_error("could not block signals: %s", strerror(errno));
		return ST_INTERNAL;
	}
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0) {
		log_error("could not create a signalfd: %s", strerror(errno));
		return ST_INTERNAL;
	}
	return ST_OK;
}

int init_signal_fd(void)
{
	return sigfd;
}

bool init_is_stop(int sig)
{
	return sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || sig == SIGHUP;
}

int init_take_signal(void)
{
	struct signalfd_siginfo si;
	ssize_t n;

	if (sigfd < 0)
		return 0;
	do
		n = read(sigfd, &si, sizeof(si));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(si))
		return 0;
	if (init_is_stop((int)si.ssi_signo) && !stop_sig)
		stop_sig = (int)si.ssi_signo;
	return (int)si.ssi_signo;
}

int init_stop_signal(void)
{
	return stop_sig;
}

void init_reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

bool init_is_pid1(void)
{
	return getpid() == 1;
}

/* Start the application in its own process group; ST_OK with its pid in *child. */
static enum status start_app(const struct strv *argv, const struct creds *creds, pid_t *child)
{
	struct spawn_opts opts = { .in_fd = -1, .out_fd = -1, .creds = creds };

	if (!argv || argv->n <= 0 || !argv->v || !argv->v[0] || !argv->v[0][0]) {
		log_error("no command to start");
		return ST_NOTFOUND;
	}
	opts.foreground = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
	return spawn_start(argv, &opts, child);
}

/*
 * Reap every exited child.  Returns true with the exit code in *code once
 * the application itself has exited.
 */
static bool reap_all(const struct strv *argv, pid_t child, int *code)
{
	int wstatus;
	pid_t w;

	/* CHLD signals merge: reap everything that has exited, every time. */
	while ((w = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		if (w != child)
			continue;
		if (WIFEXITED(wstatus)) {
			log_debug("\"%s\" exited with status %d", argv->v[0], WEXITSTATUS(wstatus));
			*code = WEXITSTATUS(wstatus);
			return true;
		}
		if (WIFSIGNALED(wstatus)) {
			log_debug("\"%s\" was killed by signal %d", argv->v[0], WTERMSIG(wstatus));
			*code = EXIT_SIGNAL_BASE + WTERMSIG(wstatus);
			return true;
		}
	}
	return false;
}

int init_supervise(const struct strv *argv, const struct creds *creds)
{
	pid_t child;
	enum status st;
	int code;

	/*
	 * Not PID 1 (a shell, `docker run --init`, a test): orphans would go to
	 * whoever is PID 1; as a subreaper they come to us instead.
	 */
	if (!init_is_pid1() && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warning("could not become a child subreaper: %s", strerror(errno));
	st = start_app(argv, creds, &child);
	if (st != ST_OK)
		return status_exit_code(st, 0);
	log_debug("supervising \"%s\" (pid %ld)", argv->v[0], (long)child);

	for (;;) {
		struct pollfd pfd = { .fd = sigfd, .events = POLLIN };
		int sig;

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return EXIT_INTERNAL;
		while ((sig = init_take_signal()) != 0) {
			if (sig != SIGCHLD && kill(child, sig) != 0 && errno != ESRCH)
				log_warning("could not forward signal %d to pid %ld: %s", sig,
					    (long)child, strerror(errno));
		}
		if (reap_all(argv, child, &code))
			return code;
	}
}
