/* Unit tests of the pure parts of migrate.c and db.c: ordering, directives, positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"
#include "migrate.h"

static void test_byte_order(void **state)
{
	/* byte order: digits before upper case before lower case; no natural sort */
	char *names[] = {
		"b.sql", "10_x.sql", "2_y.sql", "B.sql", "001_a.sql", "a_b.sql", "a.sql"
	};
	const char *want[] = { "001_a.sql", "10_x.sql", "2_y.sql", "B.sql",
			       "a.sql",	    "a_b.sql",	"b.sql" };
	(void)state;
	qsort(names, 7, sizeof(names[0]), migrate_name_cmp);
	for (int i = 0; i < 7; i++)
		assert_string_equal(names[i], want[i]);
}

static void test_directives(void **state)
{
	bool rep, notx;
	int bad = 0;
	(void)state;

	assert_true(migrate_directives("CREATE TABLE t (a int);\n", &rep, &notx, &bad));
	assert_false(rep);
	assert_false(notx);
	assert_true(migrate_directives("-- pgprelude: repeatable\nCREATE VIEW v AS SELECT 1;\n",
				       &rep, &notx, &bad));
	assert_true(rep);
	assert_false(notx);
	assert_true(migrate_directives("\n-- a comment\n  --pgprelude:repeatable\nSELECT 1;", &rep,
				       &notx, &bad));
	assert_true(rep);
	/* after the first statement line, a directive is just a comment */
	assert_true(migrate_directives("SELECT 1;\n-- pgprelude: repeatable\n", &rep, &notx, &bad));
	assert_false(rep);
	assert_false(
		migrate_directives("-- x\n-- pgprelude: repeatabel\nSELECT 1;", &rep, &notx, &bad));
	assert_int_equal(bad, 2);
	assert_true(migrate_directives("", &rep, &notx, &bad));
	assert_false(rep);
	/* no-transaction, alone, with repeatable on one line or on two */
	assert_true(migrate_directives(
		"-- pgprelude: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);", &rep, &notx,
		&bad));
	assert_true(notx);
	assert_false(rep);
	assert_true(migrate_directives("-- pgprelude: repeatable, no-transaction\nSELECT 1;", &rep,
				       &notx, &bad));
	assert_true(notx);
	assert_true(rep);
	assert_true(migrate_directives(
		"-- pgprelude: no-transaction\n-- pgprelude: repeatable\nSELECT 1;", &rep, &notx,
		&bad));
	assert_true(notx);
	assert_true(rep);
	assert_false(
		migrate_directives("-- pgprelude: no_transaction\nSELECT 1;", &rep, &notx, &bad));
	assert_int_equal(bad, 1);
	assert_false(
		migrate_directives("-- pgprelude: no-transactions\nSELECT 1;", &rep, &notx, &bad));
}

static void test_row_failed(void **state)
{
	struct history_row r = { .outcome = "applied" };
	(void)state;

	assert_false(history_row_failed(&r));
	r.outcome = "reapplied";
	assert_false(history_row_failed(&r));
	r.outcome = "failed at line 3:1: could not create unique index \"i\" (23505)";
	assert_true(history_row_failed(&r));
	assert_false(history_row_failed(NULL));
}

static void test_pos_to_linecol(void **state)
{
	int line, col;
	const char *text = "SELECT 1;\nSELECT * FROM nope;\n";
	(void)state;

	assert_true(db_pos_to_linecol(text, 1, &line, &col));
	assert_int_equal(line, 1);
	assert_int_equal(col, 1);
	/* "nope" starts at character 25: line 2, column 15 */
	assert_true(db_pos_to_linecol(text, 25, &line, &col));
	assert_int_equal(line, 2);
	assert_int_equal(col, 15);
	/* multi-byte characters count once, in lines and columns */
	assert_true(db_pos_to_linecol("-- é ü\nSELECT ñ FROM x;", 15, &line, &col));
	assert_int_equal(line, 2);
	assert_int_equal(col, 8);
	/* just past the end is the end; further is out of range */
	assert_true(db_pos_to_linecol("ab", 3, &line, &col));
	assert_false(db_pos_to_linecol("ab", 9, &line, &col));
	assert_false(db_pos_to_linecol("ab", 0, &line, &col));
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(migrate_state_name(FILE_PENDING), "pending");
	assert_string_equal(migrate_state_name(FILE_APPLIED), "applied");
	assert_string_equal(migrate_state_name(FILE_CHANGED), "changed");
	assert_string_equal(migrate_state_name(FILE_RERUN), "rerun");
	assert_string_equal(migrate_state_name(FILE_MOVED), "moved");
	assert_string_equal(migrate_state_name(FILE_MISSING), "missing");
	assert_string_equal(migrate_state_name(FILE_FAILED), "failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_byte_order),  cmocka_unit_test(test_directives),
		cmocka_unit_test(test_row_failed),  cmocka_unit_test(test_pos_to_linecol),
		cmocka_unit_test(test_state_names),
	};
	return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
