/*
 * test_status.c — the status → exit code mapping is part of pgprelude's
 * interface (documented in --help and the README): pin every value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "status.h"

static const struct {
	enum status st;
	int code;
	const char *name;
} expected[] = {
	{ ST_OK, 0, "ok" },
	{ ST_USAGE, 2, "usage" },
	{ ST_UNREACHABLE, 3, "unreachable" },
	{ ST_AUTH, 4, "auth" },
	{ ST_LOCK, 5, "lock-timeout" },
	{ ST_SQL, 6, "sql-error" },
	{ ST_PREFLIGHT, 7, "preflight" },
	{ ST_DRIFT, 8, "drift" },
	{ ST_EXTERNAL, 9, "external" },
	{ ST_CONNLOST, 10, "connection-lost" },
	{ ST_INTERNAL, 11, "internal" },
	{ ST_SIGNAL, 128, "signal" }, /* with signo 0 */
	{ ST_NOEXEC, 126, "not-executable" },
	{ ST_NOTFOUND, 127, "not-found" },
};

#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static void test_every_status_listed(void **state)
{
	(void)state;
	/* the table above covers the whole enum, in order */
	assert_int_equal(N_EXPECTED, ST_NOTFOUND + 1);
	for (size_t i = 0; i < N_EXPECTED; i++)
		assert_int_equal(expected[i].st, (enum status)i);
}

static void test_exit_codes(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++) {
		int code = status_exit_code(expected[i].st, 0);
		if (code != expected[i].code)
			fail_msg("status %s: exit code %d, expected %d", expected[i].name, code,
				 expected[i].code);
	}
}

static void test_exit_codes_enum(void **state)
{
	(void)state;
	assert_int_equal(status_exit_code(ST_USAGE, 0), EXIT_USAGE);
	assert_int_equal(status_exit_code(ST_UNREACHABLE, 0), EXIT_UNREACHABLE);
	assert_int_equal(status_exit_code(ST_AUTH, 0), EXIT_AUTH);
	assert_int_equal(status_exit_code(ST_LOCK, 0), EXIT_LOCK);
	assert_int_equal(status_exit_code(ST_SQL, 0), EXIT_SQL);
	assert_int_equal(status_exit_code(ST_PREFLIGHT, 0), EXIT_PREFLIGHT);
	assert_int_equal(status_exit_code(ST_DRIFT, 0), EXIT_DRIFT);
	assert_int_equal(status_exit_code(ST_EXTERNAL, 0), EXIT_EXTERNAL);
	assert_int_equal(status_exit_code(ST_CONNLOST, 0), EXIT_CONNLOST);
	assert_int_equal(status_exit_code(ST_INTERNAL, 0), EXIT_INTERNAL);
	assert_int_equal(status_exit_code(ST_NOEXEC, 0), EXIT_NOEXEC);
	assert_int_equal(status_exit_code(ST_NOTFOUND, 0), EXIT_NOTFOUND);
}

static void test_exit_codes_distinct(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++)
		for (size_t j = i + 1; j < N_EXPECTED; j++)
			if (status_exit_code(expected[i].st, 0) ==
			    status_exit_code(expected[j].st, 0))
				fail_msg("%s and %s share exit code %d", expected[i].name,
					 expected[j].name, status_exit_code(expected[i].st, 0));
}

static void test_signal(void **state)
{
	(void)state;
	assert_int_equal(status_exit_code(ST_SIGNAL, 15), 143); /* SIGTERM */
	assert_int_equal(status_exit_code(ST_SIGNAL, 2), 130);	/* SIGINT */
	assert_int_equal(status_exit_code(ST_SIGNAL, 9), 137);	/* SIGKILL */
	assert_int_equal(status_exit_code(ST_SIGNAL, 1), 129);
	/* out-of-range signal numbers do not leave the 128..255 range */
	assert_int_equal(status_exit_code(ST_SIGNAL, 0), 128);
	assert_int_equal(status_exit_code(ST_SIGNAL, -3), 128);
	assert_int_equal(status_exit_code(ST_SIGNAL, 300), 128);
	/* signo is ignored for every other status */
	assert_int_equal(status_exit_code(ST_OK, 15), 0);
	assert_int_equal(status_exit_code(ST_SQL, 15), EXIT_SQL);
}

static void test_unknown_status(void **state)
{
	(void)state;
	assert_int_equal(status_exit_code((enum status)99, 0), EXIT_INTERNAL);
	assert_string_equal(status_name((enum status)99), "unknown");
	assert_string_equal(status_name((enum status) - 1), "unknown");
}

static void test_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_EXPECTED; i++) {
		const char *name = status_name(expected[i].st);
		assert_non_null(name);
		assert_string_not_equal(name, "unknown");
		assert_string_equal(name, expected[i].name);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(name, status_name(expected[j].st));
	}
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_status_listed),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_exit_codes_enum),
		cmocka_unit_test(test_exit_codes_distinct),
		cmocka_unit_test(test_signal),
		cmocka_unit_test(test_unknown_status),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
