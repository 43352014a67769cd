#!/usr/bin/env bats
# Faults in no-transaction files ("-- pgprelude: no-transaction"): kill -9
# between statements, and inside a concurrent index build. Kept apart from
# 90_faults.bats because no-transaction files are new; the invariants are
# the same: the next run converges, nothing is recorded as applied without
# its effects, no lock is left behind.

load test_helper/common
load test_helper/pgprelude
load test_helper/faults

setup() {
    faults_setup
    HOLDER=
}

teardown() {
    faults_teardown
}

# holder SECONDS: in the background, a transaction that has written to table
# big and stays open for SECONDS, so that CREATE INDEX CONCURRENTLY on big
# waits for it; returns once it holds its lock. Sets HOLDER.
holder() {
    {
        echo "BEGIN;"
        echo "INSERT INTO big VALUES (-1);"
        echo "SELECT pg_sleep($1);"
        echo "COMMIT;"
    } | "$PSQL" -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 3>&- &
    HOLDER=$!
    track "$HOLDER"
    wait_until 10 active "pg_sleep($1)"
}

# cic_pid: the backend that runs a CREATE INDEX CONCURRENTLY in this database.
cic_pid() {
    sql "SELECT pid FROM pg_stat_progress_create_index WHERE datid =
           (SELECT oid FROM pg_database WHERE datname = current_database())"
}
cic_running() { [[ -n "$(cic_pid)" ]]; }

# index_state NAME: "valid", "INVALID", or "missing".
index_state() {
    sql "SELECT coalesce((SELECT CASE WHEN indisvalid THEN 'valid' ELSE 'INVALID' END
                            FROM pg_index WHERE indexrelid = to_regclass('$1')), 'missing')"
}

big_table() {
    echo "CREATE TABLE big (a int); INSERT INTO big SELECT g FROM generate_series(1, 20000) g;" | mig pre 000_big.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
}

@test "kill -9 between the statements of a no-transaction file: what ran stays, nothing is recorded, the next run completes it" {
    faults_config '[phase pre]' 'dir = pre'
    mig pre 001.sql <<'EOF'
-- pgprelude: no-transaction
CREATE TABLE IF NOT EXISTS t (k text PRIMARY KEY);
INSERT INTO t VALUES ('s1') ON CONFLICT DO NOTHING;
SELECT pg_sleep(3);
INSERT INTO t VALUES ('s2') ON CONFLICT DO NOTHING;
EOF
    start_bg -c "$CFG" migrate
    wait_until 20 active 'pg_sleep(3)'
    kill9
    after_kill
    # the statements before the kill were committed one by one; the file is not applied
    run sql "SELECT string_agg(k, ',' ORDER BY k) FROM t"
    assert_output s1
    run sql "SELECT count(*) FROM pgprelude.history WHERE outcome IN ('applied', 'reapplied')"
    assert_output 0
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'applied pre/001.sql (no transaction, 4 statements'
    applied_once t s1 s2
    run sql "SELECT count(*), min(outcome) FROM pgprelude.history WHERE file = '001.sql'"
    assert_output '1|applied'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_output --partial '0 files applied, 1 up to date'
}

@test "kill -9 inside a concurrent index build that then dies: the INVALID index is rebuilt by the next run, recorded once" {
    faults_config '[phase pre]' 'dir = pre'
    big_table
    mig pre 001_idx.sql <<'EOF'
-- pgprelude: no-transaction
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS big_a_key ON big (a);
EOF
    holder 30
    start_bg -c "$CFG" migrate
    # the build waits for the holder's transaction
    wait_until 20 cic_running
    kill9
    # the orphaned build dies too (an administrator, or the server noticing
    # the client is gone), leaving its INVALID index; then the writer ends
    sql "SELECT pg_terminate_backend($(cic_pid))" >/dev/null
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(30)%'" >/dev/null
    after_kill
    run index_state big_a_key
    assert_output INVALID
    run sql "SELECT count(*) FROM pgprelude.history WHERE file = '001_idx.sql' AND outcome = 'applied'"
    assert_output 0
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'dropping the INVALID index'
    run index_state big_a_key
    assert_output valid
    run sql "SELECT count(*), min(outcome) FROM pgprelude.history WHERE file = '001_idx.sql'"
    assert_output '1|applied'
    run sql "SELECT count(*) FROM pg_indexes WHERE tablename = 'big'"
    assert_output 1
}

# The orphaned build goes on after kill -9 while the lock session is gone at
# once. Were the run restarted at once not to wait for it, it would find the
# index name taken by the build in progress, CREATE INDEX CONCURRENTLY IF NOT
# EXISTS would skip it, and the file would be recorded as applied and the
# start-up declared done while the unique index is not valid yet (and never
# will be if the orphan dies; an ON CONFLICT on it fails meanwhile).
@test "kill -9 inside a concurrent index build, restarted at once: not recorded as applied before the index is valid" {
    faults_config '[phase pre]' 'dir = pre'
    big_table
    mig pre 001_idx.sql <<'EOF'
-- pgprelude: no-transaction
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS big_a_key ON big (a);
EOF
    holder 4
    start_bg -c "$CFG" migrate
    wait_until 20 cic_running
    kill9
    # at once, as a container restarted by its orchestrator
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT count(*), min(outcome) FROM pgprelude.history WHERE file = '001_idx.sql'"
    assert_output '1|applied'
    # what the history says is there
    run index_state big_a_key
    assert_output valid
    after_kill
}
