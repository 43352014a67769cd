/*
 * Unit tests of the parts of migrate.c and db.c that need no server:
 * ordering, directives, a folder read into a plan and matched against a
 * history, positions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "db.h"
#include "migrate.h"
#include "util.h"

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

/* Write text to dir/name. */
static void put_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void test_folder(void **state)
{
	char root[] = "/tmp/pgprelude-test-migrate.XXXXXX";
	char *dir, *cfg_path;
	struct config cfg = { 0 };
	struct phase ph = { .name = "db-init" };
	struct mplan plan;
	struct history_row rows[] = {
		{ .phase = "db-init",
		  .file = "1_a.sql",
		  .applied_at = "2026-01-01",
		  .outcome = "applied",
		  .checksum = "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd" },
		{ .phase = "db-init",
		  .file = "0_gone.sql",
		  .applied_at = "2026-01-01",
		  .outcome = "applied",
		  .checksum = "0" },
		{ .phase = "other",
		  .file = "9.sql",
		  .applied_at = "2026-01-01",
		  .outcome = "applied",
		  .checksum = "?" },
	};
	const struct history_row *by_key[] = { &rows[1], &rows[0], &rows[2] };
	struct history h = { .rows = rows, .n = 3, .by_key = by_key };
	(void)state;

	assert_non_null(mkdtemp(root));
	dir = xasprintf("%s/db-init", root);
	cfg_path = xasprintf("%s/pgprelude.ini", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	put_file(
		dir, "2_b.sql",
		"-- pgprelude: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\nSELECT 2;\n");
	put_file(dir, "1_a.sql", "SELECT 1;\n");
	put_file(dir, ".hidden.sql", "SELECT 3;\n");
	put_file(dir, "notes.txt", "not SQL\n");
	cfg.path = cfg_path;
	ph.dir = dir;

	/* the .sql files in byte order, paths shown relative to the config's folder */
	assert_int_equal(migrate_list(&cfg, &ph, &plan), ST_OK);
	assert_int_equal(plan.n, 2);
	assert_string_equal(plan.files[0].name, "1_a.sql");
	assert_string_equal(plan.files[0].path, "db-init/1_a.sql");
	assert_string_equal(plan.files[1].name, "2_b.sql");
	assert_int_equal(migrate_read_next(&plan), ST_OK);
	assert_int_equal(migrate_read_next(&plan), ST_OK);
	assert_int_equal(plan.files[0].nstmts, 1);
	assert_false(plan.files[0].no_transaction);
	assert_string_equal(plan.files[0].checksum, rows[0].checksum);
	assert_int_equal(plan.files[1].nstmts, 2);
	assert_int_equal(plan.files[1].stmts[1].line, 3);
	assert_true(plan.files[1].no_transaction);

	/* applied, moved (same checksum under another phase), and the one gone */
	rows[2].checksum = plan.files[1].checksum;
	assert_int_equal(migrate_match(&plan, &h), ST_OK);
	assert_int_equal(plan.n, 3);
	assert_int_equal(plan.files[0].state, FILE_APPLIED);
	assert_int_equal(plan.files[1].state, FILE_MOVED);
	assert_ptr_equal(plan.files[1].moved, &rows[2]);
	assert_string_equal(plan.files[2].name, "0_gone.sql");
	assert_string_equal(plan.files[2].path, "db-init/0_gone.sql");
	assert_int_equal(plan.files[2].state, FILE_MISSING);
	assert_int_equal(migrate_check(&plan, &h), ST_OK);

	mplan_free(&plan);

	/* a folder that cannot be read */
	ph.dir = cfg_path;
	assert_int_equal(migrate_list(&cfg, &ph, &plan), ST_USAGE);
	mplan_free(&plan);

	for (const char *const *n = (const char *const[]){ "1_a.sql", "2_b.sql", ".hidden.sql",
							   "notes.txt", NULL };
	     *n; n++) {
		char *path = xasprintf("%s/%s", dir, *n);
		unlink(path);
		free(path);
	}
	rmdir(dir);
	rmdir(root);
	free(dir);
	free(cfg_path);
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
		cmocka_unit_test(test_state_names), cmocka_unit_test(test_folder),
	};
	return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
