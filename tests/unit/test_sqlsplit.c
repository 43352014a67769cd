/*
 * Unit tests of sqlsplit: where statements end (every quoting and nesting
 * construct PostgreSQL's lexer knows), where they start (line and column in
 * characters), and where an unterminated construct starts; and what the
 * index statements (CREATE INDEX, REINDEX, DROP INDEX) name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* CREATE INDEX: whether it is one, CONCURRENTLY or not, its name and table as written. */
static void check_create(const char *sql, bool want, bool want_conc, const char *want_name,
			 const char *want_table)
{
	bool conc = !want_conc;
	char *name = (char *)1, *table = (char *)1;
	bool got = sqlsplit_parse_create_index(sql, strlen(sql), &conc, &name, &table);

	if (got != want)
		print_message("  %s: got %d\n", sql, got);
	assert_int_equal(got, want);
	if (!want) {
		assert_null(name);
		assert_null(table);
		return;
	}
	assert_int_equal(conc, want_conc);
	if (want_name)
		assert_string_equal(name, want_name);
	else
		assert_null(name);
	assert_string_equal(table, want_table);
	free(name);
	free(table);
}

static void test_create_index(void **state)
{
	(void)state;
	check_create("CREATE INDEX i ON t (a)", true, false, "i", "t");
	check_create("create unique index concurrently i on only t(a)", true, true, "i", "t");
	check_create("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t USING btree (a);",
		     true, true, "i", "s.t");
	check_create("CREATE INDEX ON t (a)", true, false, NULL, "t");
	check_create("CREATE INDEX CONCURRENTLY ON ONLY t (a)", true, true, NULL, "t");
	check_create("CREATE INDEX \"My \"\"i\"\"\" ON \"S\".\"T t\" (a)", true, false,
		     "\"My \"\"i\"\"\"", "\"S\".\"T t\"");
	/* comments and line breaks between tokens; the name stays as written */
	check_create("CREATE /* a */ INDEX -- b\n CONCURRENTLY /* c /* nested */ */ i\n"
		     "ON s -- d\n . t (a)",
		     true, true, "i", "s -- d\n . t");
	check_create("CREATE INDEX i ON ÿtä (a)", true, false, "i", "ÿtä");
	/* no index statement, or not one whose table can be named */
	check_create("CREATE TABLE i (a int)", false, false, NULL, NULL);
	check_create("CREATE UNIQUE i ON t (a)", false, false, NULL, NULL);
	check_create("SELECT 'CREATE INDEX i ON t (a)'", false, false, NULL, NULL);
	check_create("-- CREATE INDEX i ON t (a)\n", false, false, NULL, NULL);
	check_create("CREATE INDEX i (a)", false, false, NULL, NULL);
	check_create("CREATE INDEX \"\" ON t (a)", false, false, NULL, NULL);
	check_create("CREATE INDEX i ON (a)", false, false, NULL, NULL);
	check_create("CREATE INDEX i ON d.s.t (a)", false, false, NULL, NULL);
	check_create("CREATE INDEX i ON s. (a)", false, false, NULL, NULL);
	check_create("CREATE INDEX \"i ON t (a)", false, false, NULL, NULL);
	check_create("", false, false, NULL, NULL);
}

/* CREATE INDEX CONCURRENTLY of a named index, or nothing. */
static void check_cic(const char *sql, const char *want_name, const char *want_table)
{
	char *name = (char *)1, *table = (char *)1;
	bool got = sqlsplit_parse_cic(sql, strlen(sql), &name, &table);

	assert_int_equal(got, want_name != NULL);
	if (!want_name) {
		assert_null(name);
		assert_null(table);
		return;
	}
	assert_string_equal(name, want_name);
	assert_string_equal(table, want_table);
	free(name);
	free(table);
}

static void test_cic(void **state)
{
	(void)state;
	check_cic("CREATE INDEX CONCURRENTLY i ON t (a);", "i", "t");
	check_cic("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"I\" ON ONLY \"s\".t (a)",
		  "\"I\"", "\"s\".t");
	check_cic("CREATE INDEX i ON t (a)", NULL, NULL);
	check_cic("CREATE INDEX CONCURRENTLY ON t (a)", NULL, NULL);
	check_cic("DROP INDEX CONCURRENTLY i", NULL, NULL);
	/* len ends the statement, and so does a NUL byte */
	check_cic("CREATE INDEX CONCURRENTLY i ON t\0x", "i", "t");
	{
		char *name, *table;
		assert_false(
			sqlsplit_parse_cic("CREATE INDEX CONCURRENTLY i ON t", 29, &name, &table));
		assert_true(
			sqlsplit_parse_cic("CREATE INDEX CONCURRENTLY i ON t2", 32, &name, &table));
		assert_string_equal(table, "t");
		free(name);
		free(table);
	}
}

/* The text[] literals of the relations sqls (in order) name; "" for none. */
static void check_targets(const char *const *sqls, int n, const char *want_tables,
			  const char *want_indexes)
{
	struct sbuf tables = { 0 }, indexes = { 0 };

	for (int i = 0; i < n; i++)
		sqlsplit_index_targets(sqls[i], strlen(sqls[i]), &tables, &indexes);
	assert_string_equal(tables.len ? tables.p : "", want_tables);
	assert_string_equal(indexes.len ? indexes.p : "", want_indexes);
	sbuf_reset(&tables);
	sbuf_reset(&indexes);
}

#define TARGETS(tables, indexes, ...)                                                      \
	do {                                                                               \
		const char *const s_[] = { __VA_ARGS__ };                                  \
		check_targets(s_, (int)(sizeof(s_) / sizeof(s_[0])), (tables), (indexes)); \
	} while (0)

static void test_index_targets(void **state)
{
	(void)state;
	TARGETS("{\"t\"}", "", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY t (a)");
	TARGETS("{\"t\"}", "", "CREATE INDEX ON t (a)");
	TARGETS("{\"s.t\"}", "{\"i\"}", "REINDEX TABLE s.t", "REINDEX INDEX i");
	TARGETS("{\"t\"}", "{\"s.i\"}", "reindex (verbose, concurrently false) index s.i",
		"REINDEX (VERBOSE) TABLE CONCURRENTLY t;");
	TARGETS("", "{\"i\"}", "REINDEX INDEX CONCURRENTLY i");
	TARGETS("", "{\"a\",\"s.b\",\"c\"}", "DROP INDEX CONCURRENTLY IF EXISTS a, s.b, c;");
	TARGETS("", "{\"a\",\"b\"}", "DROP INDEX a /* x */ , -- y\n b CASCADE");
	TARGETS("", "{\"a\"}", "DROP INDEX IF EXISTS a");
	/* quotes and backslashes are escaped in the literal */
	TARGETS("{\"\\\"S\\\".\\\"t\\\\x\\\"\"}", "{\"\\\"i\\\"\\\"j\\\"\"}",
		"CREATE INDEX i ON \"S\".\"t\\x\" (a)", "DROP INDEX \"i\"\"j\"");
	/* the list of DROP INDEX stops at what is no name */
	TARGETS("", "{\"a\"}", "DROP INDEX a, 1, b");
	TARGETS("", "{\"a\"}", "DROP INDEX a, d.s.b");
	/* none of these */
	TARGETS("", "", "SELECT 1", "DROP TABLE t", "REINDEX SCHEMA s", "REINDEX DATABASE d",
		"REINDEX (VERBOSE INDEX i", "CREATE TABLE t (a int)", "DROP INDEX", "",
		"-- REINDEX INDEX i", "CREATE INDEX i ON (a)");
}

static void test_tx_control(void **state)
{
	static const struct {
		const char *sql;
		enum sql_txctl want;
	} cases[] = {
		{ "BEGIN;", TXCTL_BEGIN },
		{ "begin work;", TXCTL_BEGIN },
		{ "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE;", TXCTL_BEGIN },
		{ "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE", TXCTL_BEGIN },
		{ "START TRANSACTION READ WRITE;", TXCTL_BEGIN },
		{ "/* c */ start -- x\n transaction;", TXCTL_BEGIN },
		{ "START_REPLICATION;", TXCTL_NONE },
		{ "COMMIT;", TXCTL_COMMIT },
		{ "commit work;", TXCTL_COMMIT },
		{ "END;", TXCTL_COMMIT },
		{ "END TRANSACTION;", TXCTL_COMMIT },
		{ "COMMIT AND NO CHAIN;", TXCTL_COMMIT },
		{ "COMMIT AND CHAIN;", TXCTL_OTHER },
		{ "END WORK AND CHAIN", TXCTL_OTHER },
		{ "COMMIT PREPARED 'x';", TXCTL_OTHER },
		{ "ROLLBACK;", TXCTL_OTHER },
		{ "ROLLBACK AND NO CHAIN;", TXCTL_OTHER },
		{ "ROLLBACK AND CHAIN;", TXCTL_OTHER },
		{ "ABORT;", TXCTL_OTHER },
		{ "ROLLBACK PREPARED 'x';", TXCTL_OTHER },
		{ "PREPARE TRANSACTION 'x';", TXCTL_OTHER },
		{ "PREPARE q AS SELECT 1;", TXCTL_NONE },
		{ "ROLLBACK TO s;", TXCTL_NONE },
		{ "ROLLBACK TO SAVEPOINT s;", TXCTL_NONE },
		{ "ROLLBACK WORK TO SAVEPOINT s;", TXCTL_NONE },
		{ "ABORT TRANSACTION TO s;", TXCTL_NONE },
		{ "SAVEPOINT s;", TXCTL_NONE },
		{ "RELEASE SAVEPOINT s;", TXCTL_NONE },
		{ "RELEASE s;", TXCTL_NONE },
		{ "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;", TXCTL_NONE },
		{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
		  TXCTL_NONE },
		{ "DO $$ BEGIN COMMIT; END $$;", TXCTL_NONE },
		{ "\"begin\";", TXCTL_NONE },
		{ "SELECT 'COMMIT';", TXCTL_NONE },
		{ "", TXCTL_NONE },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum sql_txctl got = sqlsplit_tx_control(cases[i].sql, strlen(cases[i].sql));
		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].sql, (int)got, (int)cases[i].want);
	}
	/* up to len only: "COMMIT AND CHAIN" cut after COMMIT is a COMMIT */
	assert_int_equal(sqlsplit_tx_control("COMMIT AND CHAIN", 6), TXCTL_COMMIT);
}

static void test_begin_modes(void **state)
{
	(void)state;
	assert_int_equal(sqlsplit_begin_modes("BEGIN;", 6), 0);
	assert_int_equal(sqlsplit_begin_modes("begin work;", 11), 0);
	assert_int_equal(sqlsplit_begin_modes("START TRANSACTION", 17), 0);
	assert_int_equal(sqlsplit_begin_modes("BEGIN ISOLATION LEVEL SERIALIZABLE;", 35), 6);
	assert_int_equal(sqlsplit_begin_modes("BEGIN TRANSACTION READ ONLY;", 28), 18);
	assert_int_equal(sqlsplit_begin_modes("start /* x */ transaction\n  read write", 38), 28);
	assert_int_equal(sqlsplit_begin_modes("COMMIT;", 7), 0);
	assert_int_equal(sqlsplit_begin_modes("START x", 7), 0);
}

static void test_find_backslash(void **state)
{
	struct sql_stmt at;
	const char *text = "SELECT 1;\n  \\set x 1\n";
	(void)state;

	assert_true(sqlsplit_find_backslash(text, strlen(text), &at));
	assert_int_equal(at.line, 2);
	assert_int_equal(at.col, 3);
	assert_int_equal(at.start, 12);
	assert_int_equal(at.end, 16); /* "\set" */
	text = "SELECT 1 \\gset\n";
	assert_true(sqlsplit_find_backslash(text, strlen(text), &at));
	assert_int_equal(at.line, 1);
	assert_int_equal(at.col, 10);
	assert_int_equal(at.end - at.start, 5);
	/* "é" counts one column */
	text = "-- é\nSELECT 'é';\\i x.sql";
	assert_true(sqlsplit_find_backslash(text, strlen(text), &at));
	assert_int_equal(at.line, 2);
	assert_int_equal(at.col, 12);
	/* in strings, identifiers, dollar quotes and comments: none */
	text = "SELECT E'\\\\', '\\', \"a\\b\", $$\\i$$; -- \\i\n/* \\set */";
	assert_false(sqlsplit_find_backslash(text, strlen(text), &at));
	/* a text that does not split: none either */
	text = "SELECT 'x \\set";
	assert_false(sqlsplit_find_backslash(text, strlen(text), &at));
	assert_false(sqlsplit_find_backslash("", 0, &at));
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
		cmocka_unit_test(test_create_index),
		cmocka_unit_test(test_cic),
		cmocka_unit_test(test_index_targets),
		cmocka_unit_test(test_tx_control),
		cmocka_unit_test(test_find_backslash),
		cmocka_unit_test(test_begin_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
