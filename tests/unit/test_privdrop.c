/*
 * test_privdrop.c — privdrop_resolve against a test root: a temporary
 * folder with its own etc/passwd and etc/group.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"
#include "util.h"

/* ---- helpers ----------------------------------------------------------- */

/* etc/group of the test root, as setup() writes it. */
#define GROUP_FILE "root:x:0:\napp:x:1000:\nnohome:x:1001:\n"

static char root[64];

/* Write text to root/etc/NAME. */
static void write_etc(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/etc/%s", root, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	char etc[128];

	(void)state;
	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	strcpy(root, "/tmp/test_privdrop.XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(etc, sizeof(etc), "%s/etc", root);
	assert_int_equal(mkdir(etc, 0755), 0);
	write_etc("passwd", "root:x:0:0:root:/root:/bin/sh\n"
			    "app:x:1000:1000:App:/home/app:/bin/sh\n"
			    "nohome:x:1001:1001:No home::/bin/sh\n");
	write_etc("group", GROUP_FILE);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Whether c's groups hold g. */
static bool has_group(const struct creds *c, gid_t g)
{
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == g)
			return true;
	return false;
}

/* ---- HOME -------------------------------------------------------------- */

/* privdrop_resolve(spec) succeeds with these ids and this home. */
static void assert_resolves(const char *spec, uid_t uid, gid_t gid, const char *home)
{
	struct creds c;

	assert_int_equal(privdrop_resolve(spec, root, &c), ST_OK);
	assert_int_equal(c.uid, uid);
	assert_int_equal(c.gid, gid);
	assert_string_equal(c.home, home);
	privdrop_free(&c);
}

static void test_home_from_passwd(void **state)
{
	(void)state;
	assert_resolves("app", 1000, 1000, "/home/app");
	assert_resolves("1000", 1000, 1000, "/home/app");
}

/* su-exec and gosu: a user with no passwd entry gets "/", not the caller's HOME. */
static void test_home_numeric_unknown(void **state)
{
	(void)state;
	assert_resolves("4321:1234", 4321, 1234, "/");
	assert_resolves("4321", 4321, 4321, "/");
}

static void test_home_empty_field(void **state)
{
	(void)state;
	assert_resolves("nohome", 1001, 1001, "/");
}

/* ---- supplementary groups ---------------------------------------------- */

/* Make group (consumed) root/etc/group and resolve "app" against it into c. */
static void resolve_app(struct sbuf *group, struct creds *c)
{
	write_etc("group", group->p);
	sbuf_reset(group);
	assert_int_equal(privdrop_resolve("app", root, c), ST_OK);
}

/* After each group test: the group file of setup() again. */
static int restore_group(void **state)
{
	(void)state;
	write_etc("group", GROUP_FILE);
	return 0;
}

/* 100 groups list the user: all of them, plus the primary group, first. */
static void test_many_groups(void **state)
{
	struct sbuf text = { 0 };
	struct creds c;

	(void)state;
	sbuf_puts(&text, "app:x:1000:\n");
	for (int i = 0; i < 100; i++)
		sbuf_printf(&text, "g%d:x:%d:other,app\n", i, 2000 + i);
	resolve_app(&text, &c);
	assert_int_equal(c.ngroups, 101);
	assert_int_equal(c.groups[0], 1000);
	for (int i = 0; i < 100; i++)
		assert_true(has_group(&c, (gid_t)(2000 + i)));
	privdrop_free(&c);
}

/* A member list longer than any fixed buffer still counts, and so do the lines after it. */
static void test_long_group_line(void **state)
{
	struct sbuf text = { 0 };
	struct creds c;

	(void)state;
	sbuf_puts(&text, "app:x:1000:\nbig:x:3000:");
	for (int i = 0; i < 2000; i++)
		sbuf_printf(&text, "member%d,", i);
	sbuf_puts(&text, "app\nafter:x:3001:app\n");
	assert_true(text.len > 16384);
	resolve_app(&text, &c);
	assert_int_equal(c.ngroups, 3);
	assert_true(has_group(&c, 3000));
	assert_true(has_group(&c, 3001));
	privdrop_free(&c);
}

/* A user given with a group gets only that group; names are matched whole. */
static void test_explicit_group_only(void **state)
{
	struct sbuf text = { 0 };
	struct creds c;

	(void)state;
	sbuf_puts(&text, "app:x:1000:\nextra:x:3000:app\nlike:x:3001:apps,xapp\n");
	resolve_app(&text, &c);
	assert_int_equal(c.ngroups, 2);
	assert_true(has_group(&c, 3000));
	assert_false(has_group(&c, 3001));
	privdrop_free(&c);
	assert_int_equal(privdrop_resolve("app:extra", root, &c), ST_OK);
	assert_int_equal(c.gid, 3000);
	assert_int_equal(c.ngroups, 1);
	assert_int_equal(c.groups[0], 3000);
	privdrop_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_home_from_passwd),
		cmocka_unit_test(test_home_numeric_unknown),
		cmocka_unit_test(test_home_empty_field),
		cmocka_unit_test_teardown(test_many_groups, restore_group),
		cmocka_unit_test_teardown(test_long_group_line, restore_group),
		cmocka_unit_test_teardown(test_explicit_group_only, restore_group),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
