/*
 * test_proc.c — proc_run and proc_exec against real commands (sh, sleep,
 * grep from the base system).  What pgprelude logs is captured by pointing
 * fd 2 at a temporary file around each call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "util.h"

/* ---- helpers ----------------------------------------------------------- */

struct capture {
	int saved_fd;
	int file_fd;
	char path[64];
};

/* Point fd 2 at a fresh temporary file. */
static void capture_begin(struct capture *c)
{
	strcpy(c->path, "/tmp/test_proc.XXXXXX");
	c->file_fd = mkstemp(c->path);
	assert_true(c->file_fd >= 0);
	c->saved_fd = dup(STDERR_FILENO);
	assert_true(c->saved_fd >= 0);
	assert_true(dup2(c->file_fd, STDERR_FILENO) >= 0);
}

/* Put fd 2 back; returns what was written to it (caller frees). */
static char *capture_end(struct capture *c)
{
	struct stat stbuf;
	char *text;
	ssize_t n;

	assert_true(dup2(c->saved_fd, STDERR_FILENO) >= 0);
	close(c->saved_fd);
	assert_int_equal(fstat(c->file_fd, &stbuf), 0);
	text = xcalloc(1, (size_t)stbuf.st_size + 1);
	n = pread(c->file_fd, text, (size_t)stbuf.st_size, 0);
	assert_int_equal(n, stbuf.st_size);
	close(c->file_fd);
	unlink(c->path);
	return text;
}

#define assert_contains(haystack, needle)                                                 \
	do {                                                                              \
		if (!strstr((haystack), (needle)))                                        \
			fail_msg("expected to find\n  %s\nin\n%s", (needle), (haystack)); \
	} while (0)

#define assert_not_contains(haystack, needle)                                           \
	do {                                                                            \
		if (strstr((haystack), (needle)))                                       \
			fail_msg("did not expect\n  %s\nin\n%s", (needle), (haystack)); \
	} while (0)

/*
 * Run proc_run_grace on a literal argv, capturing the log into *log (caller
 * frees).  grace_ms < 0: proc_run itself, with its default grace.
 */
static enum status run_argv(const char *prefix, long timeout_ms, long grace_ms, char **log,
			    char **words)
{
	struct strv sv = { words, 0 };
	struct capture c;
	enum status st;

	while (words[sv.n])
		sv.n++;
	capture_begin(&c);
	if (grace_ms < 0)
		st = proc_run(prefix, &sv, timeout_ms);
	else
		st = proc_run_grace(prefix, &sv, timeout_ms, grace_ms);
	*log = capture_end(&c);
	return st;
}

#define RUN(prefix, timeout, log, ...) \
	run_argv((prefix), (timeout), -1, (log), (char *[]){ __VA_ARGS__, NULL })
#define RUN_GRACE(prefix, timeout, grace, log, ...) \
	run_argv((prefix), (timeout), (grace), (log), (char *[]){ __VA_ARGS__, NULL })

/* A sleep duration unique to this test process, to find its sleeps in /proc. */
static void make_marker(char *buf, size_t len, int which)
{
	snprintf(buf, len, "3%d.%06d", which, (int)(getpid() % 1000000));
}

/*
 * Pids of live processes whose command line is exactly "sleep MARKER".
 * Zombies have an empty cmdline and do not count.  Returns how many were
 * found; the first is stored in *first when first is not NULL.
 */
static int find_sleepers(const char *marker, pid_t *first)
{
	char want[64];
	int want_len = snprintf(want, sizeof(want), "sleep%c%s", '\0', marker) + 1;
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[300], buf[128];
		ssize_t n;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		close(fd);
		if (n == want_len && memcmp(buf, want, (size_t)want_len) == 0) {
			if (found++ == 0 && first)
				*first = (pid_t)atoi(de->d_name);
		}
	}
	closedir(d);
	return found;
}

static int setup(void **state)
{
	(void)state;
	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	return 0;
}

/* ---- proc_run: exit status --------------------------------------------- */

static void test_true_ok(void **state)
{
	char *log;
	(void)state;
	assert_int_equal(RUN("ok", 0, &log, "true"), ST_OK);
	assert_contains(log, "run step \"ok\" finished in ");
	assert_not_contains(log, "error");
	free(log);
}

static void test_false_fails(void **state)
{
	char *log;
	(void)state;
	assert_int_equal(RUN("f", 0, &log, "false"), ST_EXTERNAL);
	assert_contains(
		log,
		"pgprelude: error: run step \"f\" failed: command \"false\" exited with status 1\n");
	free(log);
}

static void test_exit_status_3(void **state)
{
	char *log;
	(void)state;
	assert_int_equal(RUN("schema", 0, &log, "sh", "-c", "exit 3"), ST_EXTERNAL);
	assert_contains(log, "run step \"schema\" failed: command \"sh\" exited with status 3\n");
	free(log);
}

static void test_killed_by_signal(void **state)
{
	char *log;
	(void)state;
	assert_int_equal(RUN("sig", 0, &log, "sh", "-c", "kill -9 $$"), ST_EXTERNAL);
	assert_contains(
		log, "run step \"sig\" failed: command \"sh\" was killed by signal 9 (Killed)\n");
	free(log);
}

static void test_missing_command(void **state)
{
	char *log;
	(void)state;
	assert_int_equal(RUN("m", 0, &log, "pgprelude-test-no-such-command", "x"), ST_EXTERNAL);
	assert_contains(log, "pgprelude: error: run step \"m\" could not be started: "
			     "command \"pgprelude-test-no-such-command\" not found\n");
	assert_contains(log, "pgprelude: hint: ");
	free(log);
}

static void test_missing_path(void **state)
{
	char *log;
	(void)state;
	assert_int_equal(RUN("m", 0, &log, "/nonexistent/dir/cmd"), ST_EXTERNAL);
	assert_contains(log, "command \"/nonexistent/dir/cmd\" not found\n");
	free(log);
}

static void test_not_executable(void **state)
{
	char path[] = "/tmp/test_proc_noexec.XXXXXX";
	int fd = mkstemp(path);
	char *log;
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	assert_int_equal(chmod(path, 0644), 0);
	if (geteuid() == 0 && access(path, X_OK) == 0) {
		/* root may bypass permissions only when some x bit is set; not here. */
		unlink(path);
		skip();
	}
	assert_int_equal(RUN("nx", 0, &log, path), ST_EXTERNAL);
	assert_contains(log, "could not be started: command \"");
	assert_contains(log, "\" is not executable: Permission denied\n");
	free(log);
	unlink(path);
}

static void test_empty_argv(void **state)
{
	struct strv sv = { (char *[]){ NULL }, 0 };
	struct capture c;
	char *log;
	(void)state;

	capture_begin(&c);
	assert_int_equal(proc_run("e", &sv, 0), ST_USAGE);
	log = capture_end(&c);
	assert_contains(log, "run step \"e\" has no command");
	free(log);
}

/* ---- proc_run: output -------------------------------------------------- */

static void test_output_lines(void **state)
{
	char *log;
	(void)state;
	assert_int_equal(RUN("out", 0, &log, "sh", "-c",
			     "echo one; echo two >&2; printf 'crlf\\r\\n'; echo; printf partial"),
			 ST_OK);
	assert_contains(log, "[out] one\n[out] two\n[out] crlf\n[out] \n[out] partial\n");
	free(log);
}

static void test_long_line_in_pieces(void **state)
{
	char *log, *p;
	(void)state;

	assert_int_equal(
		RUN("long", 0, &log, "sh", "-c",
		    "i=0; while [ $i -lt 100 ]; do printf '%0100d' 0; i=$((i+1)); done; echo"),
		ST_OK);
	/* 10000 bytes: pieces of 4000, 4000 and 2000. */
	p = log;
	for (int piece = 0; piece < 3; piece++) {
		p = strstr(p, "[long] ");
		assert_non_null(p);
		p += 7;
		size_t len = strcspn(p, "\n");
		assert_int_equal(len, piece < 2 ? 4000 : 2000);
		p += len;
	}
	assert_null(strstr(p, "[long] "));
	free(log);
}

static void test_stdin_is_dev_null(void **state)
{
	int saved_in, pfd[2];
	char *log;
	enum status st;
	(void)state;

	/*
	 * Give pgprelude a stdin that never ends (a pipe whose write end stays
	 * open): cat would wait on it forever if the command inherited it, and
	 * the timeout would end the step as a failure, without "done".
	 */
	assert_int_equal(pipe(pfd), 0);
	saved_in = dup(STDIN_FILENO);
	assert_true(saved_in >= 0);
	assert_true(dup2(pfd[0], STDIN_FILENO) >= 0);
	st = RUN("in", 10000, &log, "sh", "-c", "cat; echo done");
	assert_true(dup2(saved_in, STDIN_FILENO) >= 0);
	close(saved_in);
	close(pfd[0]);
	close(pfd[1]);

	assert_int_equal(st, ST_OK);
	assert_contains(log, "[in] done\n");
	assert_not_contains(log, "timed out");
	free(log);
}

static void test_own_process_group(void **state)
{
	char *log;
	(void)state;
	/* Field 5 of /proc/PID/stat is the process group. */
	assert_int_equal(
		RUN("pg", 0, &log, "sh", "-c", "set -- $(cat /proc/$$/stat); test \"$5\" = \"$$\""),
		ST_OK);
	free(log);
}

static void test_signals_reset_in_child(void **state)
{
	sigset_t block, saved;
	struct sigaction ign, old_int;
	char *log;
	(void)state;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &saved);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGINT, &ign, &old_int);

	assert_int_equal(RUN("sig", 0, &log, "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"),
			 ST_OK);

	sigaction(SIGINT, &old_int, NULL);
	sigprocmask(SIG_SETMASK, &saved, NULL);

	assert_contains(log, "[sig] SigBlk:\t0000000000000000\n");
	/*
	 * Only signals 1-31: 32 and 33 are the C library's own (sigaction
	 * refuses them), and whatever started the tests may have left them ignored.
	 */
	const char *ign_line = strstr(log, "[sig] SigIgn:\t");
	assert_non_null(ign_line);
	assert_int_equal(strtoull(ign_line + strlen("[sig] SigIgn:\t"), NULL, 16) & 0x7fffffffULL,
			 0);
	free(log);
}

/* ---- proc_run: timeouts and leftover processes ------------------------- */

static void test_timeout_kills_group(void **state)
{
	char marker[32], script[192];
	char *log;
	long t0;
	(void)state;

	/*
	 * The shell says when SIGTERM reaches it; the sleeps, in the same
	 * group, do not survive the timeout either.
	 */
	make_marker(marker, sizeof(marker), 0);
	snprintf(script, sizeof(script),
		 "trap 'echo got TERM; exit 0' TERM; sleep %s & sleep %s & wait", marker, marker);
	t0 = clock_ms();
	assert_int_equal(RUN("slow", 300, &log, "sh", "-c", script), ST_EXTERNAL);
	assert_true(clock_ms() - t0 >= 300);
	assert_contains(log, "[slow] got TERM\n");
	assert_contains(log, "pgprelude: error: run step \"slow\" timed out after 300 ms; "
			     "its process group was killed\n");
	assert_int_equal(find_sleepers(marker, NULL), 0);
	free(log);
}

static void test_timeout_sigkill_after_grace(void **state)
{
	char marker[32], script[160];
	char *log;
	long t0;
	(void)state;

	/*
	 * An ignored SIGTERM is inherited by the sleeps, so only SIGKILL ends
	 * them: that they are gone shows it came, and not before the grace.
	 */
	make_marker(marker, sizeof(marker), 1);
	snprintf(script, sizeof(script), "trap '' TERM; sleep %s & sleep %s; echo survived", marker,
		 marker);
	t0 = clock_ms();
	assert_int_equal(RUN_GRACE("stubborn", 300, 200, &log, "sh", "-c", script), ST_EXTERNAL);
	assert_true(clock_ms() - t0 >= 300 + 200);
	assert_contains(
		log,
		"run step \"stubborn\" timed out after 300 ms; its process group was killed\n");
	assert_not_contains(log, "survived");
	assert_int_equal(find_sleepers(marker, NULL), 0);
	free(log);
}

static void test_grandchild_holding_pipe(void **state)
{
	char marker[32], script[128];
	char *log;
	long t0;
	pid_t left = 0;
	int alive;
	(void)state;

	/*
	 * The background sleep keeps stdout open after sh exits: proc_run
	 * lingers for the output a while, then returns while the sleep still
	 * runs (it is not a timeout: nothing kills it).
	 */
	make_marker(marker, sizeof(marker), 2);
	snprintf(script, sizeof(script), "sleep %s & echo started", marker);
	t0 = clock_ms();
	assert_int_equal(RUN("bg", 0, &log, "sh", "-c", script), ST_OK);
	assert_true(clock_ms() - t0 >= 900);
	alive = find_sleepers(marker, &left);
	if (alive > 0)
		kill(left, SIGKILL); /* clean up the sleep this test started, by its pid */
	assert_int_equal(alive, 1);
	assert_contains(log, "[bg] started\n");
	assert_contains(log,
			"pgprelude: warning: run step \"bg\": a process it started still holds");
	free(log);
}

/* ---- proc_exec ---------------------------------------------------------- */

static void test_exec_not_found(void **state)
{
	struct strv sv = { (char *[]){ "pgprelude-test-no-such-command", NULL }, 1 };
	sigset_t block, saved, after;
	struct capture c;
	char *log;
	(void)state;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &saved);

	capture_begin(&c);
	assert_int_equal(proc_exec(&sv), ST_NOTFOUND);
	log = capture_end(&c);

	/* A failed exec leaves the caller's signal mask as it was. */
	sigprocmask(SIG_SETMASK, NULL, &after);
	assert_true(sigismember(&after, SIGUSR2));
	sigprocmask(SIG_SETMASK, &saved, NULL);

	assert_contains(log,
			"pgprelude: error: could not execute \"pgprelude-test-no-such-command\": "
			"No such file or directory\n");
	free(log);
}

static void test_exec_not_executable(void **state)
{
	char path[] = "/tmp/test_proc_noexec.XXXXXX";
	struct strv sv = { (char *[]){ path, NULL }, 1 };
	struct capture c;
	char *log;
	int fd = mkstemp(path);
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(path, 0644), 0);
	capture_begin(&c);
	assert_int_equal(proc_exec(&sv), ST_NOEXEC);
	log = capture_end(&c);
	assert_contains(log, "\": Permission denied\n");
	free(log);
	unlink(path);
}

static void test_exec_replaces_process(void **state)
{
	int wstatus;
	pid_t pid;
	(void)state;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct strv sv = { (char *[]){ "sh", "-c", "exit 7", NULL }, 3 };
		sigset_t all;
		/* proc_exec must unblock what the caller blocked. */
		sigfillset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		enum status st = proc_exec(&sv);
		_exit(st == ST_OK ? 98 : 99);
	}
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_true_ok),
		cmocka_unit_test(test_false_fails),
		cmocka_unit_test(test_exit_status_3),
		cmocka_unit_test(test_killed_by_signal),
		cmocka_unit_test(test_missing_command),
		cmocka_unit_test(test_missing_path),
		cmocka_unit_test(test_not_executable),
		cmocka_unit_test(test_empty_argv),
		cmocka_unit_test(test_output_lines),
		cmocka_unit_test(test_long_line_in_pieces),
		cmocka_unit_test(test_stdin_is_dev_null),
		cmocka_unit_test(test_own_process_group),
		cmocka_unit_test(test_signals_reset_in_child),
		cmocka_unit_test(test_timeout_kills_group),
		cmocka_unit_test(test_timeout_sigkill_after_grace),
		cmocka_unit_test(test_grandchild_holding_pipe),
		cmocka_unit_test(test_exec_not_found),
		cmocka_unit_test(test_exec_not_executable),
		cmocka_unit_test(test_exec_replaces_process),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
