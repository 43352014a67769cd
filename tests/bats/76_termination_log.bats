#!/usr/bin/env bats
# A failed start leaves a short summary where Kubernetes looks for one
# (terminationMessagePath, /dev/termination-log by default): exit code, the
# first error with its detail and hint, at most 4 KiB; only into a file that
# exists.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
    TERMLOG=$W/termination-log
}

@test "a failed migration leaves exit code, file:line, SQLSTATE and hint in the termination log" {
    two_phase_config
    sed -i "1i termination_log = $TERMLOG" "$CFG"
    : >"$TERMLOG"
    printf 'CREATE TABLE t (a int);\nINSERT INTO nosuch VALUES (1);\n' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    run cat "$TERMLOG"
    assert_line --index 0 'pgprelude: exit 6 (sql-error)'
    assert_line --index 1 'pre/001.sql:2:13: error: relation "nosuch" does not exist (42P01)'
}

@test "the summary keeps the hint, and is at most 4 KiB however long the error" {
    two_phase_config
    sed -i "1i termination_log = $TERMLOG" "$CFG"
    : >"$TERMLOG"
    echo "DO \$\$ BEGIN RAISE EXCEPTION '%', repeat('x', 9000) USING HINT = 'do this'; END \$\$;" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    size=$(stat -c %s "$TERMLOG")
    [ "$size" -le 4096 ]
    [ "$size" -ge 4000 ]
    two_phase_config
    sed -i "1i termination_log = $TERMLOG" "$CFG"
    echo "SELECT 1/0;" | mig pre 001.sql
    echo "DO \$\$ BEGIN RAISE EXCEPTION 'short' USING HINT = 'do this'; END \$\$;" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    run cat "$TERMLOG"
    assert_line 'hint: do this'
}

@test "a bad configuration is summed up too; no file is created where none exists" {
    printf '%s\n' "termination_log = $TERMLOG" '[database]' 'url = ${DATABASE_URL}' 'bogus = 1' >"$CFG"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert [ ! -e "$TERMLOG" ]
    : >"$TERMLOG"
    two_phase_config
    sed -i "1i termination_log = $TERMLOG" "$CFG"
    echo "SELECT 1;" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run cat "$TERMLOG"
    assert_output ''
}
