#include "init.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
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

/*
 * Whether a signal is one pgprelude caused itself: SIGPIPE from a write to
 * a closed pipe or socket (its log on a stderr nobody reads any more),
 * SIGXFSZ from a write past RLIMIT_FSIZE.  The kernel sends both to the
 * writing thread with si_code SI_USER and our own pid as the sender (or
 * SI_KERNEL); the same signals sent with kill() by another process carry
 * that process's pid (0 when it is outside our PID namespace).
 *
 * Why not ignore the two instead: the kernel queues a blocked signal even
 * when its disposition is SIG_IGN, so ignoring would not keep it out of
 * the signalfd; and ignored and unblocked, a SIGPIPE that someone sends on
 * purpose for the application would be thrown away too.  So they stay blocked like every other
 * signal, the writes fail with EPIPE / EFBIG, and the signal itself is
 * dropped here, before anyone forwards it.  Children never see the
 * dispositions or the mask (spawn.c resets both).
 */
static bool own_signal(int signo, int code, pid_t sender)
{
	if (signo != SIGPIPE && signo != SIGXFSZ)
		return false;
	return code == SI_KERNEL || ((code == SI_USER || code == SI_TKILL) && sender == getpid());
}

int init_take_signal(void)
{
	struct signalfd_siginfo si;
	ssize_t n;

	if (sigfd < 0)
		return 0;
	do {
		do
			n = read(sigfd, &si, sizeof(si));
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(si))
			return 0;
	} while (own_signal((int)si.ssi_signo, si.ssi_code, (pid_t)si.ssi_pid));
	if (init_is_stop((int)si.ssi_signo) && !stop_sig)
		stop_sig = (int)si.ssi_signo;
	return (int)si.ssi_signo;
}

void init_drop_own_signals(void)
{
	const struct timespec now = { 0, 0 };
	int again[2], n_again = 0;
	sigset_t set;
	siginfo_t si;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigaddset(&set, SIGXFSZ);
	while ((sig = sigtimedwait(&set, &si, &now)) > 0)
		if (!own_signal(sig, si.si_code, si.si_pid) && n_again < 2)
			again[n_again++] = sig;
	/* Sent by someone else: pending again, for whoever runs next in this process. */
	for (int i = 0; i < n_again; i++)
		kill(getpid(), again[i]);
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

/* The application under supervision. */
struct app {
	const struct strv *argv;
	pid_t pid; /* also its process group */
	int tty;   /* stdin when it is the terminal of our session, else -1 */
};

/*
 * Start the application in its own process group, and as the terminal's
 * foreground group only when pgprelude itself is that group: a background
 * job must not take the terminal from the shell.  It gets SIGKILL when
 * pgprelude dies, as everything in a container does when its PID 1 dies.
 */
static enum status start_app(struct app *app, const struct creds *creds)
{
	struct spawn_opts opts = {
		.in_fd = -1, .out_fd = -1, .creds = creds, .die_with_parent = true
	};
	const struct strv *argv = app->argv;

	if (!argv || argv->n <= 0 || !argv->v || !argv->v[0] || !argv->v[0][0]) {
		log_error("no command to start");
		return ST_NOTFOUND;
	}
	app->tty = isatty(STDIN_FILENO) && tcgetsid(STDIN_FILENO) == getsid(0) ? STDIN_FILENO : -1;
	opts.foreground = app->tty >= 0 && tcgetpgrp(app->tty) == getpgrp();
	return spawn_start(argv, &opts, &app->pid);
}

/*
 * pgprelude was continued (SIGCONT: `fg` or `bg` in a shell, or a kill).
 * When that made it the terminal's foreground group again, the terminal goes
 * on to the application (SIGTTOU is blocked here, so asking cannot stop us);
 * then its whole group is continued, as the terminal would continue a job.
 */
static void app_continue(const struct app *app)
{
	if (app->tty >= 0 && tcgetpgrp(app->tty) == getpgrp() && tcsetpgrp(app->tty, app->pid) != 0)
		log_debug("could not give the terminal to pid %ld: %s", (long)app->pid,
			  strerror(errno));
	if (kill(-app->pid, SIGCONT) != 0 && kill(app->pid, SIGCONT) != 0 && errno != ESRCH)
		log_warning("could not forward signal %d to pid %ld: %s", SIGCONT, (long)app->pid,
			    strerror(errno));
}

/*
 * The application was stopped by the terminal (^Z, or a background read or
 * write).  In a shell's job control, the shell waits for pgprelude, not for
 * the application: stop too, so that the shell sees the job stopped and
 * takes its terminal back; its `fg` or `bg` then continues us
 * (app_continue).  Without a terminal, or as PID 1, nobody would continue
 * us: stay.
 */
static void app_stopped(const struct app *app, int sig)
{
	sigset_t pending;

	if (app->tty < 0 || init_is_pid1())
		return;
	if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
		return;
	/* Already continued (the SIGCONT waits in the signalfd): stopping now would be stale. */
	if (sigpending(&pending) == 0 && sigismember(&pending, SIGCONT))
		return;
	log_debug("\"%s\" was stopped by signal %d; stopping too", app->argv->v[0], sig);
	kill(getpid(), SIGSTOP);
}

/*
 * Reap every exited child.  Returns true with the exit code in *code once
 * the application itself has exited.
 */
static bool reap_all(const struct app *app, int *code)
{
	const char *name = app->argv->v[0];
	int wstatus;
	pid_t w;

	/* CHLD signals merge: reap everything that has exited, every time. */
	while ((w = waitpid(-1, &wstatus, WNOHANG | WUNTRACED)) > 0) {
		if (w != app->pid)
			continue;
		if (WIFSTOPPED(wstatus))
			app_stopped(app, WSTOPSIG(wstatus));
		if (WIFEXITED(wstatus)) {
			log_debug("\"%s\" exited with status %d", name, WEXITSTATUS(wstatus));
			*code = WEXITSTATUS(wstatus);
			return true;
		}
		if (WIFSIGNALED(wstatus)) {
			log_debug("\"%s\" was killed by signal %d", name, WTERMSIG(wstatus));
			*code = EXIT_SIGNAL_BASE + WTERMSIG(wstatus);
			return true;
		}
	}
	return false;
}

int init_supervise(const struct strv *argv, const struct creds *creds)
{
	struct app app = { .argv = argv, .pid = -1, .tty = -1 };
	enum status st;
	int code;

	/*
	 * Not PID 1 (a shell, `docker run --init`, a test): orphans would go to
	 * whoever is PID 1; as a subreaper they come to us instead.
	 */
	if (!init_is_pid1() && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warning("could not become a child subreaper: %s", strerror(errno));
	st = start_app(&app, creds);
	if (st != ST_OK)
		return status_exit_code(st, 0);
	log_debug("supervising \"%s\" (pid %ld)", argv->v[0], (long)app.pid);

	for (;;) {
		struct pollfd pfd = { .fd = sigfd, .events = POLLIN };
		int sig;

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return EXIT_INTERNAL;
		while ((sig = init_take_signal()) != 0) {
			if (sig == SIGCHLD)
				continue;
			if (sig == SIGCONT)
				app_continue(&app);
			else if (kill(app.pid, sig) != 0 && errno != ESRCH)
				log_warning("could not forward signal %d to pid %ld: %s", sig,
					    (long)app.pid, strerror(errno));
		}
		if (reap_all(&app, &code))
			return code;
	}
}
