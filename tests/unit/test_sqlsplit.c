/*
 * Unit tests of sqlsplit: where statements end (every quoting and nesting
 * construct PostgreSQL's lexer knows), where they start (line and column in
 * characters), and where an unterminated construct starts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sqlsplit.h"

/* One expected statement: its text (start to end, as split) and where it starts. */
struct want {
	const char *text;
	int line;
	int col;
};

/* Split sql and compare with want[0..n). */
static void check_split(const char *sql, const struct want *want, int n)
{
	struct sql_stmt *v = NULL;
	struct sqlsplit_error err = { 0 };
	int got = sqlsplit(sql, strlen(sql), &v, &err);

	if (got != n) {
		for (int i = 0; i < got; i++)
			print_message("  got [%d] %d:%d \"%.*s\"\n", i, v[i].line, v[i].col,
				      (int)(v[i].end - v[i].start), sql + v[i].start);
		if (got < 0)
			print_message("  error %s at %d:%d\n", err.message, err.line, err.col);
	}
	assert_int_equal(got, n);
	for (int i = 0; i < n; i++) {
		char *text = strndup(sql + v[i].start, v[i].end - v[i].start);
		assert_non_null(text);
		assert_string_equal(text, want[i].text);
		assert_int_equal(v[i].line, want[i].line);
		assert_int_equal(v[i].col, want[i].col);
		free(text);
	}
	free(v);
}

/* Split sql, expecting an error message starting at line:col. */
static void check_error(const char *sql, const char *message, int line, int col)
{
	struct sql_stmt *v = NULL;
	struct sqlsplit_error err = { 0 };

	assert_int_equal(sqlsplit(sql, strlen(sql), &v, &err), -1);
	assert_null(v);
	assert_string_equal(err.message, message);
	assert_int_equal(err.line, line);
	assert_int_equal(err.col, col);
}

#define SPLIT(sql, ...)                                                    \
	do {                                                               \
		const struct want w_[] = { __VA_ARGS__ };                  \
		check_split((sql), w_, (int)(sizeof(w_) / sizeof(w_[0]))); \
	} while (0)

static void test_plain(void **state)
{
	(void)state;
	SPLIT("SELECT 1; SELECT 2;\nSELECT 3;", { "SELECT 1;", 1, 1 }, { "SELECT 2;", 1, 11 },
	      { "SELECT 3;", 2, 1 });
	/* a last statement without ';' runs to the end of the text */
	SPLIT("SELECT 1;\n  SELECT 2\n", { "SELECT 1;", 1, 1 }, { "SELECT 2\n", 2, 3 });
}

static void test_empty_statements(void **state)
{
	struct sql_stmt *v = (struct sql_stmt *)1;
	struct sqlsplit_error err;
	(void)state;

	SPLIT(";;SELECT 1;;; ;\n;SELECT 2;;", { "SELECT 1;", 1, 3 }, { "SELECT 2;", 2, 2 });
	/* blanks and comments only: no statement */
	assert_int_equal(sqlsplit("  -- nothing\n/* here */ ;\n", 26, &v, &err), 0);
	assert_null(v);
	assert_int_equal(sqlsplit("", 0, &v, &err), 0);
	assert_null(v);
}

static void test_single_quotes(void **state)
{
	(void)state;
	SPLIT("SELECT 'a;b', 'it''s; here';SELECT '';", { "SELECT 'a;b', 'it''s; here';", 1, 1 },
	      { "SELECT '';", 1, 29 });
	/* a backslash is no escape in a standard string: 'a\' ends at the quote */
	SPLIT("SELECT 'a\\'; SELECT 2;", { "SELECT 'a\\';", 1, 1 }, { "SELECT 2;", 1, 14 });
	/* a string over lines moves the next statement's line */
	SPLIT("SELECT 'x\n;\n'; SELECT 2;", { "SELECT 'x\n;\n';", 1, 1 }, { "SELECT 2;", 3, 4 });
}

static void test_e_strings(void **state)
{
	(void)state;
	SPLIT("SELECT E'it\\'s;'; SELECT 2;", { "SELECT E'it\\'s;';", 1, 1 },
	      { "SELECT 2;", 1, 19 });
	SPLIT("SELECT e'a\\\\'; SELECT 2;", { "SELECT e'a\\\\';", 1, 1 }, { "SELECT 2;", 1, 16 });
	SPLIT("SELECT E'x''y;\\';'; SELECT 2;", { "SELECT E'x''y;\\';';", 1, 1 },
	      { "SELECT 2;", 1, 21 });
	/* an identifier ending in e is no E prefix: 'a\' ends at its quote */
	SPLIT("SELECT some'a\\'; SELECT 2;", { "SELECT some'a\\';", 1, 1 }, { "SELECT 2;", 1, 18 });
}

static void test_quoted_identifiers(void **state)
{
	(void)state;
	SPLIT("CREATE TABLE \"a;b\" (\"x\"\"y;\" int); SELECT 1;",
	      { "CREATE TABLE \"a;b\" (\"x\"\"y;\" int);", 1, 1 }, { "SELECT 1;", 1, 35 });
	SPLIT("SELECT \"it's\"; SELECT 'x\"';", { "SELECT \"it's\";", 1, 1 },
	      { "SELECT 'x\"';", 1, 16 });
}

static void test_dollar_quotes(void **state)
{
	(void)state;
	SPLIT("SELECT $$a;b$$; SELECT 2;", { "SELECT $$a;b$$;", 1, 1 }, { "SELECT 2;", 1, 17 });
	SPLIT("SELECT $fn$ ; $$ ; $$ ; $fn$; SELECT 2;", { "SELECT $fn$ ; $$ ; $$ ; $fn$;", 1, 1 },
	      { "SELECT 2;", 1, 31 });
	/* nested different tags: $a$ … $$ … $$ … $a$ */
	SPLIT("DO $a$ BEGIN EXECUTE $$SELECT ';'$$; END $a$;\nSELECT 2;",
	      { "DO $a$ BEGIN EXECUTE $$SELECT ';'$$; END $a$;", 1, 1 }, { "SELECT 2;", 2, 1 });
	/* a tag is matched exactly: $ab$ does not close $a$ */
	SPLIT("SELECT $a$ $ab$ ; $a$; SELECT 2;", { "SELECT $a$ $ab$ ; $a$;", 1, 1 },
	      { "SELECT 2;", 1, 24 });
	/* quotes inside a dollar quote are plain text */
	SPLIT("SELECT $q$ it's \" $q$; SELECT 2;", { "SELECT $q$ it's \" $q$;", 1, 1 },
	      { "SELECT 2;", 1, 24 });
}

static void test_parameters_and_dollar_identifiers(void **state)
{
	(void)state;
	/* $1 is a parameter, not a dollar quote */
	SPLIT("PREPARE p AS SELECT $1, $2; SELECT 2;", { "PREPARE p AS SELECT $1, $2;", 1, 1 },
	      { "SELECT 2;", 1, 29 });
	/* $ inside an identifier opens nothing */
	SPLIT("SELECT a$b, x$$y; SELECT 2;", { "SELECT a$b, x$$y;", 1, 1 }, { "SELECT 2;", 1, 19 });
	SPLIT("SELECT c$1$ FROM t; SELECT 2;", { "SELECT c$1$ FROM t;", 1, 1 },
	      { "SELECT 2;", 1, 21 });
}

static void test_comments(void **state)
{
	(void)state;
	/* nested block comments with ';' inside */
	SPLIT("/* a; /* b; */ c; */ SELECT 1; SELECT /* ; */ 2;", { "SELECT 1;", 1, 22 },
	      { "SELECT /* ; */ 2;", 1, 32 });
	/* line comments with quotes and ';' in them */
	SPLIT("SELECT 1 -- it's; \"\n, 2; -- x\nSELECT 3;", { "SELECT 1 -- it's; \"\n, 2;", 1, 1 },
	      { "SELECT 3;", 3, 1 });
	/* a comment marker inside a string is text */
	SPLIT("SELECT '--', '/*'; SELECT 2;", { "SELECT '--', '/*';", 1, 1 },
	      { "SELECT 2;", 1, 20 });
	/* a last line comment without newline */
	SPLIT("SELECT 1; -- end", { "SELECT 1;", 1, 1 });
}

static void test_do_blocks(void **state)
{
	(void)state;
	SPLIT("DO $$\nBEGIN\n  RAISE NOTICE 'x;';\nEND\n$$;\nSELECT 1;",
	      { "DO $$\nBEGIN\n  RAISE NOTICE 'x;';\nEND\n$$;", 1, 1 }, { "SELECT 1;", 6, 1 });
	SPLIT("DO LANGUAGE plpgsql $body$ BEGIN NULL; END $body$; SELECT 1;",
	      { "DO LANGUAGE plpgsql $body$ BEGIN NULL; END $body$;", 1, 1 },
	      { "SELECT 1;", 1, 52 });
}

static void test_begin_atomic(void **state)
{
	(void)state;
	SPLIT("CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
	      "  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT x;\nEND;\nSELECT 2;",
	      { "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
		"  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT x;\nEND;",
		1, 1 },
	      { "SELECT 2;", 6, 1 });
	/* lower case, a comment between BEGIN and ATOMIC, nested CASE */
	SPLIT("create procedure p() begin /* c */ atomic select case when true then case 1 when 1 then 2 end end; end; select 3;",
	      { "create procedure p() begin /* c */ atomic select case when true then case 1 when 1 then 2 end end; end;",
		1, 1 },
	      { "select 3;", 1, 105 });
	/* a transaction's BEGIN is a statement of its own */
	SPLIT("BEGIN; SELECT 1; END;", { "BEGIN;", 1, 1 }, { "SELECT 1;", 1, 8 },
	      { "END;", 1, 18 });
	/* CASE … END outside a function body does not hold ';' */
	SPLIT("SELECT CASE WHEN true THEN 1 END; SELECT 2;",
	      { "SELECT CASE WHEN true THEN 1 END;", 1, 1 }, { "SELECT 2;", 1, 35 });
}

static void test_create_rule(void **state)
{
	(void)state;
	SPLIT("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); NOTIFY t);\nSELECT 1;",
	      { "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); NOTIFY t);",
		1, 1 },
	      { "SELECT 1;", 2, 1 });
	/* a stray ')' does not make the depth negative */
	SPLIT("SELECT 1); SELECT 2;", { "SELECT 1);", 1, 1 }, { "SELECT 2;", 1, 12 });
}

static void test_positions_multibyte(void **state)
{
	(void)state;
	/* columns count characters: é is 2 bytes, € 3, 😀 4 */
	SPLIT("SELECT 'é';SELECT '€'; SELECT 3;\n\t😀; SELECT 4;", { "SELECT 'é';", 1, 1 },
	      { "SELECT '€';", 1, 12 }, { "SELECT 3;", 1, 24 }, { "😀;", 2, 2 },
	      { "SELECT 4;", 2, 5 });
	SPLIT("SELECT \"naïve\" FROM \"Ünïcödé\"; SELECT 2;",
	      { "SELECT \"naïve\" FROM \"Ünïcödé\";", 1, 1 }, { "SELECT 2;", 1, 32 });
	/* CRLF line ends: the CR is a character of the line */
	SPLIT("SELECT 1;\r\nSELECT 2;\r\n", { "SELECT 1;", 1, 1 }, { "SELECT 2;", 2, 1 });
}

static void test_unterminated(void **state)
{
	(void)state;
	check_error("SELECT 1;\nSELECT 'abc;\n", "unterminated quoted string", 2, 8);
	/* an E'' string starts at its E */
	check_error("SELECT E'it\\';", "unterminated quoted string", 1, 8);
	check_error("SELECT 1;\n  e'x", "unterminated quoted string", 2, 3);
	check_error("SELECT 'é' || 'x", "unterminated quoted string", 1, 15);
	check_error("SELECT \"abc;", "unterminated quoted identifier", 1, 8);
	check_error("SELECT \"a\"\";", "unterminated quoted identifier", 1, 8);
	check_error("SELECT 1;\n  SELECT $$ x ;", "unterminated dollar-quoted string", 2, 10);
	check_error("SELECT $a$ x $$ ; $$", "unterminated dollar-quoted string", 1, 8);
	check_error("SELECT $a$ x $a", "unterminated dollar-quoted string", 1, 8);
	check_error("SELECT 1; /* a /* b */ ;", "unterminated /* comment", 1, 11);
	check_error("/* x", "unterminated /* comment", 1, 1);
	check_error("SELECT '\n\n", "unterminated quoted string", 1, 8);
}

static void test_not_nul_terminated(void **state)
{
	/* len bounds the text: nothing past it is read */
	const char text[] = { 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', ';', 'x', 'y' };
	struct sql_stmt *v = NULL;
	struct sqlsplit_error err;
	(void)state;

	assert_int_equal(sqlsplit(text, 9, &v, &err), 1);
	assert_int_equal(v[0].start, 0);
	assert_int_equal(v[0].end, 9);
	free(v);
	/* a dollar quote cut by len is unterminated */
	assert_int_equal(sqlsplit("SELECT $$a$$", 11, &v, &err), -1);
}

static void test_many(void **state)
{
	/* more statements than the first allocation holds */
	char sql[4096] = "";
	struct sql_stmt *v = NULL;
	struct sqlsplit_error err;
	(void)state;

	for (int i = 0; i < 200; i++)
		strcat(sql, "SELECT 1;\n");
	assert_int_equal(sqlsplit(sql, strlen(sql), &v, &err), 200);
	assert_int_equal(v[199].line, 200);
	assert_int_equal(v[199].col, 1);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_empty_statements),
		cmocka_unit_test(test_single_quotes),
		cmocka_unit_test(test_e_strings),
		cmocka_unit_test(test_quoted_identifiers),
		cmocka_unit_test(test_dollar_quotes),
		cmocka_unit_test(test_parameters_and_dollar_identifiers),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_do_blocks),
		cmocka_unit_test(test_begin_atomic),
		cmocka_unit_test(test_create_rule),
		cmocka_unit_test(test_positions_multibyte),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
