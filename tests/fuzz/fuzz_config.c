/*
 * fuzz_config.c — libFuzzer target for the configuration reader.
 *
 * The input is a configuration file.  It is loaded with config_load() from
 * a memfd (through /proc/self/fd/N, so the real file-reading path runs),
 * with a small environment for ${VAR} expansion: FUZZ_SET=value,
 * FUZZ_EMPTY= (set, empty), FUZZ_SECRET_FILE names a readable secret,
 * FUZZ_MISSING_FILE a file that does not exist, FUZZ_DIR_FILE a directory,
 * FUZZ_NUL_FILE a file with a NUL byte, and PGPASSWORD_FILE the secret.
 * The first byte's low bit picks text or JSON logs, so both log formatters
 * see the error messages (libFuzzer's -close_fd_mask=2 discards them).
 *
 * The same input, as a C string, then goes through the pure functions:
 * config_expand, config_parse_duration, config_split_words,
 * config_split_list and config_suggest, with these checks:
 *   - a loaded config is complete (every phase has a name and a kind, the
 *     fields of its kind, timeouts >= 0); a failed load leaves it zeroed;
 *   - config_expand returns text without "$" unchanged, and an error
 *     message whenever it fails;
 *   - a parsed duration is >= 0 and at most INT_MAX ms;
 *   - split words, each single-quoted and joined, split back into the
 *     same words.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz_config: invariant failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
			abort();                                                       \
		}                                                                      \
	} while (0)

static int cfg_fd = -1;
static char cfg_path[64];

/* A memfd holding len bytes of content; its /proc path in path. */
static int memfd_with(const char *name, const void *content, size_t len, char *path, size_t size)
{
	int fd = memfd_create(name, 0);
	if (fd < 0 || (len && write(fd, content, len) != (ssize_t)len)) {
		perror("fuzz_config: memfd");
		abort();
	}
	snprintf(path, size, "/proc/self/fd/%d", fd);
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char secret_path[64], nul_path[64];
	(void)argc;
	(void)argv;
	cfg_fd = memfd_with("pgprelude-fuzz.ini", "", 0, cfg_path, sizeof(cfg_path));
	memfd_with("secret", "s3cret\r\n", 8, secret_path, sizeof(secret_path));
	memfd_with("nul", "a\0b", 3, nul_path, sizeof(nul_path));
	setenv("FUZZ_SET", "value", 1);
	setenv("FUZZ_EMPTY", "", 1);
	unsetenv("FUZZ_UNSET");
	unsetenv("FUZZ_SECRET");
	setenv("FUZZ_SECRET_FILE", secret_path, 1);
	unsetenv("FUZZ_MISSING");
	setenv("FUZZ_MISSING_FILE", "/nonexistent/pgprelude-fuzz", 1);
	unsetenv("FUZZ_DIR");
	setenv("FUZZ_DIR_FILE", "/", 1);
	unsetenv("FUZZ_NUL");
	setenv("FUZZ_NUL_FILE", nul_path, 1);
	unsetenv("PGPASSWORD");
	setenv("PGPASSWORD_FILE", secret_path, 1);
	return 0;
}

static void check_strv(const struct strv *sv, const char *what)
{
	CHECK(sv->n >= 0, "%s: n = %d", what, sv->n);
	if (sv->n > 0 || sv->v) {
		CHECK(sv->v != NULL, "%s: %d words, no array", what, sv->n);
		for (int i = 0; i < sv->n; i++)
			CHECK(sv->v[i] != NULL, "%s: word %d is NULL", what, i);
		CHECK(sv->v[sv->n] == NULL, "%s: not NULL-terminated", what);
	}
}

static void check_config(const struct config *cfg)
{
	CHECK(cfg->path && cfg->history_schema && cfg->history_table,
	      "a loaded config has its strings");
	CHECK(cfg->wait_timeout_ms >= 0 && cfg->lock_wait_timeout_ms >= 0, "timeouts >= 0");
	CHECK(cfg->n_phases >= 0 && (cfg->n_phases == 0 || cfg->phases), "%d phases",
	      cfg->n_phases);
	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase *ph = &cfg->phases[i];
		CHECK(ph->name && *ph->name, "phase %d has a name", i);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(ph->name, cfg->phases[j].name) != 0, "phase \"%s\" twice",
			      ph->name);
		CHECK(ph->timeout_ms >= 0 && ph->lock_timeout_ms >= 0 &&
			      ph->statement_timeout_ms >= 0,
		      "phase \"%s\": timeouts >= 0", ph->name);
		check_strv(&ph->argv, "argv");
		check_strv(&ph->relations, "relations");
		check_strv(&ph->expect, "expect");
		switch (ph->kind) {
		case PHASE_DIR:
			CHECK(ph->dir && *ph->dir, "dir phase \"%s\" has a folder", ph->name);
			break;
		case PHASE_RUN:
			CHECK(ph->argv.n > 0, "run phase \"%s\" has a command", ph->name);
			break;
		case PHASE_WAIT_FOR:
			CHECK(ph->relations.n > 0 || ph->query,
			      "wait_for phase \"%s\" waits for something", ph->name);
			break;
		default:
			CHECK(0, "phase \"%s\" has kind %d", ph->name, (int)ph->kind);
		}
	}
	check_strv(&cfg->exec_command, "exec command");
	CHECK(cfg->exec_mode == EXEC_AUTO || cfg->exec_mode == EXEC_EXEC ||
		      cfg->exec_mode == EXEC_SUPERVISE,
	      "exec mode %d", (int)cfg->exec_mode);
}

static void check_zeroed(const struct config *cfg)
{
	static const struct config zero;
	CHECK(memcmp(cfg, &zero, sizeof(zero)) == 0, "a failed config_load leaves *cfg zeroed");
}

/* "'" + s with each ' written '\'' + "'" appended to buf. */
static size_t put_quoted(char *buf, size_t pos, const char *s)
{
	buf[pos++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(buf + pos, "'\\''", 4);
			pos += 4;
		} else {
			buf[pos++] = *s;
		}
	}
	buf[pos++] = '\'';
	return pos;
}

static void check_words(const char *s)
{
	struct strv words, again;
	const char *err = NULL;
	size_t cap = 1, pos = 0;
	char *joined;

	if (!config_split_words(s, &words, &err)) {
		CHECK(err != NULL, "a failed split says why");
		CHECK(words.v == NULL && words.n == 0, "a failed split leaves no words");
		return;
	}
	check_strv(&words, "split words");
	for (int i = 0; i < words.n; i++)
		cap += 4 * strlen(words.v[i]) + 3;
	joined = malloc(cap);
	if (!joined)
		abort();
	for (int i = 0; i < words.n; i++) {
		if (i)
			joined[pos++] = ' ';
		pos = put_quoted(joined, pos, words.v[i]);
	}
	joined[pos] = '\0';
	err = NULL;
	CHECK(config_split_words(joined, &again, &err), "re-split of quoted words failed: %s", err);
	CHECK(again.n == words.n, "%d words, re-split gives %d", words.n, again.n);
	for (int i = 0; i < words.n; i++)
		CHECK(strcmp(words.v[i], again.v[i]) == 0, "word %d changed on re-split", i);
	strv_free(&again);
	strv_free(&words);
	free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const known[] = {
		"dir",	   "run",    "wait_for",     "wait_for_query",
		"timeout", "expect", "lock_timeout", "statement_timeout",
		NULL
	};
	struct config cfg;
	enum status st;
	char errbuf[256];
	char *s, *x;
	long ms;
	struct strv list;

	/* the whole input, as the config file */
	if (ftruncate(cfg_fd, 0) != 0 || (size && pwrite(cfg_fd, data, size, 0) != (ssize_t)size))
		abort();
	log_setup(size && (data[0] & 1) ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT, LOG_DEBUG);
	st = config_load(cfg_path, &cfg);
	CHECK(st == ST_OK || st == ST_USAGE, "config_load returned %d", (int)st);
	if (st == ST_OK)
		check_config(&cfg);
	else
		check_zeroed(&cfg);
	config_free(&cfg);
	check_zeroed(&cfg);

	/* the input as a C string, through the pure functions */
	s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';

	errbuf[0] = '\0';
	x = config_expand(s, errbuf, sizeof(errbuf));
	if (!x)
		CHECK(errbuf[0] != '\0', "config_expand failed without a message");
	else if (!strchr(s, '$'))
		CHECK(strcmp(x, s) == 0, "config_expand changed text without \"$\"");
	free(x);

	if (config_parse_duration(s, &ms))
		CHECK(ms >= 0 && ms <= INT_MAX, "duration %ld ms", ms);

	check_words(s);

	config_split_list(s, &list);
	check_strv(&list, "list");
	for (int i = 0; i < list.n; i++)
		CHECK(*list.v[i] && !strpbrk(list.v[i], ", \t\n\r\v\f"), "list item %d is \"%s\"",
		      i, list.v[i]);
	strv_free(&list);

	(void)config_suggest(s, known);
	free(s);
	return 0;
}
