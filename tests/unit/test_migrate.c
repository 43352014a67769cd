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
#include "log.h"
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

/* What log lines a test captures. */
static char logged[8192];

static void capture(const char *line, size_t len, void *arg)
{
	size_t have = strlen(logged);
	(void)arg;
	if (have + len < sizeof(logged)) {
		memcpy(logged + have, line, len);
		logged[have + len] = '\0';
	}
}

static void capture_start(void)
{
	logged[0] = '\0';
	log_set_output(capture, NULL);
}

static void capture_end(void)
{
	log_set_output(NULL, NULL);
}

static bool migrate_directives_nolog(const char *text, bool *repeatable, bool *no_transaction,
				     int *bad_line)
{
	return migrate_directives(text, NULL, repeatable, no_transaction, bad_line);
}

static void test_directives_more(void **state)
{
	bool rep, notx;
	int bad = 0;
	(void)state;

	/* after a leading block comment (nested, over lines) */
	assert_true(migrate_directives_nolog(
		"/* header /* nested */\n   still */\n-- pgprelude: no-transaction\nSELECT 1;",
		&rep, &notx, &bad));
	assert_true(notx);
	/* a directive inside a block comment is no directive */
	assert_true(migrate_directives_nolog("/*\n-- pgprelude: repeatable\n*/\nSELECT 1;", &rep,
					     &notx, &bad));
	assert_false(rep);
	/* an unterminated block comment ends the search */
	assert_true(migrate_directives_nolog("/* -- pgprelude: bogus", &rep, &notx, &bad));
	/* CRLF line ends */
	assert_true(migrate_directives_nolog("-- pgprelude: repeatable\r\nSELECT 1;\r\n", &rep,
					     &notx, &bad));
	assert_true(rep);
	/* the line of an unknown one counts the lines of block comments */
	assert_false(migrate_directives_nolog("/*\n\n*/ -- pgprelude: x\n", &rep, &notx, &bad));
	assert_int_equal(bad, 3);

	/* look-alikes are warned about with a path, and ignored */
	capture_start();
	assert_true(migrate_directives(
		"-- PgPrelude: no-transaction\n/* */ --pgprelude no-transaction  \r\n"
		"-- pgpreludes: repeatable\n-- pg prelude: repeatable\nSELECT 1;",
		"d/x.sql", &rep, &notx, &bad));
	capture_end();
	assert_false(rep);
	assert_false(notx);
	assert_non_null(strstr(logged, "d/x.sql:1: warning: \"-- PgPrelude: no-transaction\" looks "
				       "like a pgprelude directive"));
	assert_non_null(strstr(logged, "d/x.sql:2: warning: \"--pgprelude no-transaction\" looks"));
	assert_non_null(strstr(logged, "d/x.sql:3: warning: \"-- pgpreludes: repeatable\" looks"));
	assert_null(strstr(logged, "pg prelude"));
	/* a comment that mentions pgprelude is no look-alike */
	capture_start();
	assert_true(migrate_directives("-- pgprelude runs this in a transaction\n-- pgprelude.ini "
				       "has the rest\n-- PGPRELUDE now\nSELECT 1;",
				       "d/x.sql", &rep, &notx, &bad));
	capture_end();
	assert_string_equal(logged, "");
	capture_start();
	assert_true(migrate_directives("-- pgprelude-no-transaction\n-- PGPRELUDE repeatable\n"
				       "-- pgprelude; repeatable\nSELECT 1;",
				       "d/x.sql", &rep, &notx, &bad));
	capture_end();
	assert_non_null(strstr(logged, "d/x.sql:1: warning"));
	assert_non_null(strstr(logged, "d/x.sql:2: warning"));
	assert_non_null(strstr(logged, "d/x.sql:3: warning"));
	/* without a path: nothing logged */
	capture_start();
	assert_true(migrate_directives("-- PgPrelude: no-transaction\nSELECT 1;", NULL, &rep, &notx,
				       &bad));
	capture_end();
	assert_string_equal(logged, "");
}

static void test_directives(void **state)
{
	bool rep, notx;
	int bad = 0;
	(void)state;

	assert_true(migrate_directives_nolog("CREATE TABLE t (a int);\n", &rep, &notx, &bad));
	assert_false(rep);
	assert_false(notx);
	assert_true(migrate_directives_nolog(
		"-- pgprelude: repeatable\nCREATE VIEW v AS SELECT 1;\n", &rep, &notx, &bad));
	assert_true(rep);
	assert_false(notx);
	assert_true(migrate_directives_nolog("\n-- a comment\n  --pgprelude:repeatable\nSELECT 1;",
					     &rep, &notx, &bad));
	assert_true(rep);
	/* after the first statement line, a directive is just a comment */
	assert_true(migrate_directives_nolog("SELECT 1;\n-- pgprelude: repeatable\n", &rep, &notx,
					     &bad));
	assert_false(rep);
	assert_false(migrate_directives_nolog("-- x\n-- pgprelude: repeatabel\nSELECT 1;", &rep,
					      &notx, &bad));
	assert_int_equal(bad, 2);
	assert_true(migrate_directives_nolog("", &rep, &notx, &bad));
	assert_false(rep);
	/* no-transaction, alone, with repeatable on one line or on two */
	assert_true(migrate_directives_nolog(
		"-- pgprelude: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);", &rep, &notx,
		&bad));
	assert_true(notx);
	assert_false(rep);
	assert_true(migrate_directives_nolog("-- pgprelude: repeatable, no-transaction\nSELECT 1;",
					     &rep, &notx, &bad));
	assert_true(notx);
	assert_true(rep);
	assert_true(migrate_directives_nolog(
		"-- pgprelude: no-transaction\n-- pgprelude: repeatable\nSELECT 1;", &rep, &notx,
		&bad));
	assert_true(notx);
	assert_true(rep);
	assert_false(migrate_directives_nolog("-- pgprelude: no_transaction\nSELECT 1;", &rep,
					      &notx, &bad));
	assert_int_equal(bad, 1);
	assert_false(migrate_directives_nolog("-- pgprelude: no-transactions\nSELECT 1;", &rep,
					      &notx, &bad));
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
	assert_int_equal(migrate_match(&plan, &h, &plan, 1), ST_OK);
	assert_int_equal(plan.n, 3);
	assert_int_equal(plan.files[0].state, FILE_APPLIED);
	assert_int_equal(plan.files[1].state, FILE_MOVED);
	assert_ptr_equal(plan.files[1].moved, &rows[2]);
	assert_string_equal(plan.files[2].name, "0_gone.sql");
	assert_string_equal(plan.files[2].path, "db-init/0_gone.sql");
	assert_int_equal(plan.files[2].state, FILE_MISSING);
	assert_int_equal(migrate_check(&plan), ST_OK);

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

/* A folder (under a fresh temp dir) with files name[i] holding text[i]; returns the folder. */
static char *make_folder(char *root, const char *const *names, const char *const *texts,
			 const size_t *lens, int n)
{
	char *dir;

	assert_non_null(mkdtemp(root));
	dir = xasprintf("%s/p", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	for (int i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		assert_int_equal(fwrite(texts[i], 1, lens[i], f), lens[i]);
		assert_int_equal(fclose(f), 0);
		free(path);
	}
	return dir;
}

/* rm -r of root (one folder p of plain files, names given). */
static void remove_folder(const char *root, const char *dir, const char *const *names, int n)
{
	for (int i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		unlink(path);
		free(path);
	}
	rmdir(dir);
	rmdir(root);
}

/* Read one file of text (len bytes) as a plan's only file; its status, what was logged into logged. */
static enum status read_one(const char *text, size_t len, struct mplan *plan)
{
	char root[] = "/tmp/pgprelude-test-read.XXXXXX";
	const char *names[] = { "f.sql" };
	struct config cfg = { .path = "/nowhere/pgprelude.ini" };
	struct phase ph = { .name = "p" };
	char *dir = make_folder(root, names, (const char *const[]){ text }, &len, 1);
	enum status st;

	ph.dir = dir;
	assert_int_equal(migrate_list(&cfg, &ph, plan), ST_OK);
	capture_start();
	st = migrate_read_next(plan);
	capture_end();
	remove_folder(root, dir, names, 1);
	free(dir);
	plan->phase = NULL; /* ph is gone */
	return st;
}

#define READ(lit, plan) read_one(lit, sizeof(lit) - 1, plan)

/* Whether files holding a and b get the same checksum. */
static bool same_checksum(const char *a, const char *b)
{
	struct mplan pa, pb;
	bool same;

	assert_int_equal(read_one(a, strlen(a), &pa), ST_OK);
	assert_int_equal(read_one(b, strlen(b), &pb), ST_OK);
	same = strcmp(pa.files[0].checksum, pb.files[0].checksum) == 0;
	mplan_free(&pa);
	mplan_free(&pb);
	return same;
}

/* Reading text (len bytes; 0: up to its NUL) is refused with ST_USAGE, logging want. */
static void refused(const char *text, size_t len, const char *want)
{
	struct mplan plan;

	assert_int_equal(read_one(text, len ? len : strlen(text), &plan), ST_USAGE);
	if (!strstr(logged, want))
		fail_msg("wanted \"%s\" in: %s", want, logged);
	mplan_free(&plan);
}

static void test_read_checks(void **state)
{
	struct mplan plan, other;
	(void)state;

	/* CRLF and a BOM: the same checksum as the plain file, the raw one kept besides */
	assert_int_equal(READ("SELECT 1;\nSELECT 2;\n", &plan), ST_OK);
	assert_string_equal(plan.files[0].checksum_raw, "");
	assert_int_equal(READ("\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n", &other), ST_OK);
	assert_string_equal(other.files[0].checksum, plan.files[0].checksum);
	assert_string_not_equal(other.files[0].checksum_raw, "");
	assert_string_not_equal(other.files[0].checksum_raw, plan.files[0].checksum);
	/* the BOM is gone from the text: the first statement is at 1:1 */
	assert_int_equal(other.files[0].stmts[0].col, 1);
	assert_int_equal(other.files[0].stmts[0].start, 0);
	assert_int_equal(other.files[0].len, 22);
	mplan_free(&plan);
	mplan_free(&other);
	/* a lone CR is content */
	assert_false(same_checksum("SELECT 1;\rSELECT 2;\n", "SELECT 1;\nSELECT 2;\n"));

	/* a file wrapped in BEGIN ... COMMIT: both blanked, positions kept */
	assert_int_equal(READ("begin work;\nCREATE TABLE t (a int);\n  END;\n", &plan), ST_OK);
	assert_int_equal(plan.files[0].nstmts, 1);
	assert_int_equal(plan.files[0].stmts[0].line, 2);
	assert_string_equal(plan.files[0].text, "           \nCREATE TABLE t (a int);\n      \n");
	mplan_free(&plan);
	/* a BEGIN with modes: they hold, as SET TRANSACTION; the statements after move along */
	assert_int_equal(READ("BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;\n", &plan),
			 ST_OK);
	assert_int_equal(plan.files[0].nstmts, 2);
	assert_string_equal(plan.files[0].text,
			    "SET TRANSACTION       ISOLATION LEVEL SERIALIZABLE;\n"
			    "SELECT 1;\n       \n");
	assert_int_equal(plan.files[0].len, strlen(plan.files[0].text));
	assert_int_equal(plan.files[0].stmts[0].start, 0);
	assert_int_equal(plan.files[0].stmts[0].end, 51);
	assert_int_equal(plan.files[0].stmts[1].start, 52);
	assert_int_equal(plan.files[0].stmts[1].end, 61);
	assert_int_equal(plan.files[0].stmts[1].line, 2);
	mplan_free(&plan);
	/* the checksum is that of the file as written */
	assert_false(same_checksum("BEGIN;\nSELECT 1;\nCOMMIT;\n", "SELECT 1;\n"));
	/* no-transaction files keep theirs */
	assert_int_equal(READ("-- pgprelude: no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;\n", &plan),
			 ST_OK);
	assert_int_equal(plan.files[0].nstmts, 3);
	mplan_free(&plan);
	/* refused where it stands: other transaction control, a NUL byte, a psql meta-command */
	refused("BEGIN;\nSELECT 1;\nROLLBACK;\n", 0,
		"p/f.sql:3:1: error: transaction control in a file that runs in a transaction: "
		"\"ROLLBACK;\"");
	refused("BEGIN;\nSELECT 1;\n", 0, "p/f.sql:1:1: error: transaction control");
	refused("SELECT 1; COMMIT;", 0, "p/f.sql:1:11: error: transaction control");
	refused("SELECT 'é';\n  \0SELECT 2;", 25, "p/f.sql:2:3: error: the file holds a NUL byte");
	refused("SELECT 1;\n\\i other.sql\n", 0,
		"p/f.sql:2:1: error: \"\\i\" is a psql meta-command");
	/* no statement: a warning, kept */
	assert_int_equal(READ("-- only this\n", &plan), ST_OK);
	assert_non_null(strstr(logged, "p/f.sql: warning: the file holds no SQL statement"));
	assert_int_equal(plan.files[0].nstmts, 0);
	mplan_free(&plan);
	assert_int_equal(READ("\xef\xbb\xbf", &plan), ST_OK);
	assert_int_equal(plan.files[0].len, 0);
	mplan_free(&plan);
}

static void test_moved_needs_old_file_gone(void **state)
{
	char root[] = "/tmp/pgprelude-test-moved.XXXXXX";
	const char *names[] = { "1.sql", "2.sql" };
	const char *texts[] = { "SELECT 1;\n", "SELECT 1;\n" };
	const size_t lens[] = { 10, 10 };
	struct config cfg = { .path = "/nowhere/pgprelude.ini" };
	struct phase ph[2] = { { .name = "a" }, { .name = "b" } };
	struct mplan plans[2];
	struct history_row rows[] = {
		{ .phase = "a", .file = "1.sql", .applied_at = "x", .outcome = "applied" },
	};
	const struct history_row *by_key[] = { &rows[0] };
	struct history h = { .rows = rows, .n = 1, .by_key = by_key };
	char *dir = make_folder(root, names, texts, lens, 2);
	(void)state;

	ph[0].dir = ph[1].dir = dir;
	assert_int_equal(migrate_list(&cfg, &ph[0], &plans[0]), ST_OK);
	assert_int_equal(migrate_list(&cfg, &ph[1], &plans[1]), ST_OK);
	for (int i = 0; i < 2; i++)
		while (plans[i].nread < plans[i].n)
			assert_int_equal(migrate_read_next(&plans[i]), ST_OK);
	rows[0].checksum = plans[0].files[0].checksum;
	/* a/1.sql is still there: b's copies are new files */
	assert_int_equal(migrate_match(&plans[1], &h, plans, 2), ST_OK);
	assert_int_equal(plans[1].files[0].state, FILE_PENDING);
	assert_int_equal(plans[1].files[1].state, FILE_PENDING);
	/* phase a gone from the configuration: moved */
	assert_int_equal(migrate_match(&plans[1], &h, &plans[1], 1), ST_OK);
	assert_int_equal(plans[1].files[0].state, FILE_MOVED);
	assert_ptr_equal(plans[1].files[0].moved, &rows[0]);
	/* and a/1.sql itself is applied */
	assert_int_equal(migrate_match(&plans[0], &h, plans, 2), ST_OK);
	assert_int_equal(plans[0].files[0].state, FILE_APPLIED);
	mplan_free(&plans[0]);
	mplan_free(&plans[1]);
	remove_folder(root, dir, names, 2);
	free(dir);
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
		cmocka_unit_test(test_byte_order),
		cmocka_unit_test(test_directives),
		cmocka_unit_test(test_row_failed),
		cmocka_unit_test(test_pos_to_linecol),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_folder),
		cmocka_unit_test(test_directives_more),
		cmocka_unit_test(test_read_checks),
		cmocka_unit_test(test_moved_needs_old_file_gone),
	};
	return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
