#!/usr/bin/env bats
# The test harness itself: the suite's cluster and the helpers in
# test_helper/common.bash. If these fail, nothing else can be trusted.

load test_helper/common

setup() {
    new_db
}

@test "harness: cluster answers over TCP on 127.0.0.1 with password auth" {
    assert_equal "$PGHOST" 127.0.0.1
    run sql "SELECT current_user || ' ' || inet_server_addr() || ' ' || inet_server_port()"
    assert_success
    assert_output "postgres 127.0.0.1/32 $PGPORT"
    run sql "SHOW password_encryption"
    assert_output scram-sha-256
}

@test "harness: a wrong password is refused" {
    PGPASSWORD=not-the-password run "$PSQL" -X -A -t -c "SELECT 1"
    assert_failure 2
    assert_output --partial 'password authentication failed for user "postgres"'
    # and no password at all is refused too (no trust over TCP)
    run env -u PGPASSWORD PGPASSFILE=/dev/null "$PSQL" -X -w -A -t -c "SELECT 1"
    assert_failure
    assert_output --partial "no password supplied"
}

@test "harness: DATABASE_URL connects to this test's database" {
    run "$PSQL" -X -A -t -d "$DATABASE_URL" -c "SELECT current_database()"
    assert_success
    assert_output "$PGDATABASE"
    assert_regex "$PGDATABASE" '^t_[0-9]+_[0-9]+$'
}

@test "harness: new_db gives an empty, separate database" {
    local first=$PGDATABASE
    run sql "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    assert_output 0
    sql "CREATE TABLE marker (id int); INSERT INTO marker VALUES (1)"

    new_db
    assert [ "$PGDATABASE" != "$first" ]
    run sql "SELECT current_database()"
    assert_output "$PGDATABASE"
    run sql "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    assert_output 0
    run sql "SELECT to_regclass('marker') IS NULL"
    assert_output t
    # The first database still has its table.
    run sql "SELECT count(*) FROM marker" -d "$first"
    assert_success
    assert_output 1
}

@test "harness: unix socket in PGPRELUDE_TEST_SOCKDIR works (trust, no password)" {
    assert [ -S "$PGPRELUDE_TEST_SOCKDIR/.s.PGSQL.$PGPORT" ]
    PGHOST=$PGPRELUDE_TEST_SOCKDIR run env -u PGPASSWORD "$PSQL" -X -w -A -t -c \
        "SELECT inet_server_addr() IS NULL, current_setting('unix_socket_directories')"
    assert_success
    assert_output "t|$PGPRELUDE_TEST_SOCKDIR"
}

@test "harness: sql stops at the first error and fails" {
    run sql "SELECT 1/0"
    assert_failure
    assert_output --partial "division by zero"
    run sql <<'SQL'
CREATE TABLE t (v int);
INSERT INTO t VALUES (1);
INSERT INTO t VALUES ('x');
INSERT INTO t VALUES (3);
SQL
    assert_failure
    run sql "SELECT string_agg(v::text, ',') FROM t"
    assert_output 1
}

@test "harness: workdir and write_config" {
    local dir
    dir=$(workdir db-init)
    assert_equal "$dir" "$BATS_TEST_TMPDIR/db-init"
    assert_dir_exists "$dir"
    write_config "$(workdir)/entrypoint/pgprelude.ini" <<INI
[database]
url = $DATABASE_URL
INI
    assert_file_exists "$BATS_TEST_TMPDIR/entrypoint/pgprelude.ini"
    run cat "$BATS_TEST_TMPDIR/entrypoint/pgprelude.ini"
    assert_line --index 1 "url = $DATABASE_URL"
}
