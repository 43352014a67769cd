#!/usr/bin/env bats
# A constraint file found converged leaves the digest of its tables' catalog
# rows in the history; a start that finds the same digest reads only that
# (one query) instead of checking every spec. Any change to those tables,
# or to the file, is checked spec by spec again.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
    two_phase_config
    echo "CREATE TABLE t (a int, b int, live boolean, n int);" | mig pre 001.sql
    printf '%s\n' '[unique t_a_b_key]' 'table = t' 'columns = a, b' \
        '[unique t_b_live]' 'table = t' 'columns = b' 'where = live' \
        '[not_null t_n]' 'table = t' 'column = n' | mig post 002.ini
}

teardown() {
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'other-run'" >/dev/null
}

digest() {
    sql "SELECT checksum FROM pgprelude.history WHERE phase = 'post' AND file = '002.ini' AND outcome = 'converged'"
}

UNCHANGED='as they were when it was last found converged'

@test "a converged file's digest is recorded; the next start reads it and nothing else" {
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run digest
    assert_output --regexp '^[0-9a-f]{64}$'
    run "$PGPRELUDE" -c "$CFG" migrate -v
    assert_success
    assert_output --partial "002.ini: its tables are $UNCHANGED"
    refute_output --regexp 'on public\.t: up to date' # no spec was checked one by one
    assert_output --partial 'the migration lock was not needed'
    # the digest is no applied file: status and verify know nothing of it
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
    run "$PGPRELUDE" -c "$CFG" status
    assert_success
    refute_output --partial 'converged'
    refute_output --partial 'missing'
}

@test "every change to a declared table after its digest is checked spec by spec" {
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    sql "ALTER TABLE t DROP CONSTRAINT t_a_b_key"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    refute_output --partial "$UNCHANGED"
    run sql "SELECT count(*) FROM pg_constraint WHERE conname = 't_a_b_key' AND contype = 'u'"
    assert_output 1

    sql "ALTER TABLE t ALTER COLUMN n DROP NOT NULL"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'n'"
    assert_output t

    # the same name, another predicate: drift, not "up to date"
    sql "DROP INDEX t_b_live; CREATE UNIQUE INDEX t_b_live ON t (b) WHERE NOT live"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 8
    sql "DROP INDEX t_b_live; CREATE UNIQUE INDEX t_b_live ON t (b) WHERE live"

    # a column renamed (the constraint goes with it): the file names one that is gone
    sql "ALTER TABLE t RENAME COLUMN a TO a_old"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'column "a" of table public.t does not exist'
    sql "ALTER TABLE t RENAME COLUMN a_old TO a"

    # back as converging left it: checked once more, then known again
    run "$PGPRELUDE" -c "$CFG" migrate -v
    assert_success
    refute_output --partial "$UNCHANGED"
    run "$PGPRELUDE" -c "$CFG" migrate -v
    assert_success
    assert_output --partial "$UNCHANGED"
}

@test "a changed constraint file is checked again, and its new digest recorded" {
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    before=$(digest)
    printf '%s\n' '[not_null t_a]' 'table = t' 'column = a' >>"$W/post/002.ini"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    refute_output --partial "$UNCHANGED"
    run sql "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'a'"
    assert_output t
    run digest
    assert_output --regexp '^[0-9a-f]{64}$'
    refute_output "$before"
}

@test "a start with nothing to do records a missing digest, unless another run holds the lock" {
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    sql "DELETE FROM pgprelude.history WHERE outcome = 'converged'"
    "$PSQL" -X -q -c "SET application_name = 'other-run'" \
        -c "SELECT pg_advisory_lock(1885827186, hashtext('public.pgprelude_history'))" \
        -c "SELECT pg_sleep(30)" >/dev/null 2>&1 3>&- &
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_locks WHERE $ADVISORY AND granted"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'the migration lock was not needed'
    run digest
    assert_output ''
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'other-run'" >/dev/null
    wait_until 5 sql_is 0 "SELECT count(*) FROM pg_locks WHERE $ADVISORY"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'the migration lock was not needed'
    run digest
    assert_output --regexp '^[0-9a-f]{64}$'
    run "$PGPRELUDE" -c "$CFG" migrate -v
    assert_output --partial "$UNCHANGED"
}
