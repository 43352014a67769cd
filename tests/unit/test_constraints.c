/* Unit tests of cspec.c (with inilines.c): spec files, identifiers, SQL text, the decision for a unique. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cspec.h"
#include "log.h"

/* What the last parse logged on stderr (static buffer). */
static char logged[4096];

/* Send stderr to a temporary file until capture_end; *saved keeps the real one. */
static FILE *capture_begin(int *saved)
{
	FILE *tmp = tmpfile();

	assert_non_null(tmp);
	*saved = dup(2);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	return tmp;
}

/* Put stderr back and keep what was logged meanwhile in logged. */
static void capture_end(FILE *tmp, int saved)
{
	size_t n;

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(logged, 1, sizeof(logged) - 1, tmp);
	logged[n] = '\0';
	fclose(tmp);
}

/* Parse text as "c.ini", capturing what is logged.  Returns the status. */
static enum status parse(const char *text, struct cfile *cf)
{
	int saved;
	FILE *tmp = capture_begin(&saved);
	enum status st = constraints_parse(text, strlen(text), "c.ini", cf);

	capture_end(tmp, saved);
	return st;
}

/* Parsing text fails with exactly this first line logged. */
static void expect_error(const char *text, const char *line)
{
	struct cfile cf;
	char first[1024];
	size_t len;

	assert_int_equal(parse(text, &cf), ST_USAGE);
	len = strcspn(logged, "\n");
	snprintf(first, sizeof(first), "%.*s", (int)len, logged);
	assert_string_equal(first, line);
	assert_null(cf.specs);
}

static void test_ident(void **state)
{
	const char *s, *err = NULL;
	char *out = NULL;
	(void)state;

	s = "  Organization_Users rest";
	assert_true(cspec_parse_ident(&s, &out, &err));
	assert_string_equal(out, "organization_users");
	assert_string_equal(s, " rest");
	free(out);
	s = "\"workspaceId\"";
	assert_true(cspec_parse_ident(&s, &out, &err));
	assert_string_equal(out, "workspaceId");
	free(out);
	s = "\"a \"\"b\"\" c\".x";
	assert_true(cspec_parse_ident(&s, &out, &err));
	assert_string_equal(out, "a \"b\" c");
	assert_string_equal(s, ".x");
	free(out);
	s = "user";
	assert_true(cspec_parse_ident(&s, &out, &err));
	assert_string_equal(out, "user");
	free(out);
	s = "\"\"";
	assert_false(cspec_parse_ident(&s, &out, &err));
	assert_string_equal(err, "zero-length quoted identifier");
	s = "\"open";
	assert_false(cspec_parse_ident(&s, &out, &err));
	assert_string_equal(err, "unterminated quoted identifier");
	s = "1abc";
	assert_false(cspec_parse_ident(&s, &out, &err));
	s = "a234567890123456789012345678901234567890123456789012345678901234";
	assert_false(cspec_parse_ident(&s, &out, &err));
	assert_string_equal(err, "name longer than 63 bytes (the server would truncate it)");
}

static void test_ident_list(void **state)
{
	struct strv v;
	const char *err = NULL;
	(void)state;

	assert_true(cspec_parse_ident_list(" organization_id ,User_Id", &v, &err));
	assert_int_equal(v.n, 2);
	assert_string_equal(v.v[0], "organization_id");
	assert_string_equal(v.v[1], "user_id");
	strv_free(&v);
	assert_true(
		cspec_parse_ident_list("\"workspaceId\",\n  provider, \"Full, Name\"", &v, &err));
	assert_int_equal(v.n, 3);
	assert_string_equal(v.v[0], "workspaceId");
	assert_string_equal(v.v[2], "Full, Name");
	strv_free(&v);
	assert_false(cspec_parse_ident_list("   ", &v, &err));
	assert_string_equal(err, "empty column list");
	assert_false(cspec_parse_ident_list("a,,b", &v, &err));
	assert_false(cspec_parse_ident_list("a,", &v, &err));
	assert_false(cspec_parse_ident_list("a b", &v, &err));
	assert_string_equal(err, "expected \",\" between names");
	assert_false(cspec_parse_ident_list("a, A", &v, &err));
	assert_string_equal(err, "a column is named twice");
	/* "A" quoted is another column than a */
	assert_true(cspec_parse_ident_list("a, \"A\"", &v, &err));
	strv_free(&v);
}

static void test_bool(void **state)
{
	bool b = false;
	(void)state;
	assert_true(cspec_parse_bool("TRUE", &b));
	assert_true(b);
	assert_true(cspec_parse_bool("off", &b));
	assert_false(b);
	assert_true(cspec_parse_bool("1", &b));
	assert_true(b);
	assert_false(cspec_parse_bool("maybe", &b));
	assert_false(cspec_parse_bool("", &b));
}

static void test_parse_file(void **state)
{
	struct cfile cf;
	const struct cspec *s;
	(void)state;

	assert_int_equal(parse("; comment\n"
			       "[unique organization_users_organization_id_user_id_key]\n"
			       "table = Public.organization_users ; inline comment\n"
			       "columns = organization_id,\n"
			       "   user_id\n"
			       "where = sku IS NOT NULL\n"
			       "nulls_not_distinct = yes\n"
			       "replaces = \"Old Key\"\n"
			       "concurrently = true\n"
			       "lock_timeout = 2s\n"
			       "\n"
			       "[not_null users_workspace_id]\n"
			       "table = \"user\"\n"
			       "column = \"workspaceId\"\n",
			       &cf),
			 ST_OK);
	assert_int_equal(cf.n, 2);
	s = &cf.specs[0];
	assert_int_equal(s->kind, CSPEC_UNIQUE);
	assert_int_equal(s->line, 2);
	assert_string_equal(s->name, "organization_users_organization_id_user_id_key");
	assert_string_equal(s->schema, "public");
	assert_string_equal(s->table, "organization_users");
	assert_int_equal(s->table_line, 3);
	assert_int_equal(s->columns.n, 2);
	assert_string_equal(s->columns.v[1], "user_id");
	assert_int_equal(s->columns_line, 4);
	assert_string_equal(s->where, "sku IS NOT NULL");
	assert_int_equal(s->where_line, 6);
	assert_true(s->nulls_not_distinct);
	assert_string_equal(s->replaces, "Old Key");
	assert_true(s->concurrently);
	assert_int_equal(s->lock_timeout_ms, 2000);
	assert_int_equal(s->statement_timeout_ms, -1);
	s = &cf.specs[1];
	assert_int_equal(s->kind, CSPEC_NOT_NULL);
	assert_int_equal(s->line, 12);
	assert_null(s->schema);
	assert_string_equal(s->table, "user");
	assert_string_equal(s->columns.v[0], "workspaceId");
	cfile_free(&cf);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("[check t_c]\ntable = t\n",
		     "c.ini:1: error: unknown constraint kind \"check\" in [check t_c]");
	expect_error("[uniqe t_c]\n",
		     "c.ini:1: error: unknown constraint kind \"uniqe\" in [uniqe t_c]");
	assert_non_null(strstr(logged, "hint: did you mean \"unique\"?"));
	expect_error("[unique]\n", "c.ini:1: error: [unique] needs a name: [unique NAME]");
	expect_error(
		"table = t\n",
		"c.ini:1: error: key \"table\" before any [unique NAME] or [not_null NAME] section");
	expect_error("[unique a]\ntable = t\ncolums = x\n",
		     "c.ini:3: error: unknown key \"colums\" in [unique a]");
	assert_non_null(strstr(logged, "hint: did you mean \"columns\"?"));
	expect_error("[not_null a]\ntable = t\ncolumns = x\n",
		     "c.ini:3: error: unknown key \"columns\" in [not_null a]");
	expect_error("[unique a]\ncolumns = x\n",
		     "c.ini:1: error: [unique a] has no \"table\" key");
	expect_error("[unique a]\ntable = t\n\n[unique b]\ntable = t\ncolumns = x\n",
		     "c.ini:1: error: [unique a] has no \"columns\" key");
	expect_error("[not_null a]\ntable = t\n",
		     "c.ini:1: error: [not_null a] has no \"column\" key");
	expect_error("[unique a]\ntable = t\ncolumns =\n",
		     "c.ini:3: error: bad columns \"\": empty column list");
	expect_error(
		"[not_null a]\ntable = t\ncolumn = x, y\n",
		"c.ini:3: error: \"column\" takes one column (a not_null is declared per column)");
	expect_error("[unique a]\ntable = t\ncolumns = x\nconcurrently = sure\n",
		     "c.ini:4: error: bad boolean \"sure\" for concurrently: give true or false");
	expect_error(
		"[unique a]\ntable = t\ncolumns = x\nnulls_not_distinct = 2\n",
		"c.ini:4: error: bad boolean \"2\" for nulls_not_distinct: give true or false");
	expect_error(
		"[unique a]\ntable = t\ncolumns = x\nlock_timeout = soon\n",
		"c.ini:4: error: bad duration \"soon\" for lock_timeout (examples: 250ms, 5s, 2m)");
	expect_error("[unique a]\ntable = a.b.c\ncolumns = x\n",
		     "c.ini:2: error: bad table \"a.b.c\": expected [schema.]table");
	expect_error("[unique a]\ntable = t\ntable = u\n",
		     "c.ini:3: error: duplicate key \"table\" in [unique a] (first on line 2)");
	expect_error("[unique a]\ntable = t\ncolumns = x\n[unique A]\n",
		     "c.ini:4: error: duplicate name \"a\" (first on line 1)");
	expect_error("[unique a]\ntable = t\ncolumns = x\nreplaces = A\n",
		     "c.ini:4: error: \"replaces\" names the constraint itself");
	expect_error(
		"[unique a]\ntable = t\ncolumns = x\nwhere =\n",
		"c.ini:4: error: empty \"where\" (leave the key out for a unique on the whole table)");
	expect_error("[unique a\n", "c.ini:1: error: missing \"]\" in section header");
	expect_error("[unique a]\ntable = t\njust words\n",
		     "c.ini:3: error: expected \"key = value\", \"[section]\" or a comment");
	expect_error("; nothing\n", "c.ini: error: the file declares no constraint");
}

static void test_long_line(void **state)
{
	char text[400];
	(void)state;
	snprintf(text, sizeof(text), "[unique a]\ntable = t\ncolumns = %0300d\n", 0);
	expect_error(
		text,
		"c.ini:3: error: line too long (at most 199 bytes); continue the value on indented lines");
}

static void test_sql_text(void **state)
{
	struct cspec s = { .kind = CSPEC_UNIQUE, .name = "u \"1\"" };
	char *cols[] = { "workspaceId", "provider", NULL };
	char *sql;
	(void)state;

	s.columns.v = cols;
	s.columns.n = 2;
	sql = cspec_quote("we\"ird");
	assert_string_equal(sql, "\"we\"\"ird\"");
	free(sql);
	sql = cspec_sql_create(&s, "\"public\".\"user\"", false);
	assert_string_equal(sql,
			    "ALTER TABLE \"public\".\"user\" ADD CONSTRAINT \"u \"\"1\"\"\" UNIQUE "
			    "(\"workspaceId\", \"provider\")");
	free(sql);
	s.nulls_not_distinct = true;
	s.concurrently = true;
	sql = cspec_sql_create(&s, "\"public\".\"user\"", true);
	assert_string_equal(
		sql, "CREATE UNIQUE INDEX CONCURRENTLY \"u \"\"1\"\"\" ON \"public\".\"user\" "
		     "(\"workspaceId\", \"provider\") NULLS NOT DISTINCT");
	free(sql);
	/* NULLS NOT DISTINCT: NULL keys count as duplicates, so no IS NOT NULL filter */
	sql = cspec_sql_duplicates(&s, "\"t\"", true, 0);
	assert_string_equal(
		sql, "SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM \"t\" "
		     "GROUP BY \"workspaceId\", \"provider\" HAVING count(*) > 1) AS duplicates");
	free(sql);
	s.nulls_not_distinct = false;
	s.concurrently = false;
	s.where = "sku IS NOT NULL";
	sql = cspec_sql_create(&s, "\"t\"", false);
	assert_string_equal(
		sql, "CREATE UNIQUE INDEX \"u \"\"1\"\"\" ON \"t\" (\"workspaceId\", \"provider\") "
		     "WHERE (sku IS NOT NULL)");
	free(sql);
	sql = cspec_sql_duplicates(&s, "\"t\"", false, 5);
	assert_string_equal(
		sql,
		"SELECT \"workspaceId\", \"provider\", count(*) FROM \"t\" WHERE \"workspaceId\" "
		"IS NOT NULL AND \"provider\" IS NOT NULL AND (sku IS NOT NULL) GROUP BY "
		"\"workspaceId\", \"provider\" HAVING count(*) > 1 ORDER BY \"workspaceId\", "
		"\"provider\" LIMIT 5");
	free(sql);
	sql = cspec_describe(&s);
	assert_string_equal(sql, "UNIQUE (\"workspaceId\", \"provider\") WHERE (sku IS NOT NULL)");
	free(sql);
}

static void test_sql_not_null(void **state)
{
	struct cspec s = { .kind = CSPEC_NOT_NULL, .name = "users_ws" };
	char *cols[] = { "workspaceId", NULL };
	char *sql;
	(void)state;

	s.columns.v = cols;
	s.columns.n = 1;
	sql = cspec_describe(&s);
	assert_string_equal(sql, "NOT NULL (\"workspaceId\")");
	free(sql);
	sql = cspec_sql_not_null(&s, "\"t\"", CSPEC_NN_ADD_CHECK);
	assert_string_equal(
		sql,
		"ALTER TABLE \"t\" ADD CONSTRAINT \"users_ws\" CHECK (\"workspaceId\" IS NOT NULL) NOT VALID");
	free(sql);
	sql = cspec_sql_not_null(&s, "\"t\"", CSPEC_NN_VALIDATE);
	assert_string_equal(sql, "ALTER TABLE \"t\" VALIDATE CONSTRAINT \"users_ws\"");
	free(sql);
	sql = cspec_sql_not_null(&s, "\"t\"", CSPEC_NN_SET);
	assert_string_equal(sql, "ALTER TABLE \"t\" ALTER COLUMN \"workspaceId\" SET NOT NULL");
	free(sql);
	sql = cspec_sql_not_null(&s, "\"t\"", CSPEC_NN_DROP_CHECK);
	assert_string_equal(sql, "ALTER TABLE \"t\" DROP CONSTRAINT \"users_ws\"");
	free(sql);
	sql = cspec_sql_count_nulls(&s, "\"t\"");
	assert_string_equal(sql, "SELECT count(*) FROM \"t\" WHERE \"workspaceId\" IS NULL");
	free(sql);
	sql = cspec_sql_null_rows(&s, "\"t\"", "id, \"Key\"", 5);
	assert_string_equal(sql, "SELECT id, \"Key\" FROM \"t\" WHERE \"workspaceId\" IS NULL "
				 "ORDER BY id, \"Key\" LIMIT 5");
	free(sql);
	assert_string_equal(cspec_kind_word(CSPEC_NOT_NULL), "not_null");
	assert_string_equal(cspec_kind_word(CSPEC_UNIQUE), "unique");
}

static void test_sql_unique_steps(void **state)
{
	struct cspec s = { .kind = CSPEC_UNIQUE, .name = "u", .where = "x > 0" };
	char *cols[] = { "a", "B c", NULL };
	char *sql;
	(void)state;

	s.columns.v = cols;
	s.columns.n = 2;
	sql = cspec_sql_attach(&s, "\"s\".\"t\"");
	assert_string_equal(
		sql, "ALTER TABLE \"s\".\"t\" ADD CONSTRAINT \"u\" UNIQUE USING INDEX \"u\"");
	free(sql);
	sql = cspec_sql_drop("\"s\".\"t\"", "\"s\"", "old", true, true);
	assert_string_equal(sql, "ALTER TABLE \"s\".\"t\" DROP CONSTRAINT \"old\"");
	free(sql);
	sql = cspec_sql_drop("\"s\".\"t\"", "\"s\"", "old", false, true);
	assert_string_equal(sql, "DROP INDEX CONCURRENTLY \"s\".\"old\"");
	free(sql);
	sql = cspec_sql_drop("\"s\".\"t\"", "\"s\"", "old", false, false);
	assert_string_equal(sql, "DROP INDEX \"s\".\"old\"");
	free(sql);
	sql = cspec_plain_list(&s.columns);
	assert_string_equal(sql, "a, B c");
	free(sql);
}

/* A where is one expression: it never closes the parenthesis it is wrapped in. */
static void test_check_where(void **state)
{
	static const char *const good[] = {
		"a > 0",
		"(a > 0) AND (b IS NULL OR c = ')')",
		"note <> '('",
		"\"odd)name\" IS NOT NULL",
		"x = E'it\\'s )'",
		"x = $$)$$ AND y = $t$ ( $t$",
		"a > 0 -- ) closes nothing\n AND b > 0",
		"a > /* ) /* nested ( */ */ 0",
		"a$b$ > $1",
	};
	static const char *const bad[] = {
		"a > 0);COMMIT;DROP TABLE victim;--",
		"true)",
		"(a > 0",
		"a > 0) OR (true",
		"x = 'open",
		"x = E'it\\')",
		"x = $$)",
		"a > 0 /* )",
		"\"odd",
	};
	const char *err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err = NULL;
		if (!cspec_check_where(good[i], &err))
			fail_msg("refused %s: %s", good[i], err);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cspec_check_where(bad[i], &err))
			fail_msg("accepted %s", bad[i]);
		assert_non_null(err);
	}
	assert_false(cspec_check_where("a > 0)", &err));
	assert_string_equal(err, "unbalanced parentheses: a \")\" closes nothing");
	assert_false(cspec_check_where("(a > 0", &err));
	assert_string_equal(err, "unbalanced parentheses: a \"(\" is not closed");
}

/* A replaces that names a declared constraint, in the same file or another, is refused. */
static void test_check_replaces(void **state)
{
	struct cfile a, b;
	const struct cfile *files[3];

	(void)state;
	assert_int_equal(parse("[unique t_new]\ntable = t\ncolumns = a, b\nreplaces = t_old\n"
			       "[unique u_a]\ntable = u\ncolumns = a\n",
			       &a),
			 ST_OK);
	assert_int_equal(parse("[unique t_old]\ntable = t\ncolumns = a\n", &b), ST_OK);
	free(b.path);
	b.path = xstrdup("other.ini");
	files[0] = &a;
	files[1] = NULL;
	assert_int_equal(constraints_check_replaces(files, 2, 2), ST_OK);
	files[1] = &b;
	{
		int saved;
		FILE *tmp = capture_begin(&saved);
		enum status st = constraints_check_replaces(files, 2, 2);
		capture_end(tmp, saved);
		assert_int_equal(st, ST_USAGE);
		assert_non_null(strstr(logged, "c.ini:4: error: [unique t_new] replaces \"t_old\", "
					       "which is declared in other.ini:1"));
	}
	/* only the replaces of the first nmine files are checked */
	files[0] = &b;
	files[1] = &a;
	assert_int_equal(constraints_check_replaces(files, 2, 1), ST_OK);
	cfile_free(&a);
	cfile_free(&b);
	/* in the same file */
	assert_int_equal(parse("[unique t_new]\ntable = t\ncolumns = a\nreplaces = t_b\n"
			       "[unique t_b]\ntable = t\ncolumns = b\n",
			       &a),
			 ST_OK);
	files[0] = &a;
	assert_int_equal(constraints_check_replaces(files, 1, 1), ST_USAGE);
	cfile_free(&a);
}

/* An index for the decision tests; strings are not freed (static). */
#define IDX(n, con, type, ok, same)                                                                \
	{                                                                                          \
		.name = (n), .conname = (con), .contype = (type), .valid = (ok), .matches = (same) \
	}

static void test_decide_unique(void **state)
{
	struct cspec s = { .kind = CSPEC_UNIQUE, .name = "u" };
	struct cspec_index v[4];
	struct cspec_indexes l = { .v = v };
	struct cspec_udecision d;
	(void)state;

	/* nothing there: create */
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_CREATE);
	assert_int_equal(d.keep, -1);
	assert_int_equal(d.n_invalid, 0);
	/* the constraint under its name: nothing */
	v[0] = (struct cspec_index)IDX("u", "u", 'u', true, true);
	l.n = 1;
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_NOTHING);
	assert_int_equal(d.keep, 0);
	/*
	 * A bare unique index under its name satisfies it, left as it is (an
	 * ORM may DROP INDEX it); only a concurrent spec's own index gets its
	 * constraint attached (an interrupted run); a partial one is an index.
	 */
	v[0] = (struct cspec_index)IDX("u", "", 0, true, true);
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_NOTHING);
	assert_int_equal(d.keep, 0);
	s.concurrently = true;
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_ATTACH);
	s.where = "x > 0";
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_NOTHING);
	s.where = NULL;
	s.concurrently = false;
	/* the name with another definition: drift */
	v[0] = (struct cspec_index)IDX("u", "u", 'u', true, false);
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_DRIFT);
	assert_int_equal(d.drift, 0);
	/* the name taken by something else: drift */
	l.n = 0;
	l.taken = "the relation u";
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_DRIFT);
	assert_int_equal(d.drift, -1);
	l.taken = NULL;
	/* same definition under other names: adopt, a constraint before a bare index */
	v[0] = (struct cspec_index)IDX("a_idx", "", 0, true, true);
	v[1] = (struct cspec_index)IDX("b_key", "b_key", 'u', true, true);
	l.n = 2;
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_ADOPT);
	assert_int_equal(d.keep, 1);
	/* INVALID leftovers (its name, or same definition): dropped, then created */
	v[0] = (struct cspec_index)IDX("u", "", 0, false, true);
	v[1] = (struct cspec_index)IDX("u_ccnew", "", 0, false, true);
	v[2] = (struct cspec_index)IDX("other", "", 0, false, false);
	l.n = 3;
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_CREATE);
	assert_int_equal(d.n_invalid, 2);
	assert_int_equal(d.invalid[0], 0);
	assert_int_equal(d.invalid[1], 1);
	/* replaces: dropped afterwards, unless it is the one kept or an INVALID one dropped first */
	s.replaces = "old_key";
	v[0] = (struct cspec_index)IDX("u", "u", 'u', true, true);
	v[1] = (struct cspec_index)IDX("old_idx", "old_key", 'u', true, false);
	l.n = 2;
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_NOTHING);
	assert_int_equal(d.replaced, 1);
	v[0] = (struct cspec_index)IDX("old_key", "", 0, false, true);
	l.n = 1;
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_CREATE);
	assert_int_equal(d.n_invalid, 1);
	assert_int_equal(d.replaced, -1);
	v[0] = (struct cspec_index)IDX("old_key", "old_key", 'u', true, true);
	l.n = 1;
	cspec_decide_unique(&s, &l, &d);
	assert_int_equal(d.act, CSPEC_U_ADOPT);
	assert_int_equal(d.replaced, -1);
}

static void test_arrays_and_keys(void **state)
{
	struct strv v = { 0 };
	struct cspec s = { .kind = CSPEC_UNIQUE, .where = "a = 1\n  OR a = 2\r\n\tOR a = 3" };
	char *t;
	(void)state;

	strv_push(&v, xstrdup("a"));
	strv_push(&v, xstrdup("we\"ird\\"));
	t = cspec_sql_text_array(&v);
	assert_string_equal(t, "{\"a\",\"we\\\"ird\\\\\"}");
	free(t);
	strv_push(&s.columns, xstrdup("a"));
	t = cspec_describe(&s);
	assert_string_equal(t, "UNIQUE (\"a\") WHERE (a = 1 OR a = 2 OR a = 3)");
	free(t);
	strv_free(&s.columns);
	strv_free(&v);
	assert_true(cspec_attnums_cover("3 2 1", "1 3"));
	assert_true(cspec_attnums_cover("2", ""));
	assert_false(cspec_attnums_cover("2 3", "1"));
	assert_false(cspec_attnums_cover("1 2", "1 0"));
	assert_false(cspec_attnums_cover("12", "1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ident),
		cmocka_unit_test(test_ident_list),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_parse_file),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_sql_text),
		cmocka_unit_test(test_check_where),
		cmocka_unit_test(test_check_replaces),
		cmocka_unit_test(test_sql_not_null),
		cmocka_unit_test(test_sql_unique_steps),
		cmocka_unit_test(test_decide_unique),
		cmocka_unit_test(test_arrays_and_keys),
	};
	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
