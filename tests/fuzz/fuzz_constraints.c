/*
 * fuzz_constraints.c — libFuzzer target for the constraint-file reader.
 *
 * The input is a constraint file (*.ini in a dir phase's folder).  It goes
 * through constraints_parse(); a file that parses is then described and
 * turned into SQL (cspec_describe and every cspec_sql_* builder of its
 * kind), which is as far as it goes without a server: this target links
 * only the pure spec module (cspec.c), never the database code.  Checks:
 *   - a parsed file has at least one spec; each has a name, a table and at
 *     least one column (exactly one for not_null), no column twice, names
 *     of at most 63 bytes, and lines within the file;
 *   - every name read back from its quoted form is itself
 *     (cspec_parse_ident(cspec_quote(x)) == x);
 *   - a failed parse leaves the cfile empty.
 * The input, as a C string, also goes through cspec_parse_ident_list
 * and cspec_parse_bool.  The first byte's low bit picks text or JSON
 * logs (libFuzzer's -close_fd_mask=2 discards them).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cspec.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                    \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "fuzz_constraints: invariant failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                                       \
			fputc('\n', stderr);                                                \
			abort();                                                            \
		}                                                                           \
	} while (0)

static void check_roundtrip(const char *name)
{
	char *q = cspec_quote(name), *back = NULL;
	const char *p = q, *err = NULL;

	CHECK(q != NULL, "cspec_quote returned NULL");
	CHECK(cspec_parse_ident(&p, &back, &err), "\"%s\" quoted as %s does not parse back: %s",
	      name, q, err);
	CHECK(strcmp(back, name) == 0, "\"%s\" quoted as %s parses back as \"%s\"", name, q, back);
	CHECK(*p == '\0', "text left after %s", q);
	free(back);
	free(q);
}

static int count_lines(const uint8_t *data, size_t size)
{
	int n = 1;
	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n;
}

static void check_spec(const struct cspec *s, int lines)
{
	char *t, *sql;

	CHECK(s->kind == CSPEC_UNIQUE || s->kind == CSPEC_NOT_NULL, "kind %d", (int)s->kind);
	CHECK(s->name && *s->name && strlen(s->name) <= 63, "spec name");
	CHECK(s->table && *s->table && strlen(s->table) <= 63, "[%s] table", s->name);
	CHECK(!s->schema || (*s->schema && strlen(s->schema) <= 63), "[%s] schema", s->name);
	CHECK(s->columns.n >= 1 && s->columns.v && s->columns.v[s->columns.n] == NULL,
	      "[%s] columns", s->name);
	CHECK(s->kind == CSPEC_UNIQUE || s->columns.n == 1, "not_null [%s] has %d columns", s->name,
	      s->columns.n);
	CHECK(s->line >= 1 && s->line <= lines && s->table_line >= s->line &&
		      s->table_line <= lines && s->columns_line >= s->line &&
		      s->columns_line <= lines,
	      "[%s] lines %d/%d/%d of %d", s->name, s->line, s->table_line, s->columns_line, lines);
	CHECK(s->kind == CSPEC_UNIQUE || (!s->where && !s->replaces),
	      "not_null [%s] with unique keys", s->name);
	CHECK(!s->replaces || strcmp(s->replaces, s->name) != 0, "[%s] replaces itself", s->name);
	CHECK(s->lock_timeout_ms >= -1 && s->statement_timeout_ms >= -1, "[%s] timeouts", s->name);

	check_roundtrip(s->name);
	check_roundtrip(s->table);
	if (s->schema)
		check_roundtrip(s->schema);
	if (s->replaces)
		check_roundtrip(s->replaces);
	for (int i = 0; i < s->columns.n; i++) {
		CHECK(*s->columns.v[i] && strlen(s->columns.v[i]) <= 63, "[%s] column %d", s->name,
		      i);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(s->columns.v[i], s->columns.v[j]) != 0,
			      "[%s] column \"%s\" twice", s->name, s->columns.v[i]);
		check_roundtrip(s->columns.v[i]);
	}

	t = cspec_describe(s);
	CHECK(t != NULL, "cspec_describe");
	free(t);
	if (s->kind == CSPEC_UNIQUE) {
		sql = cspec_sql_create(s, "\"public\".\"t\"", false);
		CHECK(sql && *sql, "cspec_sql_create");
		free(sql);
		sql = cspec_sql_create(s, "\"public\".\"t\"", true);
		CHECK(sql && *sql, "cspec_sql_create (index)");
		free(sql);
		sql = cspec_sql_duplicates(s, "\"public\".\"t\"", true, 0);
		CHECK(sql && *sql, "cspec_sql_duplicates (count)");
		free(sql);
		sql = cspec_sql_duplicates(s, "\"public\".\"t\"", false, 5);
		CHECK(sql && *sql, "cspec_sql_duplicates (keys)");
		free(sql);
		sql = cspec_sql_attach(s, "\"public\".\"t\"");
		CHECK(sql && *sql, "cspec_sql_attach");
		free(sql);
		if (s->where) {
			const char *err = NULL;
			CHECK(cspec_check_where(s->where, &err) || (err && *err),
			      "cspec_check_where without a message");
		}
	} else {
		for (int step = CSPEC_NN_ADD_CHECK; step <= CSPEC_NN_DROP_CHECK; step++) {
			sql = cspec_sql_not_null(s, "\"public\".\"t\"", (enum cspec_nn_step)step);
			CHECK(sql && *sql, "cspec_sql_not_null (%d)", step);
			free(sql);
		}
		sql = cspec_sql_count_nulls(s, "\"public\".\"t\"");
		CHECK(sql && *sql, "cspec_sql_count_nulls");
		free(sql);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cfile empty;
	struct cfile cf;
	enum status st;
	struct strv names;
	const char *err = NULL;
	char *s;
	bool b;

	log_setup(size && (data[0] & 1) ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT, LOG_DEBUG);
	st = constraints_parse((const char *)data, size, "fuzz/constraints.ini", &cf);
	CHECK(st == ST_OK || st == ST_USAGE, "constraints_parse returned %d", (int)st);
	if (st == ST_OK) {
		int lines = count_lines(data, size);
		CHECK(cf.n >= 1 && cf.specs, "a parsed file declares something");
		CHECK(cf.path && strcmp(cf.path, "fuzz/constraints.ini") == 0, "path kept");
		for (int i = 0; i < cf.n; i++) {
			check_spec(&cf.specs[i], lines);
			for (int j = 0; j < i; j++)
				CHECK(strcmp(cf.specs[i].name, cf.specs[j].name) != 0,
				      "name \"%s\" twice", cf.specs[i].name);
		}
		cfile_free(&cf);
	} else {
		CHECK(memcmp(&cf, &empty, sizeof(cf)) == 0,
		      "a failed parse leaves the cfile empty");
	}

	s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	if (cspec_parse_ident_list(s, &names, &err)) {
		CHECK(names.n >= 1, "an accepted list has a name");
		for (int i = 0; i < names.n; i++)
			check_roundtrip(names.v[i]);
		strv_free(&names);
	} else {
		CHECK(err != NULL && names.v == NULL, "a refused list says why and keeps nothing");
	}
	(void)cspec_parse_bool(s, &b);
	free(s);
	return 0;
}
