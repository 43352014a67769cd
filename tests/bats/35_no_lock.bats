#!/usr/bin/env bats
# A start with nothing to do reads without the migration lock and hands over:
# it is not blocked behind another run's long migration. With anything
# pending it takes the lock and decides again under it.

load test_helper/common
load test_helper/pgprelude
load test_helper/locks

setup() {
    new_db
    setup_layout
}

# hold_migration_lock: another session holds pgprelude's migration lock (the
# key of the default history table) for 30 s; HOLDER is its psql.
hold_migration_lock() {
    "$PSQL" -X -q -c "SET application_name = 'other-run'" \
        -c "SELECT pg_advisory_lock(1885827186, hashtext('public.pgprelude_history'))" \
        -c "SELECT pg_sleep(30)" >/dev/null 2>&1 3>&- &
    HOLDER=$!
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

teardown() {
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'other-run'" >/dev/null
}

@test "nothing to do: no lock is taken, even while another run holds it" {
    two_phase_config '[phase tables]' 'wait_for = t'
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    hold_migration_lock
    run "$PGPRELUDE" -c "$CFG" -- echo app started
    assert_success
    assert_output --partial 'app started'
    assert_output --partial 'the migration lock was not needed'
    assert_output --partial 'phase "pre": 0 files applied, 1 up to date'
    refute_output --partial 'waiting for the migration lock'
}

@test "something pending: the lock is waited for, and a waiter whose work another run did goes on without it" {
    two_phase_config
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    echo "INSERT INTO t VALUES (1);" | mig pre 002.sql
    hold_migration_lock
    "$PGPRELUDE" -c "$CFG" migrate >"$W/out.log" 2>&1 &
    pid=$!
    wait_until 5 file_has "$W/out.log" 'waiting for the migration lock'
    # meanwhile the other run applies the same file (as a pgprelude would) and lets go
    "$PGPRELUDE" -c "$CFG" status >/dev/null 2>&1
    sql "INSERT INTO t VALUES (1); INSERT INTO pgprelude.history (phase, file, checksum, duration_ms,
           applied_host, pgprelude_version, outcome)
         VALUES ('pre', '002.sql', '$(sha256sum "$W/pre/002.sql" | cut -d' ' -f1)', 1, 'other', 'x', 'applied')"
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'other-run'" >/dev/null
    status=0
    wait "$pid" || status=$?
    cat "$W/out.log"
    [ "$status" -eq 0 ]
    # the waiter read again without the lock, found the work done, and went on without it
    grep -q 'nothing left to do: another run did it while this one waited' "$W/out.log"
    run sql "SELECT count(*) FROM t"
    assert_output 1
}

@test "a run step without inputs always needs the lock" {
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' 'lock_wait_timeout = 1s' \
        '[phase schema]' 'run = true' >"$CFG"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    hold_migration_lock
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 5
}

@test "declared constraints present and valid: no lock either; one missing: the lock is taken and it is made" {
    two_phase_config
    echo "CREATE TABLE t (a int, b int);" | mig pre 001.sql
    printf '%s\n' '[unique t_a_b_key]' 'table = t' 'columns = a, b' '[not_null t_a]' 'table = t' 'column = a' \
        | mig post 002.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    hold_migration_lock
    run "$PGPRELUDE" -c "$CFG" -- echo app started
    assert_success
    assert_output --partial 'the migration lock was not needed'
    sql "ALTER TABLE t DROP CONSTRAINT t_a_b_key"
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'other-run'" >/dev/null
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    refute_output --partial 'the migration lock was not needed'
    run sql "SELECT count(*) FROM pg_constraint WHERE conname = 't_a_b_key'"
    assert_output 1
}
