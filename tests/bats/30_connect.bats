#!/usr/bin/env bats
# Waiting for the database, the migration lock, secrets, and the small commands.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
    WAITER=
}

teardown() {
    if [[ -n "$WAITER" ]]; then kill -9 "$WAITER" 2>/dev/null || true; fi
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name IN ('lock-holder', 'history-locker')" >/dev/null
}

# config URL [LINES...]: a [database] section with the given url (and short
# timeouts unless the lines set them), then the lines
config() {
    local url=$1
    shift
    {
        printf '%s\n' '[database]' "url = $url"
        [[ " $* " == *" wait_timeout = "* ]] || echo 'wait_timeout = 3s'
        [[ " $* " == *" lock_wait_timeout = "* ]] || echo 'lock_wait_timeout = 2s'
        if (($#)); then printf '%s\n' "$@"; fi
    } >"$CFG"
}


@test "wait: a database that never comes up gives up after wait_timeout with exit 3, saying why" {
    port=$(closed_port)
    config "postgresql://postgres@127.0.0.1:$port/x" 'wait_timeout = 2s'
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 3
    assert_output --partial "waiting for database 127.0.0.1:$port/x as postgres: connection refused"
    assert_output --partial "still not reachable after 2 s: connection refused"
}

@test "wait: a server that starts late is waited for" {
    port=$(closed_port)
    config "postgresql://postgres:${PGPASSWORD}@127.0.0.1:$port/$PGDATABASE" 'wait_timeout = 60s'
    # the server appears on that port 2 s after pgprelude starts waiting: a
    # loopback forwarder to the suite's server starts listening then
    ( sleep 2; exec socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$PGPORT" ) 3>&- &
    forwarder=$!
    run "$PGPRELUDE" -c "$CFG" wait
    kill "$forwarder" 2>/dev/null || true
    wait "$forwarder" 2>/dev/null || true
    assert_success
    assert_output --partial 'connection refused'
    assert_output --regexp "database 127.0.0.1:$port/$PGDATABASE as postgres is ready \([0-9]+ ms, [0-9]+ attempts\)"
}

@test "auth: a wrong password fails at once with exit 4 and is not retried" {
    config "postgresql://postgres:wrong-pw-123@127.0.0.1:$PGPORT/$PGDATABASE" 'wait_timeout = 30s'
    SECONDS=0
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 4
    [ "$SECONDS" -lt 10 ]
    assert_output --partial 'password authentication failed'
    refute_output --partial 'waiting for database'
    refute_output --partial 'wrong-pw-123'
}

@test "auth: a missing database and an unknown role fail at once with exit 4" {
    config "postgresql://postgres:${PGPASSWORD}@127.0.0.1:$PGPORT/no_such_db" 'wait_timeout = 30s'
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 4
    assert_output --partial 'the database does not exist'
    refute_output --partial 'waiting for database'
    config "postgresql://nobody:x@127.0.0.1:$PGPORT/$PGDATABASE" 'wait_timeout = 30s'
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 4
    refute_output --partial 'waiting for database'
}

@test "connection: libpq's PG* variables when url is empty, and PGPASSWORD_FILE" {
    config ''
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    printf '%s\n' '[phase pre]' 'dir = pre' >>"$CFG"
    printf '%s\n' "$PGPASSWORD" >"$W/pw"
    run env -u PGPASSWORD -u DATABASE_URL PGPASSWORD_FILE="$W/pw" PGPASSFILE=/dev/null "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial "database 127.0.0.1:$PGPORT/$PGDATABASE as postgres is ready"
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 1
    # over the unix socket too
    run env PGHOST="$PGPRELUDE_TEST_SOCKDIR" "$PGPRELUDE" -c "$CFG" wait
    assert_success
    assert_output --partial "$PGPRELUDE_TEST_SOCKDIR/.s.PGSQL.$PGPORT/$PGDATABASE as postgres is ready"
}

@test "secrets: no password appears in any output, even on failure" {
    secret='S3cret-Pa55-word'
    sql "CREATE ROLE app LOGIN PASSWORD '$secret'; GRANT ALL ON SCHEMA public TO app;
         GRANT CREATE ON DATABASE \"$PGDATABASE\" TO app" -d "$PGDATABASE"
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    echo "SELECT nope;" | mig post 001.sql
    printf '%s\n' "$secret" >"$W/secret"
    config "postgresql://app:\${APP_PW}@127.0.0.1:$PGPORT/$PGDATABASE" '[phase pre]' 'dir = pre' '[phase post]' 'dir = post'
    # the password comes from APP_PW_FILE (a Docker secret)
    run env APP_PW_FILE="$W/secret" "$PGPRELUDE" -v -c "$CFG" --log-format json -- true
    assert_failure 6
    assert_output --partial 'column \"nope\" does not exist'
    refute_output --partial "$secret"
    run env APP_PW_FILE="$W/secret" "$PGPRELUDE" -v -c "$CFG" status --json
    refute_output --partial "$secret"
    # a wrong one is not echoed either
    printf 'Wr0ng-%s\n' "$secret" >"$W/secret"
    run env APP_PW_FILE="$W/secret" "$PGPRELUDE" -v -c "$CFG" migrate
    assert_failure 4
    refute_output --partial "$secret"
}

@test "lock: a second pgprelude waits for the holder, names it, and gives up with exit 5" {
    config "\${DATABASE_URL}" '[phase pre]' 'dir = pre'
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    # hold the migration lock from another session for a while
    "$PSQL" -X -q -c "SET application_name = 'lock-holder'" \
        -c "SELECT pg_advisory_lock(1885827186, hashtext('public.pgprelude_history'))" \
        -c "SELECT pg_sleep(6)" >/dev/null 3>&- &
    holder=$!
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_locks WHERE $ADVISORY AND granted"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 5
    assert_output --partial 'application "lock-holder"'
    assert_output --partial 'gave up waiting for the migration lock after 2 s'
    run sql "SELECT to_regclass('a') IS NULL"
    assert_output t
    # once the holder is gone, the same run goes through
    wait "$holder"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
}

# hold_lock: another session holds the migration lock until it is ended; HOLDER is its psql.
hold_lock() {
    "$PSQL" -X -q -c "SET application_name = 'lock-holder'" \
        -c "SELECT pg_advisory_lock(1885827186, hashtext('public.pgprelude_history'))" \
        -c "SELECT pg_sleep(120)" >/dev/null 2>&1 3>&- &
    HOLDER=$!
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_locks WHERE $ADVISORY AND granted"
}

end_holder() {
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lock-holder'" >/dev/null
    wait "$HOLDER" || true
}

# waiting_in_server [EVENT]: a pgprelude session of this database waits in the server for a
# lock: an advisory one, or of the EVENT kind (relation, ...).
waiting_in_server() {
    sql_is 1 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                AND application_name LIKE 'pgprelude%' AND wait_event_type = 'Lock'
                AND wait_event = '${1:-advisory}'"
}

# exited PID: the process has ended (a zombie not yet waited for counts).
exited() {
    local stat
    stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
    [[ "$stat" == Z* ]]
}

# start_waiter: with the migration lock held (hold_lock), a migrate in the background (output in
# $W/out.log, WAITER its pid) that is waiting for it in the server.
start_waiter() {
    hold_lock
    "$PGPRELUDE" -c "$CFG" migrate >"$W/out.log" 2>&1 3>&- &
    WAITER=$!
    wait_until 10 waiting_in_server
}

@test "lock: a waiter waits in the server and takes the lock once the holder lets go, then applies" {
    config "\${DATABASE_URL}" 'lock_wait_timeout = 60s' '[phase pre]' 'dir = pre'
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    # blocked on the lock itself, not asking for it again and again
    start_waiter
    end_holder
    status=0
    wait "$WAITER" || status=$?
    cat "$W/out.log"
    [ "$status" -eq 0 ]
    grep -q 'waiting for the migration lock (0 s): held by pid [0-9]*, user postgres, application "lock-holder"' "$W/out.log"
    grep -q 'applied pre/001.sql' "$W/out.log"
    run sql "SELECT count(*) FROM pgprelude.history WHERE file = '001.sql'"
    assert_output 1
    run sql "SELECT count(*) FROM pg_locks WHERE $ADVISORY"
    assert_output 0
}

@test "lock: a TERM while waiting for the lock in the server ends the run with 128+15 and its session" {
    config "\${DATABASE_URL}" 'lock_wait_timeout = 60s' '[phase pre]' 'dir = pre'
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    start_waiter
    kill -TERM "$WAITER"
    status=0
    wait "$WAITER" || status=$?
    cat "$W/out.log"
    [ "$status" -eq 143 ]
    grep -q 'stopped by signal 15 (Terminated) before the hand-over' "$W/out.log"
    assert_no_pgprelude_session
    # the holder was not disturbed, and nothing ran
    run sql "SELECT count(*) FROM pg_locks WHERE $ADVISORY AND granted"
    assert_output 1
    run sql "SELECT to_regclass('a') IS NULL"
    assert_output t
    end_holder
}

@test "lock: a TERM while a waiter reads the history again, after the holder let go, ends the run" {
    config "\${DATABASE_URL}" 'lock_wait_timeout = 60s' '[phase pre]' 'dir = pre'
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    echo "CREATE TABLE b (x int);" | mig pre 002.sql
    start_waiter
    # the history is locked, then the holder lets go: the waiter's new read of it waits
    "$PSQL" -X -q -c "SET application_name = 'history-locker'" -c "BEGIN" \
        -c "LOCK TABLE pgprelude.history IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(120)" \
        >/dev/null 2>&1 3>&- &
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'history-locker'
                             AND query LIKE 'SELECT pg_sleep%'"
    end_holder
    wait_until 10 waiting_in_server relation
    kill -TERM "$WAITER"
    # it stops there, rather than taking the lock and going on once the history is free
    wait_until 10 exited "$WAITER"
    status=0
    wait "$WAITER" || status=$?
    cat "$W/out.log"
    [ "$status" -eq 143 ]
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'history-locker'" >/dev/null
    run sql "SELECT to_regclass('b') IS NULL"
    assert_output t
}

@test "lock: replicas started together apply every file exactly once" {
    config "\${DATABASE_URL}" 'lock_wait_timeout = 60s' '[phase pre]' 'dir = pre'
    echo "CREATE TABLE runs (n int); INSERT INTO runs VALUES (1); SELECT pg_sleep(0.5);" | mig pre 001.sql
    echo "INSERT INTO runs VALUES (2);" | mig pre 002.sql
    pids=()
    for i in 1 2 3 4; do
        "$PGPRELUDE" -c "$CFG" -- sh -c "echo replica $i started" >"$W/out.$i" 2>&1 3>&- &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    run sql "SELECT string_agg(n::text, ',' ORDER BY n) FROM runs"
    assert_output "1,2"
    for i in 1 2 3 4; do grep -q "replica $i started" "$W/out.$i"; done
    run sql "SELECT count(*) FROM pg_locks WHERE $ADVISORY"
    assert_output 0
}

@test "the lock is gone when pgprelude is killed" {
    config "\${DATABASE_URL}" '[phase schema]' 'run = sleep 30'
    "$PGPRELUDE" -c "$CFG" migrate 3>&- 2>/dev/null &
    pid=$!
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_locks WHERE $ADVISORY AND granted"
    kill -9 "$pid"
    wait "$pid" || true
    pkill -f -x 'sleep 30' || true
    wait_until 5 sql_is 0 "SELECT count(*) FROM pg_locks WHERE $ADVISORY" || true
    run sql "SELECT count(*) FROM pg_locks WHERE $ADVISORY"
    assert_output 0
}

@test "a connection lost in the middle of the run exits 10" {
    config "\${DATABASE_URL}" '[phase pre]' 'dir = pre'
    echo "SELECT pg_terminate_backend(pg_backend_pid());" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 10
    assert_output --partial 'pre/001.sql'
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 0
}

@test "status: table and JSON, read-only" {
    config "\${DATABASE_URL}" '[phase pre]' 'dir = pre' '[phase schema]' 'run = true'
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" status
    assert_success
    assert_output --regexp 'pre +dir +001.sql +pending'
    assert_output --regexp 'schema +run'
    run sql "SELECT to_regclass('pgprelude.history') IS NULL"
    assert_output t
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    echo "CREATE TABLE b (x int);" | mig pre 002.sql
    run --separate-stderr "$PGPRELUDE" -c "$CFG" status --json
    assert_success
    # one JSON document on stdout
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); f=d["phases"][0]["files"]; assert [x["state"] for x in f]==["applied","pending"], f; assert d["phases"][1]["kind"]=="run"' "$output"
}

@test "log_format = json: every line is one JSON object" {
    config "\${DATABASE_URL}" '[phase pre]' 'dir = pre'
    sed -i '1i log_format = json' "$CFG"
    echo 'DO $$ BEGIN RAISE NOTICE $x$a "quoted"\ note$x$; END $$;' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    [ "${#lines[@]}" -ge 3 ]
    for l in "${lines[@]}"; do
        python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["level"] and d["msg"] and d["ts"]' "$l"
    done
    assert_output --partial '"msg":"NOTICE: a \"quoted\"\\ note","file":"pre/001.sql"'
}

@test "--help, --version, and usage errors" {
    run "$PGPRELUDE" --help
    assert_success
    assert_output --partial 'Exit codes:'
    run "$PGPRELUDE" --version
    assert_success
    assert_output --regexp '^pgprelude [0-9]+\.[0-9]+\.[0-9]+$'
    run "$PGPRELUDE" --bogus
    assert_failure 2
    assert_output --partial 'unknown option "--bogus"'
    run "$PGPRELUDE" -c "$W/missing.ini" migrate
    assert_failure 2
    assert_output --partial "could not open configuration file \"$W/missing.ini\""
    run "$PGPRELUDE" -c "$CFG" migrate extra
    assert_failure 2
    config "\${DATABASE_URL}"
    run "$PGPRELUDE" -c "$CFG" migrate --json
    assert_failure 2
    config "postgresql://host:notaport:x/db"
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 2
    assert_output --partial 'invalid integer value "notaport:x" for connection option "port"'
    # PGPRELUDE_CONFIG names the file when -c is not given
    config "\${DATABASE_URL}"
    PGPRELUDE_CONFIG=$CFG run "$PGPRELUDE" wait
    assert_success
}

@test "a TERM while waiting for the database ends the run with 128+15" {
    port=$(closed_port)
    config "postgresql://postgres@127.0.0.1:$port/x" 'wait_timeout = 60s'
    "$PGPRELUDE" -c "$CFG" wait 2>"$W/log" 3>&- &
    pid=$!
    # TERM once it is waiting (blocked signals are queued before that anyway)
    wait_until 5 file_has "$W/log" 'waiting for database'
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 143 ]
    # pgprelude's own stop, not the default action of TERM (which also gives 143)
    run cat "$W/log"
    assert_output --partial 'stopped by signal 15 (Terminated) before the hand-over'
}

@test "an out-of-memory failure exits 11" {
    config "\${DATABASE_URL}" '[phase pre]' 'dir = pre'
    # a 64 MiB migration under a 48 MiB address-space limit
    head -c $((64 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$W/pre/001.sql"
    echo "SELECT 1;" >>"$W/pre/001.sql"
    run memory_limited 49152 "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 11
    assert_output --partial 'out of memory'
}

@test "a url libpq cannot parse is a usage error naming the problem" {
    config "host=localhost port"
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 2
    assert_output --partial 'invalid database url in [database] url: missing "=" after "port"'
}
