#!/usr/bin/env bats
# Safe DDL: no-transaction files (CREATE INDEX CONCURRENTLY), what a failed
# one leaves and how the next run handles it, lock_timeout retries naming the
# lock's holder, progress lines, the lock connection staying idle while a
# concurrent build waits, and TERM during a concurrent build.

load test_helper/common
load test_helper/pgprelude
load test_helper/locks

setup() {
    new_db
    setup_layout
    locks_setup
}

teardown() {
    if [[ -n "${NSPID:-}" ]]; then kill -KILL "$NSPID" 2>/dev/null || true; fi
    locks_teardown
}

# The config for these tests: one dir phase "pre", then extra lines.
notx_config() {
    {
        # shellcheck disable=SC2016 # ${DATABASE_URL} is for pgprelude to expand
        printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' 'lock_wait_timeout = 5s' \
            '[phase pre]' 'dir = pre'
        if (($#)); then printf '%s\n' "$@"; fi
    } >"$CFG"
}

@test "no-transaction: CREATE INDEX CONCURRENTLY runs, the file is recorded once, a re-run does nothing" {
    notx_config
    echo "CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;" | mig pre 001_t.sql
    mig pre 002_idx.sql <<'EOF'
-- pgprelude: no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_b_key ON t (b);
ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE USING INDEX t_b_key;
EOF
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'applied pre/002_idx.sql (no transaction, 3 statements'
    run sql "SELECT string_agg(indexrelid::regclass || ':' || indisvalid, ',' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 't'::regclass"
    assert_output 't_a:true,t_b_key:true'
    run sql "SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass"
    assert_output 't_b_key'
    run sql "SELECT count(*), min(outcome) FROM pgprelude.history WHERE file = '002_idx.sql'"
    assert_output '1|applied'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial '0 files applied, 2 up to date'
    # the same statement in a transactional file: PostgreSQL refuses, pgprelude says what to do
    echo "CREATE INDEX CONCURRENTLY t_ab ON t (a, b);" | mig pre 003_tx.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'pre/003_tx.sql:1:1: error: CREATE INDEX CONCURRENTLY cannot run inside a transaction block (25001)'
    assert_output --partial 'hint: A statement such as CREATE INDEX CONCURRENTLY cannot run in a transaction: put "-- pgprelude: no-transaction"'
}

@test "no-transaction: an error is reported at the file's line and column, not recorded as applied" {
    notx_config
    mig pre 001.sql <<'EOF'
-- pgprelude: no-transaction
CREATE TABLE IF NOT EXISTS t (a int);
INSERT INTO t VALUES (1); SELECT nosuch
  FROM t;
CREATE TABLE never (a int);
EOF
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'pre/001.sql:3:34: error: column "nosuch" does not exist (42703)'
    assert_output --partial 'its first 2 statements (before line 3) were committed and stay'
    run sql "SELECT (SELECT count(*) FROM t), to_regclass('never') IS NULL"
    assert_output '1|t'
    run sql "SELECT outcome FROM pgprelude.history WHERE file = '001.sql'"
    assert_output 'failed at line 3:34: column "nosuch" does not exist (42703)'
    run "$PGPRELUDE" -c "$CFG" status --json
    assert_success
    assert_output --partial '"file":"001.sql","path":"pre/001.sql","state":"failed"'
    assert_output --partial '"last_outcome":"failed at line 3:34: column \"nosuch\" does not exist (42703)"'
    run "$PGPRELUDE" -c "$CFG" status
    assert_output --regexp '001.sql +failed'
    # verify counts it as a difference
    run "$PGPRELUDE" -c "$CFG" verify
    assert_failure 8
    assert_output --partial 'pre/001.sql: error: not applied: its last run'
}

@test "no-transaction: a failed concurrent build is reported with its INVALID index, then repaired once the data is fixed" {
    notx_config
    echo "CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g % 10 FROM generate_series(1, 100) g;" | mig pre 001_t.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    # INVALID indexes that are none of the next file's: on its table, reported with the statement
    # to remove it; on another table, not blamed on that file
    sql "CREATE TABLE other (x int); INSERT INTO other VALUES (1), (1)"
    run sql "CREATE UNIQUE INDEX CONCURRENTLY other_x ON other (x)"
    assert_output --partial 'could not create unique index "other_x"'
    run sql "CREATE UNIQUE INDEX CONCURRENTLY t_stale ON t (b)"
    assert_output --partial 'could not create unique index "t_stale"'
    mig pre 002_idx.sql <<'EOF'
-- pgprelude: no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_b_key
    ON t (b);
EOF
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'pre/002_idx.sql:3:1: error: could not create unique index "t_b_key" (23505)'
    assert_output --partial 'detail: Key (b)='
    assert_output --partial 'pre/002_idx.sql: warning: INVALID index public.t_b_key on t is left behind'
    assert_output --partial "the file's next run drops it (DROP INDEX CONCURRENTLY) before the statement builds it again"
    assert_output --partial 'pre/002_idx.sql: warning: INVALID index public.t_stale on t is left behind'
    assert_output --partial 'hint: It is no index this file builds by name: remove it with DROP INDEX CONCURRENTLY public.t_stale;'
    refute_output --partial 'other_x'
    assert_output --partial 'hint: The next run reports this and runs the file again from its first statement'
    sql "DROP INDEX t_stale"
    run sql "SELECT outcome FROM pgprelude.history WHERE file = '002_idx.sql'"
    assert_output 'failed at line 3:1: could not create unique index "t_b_key" (23505)'

    # still dirty: reported, the INVALID index dropped, built again, failing again the same way
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'pre/002_idx.sql: warning: its last run ('
    assert_output --partial ') failed at line 3:1: could not create unique index "t_b_key" (23505)'
    assert_output --partial 'this run drops it (DROP INDEX CONCURRENTLY) before the statement builds it again'
    assert_output --partial 'pre/002_idx.sql:3:1: warning: dropping the INVALID index public.t_b_key'
    refute_output --partial 'other_x'
    run sql "SELECT count(*) FROM pg_class WHERE relname = 't_b_key'"
    assert_output 1

    # the data fixed: converges, one valid index, recorded as applied
    sql "UPDATE t SET b = a"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'applied pre/002_idx.sql (no transaction, 2 statements'
    run sql "SELECT string_agg(indexrelid::regclass || ':' || indisvalid, ',' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 't'::regclass"
    assert_output 't_a:true,t_b_key:true'
    run sql "SELECT outcome FROM pgprelude.history WHERE file = '002_idx.sql'"
    assert_output 'applied'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial '0 files applied, 2 up to date'
}

@test "no-transaction: the INVALID indexes reported are those on the tables the file's statements index, however named" {
    notx_config
    # an INVALID unique index on each table, out of band
    for t in a b c other; do
        sql "CREATE TABLE $t (x int); INSERT INTO $t VALUES (1), (1); CREATE INDEX ${t}_x ON $t (x)"
        run sql "CREATE UNIQUE INDEX CONCURRENTLY ${t}_bad ON $t (x)"
        assert_output --partial "could not create unique index \"${t}_bad\""
    done
    mig pre 001.sql <<'EOF'
-- pgprelude: no-transaction
CREATE INDEX CONCURRENTLY ON a (x);
REINDEX (VERBOSE) TABLE CONCURRENTLY public.b;
REINDEX INDEX CONCURRENTLY "c_x";
SELECT nosuch;
EOF
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'pre/001.sql:5:8: error: column "nosuch" does not exist (42703)'
    assert_line 'pre/001.sql: warning: INVALID index public.a_bad on a is left behind: CREATE UNIQUE INDEX a_bad ON public.a USING btree (x)'
    assert_line 'pre/001.sql: warning: INVALID index public.b_bad on b is left behind: CREATE UNIQUE INDEX b_bad ON public.b USING btree (x)'
    assert_line 'pre/001.sql: warning: INVALID index public.c_bad on c is left behind: CREATE UNIQUE INDEX c_bad ON public.c USING btree (x)'
    refute_output --partial 'other_bad'
    # the next run reports the same, before it runs the file again
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'pre/001.sql: warning: its last run ('
    assert_equal "$(grep -c 'warning: INVALID index public.[abc]_bad on' <<<"$output")" 6
    refute_output --partial 'other_bad'
}

@test "lock_timeout: retried with backoff while another session holds the lock, naming it" {
    notx_config 'lock_timeout = 200ms'
    echo "CREATE TABLE t (a int);" | mig pre 001_t.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    echo "ALTER TABLE t ADD COLUMN b int;" | mig pre 002_tx.sql
    hold 2.5 "LOCK TABLE t IN ACCESS EXCLUSIVE MODE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'pre/002_tx.sql:1:1: warning: lock_timeout (200 ms): canceling statement due to lock timeout; retrying the whole file in 1 s (retry 1 of 5)'
    assert_output --regexp 'detail: The lock was held by pid [0-9]+ \(user postgres, application "psql", active, transaction started [0-9-]+ [0-9:.]+ UTC, query started [0-9-]+ [0-9:.]+ UTC: SELECT pg_sleep\(2.5\)'
    assert_output --partial 'applied pre/002_tx.sql'
    # a no-transaction file: only the statement that hit the timeout runs again
    printf -- '-- pgprelude: no-transaction\nCREATE TABLE u (a int);\nALTER TABLE t ADD COLUMN c int;\n' | mig pre 003_notx.sql
    hold 2.5 "LOCK TABLE t IN ACCESS EXCLUSIVE MODE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'pre/003_notx.sql:3:1: warning: lock_timeout (200 ms): canceling statement due to lock timeout; retrying the statement in 1 s (retry 1 of 5)'
    run sql "SELECT count(*) FROM pg_class WHERE relname = 'u'"
    assert_output 1
    run sql "SELECT count(*) FROM pgprelude.history WHERE outcome = 'applied'"
    assert_output 3
}

@test "lock_timeout: gives up with exit 6 when the holder outlasts the retries" {
    notx_config 'lock_timeout = 200ms' 'lock_retries = 2'
    sql "CREATE TABLE t (a int)"
    echo "ALTER TABLE t ADD COLUMN b int;" | mig pre 001.sql
    hold 30 "LOCK TABLE t IN ACCESS SHARE MODE"
    SECONDS=0
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    [ "$SECONDS" -le 6 ]
    assert_output --partial 'retrying the whole file in 1 s (retry 1 of 2)'
    assert_output --partial 'retrying the whole file in 2 s (retry 2 of 2)'
    assert_output --partial 'pre/001.sql:1:1: error: canceling statement due to lock timeout (55P03)'
    assert_output --regexp 'detail: The lock was held by pid [0-9]+ \(user postgres, application "psql"'
    assert_output --partial 'hint: Gave up after 2 retries. Let that session finish (or end it with SELECT pg_terminate_backend(pid)), or raise lock_timeout or lock_retries in phase "pre".'
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 0
    # a bad lock_retries is a configuration error
    notx_config 'lock_retries = many'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'bad number "many" for lock_retries'
}

@test "progress: a long statement logs its elapsed time every 5 s" {
    notx_config
    printf 'CREATE TABLE t (a int);\nSELECT pg_sleep(5.6);\n' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    # a transactional file is sent whole: which statement runs is not known
    assert_output --partial 'pre/001.sql: info: still running after 5 s (waiting on Timeout: PgSleep)'
    # a no-transaction file's statements are sent one by one: the line is known
    printf -- '-- pgprelude: no-transaction\nSELECT 1;\n  SELECT pg_sleep(5.6);\n' | mig pre 002.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'pre/002.sql:3:3: info: still running after 5 s (waiting on Timeout: PgSleep)'
}

@test "progress and deadlock: the lock connection stays idle while a concurrent build waits for a writer, after a wait_for too" {
    notx_config
    printf '%s\n' '[phase tables]' 'wait_for = t' '[phase post]' 'dir = post' 'lock_timeout = 20s' >>"$CFG"
    sql "CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 1000)"
    printf -- '-- pgprelude: no-transaction\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n' | mig post 001_idx.sql
    # a writer's open transaction: the concurrent build must wait for it
    hold 6 "INSERT INTO t VALUES (0)"
    timeout 30 "$PGPRELUDE" -c "$CFG" migrate >"$W/log" 2>&1 3>&- &
    pid=$!
    BG+=("$pid")
    await_session "query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'"
    # pgprelude's other session (the lock holder) is idle: no transaction, no snapshot
    run sql "SELECT state, backend_xid IS NULL, backend_xmin IS NULL FROM pg_stat_activity
               WHERE application_name LIKE 'pgprelude%' AND query NOT LIKE 'CREATE INDEX%' AND pid <> pg_backend_pid()"
    assert_output --regexp '^idle\|t\|t$'
    # the migration lock on the idle session, the work lock on the building one
    run sql "SELECT string_agg(a.state, ',' ORDER BY a.state) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted"
    assert_output 'active,idle'

    status=0
    wait "$pid" || status=$?
    run cat "$W/log"
    [ "$status" -eq 0 ]
    assert_output --partial 'phase "tables": condition met'
    assert_output --regexp 'post/001_idx.sql:2:1: info: still running after 5 s: index t_a on t: waiting for writers before build, transactions 0 of 1, now pid [0-9]+ \(active, transaction started'
    assert_output --partial 'applied post/001_idx.sql (no transaction, 1 statement'
    run sql "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a'::regclass"
    assert_output t
}

@test "PID 1: TERM during CREATE INDEX CONCURRENTLY cancels it, exits 143, leaves no lock nor session; the next run repairs the INVALID index" {
    notx_config 'lock_timeout = 0'
    sql "CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 1000)"
    printf -- '-- pgprelude: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n' | mig pre 001_idx.sql
    hold 30 "INSERT INTO t VALUES (0)"
    env --default-signal unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- true >"$W/log" 2>&1 3>&- &
    BGPID=$!
    await_session "query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'"
    NSPID=$(pgrep -P "$BGPID" | head -n 1)
    SECONDS=0
    kill -TERM "$NSPID"
    NSSTATUS=0
    wait "$BGPID" || NSSTATUS=$?
    NSPID=
    [ "$NSSTATUS" -eq 143 ]
    [ "$SECONDS" -le 3 ]
    run cat "$W/log"
    assert_output --partial 'cancelling the running statement of pre/001_idx.sql'
    assert_output --partial 'pre/001_idx.sql:2:1: error: cancelled by signal 15 while running this statement'
    assert_output --partial 'stopped while applying pre/001_idx.sql (no transaction): what ran before the cancelled statement stays committed'
    assert_output --partial 'warning: INVALID index public.t_a on t is left behind'
    assert_no_pgprelude_session
    run sql "SELECT count(*) FROM pg_locks WHERE $ADVISORY"
    assert_output 0
    run sql "SELECT outcome FROM pgprelude.history WHERE file = '001_idx.sql'"
    assert_output 'failed at line 2:1: stopped by signal 15'
    run sql "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a'::regclass"
    assert_output f
    # the writer gone, the next run reports, drops the INVALID index and builds it (IF NOT EXISTS would skip it)
    kill "$HOLDER"
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'" >/dev/null
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'failed at line 2:1: stopped by signal 15'
    assert_output --partial 'pre/001_idx.sql:2:1: warning: dropping the INVALID index public.t_a'
    assert_output --partial 'applied pre/001_idx.sql (no transaction'
    run sql "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a'::regclass"
    assert_output t
}
