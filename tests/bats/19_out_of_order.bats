#!/usr/bin/env bats
# Files out of order (a pending file that sorts before an applied one: a
# late-merged branch) and files missing from disk (a rollback to an older
# image while the database is ahead).

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
    two_phase_config
    echo "CREATE TABLE log (x text);" | mig pre 001.sql
    echo "INSERT INTO log VALUES ('003');" | mig pre 003.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    echo "INSERT INTO log VALUES ('002');" | mig pre 002_late.sql
}

@test "a late file is applied with a warning naming the applied file it sorts before" {
    run "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_output --partial 'pre/002_late.sql: pending: will run, out of order (it sorts before "003.sql", which is applied)'
    run "$PGPRELUDE" -c "$CFG" status
    assert_output --regexp 'pre +dir +002_late.sql +out-of-order'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'pre/002_late.sql: warning: pending, but it sorts before "003.sql", which is applied'
    run sql "SELECT string_agg(x, ',' ORDER BY x) FROM log"
    assert_output '002,003'
}

@test "out_of_order = refuse stops the start before anything runs (exit 2)" {
    sed -i '/^dir = pre$/a out_of_order = refuse' "$CFG"
    echo "INSERT INTO log VALUES ('004');" | mig pre 004.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'pre/002_late.sql: error: pending, but it sorts before "003.sql", which is applied: out of order'
    run sql "SELECT string_agg(x, ',' ORDER BY x) FROM log"
    assert_output '003'
    sed -i 's/^out_of_order = refuse$/out_of_order = sometimes/' "$CFG"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'bad out_of_order "sometimes"'
}

@test "a file missing from disk is tolerated by migrate" {
    rm "$W/pre/002_late.sql" "$W/pre/003.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run "$PGPRELUDE" -c "$CFG" verify
    assert_failure 8
    assert_output --partial 'pre/003.sql: error: applied on'
    run "$PGPRELUDE" -c "$CFG" verify --allow-missing
    assert_success
    assert_output --partial 'pre/003.sql: applied on'
    assert_output --partial 'no longer in the folder (allowed)'
    run "$PGPRELUDE" -c "$CFG" migrate --allow-missing
    assert_failure 2
}
