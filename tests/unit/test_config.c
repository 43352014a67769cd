/*
 * test_config.c — unit tests for src/config.c: durations, word and list
 * splitting, ${VAR} expansion, suggestions, and config_load on files the
 * tests write themselves.  Error cases are data-driven: one row each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "expand.h"
#include "log.h"

/* ---- helpers ------------------------------------------------------------ */

static char tmpdir[] = "/tmp/pgprelude-test-config-XXXXXX";

/* Write len bytes of content to a new file under tmpdir; returns its malloc'd path. */
static char *write_temp_n(const char *content, size_t len)
{
	char *path = malloc(strlen(tmpdir) + 32);
	int fd;

	assert_non_null(path);
	sprintf(path, "%s/cfg-XXXXXX", tmpdir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

static char *write_temp(const char *content)
{
	return write_temp_n(content, strlen(content));
}

/* Write content to tmpdir/name (a fixed name); returns its malloc'd path. */
static char *write_named(const char *name, const char *content)
{
	char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
	FILE *fp;

	assert_non_null(path);
	sprintf(path, "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
	return path;
}

/* Where capture_line appends what is logged (NUL-terminated, cut to fit). */
struct captured {
	char *text;
	size_t size;
	size_t len;
};

/* log.h's output hook: keep the line instead of writing it. */
static void capture_line(const char *line, size_t len, void *arg)
{
	struct captured *c = arg;
	size_t n = len < c->size - 1 - c->len ? len : c->size - 1 - c->len;

	memcpy(c->text + c->len, line, n);
	c->len += n;
	c->text[c->len] = '\0';
}

/* config_load(path) with what it logs captured into errtext (at most size - 1 bytes). */
static enum status load_capture(const char *path, struct config *cfg, char *errtext, size_t size)
{
	struct captured c = { .text = errtext, .size = size };
	enum status st;

	errtext[0] = '\0';
	log_set_output(capture_line, &c);
	st = config_load(path, cfg);
	log_set_output(NULL, NULL);
	return st;
}

/* Load content from a temp file; errtext receives stderr. */
static enum status load_text(const char *content, struct config *cfg, char *errtext, size_t size)
{
	char *path = write_temp(content);
	enum status st = load_capture(path, cfg, errtext, size);
	unlink(path);
	free(path);
	return st;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, hay);
}

/* What config_free leaves behind (and config_load after an error). */
static bool config_is_zero(const struct config *cfg)
{
	return !cfg->path && cfg->log_format == 0 && cfg->log_level == 0 && !cfg->db_url &&
	       !cfg->db_password && cfg->wait_timeout_ms == 0 && cfg->lock_wait_timeout_ms == 0 &&
	       !cfg->history_schema && !cfg->history_table && !cfg->phases && cfg->n_phases == 0 &&
	       !cfg->exec_command.v && cfg->exec_command.n == 0;
}

static int setup_all(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	unsetenv("PGPASSWORD");
	unsetenv("PGPASSWORD_FILE");
	return 0;
}

static int teardown_all(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- config_parse_duration ---------------------------------------------- */

static void test_duration_good(void **state)
{
	static const struct {
		const char *s;
		long ms;
	} cases[] = {
		{ "250ms", 250 },	{ "30s", 30000 },
		{ "5m", 300000 },	{ "1h", 3600000 },
		{ "45", 45000 },	{ "0", 0 },
		{ "0ms", 0 },		{ "007s", 7000 },
		{ "596h", 2145600000 }, { "2147483647ms", INT_MAX },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long ms = -1;
		if (!config_parse_duration(cases[i].s, &ms))
			fail_msg("\"%s\" should parse", cases[i].s);
		assert_int_equal(ms, cases[i].ms);
	}
}

static void test_duration_bad(void **state)
{
	static const char *const cases[] = {
		"",	"5x",	"-1",		"1.5s",
		" 5s",	"5s ",	"5 s",		"s",
		"ms",	"5S",	"5sec",		"1m30s",
		"+5",	"597h", "2147483648ms", "99999999999999999999",
		"0x10",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long ms = 42;
		if (config_parse_duration(cases[i], &ms))
			fail_msg("\"%s\" should not parse", cases[i]);
		assert_int_equal(ms, 42);
	}
}

/* ---- config_split_words ------------------------------------------------- */

/* Split s and compare with the NULL-terminated expected words. */
static void check_words(const char *s, const char *const *want)
{
	struct strv sv = { 0 };
	const char *err = NULL;
	int n = 0;

	if (!config_split_words(s, &sv, &err))
		fail_msg("split of <%s> failed: %s", s, err);
	while (want[n])
		n++;
	assert_int_equal(sv.n, n);
	assert_non_null(sv.v);
	for (int i = 0; i < n; i++)
		assert_string_equal(sv.v[i], want[i]);
	assert_null(sv.v[n]);
	strv_free(&sv);
	assert_null(sv.v);
	assert_int_equal(sv.n, 0);
}

static void test_words(void **state)
{
	(void)state;
	check_words("npx directus start",
		    (const char *const[]){ "npx", "directus", "start", NULL });
	check_words("  a \t b  ", (const char *const[]){ "a", "b", NULL });
	check_words("", (const char *const[]){ NULL });
	check_words("   ", (const char *const[]){ NULL });
	check_words("a\nb", (const char *const[]){ "a", "b", NULL });
}

static void test_words_quotes(void **state)
{
	(void)state;
	check_words("say 'a  b' \"c d\"", (const char *const[]){ "say", "a  b", "c d", NULL });
	check_words("'it''s' x", (const char *const[]){ "its", "x", NULL });
	check_words("a'b'\"c\"d", (const char *const[]){ "abcd", NULL });
	check_words("'' \"\"", (const char *const[]){ "", "", NULL });
	check_words("'$HOME \\n \"x\"'", (const char *const[]){ "$HOME \\n \"x\"", NULL });
	check_words("sh -c 'echo \"hi\"; exit 3'",
		    (const char *const[]){ "sh", "-c", "echo \"hi\"; exit 3", NULL });
}

static void test_words_escapes(void **state)
{
	(void)state;
	check_words("a\\ b c", (const char *const[]){ "a b", "c", NULL });
	check_words("\\'x\\\"", (const char *const[]){ "'x\"", NULL });
	check_words("\\\\", (const char *const[]){ "\\", NULL });
	/* inside "…" only \" \\ \$ \` are escapes; other backslashes stay */
	check_words("\"\\\" \\\\ \\$ \\` \\n\"", (const char *const[]){ "\" \\ $ ` \\n", NULL });
	/* backslash-newline joins lines */
	check_words("a \\\nb", (const char *const[]){ "a", "b", NULL });
	check_words("ab\\\ncd", (const char *const[]){ "abcd", NULL });
}

static void check_words_error(const char *s, const char *want_err)
{
	struct strv sv = { .v = (char **)1, .n = 7 };
	const char *err = NULL;

	if (config_split_words(s, &sv, &err))
		fail_msg("split of <%s> should fail", s);
	assert_non_null(err);
	assert_string_equal(err, want_err);
	assert_null(sv.v);
	assert_int_equal(sv.n, 0);
}

static void test_words_errors(void **state)
{
	(void)state;
	check_words_error("echo 'abc", "unterminated single quote");
	check_words_error("a b 'c d", "unterminated single quote");
	check_words_error("echo \"abc", "unterminated double quote");
	check_words_error("echo \"abc\\\"", "unterminated double quote");
	check_words_error("echo abc\\", "trailing backslash");
}

/* ---- config_split_list -------------------------------------------------- */

static void check_list(const char *s, const char *const *want)
{
	struct strv sv = { 0 };
	int n = 0;

	config_split_list(s, &sv);
	while (want[n])
		n++;
	assert_int_equal(sv.n, n);
	assert_non_null(sv.v);
	for (int i = 0; i < n; i++)
		assert_string_equal(sv.v[i], want[i]);
	assert_null(sv.v[n]);
	strv_free(&sv);
}

static void test_list(void **state)
{
	(void)state;
	check_list("directus_collections, public.users",
		   (const char *const[]){ "directus_collections", "public.users", NULL });
	check_list("a,b", (const char *const[]){ "a", "b", NULL });
	check_list("a b\tc", (const char *const[]){ "a", "b", "c", NULL });
	check_list(" ,a,, ,b ,\nc, ", (const char *const[]){ "a", "b", "c", NULL });
	check_list("", (const char *const[]){ NULL });
	check_list(" , ,", (const char *const[]){ NULL });
}

/* ---- config_expand ------------------------------------------------------ */

static void check_expand(const char *s, const char *want)
{
	char err[256] = "";
	char *got = config_expand(s, err, sizeof(err));
	if (!got)
		fail_msg("expansion of <%s> failed: %s", s, err);
	assert_string_equal(got, want);
	free(got);
}

static void check_expand_error(const char *s, const char *want_err)
{
	char err[256] = "";
	char *got = config_expand(s, err, sizeof(err));
	if (got)
		fail_msg("expansion of <%s> should fail, gave <%s>", s, got);
	assert_string_equal(err, want_err);
}

static void test_expand_plain(void **state)
{
	(void)state;
	check_expand("", "");
	check_expand("no variables", "no variables");
	check_expand("cost: $5 and $HOME", "cost: $5 and $HOME");
	check_expand("trailing $", "trailing $");
	check_expand("$$", "$");
	check_expand("$${X}", "${X}");
	check_expand("a$$$$b", "a$$b");
}

static void test_expand_set(void **state)
{
	(void)state;
	setenv("PGPRELUDE_T_A", "alpha", 1);
	setenv("PGPRELUDE_T_EMPTY", "", 1);
	check_expand("${PGPRELUDE_T_A}", "alpha");
	check_expand("x-${PGPRELUDE_T_A}-${PGPRELUDE_T_A}-y", "x-alpha-alpha-y");
	check_expand("${PGPRELUDE_T_A:-zzz}", "alpha");
	check_expand("[${PGPRELUDE_T_EMPTY}]", "[]");
	unsetenv("PGPRELUDE_T_A");
	unsetenv("PGPRELUDE_T_EMPTY");
}

static void test_expand_default(void **state)
{
	(void)state;
	unsetenv("PGPRELUDE_T_UNSET");
	setenv("PGPRELUDE_T_EMPTY", "", 1);
	setenv("PGPRELUDE_T_B", "bee", 1);
	check_expand("${PGPRELUDE_T_UNSET:-fallback}", "fallback");
	check_expand("${PGPRELUDE_T_EMPTY:-fallback}", "fallback");
	check_expand("${PGPRELUDE_T_UNSET:-}", "");
	check_expand("${PGPRELUDE_T_UNSET:-a b:c}", "a b:c");
	check_expand("${PGPRELUDE_T_UNSET:-${PGPRELUDE_T_B}}", "bee");
	check_expand("${PGPRELUDE_T_UNSET:-${PGPRELUDE_T_EMPTY:-deep}}!", "deep!");
	check_expand("${PGPRELUDE_T_UNSET:-$$}", "$");
	/* an unused default is not expanded, so it may name unset variables */
	check_expand("${PGPRELUDE_T_B:-${PGPRELUDE_T_UNSET}}", "bee");
	unsetenv("PGPRELUDE_T_EMPTY");
	unsetenv("PGPRELUDE_T_B");
}

static void test_expand_errors(void **state)
{
	(void)state;
	unsetenv("PGPRELUDE_T_UNSET");
	unsetenv("PGPRELUDE_T_UNSET_FILE");
	check_expand_error("${PGPRELUDE_T_UNSET}", "variable PGPRELUDE_T_UNSET is not set");
	check_expand_error("x ${PGPRELUDE_T_UNSET", "unterminated ${");
	check_expand_error("${", "unterminated ${");
	check_expand_error("${PGPRELUDE_T_UNSET:-abc", "unterminated ${");
	check_expand_error("${PGPRELUDE_T_UNSET:-${X}", "unterminated ${");
	check_expand_error("${}", "bad variable reference: use ${NAME} or ${NAME:-default}");
	check_expand_error("${1A}", "bad variable reference: use ${NAME} or ${NAME:-default}");
	check_expand_error("${A-b}", "bad variable reference: use ${NAME} or ${NAME:-default}");
	check_expand_error("${A:=b}", "bad variable reference: use ${NAME} or ${NAME:-default}");
	check_expand_error("${A B}", "bad variable reference: use ${NAME} or ${NAME:-default}");
}

static void test_expand_file(void **state)
{
	char *path;
	char err[512];
	(void)state;

	unsetenv("PGPRELUDE_T_SECRET");
	path = write_named("secret", "s3cret\n");
	setenv("PGPRELUDE_T_SECRET_FILE", path, 1);
	check_expand("pw=${PGPRELUDE_T_SECRET}", "pw=s3cret");
	free(path);

	path = write_named("secret", "s3cret\r\n");
	check_expand("${PGPRELUDE_T_SECRET}", "s3cret");
	free(path);

	path = write_named("secret", "two\n\n"); /* only one newline is stripped */
	check_expand("${PGPRELUDE_T_SECRET}", "two\n");
	free(path);

	path = write_named("secret", "no-newline");
	check_expand("${PGPRELUDE_T_SECRET}", "no-newline");
	free(path);

	path = write_named("secret", "");
	check_expand("${PGPRELUDE_T_SECRET:-dflt}", "dflt");
	free(path);

	/* the variable itself wins over its _FILE */
	setenv("PGPRELUDE_T_SECRET", "direct", 1);
	check_expand("${PGPRELUDE_T_SECRET}", "direct");
	unsetenv("PGPRELUDE_T_SECRET");

	/* a missing file is an error, default or not */
	setenv("PGPRELUDE_T_SECRET_FILE", "/nonexistent/pgprelude/secret", 1);
	check_expand_error("${PGPRELUDE_T_SECRET}",
			   "could not read PGPRELUDE_T_SECRET_FILE "
			   "\"/nonexistent/pgprelude/secret\": No such file or directory");
	assert_null(config_expand("${PGPRELUDE_T_SECRET:-x}", err, sizeof(err)));
	assert_contains(err, "could not read PGPRELUDE_T_SECRET_FILE");
	unsetenv("PGPRELUDE_T_SECRET_FILE");
}

/* expand.h directly: what each failure is, and the secret files it refuses. */
static void test_expand_results(void **state)
{
	char err[512];
	char *out = (char *)1;
	char *path;
	char *big;
	const char *why;
	FILE *fp;
	(void)state;

	unsetenv("PGPRELUDE_T_UNSET");
	unsetenv("PGPRELUDE_T_UNSET_FILE");
	assert_int_equal(expand_value("a${PGPRELUDE_T_UNSET:-b}c", &out, err, sizeof(err)),
			 EXPAND_OK);
	assert_string_equal(out, "abc");
	free(out);
	assert_int_equal(expand_value("${PGPRELUDE_T_UNSET}", &out, err, sizeof(err)),
			 EXPAND_UNSET);
	assert_null(out);
	assert_int_equal(expand_value("${PGPRELUDE_T_UNSET", &out, err, sizeof(err)),
			 EXPAND_SYNTAX);
	assert_null(out);

	/* a secret with a NUL byte, or over 1 MiB, is refused with its reason */
	path = write_named("secret-nul", "");
	fp = fopen(path, "w");
	assert_non_null(fp);
	fwrite("a\0b", 1, 3, fp);
	fclose(fp);
	why = expand_read_secret(path, &out);
	assert_null(out);
	assert_string_equal(why, "file contains a NUL byte");
	setenv("PGPRELUDE_T_UNSET_FILE", path, 1);
	assert_int_equal(expand_value("${PGPRELUDE_T_UNSET:-x}", &out, err, sizeof(err)),
			 EXPAND_FILE);
	assert_null(out);
	unsetenv("PGPRELUDE_T_UNSET_FILE");
	free(path);

	big = malloc(1024 * 1024 + 2);
	assert_non_null(big);
	memset(big, 'x', 1024 * 1024 + 1);
	big[1024 * 1024 + 1] = '\0';
	path = write_named("secret-big", big);
	assert_string_equal(expand_read_secret(path, &out), "file is larger than 1 MiB");
	assert_null(out);
	free(path);
	big[1024 * 1024 - 1] = '\n'; /* 1 MiB in all, newline included: read, without it */
	big[1024 * 1024] = '\0';
	path = write_named("secret-big", big);
	assert_null(expand_read_secret(path, &out));
	assert_int_equal(strlen(out), 1024 * 1024 - 1);
	free(out);
	free(path);
	free(big);
}

/* ---- config_suggest ----------------------------------------------------- */

static void test_suggest(void **state)
{
	static const char *const known[] = {
		"dir",	   "run",    "wait_for",     "wait_for_query",
		"timeout", "expect", "lock_timeout", "statement_timeout",
		NULL
	};
	(void)state;
	assert_string_equal(config_suggest("tiemout", known), "timeout");
	assert_string_equal(config_suggest("timout", known), "timeout");
	assert_string_equal(config_suggest("expcet", known), "expect");
	assert_string_equal(config_suggest("Timeout", known), "timeout");
	assert_string_equal(config_suggest("WAIT_FOR", known), "wait_for");
	assert_string_equal(config_suggest("waitfor", known), "wait_for");
	assert_string_equal(config_suggest("lock-timeout", known), "lock_timeout");
	assert_string_equal(config_suggest("dir", known), "dir");
	assert_null(config_suggest("banana", known));
	assert_null(config_suggest("x", known));
	assert_null(config_suggest("", known));
	assert_null(config_suggest("completely_unrelated_key", known));
}

/* ---- config_load: valid files ------------------------------------------- */

static const char full_config[] = "; a full configuration\n"
				  "log_format = json\n"
				  "log_level = debug\n"
				  "\n"
				  "[database]\n"
				  "url = ${PGPRELUDE_T_URL:-postgres://localhost/app}\n"
				  "wait_timeout = 90s\n"
				  "lock_wait_timeout = 2m\n"
				  "\n"
				  "[history]\n"
				  "table = meta.applied\n"
				  "\n"
				  "[phase pre]\n"
				  "dir = db-init/\n"
				  "lock_timeout = 2s\n"
				  "statement_timeout = 1m\n"
				  "expect = a\n"
				  "\n"
				  "[phase schema]\n"
				  "run = directus schema apply --yes \"snap shot.yaml\"\n"
				  "timeout = 15m\n"
				  "expect = organization_users, users\n"
				  "\n"
				  "[phase ready]\n"
				  "wait_for = directus_collections, public.users\n"
				  "wait_for_query = SELECT count(*) > 0 FROM x\n"
				  "\n"
				  "[phase abs]\n"
				  "dir = /srv/db-init-post\n"
				  "\n"
				  "[exec]\n"
				  "command = npx directus start\n";

static void test_load_full(void **state)
{
	struct config cfg;
	char err[4096];
	char *path = write_named("full.ini", full_config);
	char want[512];
	(void)state;

	unsetenv("PGPRELUDE_T_URL");
	assert_int_equal(load_capture(path, &cfg, err, sizeof(err)), ST_OK);
	assert_string_equal(err, "");
	assert_string_equal(cfg.path, path);
	assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_string_equal(cfg.db_url, "postgres://localhost/app");
	assert_null(cfg.db_password);
	assert_int_equal(cfg.wait_timeout_ms, 90000);
	assert_int_equal(cfg.lock_wait_timeout_ms, 120000);
	assert_string_equal(cfg.history_schema, "meta");
	assert_string_equal(cfg.history_table, "applied");

	assert_int_equal(cfg.n_phases, 4);
	/* file order is kept */
	assert_string_equal(cfg.phases[0].name, "pre");
	assert_string_equal(cfg.phases[1].name, "schema");
	assert_string_equal(cfg.phases[2].name, "ready");
	assert_string_equal(cfg.phases[3].name, "abs");
	assert_int_equal(cfg.phases[0].line, 13);
	assert_int_equal(cfg.phases[1].line, 19);

	/* dir phase: relative to the config's folder, trailing slash dropped */
	assert_int_equal(cfg.phases[0].kind, PHASE_DIR);
	snprintf(want, sizeof(want), "%s/db-init", tmpdir);
	assert_string_equal(cfg.phases[0].dir, want);
	assert_int_equal(cfg.phases[0].lock_timeout_ms, 2000);
	assert_int_equal(cfg.phases[0].statement_timeout_ms, 60000);
	assert_int_equal(cfg.phases[0].timeout_ms, 600000);
	assert_int_equal(cfg.phases[0].expect.n, 1);
	assert_null(cfg.phases[0].argv.v);
	assert_null(cfg.phases[0].query);

	/* run phase */
	assert_int_equal(cfg.phases[1].kind, PHASE_RUN);
	assert_null(cfg.phases[1].dir);
	assert_int_equal(cfg.phases[1].argv.n, 5);
	assert_string_equal(cfg.phases[1].argv.v[0], "directus");
	assert_string_equal(cfg.phases[1].argv.v[4], "snap shot.yaml");
	assert_null(cfg.phases[1].argv.v[5]);
	assert_int_equal(cfg.phases[1].timeout_ms, 900000);
	assert_int_equal(cfg.phases[1].expect.n, 2);
	assert_string_equal(cfg.phases[1].expect.v[0], "organization_users");
	assert_string_equal(cfg.phases[1].expect.v[1], "users");

	/* wait_for phase: relations and query; default timeout */
	assert_int_equal(cfg.phases[2].kind, PHASE_WAIT_FOR);
	assert_int_equal(cfg.phases[2].relations.n, 2);
	assert_string_equal(cfg.phases[2].relations.v[0], "directus_collections");
	assert_string_equal(cfg.phases[2].relations.v[1], "public.users");
	assert_string_equal(cfg.phases[2].query, "SELECT count(*) > 0 FROM x");
	assert_int_equal(cfg.phases[2].timeout_ms, 600000);

	/* an absolute dir stays as it is; phase defaults */
	assert_string_equal(cfg.phases[3].dir, "/srv/db-init-post");
	assert_int_equal(cfg.phases[3].lock_timeout_ms, 5000);
	assert_int_equal(cfg.phases[3].statement_timeout_ms, 0);
	assert_int_equal(cfg.phases[3].expect.n, 0);

	assert_int_equal(cfg.exec_command.n, 3);
	assert_string_equal(cfg.exec_command.v[2], "start");

	config_free(&cfg);
	assert_true(config_is_zero(&cfg));
	config_free(&cfg); /* a second free is a no-op */
	unlink(path);
	free(path);
}

static void test_load_defaults(void **state)
{
	struct config cfg;
	char err[1024];
	(void)state;

	assert_int_equal(load_text("; nothing but a comment\n", &cfg, err, sizeof(err)), ST_OK);
	assert_int_equal(cfg.log_format, LOG_FORMAT_TEXT);
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_null(cfg.db_url);
	assert_null(cfg.db_password);
	assert_int_equal(cfg.wait_timeout_ms, 60000);
	assert_int_equal(cfg.lock_wait_timeout_ms, 300000);
	assert_string_equal(cfg.history_schema, "pgprelude");
	assert_string_equal(cfg.history_table, "history");
	assert_int_equal(cfg.n_phases, 0);
	assert_null(cfg.phases);
	assert_int_equal(cfg.exec_command.n, 0);
	config_free(&cfg);

	assert_int_equal(load_text("", &cfg, err, sizeof(err)), ST_OK);
	config_free(&cfg);
}

static void test_load_values(void **state)
{
	struct config cfg;
	char err[1024];
	(void)state;

	/* a bare table name goes to schema public; empty url; empty exec command */
	assert_int_equal(
		load_text("[database]\nurl =\n[history]\ntable = my_history\n[exec]\ncommand =\n",
			  &cfg, err, sizeof(err)),
		ST_OK);
	assert_string_equal(cfg.db_url, "");
	assert_string_equal(cfg.history_schema, "public");
	assert_string_equal(cfg.history_table, "my_history");
	assert_int_equal(cfg.exec_command.n, 0);
	assert_non_null(cfg.exec_command.v);
	assert_null(cfg.exec_command.v[0]);
	config_free(&cfg);

	/* timeout = 0 means none; wait_for_query alone; case-insensitive levels */
	assert_int_equal(load_text("log_level = WARNING\nlog_format = Text\n"
				   "[phase w]\nwait_for_query = SELECT true\ntimeout = 0\n",
				   &cfg, err, sizeof(err)),
			 ST_OK);
	assert_int_equal(cfg.log_level, LOG_WARNING);
	assert_int_equal(cfg.log_format, LOG_FORMAT_TEXT);
	assert_int_equal(cfg.phases[0].kind, PHASE_WAIT_FOR);
	assert_int_equal(cfg.phases[0].relations.n, 0);
	assert_string_equal(cfg.phases[0].query, "SELECT true");
	assert_int_equal(cfg.phases[0].timeout_ms, 0);
	config_free(&cfg);

	/* a UTF-8 BOM is skipped; a conninfo url may span lines */
	assert_int_equal(load_text("\xEF\xBB\xBF[database]\nurl = host=db\n  dbname=app\n", &cfg,
				   err, sizeof(err)),
			 ST_OK);
	assert_string_equal(cfg.db_url, "host=db\ndbname=app");
	config_free(&cfg);

	/* keys may come before the kind key that allows them */
	assert_int_equal(load_text("[phase r]\ntimeout = 5s\nexpect = t\nrun = true\n", &cfg, err,
				   sizeof(err)),
			 ST_OK);
	assert_int_equal(cfg.phases[0].kind, PHASE_RUN);
	assert_int_equal(cfg.phases[0].timeout_ms, 5000);
	config_free(&cfg);
}

static void test_load_expansion(void **state)
{
	struct config cfg;
	char err[1024];
	(void)state;

	setenv("PGPRELUDE_T_URL", "host=db dbname=app", 1);
	setenv("PGPRELUDE_T_WAIT", "3m", 1);
	setenv("PGPRELUDE_T_CMD", "node server.js", 1);
	assert_int_equal(
		load_text(
			"[database]\nurl = ${PGPRELUDE_T_URL}\nwait_timeout = ${PGPRELUDE_T_WAIT}\n"
			"[phase a]\nrun = ${PGPRELUDE_T_CMD} --port $$PORT\n",
			&cfg, err, sizeof(err)),
		ST_OK);
	assert_string_equal(cfg.db_url, "host=db dbname=app");
	assert_int_equal(cfg.wait_timeout_ms, 180000);
	assert_int_equal(cfg.phases[0].argv.n, 4);
	assert_string_equal(cfg.phases[0].argv.v[0], "node");
	assert_string_equal(cfg.phases[0].argv.v[3], "$PORT");
	config_free(&cfg);
	unsetenv("PGPRELUDE_T_URL");
	unsetenv("PGPRELUDE_T_WAIT");
	unsetenv("PGPRELUDE_T_CMD");
}

static void test_load_multiline(void **state)
{
	struct config cfg;
	char err[1024];
	(void)state;

	assert_int_equal(load_text("[phase ready]\n"
				   "wait_for_query = SELECT count(*) > 0\n"
				   "    FROM directus_collections\n"
				   "\n"
				   "  ; an indented comment is still a comment\n"
				   "    WHERE collection = 'x'\n"
				   "wait_for = a,\n"
				   "  b\n"
				   "\tc\n"
				   "[phase run]\n"
				   "run = sh -c\n"
				   "   'echo one;\n"
				   "    echo two'\n",
				   &cfg, err, sizeof(err)),
			 ST_OK);
	assert_string_equal(cfg.phases[0].query, "SELECT count(*) > 0\nFROM directus_collections\n"
						 "WHERE collection = 'x'");
	assert_int_equal(cfg.phases[0].relations.n, 3);
	assert_string_equal(cfg.phases[0].relations.v[2], "c");
	assert_int_equal(cfg.phases[1].argv.n, 3);
	assert_string_equal(cfg.phases[1].argv.v[2], "echo one;\necho two");
	config_free(&cfg);
}

static void test_load_line_length(void **state)
{
	struct config cfg;
	char err[1024];
	char text[512];
	(void)state;

	/* 199 bytes is the longest line accepted */
	snprintf(text, sizeof(text), "[phase a]\nwait_for_query = SELECT '%0*d'\n", 199 - 26, 0);
	assert_int_equal(strchr(text + 10, '\n') - (text + 10), 199);
	assert_int_equal(load_text(text, &cfg, err, sizeof(err)), ST_OK);
	assert_int_equal(strlen(cfg.phases[0].query), 199 - 17);
	config_free(&cfg);

	/* with CRLF line ends too */
	snprintf(text, sizeof(text), "[phase a]\r\nwait_for_query = SELECT '%0*d'\r\n", 199 - 26,
		 0);
	assert_int_equal(load_text(text, &cfg, err, sizeof(err)), ST_OK);
	assert_int_equal(strlen(cfg.phases[0].query), 199 - 17);
	config_free(&cfg);
}

static void test_load_relative_no_slash(void **state)
{
	struct config cfg;
	char err[1024];
	char cwd[PATH_MAX];
	char *path =
		write_named("rel.ini", "[phase a]\ndir = db-init\n[phase b]\ndir = ./sub/x//\n");
	(void)state;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	assert_int_equal(load_capture("rel.ini", &cfg, err, sizeof(err)), ST_OK);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(cfg.phases[0].dir, "db-init");
	assert_string_equal(cfg.phases[1].dir, "./sub/x");
	config_free(&cfg);
	unlink(path);
	free(path);
}

static void test_load_password_file(void **state)
{
	struct config cfg;
	char err[1024];
	char *secret = write_named("pgpass", "hunter2\n");
	(void)state;

	setenv("PGPASSWORD_FILE", secret, 1);
	assert_int_equal(load_text("", &cfg, err, sizeof(err)), ST_OK);
	assert_string_equal(cfg.db_password, "hunter2");
	config_free(&cfg);

	/* PGPASSWORD set: libpq uses it, the file is not read */
	setenv("PGPASSWORD", "other", 1);
	assert_int_equal(load_text("", &cfg, err, sizeof(err)), ST_OK);
	assert_null(cfg.db_password);
	config_free(&cfg);
	unsetenv("PGPASSWORD");

	/* an unreadable PGPASSWORD_FILE is an error, and the content is never logged */
	setenv("PGPASSWORD_FILE", "/nonexistent/pgprelude/pgpass", 1);
	assert_int_equal(load_text("", &cfg, err, sizeof(err)), ST_USAGE);
	assert_true(config_is_zero(&cfg));
	assert_contains(err, "pgprelude: error: could not read PGPASSWORD_FILE "
			     "\"/nonexistent/pgprelude/pgpass\": No such file or directory\n");
	unsetenv("PGPASSWORD_FILE");

	unlink(secret);
	free(secret);
}

static void test_load_missing_file(void **state)
{
	struct config cfg;
	char err[1024];
	char want[1024];
	(void)state;

	assert_int_equal(load_capture("/nonexistent/pgprelude.ini", &cfg, err, sizeof(err)),
			 ST_USAGE);
	assert_true(config_is_zero(&cfg));
	assert_string_equal(err, "pgprelude: error: could not open configuration file "
				 "\"/nonexistent/pgprelude.ini\": No such file or directory\n");

	/* a folder opens, but does not read */
	assert_int_equal(load_capture(tmpdir, &cfg, err, sizeof(err)), ST_USAGE);
	assert_true(config_is_zero(&cfg));
	snprintf(want, sizeof(want),
		 "pgprelude: error: could not read configuration file \"%s\": Is a directory\n",
		 tmpdir);
	assert_string_equal(err, want);
}

/* A *_FILE variable that names a folder: the value's line, the variable and the key. */
static void test_load_secret_folder(void **state)
{
	struct config cfg;
	char err[1024];
	char want[1024];
	char *path = write_named("secret-dir.ini",
				 "[database]\n"
				 "url = postgresql://postgres:${PGPRELUDE_T_PW}@db/app\n"
				 "wait_timeout = 1s\n"
				 "[phase pre]\n"
				 "dir = pre\n");
	(void)state;

	unsetenv("PGPRELUDE_T_PW");
	setenv("PGPRELUDE_T_PW_FILE", tmpdir, 1);
	assert_int_equal(load_capture(path, &cfg, err, sizeof(err)), ST_USAGE);
	assert_true(config_is_zero(&cfg));
	snprintf(want, sizeof(want),
		 "%s:2: error: could not read PGPRELUDE_T_PW_FILE \"%s\": Is a directory "
		 "(in url of [database])\n",
		 path, tmpdir);
	assert_string_equal(err, want);
	unsetenv("PGPRELUDE_T_PW_FILE");
	unlink(path);
	free(path);
}

/* ---- config_load: one row per bad input --------------------------------- */

struct bad_case {
	const char *name;
	const char *text;
	int line;	  /* expected in "FILE:LINE: error:" */
	const char *msg;  /* expected in the error line */
	const char *hint; /* expected in a following hint line, or NULL */
};

static const struct bad_case bad_cases[] = {
	{ "unknown section", "[databse]\nurl = x\n", 1, "unknown section [databse]",
	  "did you mean [database]?" },
	{ "unknown section, far", "[nothing]\n", 1, "unknown section [nothing]", NULL },
	{ "phase typo", "[phases a]\n", 1, "unknown section [phases a]",
	  "did you mean [phase a]?" },
	{ "phase without name", "[phase]\ndir = x\n", 1, "phase without a name", NULL },
	{ "phase with blank name", "[phase   ]\ndir = x\n", 1, "phase without a name", NULL },
	{ "phase name with blank", "[phase a b]\ndir = x\n", 1, "bad phase name \"a b\"", NULL },
	{ "named database", "[database x]\n", 1, "section [database] takes no name", NULL },
	{ "repeated section", "[database]\n[exec]\n[database]\n", 3, "duplicate section [database]",
	  NULL },
	{ "unknown key", "[phase schema]\nrun = x\ntiemout = 5m\n", 3,
	  "unknown key \"tiemout\" in [phase schema]", "did you mean \"timeout\"?" },
	{ "unknown key, case", "[database]\nURL = x\n", 2, "unknown key \"URL\" in [database]",
	  "did you mean \"url\"?" },
	{ "key of another section", "url = x\n", 1, "unknown key \"url\"",
	  "url belongs in [database]" },
	{ "unknown key, far", "[exec]\nbanana = 1\n", 2, "unknown key \"banana\" in [exec]", NULL },
	{ "missing kind", "[phase a]\nexpect = t\n\n[phase b]\ndir = x\n", 1,
	  "phase \"a\" has no kind: give one of dir, run, wait_for", NULL },
	{ "missing kind at end", "[phase a]\ndir = x\n[phase b]\n", 3, "phase \"b\" has no kind",
	  NULL },
	{ "two kinds", "[phase a]\ndir = x\nexpect = t\nrun = y\n", 4, "phase \"a\" has two kinds",
	  NULL },
	{ "two kinds, wait_for", "[phase a]\nwait_for_query = SELECT 1\ndir = x\n", 3,
	  "has two kinds", NULL },
	{ "duplicate phase", "[phase a]\ndir = x\n[phase b]\ndir = y\n[phase a]\ndir = z\n", 5,
	  "duplicate phase \"a\" (first on line 1)", NULL },
	{ "duplicate key", "[phase a]\ndir = x\nexpect = t\ndir = y\n", 4,
	  "duplicate key \"dir\" in [phase a] (first on line 2)", NULL },
	{ "duplicate global key", "log_level = info\nlog_level = debug\n", 2,
	  "duplicate key \"log_level\"", NULL },
	{ "timeout on dir", "[phase a]\ndir = x\ntimeout = 5m\n", 3,
	  "key \"timeout\" does not apply to a dir phase", NULL },
	{ "timeout before dir", "[phase a]\ntimeout = 5m\ndir = x\n", 2,
	  "key \"timeout\" does not apply", NULL },
	{ "lock_timeout on run", "[phase a]\nrun = x\nlock_timeout = 1s\n", 3,
	  "key \"lock_timeout\" does not apply to a run phase", NULL },
	{ "statement_timeout on wait_for", "[phase a]\nstatement_timeout = 1s\nwait_for = t\n", 2,
	  "key \"statement_timeout\" does not apply to a wait_for phase", NULL },
	{ "bad duration", "[database]\nwait_timeout = 5x\n", 2,
	  "bad duration \"5x\" for wait_timeout in [database]", NULL },
	{ "bad phase duration", "[phase a]\nrun = x\ntimeout = soon\n", 3, "bad duration \"soon\"",
	  NULL },
	{ "negative duration", "[phase a]\ndir = x\nlock_timeout = -1\n", 3, "bad duration", NULL },
	{ "overlong line",
	  "[phase a]\nwait_for_query = SELECT 1 " /* 26 + 3 * 60 = 206 bytes */
	  "------------------------------------------------------------"
	  "------------------------------------------------------------"
	  "------------------------------------------------------------\n",
	  2, "line too long (at most 199 bytes); continue the value on indented lines", NULL },
	{ "overlong comment",
	  "\n\n;2345678901234567890123456789012345678901234567890123456789012345678901234567890"
	  "12345678901234567890123456789012345678901234567890123456789012345678901234567890"
	  "1234567890123456789012345678901234567890\n",
	  3, "line too long", NULL },
	{ "unset variable", "[database]\nurl = ${PGPRELUDE_T_NOPE}\n", 2,
	  "variable PGPRELUDE_T_NOPE is not set", "${PGPRELUDE_T_NOPE:-default}" },
	{ "unterminated variable", "[database]\nurl = ${PGPRELUDE_T_NOPE\n", 2, "unterminated ${",
	  NULL },
	{ "unterminated quote in run", "[phase a]\nrun = echo 'x\n", 2,
	  "unterminated single quote in run", NULL },
	{ "unterminated quote in command", "[exec]\ncommand = echo \"x\n", 2,
	  "unterminated double quote", NULL },
	{ "trailing backslash", "[exec]\ncommand = echo \\\n", 2, "trailing backslash", NULL },
	{ "bad log_format", "log_format = xml\n", 1, "bad log_format \"xml\"", NULL },
	{ "bad log_level", "log_level = loud\n", 1, "bad log_level \"loud\"", NULL },
	{ "bad table, two dots", "[history]\ntable = a.b.c\n", 2,
	  "bad history table name \"a.b.c\"", NULL },
	{ "bad table, dash", "[history]\ntable = my-table\n", 2, "bad history table name", NULL },
	{ "bad table, empty part", "[history]\ntable = public.\n", 2, "bad history table name",
	  NULL },
	{ "bad table, empty", "[history]\ntable =\n", 2, "bad history table name", NULL },
	{ "empty dir", "[phase a]\ndir =\n", 2, "dir is empty", NULL },
	{ "empty run", "[phase a]\nrun = ${PGPRELUDE_T_NOPE:-}\n", 2, "run is empty", NULL },
	{ "nothing to wait for", "[phase a]\nwait_for = ,\n", 2,
	  "phase \"a\" has nothing to wait for", NULL },
	{ "expect of commas only", "[phase a]\ndir = x\nexpect = , ,\n", 3,
	  "expect = \", ,\" names no relation in [phase a]", NULL },
	{ "no equals sign", "[database]\nurl\n", 2, "expected \"key = value\"", NULL },
	{ "unclosed section", "[database\n", 1, "missing \"]\"", NULL },
	{ "text after section", "[database] url = x\n", 1, "unexpected text after \"]\"", NULL },
	{ "empty key", "[database]\n= x\n", 2, "missing key name", NULL },
	{ "first error wins", "[database]\nwait_timeout = x\n[nothing]\n", 2, "bad duration",
	  NULL },
	{ "error in multi-line value", "[phase a]\nrun = x\n  'y\n", 2,
	  "unterminated single quote in run", NULL },
	{ "multi-line duration", "[phase a]\nrun = x\ntimeout = 5\n  minutes\n", 3,
	  "timeout in [phase a] takes one line, but line 4 continues it",
	  "remove the indentation" },
	{ "indented key continues dir", "[phase a]\ndir = x\n  lock_timeout = 1s\n", 2,
	  "dir in [phase a] takes one line", NULL },
	{ "multi-line table", "[history]\ntable = a\n\tb\n", 2, "table in [history] takes one line",
	  NULL },
};

/*
 * Whole files a user might write, and everything config_load logs for
 * them: the error line (FILE:LINE: error: MSG) and the hint line, if any.
 * DB and PRE stand around the lines of each case, as in a deployment.
 */
struct exact_case {
	const char *name;
	const char *text;
	size_t len; /* of text, when it holds a NUL byte; else 0 */
	int line;
	const char *msg;
	const char *hint; /* NULL: no hint line */
};

#define DB                                                \
	"[database]\n"                                    \
	"url = ${PGPRELUDE_T_URL:-postgresql://db/app}\n" \
	"wait_timeout = 5s\n"                             \
	"lock_wait_timeout = 5s\n"
#define PRE "[phase pre]\ndir = pre\n"
#define ONES50 "11111111111111111111111111111111111111111111111111"
#define WITH_NUL DB PRE "mode = exec\0\n"

#define NAMELESS_NUL "[database]\n= x\nmode\0\n"

static const struct exact_case exact_cases[] = {
	/* how errors on neighbouring lines meet */
	{ "a line refused after a value: the value may have gone on",
	  "[database]\nwait_timeout = x\n" ONES50 ONES50 ONES50 ONES50 "\n", 0, 3,
	  "line too long (at most 199 bytes); continue the value on indented lines", NULL },
	{ "a key without a name before a refused line", NAMELESS_NUL, sizeof(NAMELESS_NUL) - 1, 2,
	  "missing key name before \"=\"", NULL },
	{ "a bad line after a bad value: one error, one hint",
	  "[database]\nwait_timeout = x\nbad line\n", 0, 2,
	  "bad duration \"x\" for wait_timeout in [database]",
	  "use a whole number with an optional unit ms, s, m or h, e.g. \"30s\" or \"5m\"" },
	{ "a section after a bad value", "[database]\nwait_timeout = x\n[nothing]\n", 0, 2,
	  "bad duration \"x\" for wait_timeout in [database]",
	  "use a whole number with an optional unit ms, s, m or h, e.g. \"30s\" or \"5m\"" },
	{ "an indented \"[\" line continues a value",
	  "[database]\nurl = a\n  [b]\nwait_timeout = x\n", 0, 4,
	  "bad duration \"x\" for wait_timeout in [database]",
	  "use a whole number with an optional unit ms, s, m or h, e.g. \"30s\" or \"5m\"" },
	{ "a long section name is not cut", "[phase " ONES50 "-" ONES50 "]\n", 0, 1,
	  "phase \"" ONES50 "-" ONES50 "\" has no kind: give one of dir, run, wait_for", NULL },

	{ "a line without '='", DB "sslmode require\n" PRE, 0, 5,
	  "expected \"key = value\", \"[section]\" or a comment",
	  "to continue the previous value, indent the line" },
	{ "a section header without ']'", DB "[exec\nmode = exec\n" PRE, 0, 5,
	  "missing \"]\" in section header", NULL },
	{ "a misspelled key", DB "wait_timout = 5s\n" PRE, 0, 5,
	  "unknown key \"wait_timout\" in [database]", "did you mean \"wait_timeout\"?" },
	{ "a misspelled phase key", DB "[phase schema]\nrun = true\ntiemout = 5m\n" PRE, 0, 7,
	  "unknown key \"tiemout\" in [phase schema]", "did you mean \"timeout\"?" },
	{ "an unknown key far from every known one", DB "frobnicate = yes\n" PRE, 0, 5,
	  "unknown key \"frobnicate\" in [database]", NULL },
	{ "a key in the wrong section", DB "log_level = debug\n" PRE, 0, 5,
	  "unknown key \"log_level\" in [database]",
	  "log_level belongs at the top of the file, before any section" },
	{ "a misspelled section", DB "[exce]\nmode = exec\n" PRE, 0, 5, "unknown section [exce]",
	  "did you mean [exec]?" },
	{ "an unknown section", DB "[logging]\nlevel = debug\n" PRE, 0, 5,
	  "unknown section [logging]",
	  "the sections are [database], [history], [phase NAME] and [exec]" },
	{ "a phase named twice", DB "[phase pre]\ndir = post\n" PRE, 0, 7,
	  "duplicate phase \"pre\" (first on line 5)", NULL },
	{ "a key given twice in one section", DB "wait_timeout = 10s\n" PRE, 0, 5,
	  "duplicate key \"wait_timeout\" in [database] (first on line 3)",
	  "to continue a value on the next line, indent that line" },
	{ "a phase with no kind", DB "[phase schema]\ntimeout = 5m\n" PRE, 0, 5,
	  "phase \"schema\" has no kind: give one of dir, run, wait_for", NULL },
	{ "a phase with two kinds", DB "[phase schema]\nrun = true\nwait_for = users\n" PRE, 0, 7,
	  "phase \"schema\" has two kinds: \"wait_for\" here and \"run\" on line 6",
	  "a phase does one thing: split it into two [phase NAME] sections" },
	{ "a duration with an unknown unit",
	  DB "[phase schema]\nrun = true\ntimeout = 5 minutes\n" PRE, 0, 7,
	  "bad duration \"5 minutes\" for timeout in [phase schema]",
	  "use a whole number with an optional unit ms, s, m or h, e.g. \"30s\" or \"5m\"" },
	{ "an unterminated quote in [exec] command", DB "[exec]\ncommand = sh -c 'echo hi\n" PRE, 0,
	  6, "unterminated single quote in command of [exec]", NULL },
	{ "a line longer than 199 bytes",
	  DB "wait_for_query = SELECT " ONES50 ONES50 ONES50 ONES50 "\n" PRE, 0, 5,
	  "line too long (at most 199 bytes); continue the value on indented lines", NULL },
	{ "a NUL byte", WITH_NUL, sizeof(WITH_NUL) - 1, 7, "line contains a NUL byte", NULL },
	{ "${VAR} unset and without a default",
	  "[database]\nurl = postgresql://postgres@127.0.0.1/${PGPRELUDE_TEST_UNSET_VAR}\n"
	  "wait_timeout = 1s\n" PRE,
	  0, 2, "variable PGPRELUDE_TEST_UNSET_VAR is not set (in url of [database])",
	  "set PGPRELUDE_TEST_UNSET_VAR, or give a default with ${PGPRELUDE_TEST_UNSET_VAR:-default}" },
};

static void test_load_exact(void **state)
{
	const struct exact_case *c = *state;
	struct config cfg;
	char err[4096];
	char want[1024];
	char *path = write_temp_n(c->text, c->len ? c->len : strlen(c->text));
	int n;

	unsetenv("PGPRELUDE_T_URL");
	unsetenv("PGPRELUDE_TEST_UNSET_VAR");
	unsetenv("PGPRELUDE_TEST_UNSET_VAR_FILE");
	assert_int_equal(load_capture(path, &cfg, err, sizeof(err)), ST_USAGE);
	assert_true(config_is_zero(&cfg));
	n = snprintf(want, sizeof(want), "%s:%d: error: %s\n", path, c->line, c->msg);
	if (c->hint)
		snprintf(want + n, sizeof(want) - (size_t)n, "pgprelude: hint: %s\n", c->hint);
	assert_string_equal(err, want);
	unlink(path);
	free(path);
}

static void test_load_bad(void **state)
{
	const struct bad_case *c = *state;
	struct config cfg;
	char err[4096];
	char *path = write_temp(c->text);
	char want[256];
	const char *nl;

	unsetenv("PGPRELUDE_T_NOPE");
	assert_int_equal(load_capture(path, &cfg, err, sizeof(err)), ST_USAGE);
	assert_true(config_is_zero(&cfg));

	/* one error line naming the file and line, then at most a hint */
	snprintf(want, sizeof(want), "%s:%d: error: ", path, c->line);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("%s: expected a line starting \"%s\", got:\n%s", c->name, want, err);
	nl = strchr(err, '\n');
	assert_non_null(nl);
	assert_contains(err, c->msg);
	if (nl[1] != '\0') {
		assert_true(strncmp(nl + 1, "pgprelude: hint: ", 17) == 0);
		assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n'));
	}
	if (c->hint)
		assert_contains(nl + 1, c->hint);
	unlink(path);
	free(path);
}

int main(void)
{
	size_t n = 0;

	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_duration_good),  cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_words),	       cmocka_unit_test(test_words_quotes),
		cmocka_unit_test(test_words_escapes),  cmocka_unit_test(test_words_errors),
		cmocka_unit_test(test_list),	       cmocka_unit_test(test_expand_plain),
		cmocka_unit_test(test_expand_set),     cmocka_unit_test(test_expand_default),
		cmocka_unit_test(test_expand_errors),  cmocka_unit_test(test_expand_file),
		cmocka_unit_test(test_expand_results), cmocka_unit_test(test_suggest),
		cmocka_unit_test(test_load_full),      cmocka_unit_test(test_load_defaults),
		cmocka_unit_test(test_load_values),
	};
	static const struct CMUnitTest more[] = {
		cmocka_unit_test(test_load_expansion),
		cmocka_unit_test(test_load_multiline),
		cmocka_unit_test(test_load_line_length),
		cmocka_unit_test(test_load_relative_no_slash),
		cmocka_unit_test(test_load_password_file),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_load_secret_folder),
	};
	struct CMUnitTest all[sizeof(fixed) / sizeof(fixed[0]) + sizeof(more) / sizeof(more[0]) +
			      sizeof(bad_cases) / sizeof(bad_cases[0]) +
			      sizeof(exact_cases) / sizeof(exact_cases[0])];

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		all[n++] = fixed[i];
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		all[n++] = more[i];
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		all[n] = (struct CMUnitTest){ .name = bad_cases[i].name,
					      .test_func = test_load_bad,
					      .initial_state = (void *)&bad_cases[i] };
		n++;
	}
	for (size_t i = 0; i < sizeof(exact_cases) / sizeof(exact_cases[0]); i++) {
		all[n] = (struct CMUnitTest){ .name = exact_cases[i].name,
					      .test_func = test_load_exact,
					      .initial_state = (void *)&exact_cases[i] };
		n++;
	}
	assert_int_equal(n, sizeof(all) / sizeof(all[0]));
	return cmocka_run_group_tests_name("config", all, setup_all, teardown_all);
}
