#!/usr/bin/env bats
# The operators' commands: baseline adopts an existing database without
# running its files; accept records an applied file edited on purpose.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
    two_phase_config
    echo "CREATE TABLE a (x int);" | mig pre 001_a.sql
    echo "CREATE TABLE b (x int);" | mig pre 002_b.sql
    echo "CREATE TABLE c (x int);" | mig post 001_c.sql
}

@test "baseline records every pending file as applied without running it; status shows baselined" {
    run "$PGPRELUDE" -c "$CFG" baseline
    assert_success
    assert_output --partial 'baselined pre/001_a.sql (recorded as applied, not run)'
    assert_output --partial 'baseline: 3 files recorded as applied without running them'
    run sql "SELECT to_regclass('a') IS NULL AND to_regclass('c') IS NULL"
    assert_output t
    run sql "SELECT string_agg(file || ':' || outcome, ',' ORDER BY phase DESC, file) FROM pgprelude.history"
    assert_output '001_a.sql:baselined,002_b.sql:baselined,001_c.sql:baselined'
    run "$PGPRELUDE" -c "$CFG" status
    assert_output --regexp 'pre +dir +001_a.sql +baselined'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'the migration lock was not needed'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
}

@test "baseline up to a file, or one phase only" {
    run "$PGPRELUDE" -c "$CFG" baseline --to pre/001_a.sql
    assert_success
    run sql "SELECT string_agg(file, ',' ORDER BY file) FROM pgprelude.history"
    assert_output '001_a.sql'
    run "$PGPRELUDE" -c "$CFG" baseline --phase post
    assert_success
    run sql "SELECT string_agg(file, ',' ORDER BY phase, file) FROM pgprelude.history"
    assert_output '001_c.sql,001_a.sql'
    # the rest runs as usual
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT to_regclass('a') IS NULL AND to_regclass('b') IS NOT NULL AND to_regclass('c') IS NULL"
    assert_output t
    run "$PGPRELUDE" -c "$CFG" baseline --to nosuch.sql
    assert_failure 2
    assert_output --partial 'no such file'
    run "$PGPRELUDE" -c "$CFG" baseline --phase nosuch
    assert_failure 2
}

@test "baseline refuses a file recorded with another checksum, and writes nothing" {
    run "$PGPRELUDE" -c "$CFG" baseline --to pre/001_a.sql
    assert_success
    echo "CREATE TABLE a (x bigint);" | mig pre 001_a.sql
    run "$PGPRELUDE" -c "$CFG" baseline
    assert_failure 2
    assert_output --partial 'pre/001_a.sql: error: cannot be baselined: it is recorded with another checksum'
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 1
}

@test "accept records the new checksum of an applied file, keeping the old one, who and when" {
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    old=$(sha256sum "$W/pre/002_b.sql" | cut -d' ' -f1)
    printf -- '-- b, the first table\nCREATE TABLE b (x int);\n' | mig pre 002_b.sql
    new=$(sha256sum "$W/pre/002_b.sql" | cut -d' ' -f1)
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 8
    assert_output --partial 'pgprelude accept'
    run "$PGPRELUDE" -c "$CFG" accept "$W/pre/002_b.sql"
    assert_success
    assert_output --partial 'accepted pre/002_b.sql'
    run sql "SELECT checksum = '$new' AND previous_checksum = '$old' AND accepted_by = 'postgres'
               AND accepted_at IS NOT NULL FROM pgprelude.history WHERE file = '002_b.sql'"
    assert_output t
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    # the file did not run again
    run sql "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"
    assert_output 1
}

@test "accept refuses a file that is not applied, or not changed, and writes nothing" {
    run "$PGPRELUDE" -c "$CFG" baseline --to pre/001_a.sql
    assert_success
    echo "CREATE TABLE a (x bigint);" | mig pre 001_a.sql
    run "$PGPRELUDE" -c "$CFG" accept pre/002_b.sql pre/001_a.sql
    assert_failure 2
    assert_output --partial 'pre/002_b.sql: error: cannot be accepted: it is not applied'
    run "$PGPRELUDE" -c "$CFG" accept post/001_c.sql
    assert_failure 2
    run "$PGPRELUDE" -c "$CFG" accept nosuch.sql
    assert_failure 2
    assert_output --partial 'no migration file of any dir phase'
    run sql "SELECT count(*) FROM pgprelude.history WHERE previous_checksum IS NOT NULL"
    assert_output 0
    run "$PGPRELUDE" -c "$CFG" accept pre/001_a.sql
    assert_success
    run "$PGPRELUDE" -c "$CFG" accept pre/001_a.sql
    assert_failure 2
    assert_output --partial 'cannot be accepted: it has not changed since it was applied'
}

@test "[database] role: files and constraint DDL run as the owner role; the history row as the login user" {
    sql "DROP ROLE IF EXISTS r_login; DROP ROLE IF EXISTS r_owner;
         CREATE ROLE r_owner NOLOGIN; CREATE ROLE r_login LOGIN PASSWORD '$PGPASSWORD' IN ROLE r_owner" -d postgres
    sql "GRANT ALL ON SCHEMA public TO r_owner; GRANT CREATE ON DATABASE \"$PGDATABASE\" TO r_login"
    printf '%s\n' '[database]' "url = postgresql://r_login:$PGPASSWORD@127.0.0.1:$PGPORT/$PGDATABASE" \
        'role = r_owner' 'wait_timeout = 5s' '[phase pre]' 'dir = pre' >"$CFG"
    rm -f "$W/pre/"*
    echo "CREATE TABLE owned (a int, b int);" | mig pre 001.sql
    printf '%s\n' '-- pgprelude: no-transaction' 'CREATE TABLE owned_too (a int);' | mig pre 002.sql
    printf '%s\n' '[unique owned_a_b_key]' 'table = owned' 'columns = a, b' | mig pre 003.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT string_agg(tableowner, ',' ORDER BY tablename) FROM pg_tables WHERE tablename LIKE 'owned%'"
    assert_output 'r_owner,r_owner'
    run sql "SELECT count(*) FROM pg_constraint WHERE conname = 'owned_a_b_key'"
    assert_output 1
    run sql "SELECT string_agg(DISTINCT applied_by, ',') FROM pgprelude.history"
    assert_output r_login
}
