#!/usr/bin/env bats
# pgprelude as PID 1: supervision, signal forwarding, zombie reaping, exit
# statuses, signals before the hand-over, privilege drop. Each test starts a
# real PID namespace (unshare --pid --fork --mount-proc) and sends real
# signals; where it shows the behaviour is the same, Debian's tini runs the
# same check.

load test_helper/common
load test_helper/pgprelude
load test_helper/init

setup() {
    init_test_setup
}

teardown() {
    if [[ -n "${NSPID:-}" ]]; then kill -KILL "$NSPID" 2>/dev/null || true; fi
    rm -rf "$OUT"
}

# start_ns CMD...: run CMD as PID 1 of a new PID namespace, in the background.
# Sets BGPID (the unshare process) and NSPID (PID 1 of the namespace, as the
# host sees it), and waits until the application wrote $OUT/ready.
# A background job of a script starts with INT and QUIT ignored; the init
# under test starts with every signal at its default, as in a container.
# seen_count N: the app has noted N signals in $OUT/seen.
seen_count() {
    [ "$(wc -l <"$OUT/seen" 2>/dev/null)" = "$1" ]
}

# ns_ready: the namespace's PID 1 is there (NSPID) and the app said it is ready.
ns_ready() {
    NSPID=$(pgrep -P "$BGPID" | head -n 1)
    [[ -n "$NSPID" && -e "$OUT/ready" ]]
}

start_ns() {
    env --default-signal unshare --pid --fork --mount-proc "$@" >"$OUT/log" 2>&1 3>&- &
    BGPID=$!
    if wait_until 10 ns_ready; then return 0; fi
    cat "$OUT/log" >&2
    return 1
}

# stop_ns: collect the namespace's exit status into NSSTATUS.
wait_ns() {
    NSSTATUS=0
    wait "$BGPID" || NSSTATUS=$?
    NSPID=
}

@test "PID 1: supervises by default, the app is a child in its own process group" {
    start_ns "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "pid=$$ pgid=$(ps -o pgid= -p $$ | tr -d " ")" >'"$OUT"'/ids; touch '"$OUT"'/ready; sleep 30'
    run cat "$OUT/ids"
    # pgprelude is PID 1; the app is its child and leads its own group
    assert_output --regexp '^pid=([0-9]+) pgid=\1$'
    refute_output 'pid=1 pgid=1'
    [[ "$(ps -o comm= -p "$NSPID")" == pgprelude ]]
    kill -TERM "$NSPID"
    wait_ns
    [ "$NSSTATUS" -eq 143 ]
    grep -q 'handing over to "sh" (supervised)' "$OUT/log"
}

@test "PID 1: mode = exec replaces pgprelude with the app, even as PID 1" {
    printf '%s\n' '[exec]' 'mode = exec' >>"$CFG"
    run unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "app pid $$"'
    assert_success
    assert_line 'app pid 1'
}

@test "not PID 1: mode = auto execs, mode = supervise keeps a child and its status" {
    run "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "parent $PPID"; exit 3'
    assert_failure 3
    refute_output --partial '(supervised)'
    printf '%s\n' '[exec]' 'mode = supervise' >>"$CFG"
    run bash -c 'echo "me $$"; exec "$@"' _ "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "parent $PPID"; exit 4'
    assert_failure 4
    me=$(sed -n 's/^me //p' <<<"$output")
    parent=$(sed -n 's/^parent //p' <<<"$output")
    # the app's parent is pgprelude (which kept the shell's pid), not the shell's parent
    [ "$parent" = "$me" ]
    assert_output --partial '(supervised)'
}

@test "PID 1: every catchable signal reaches the app (same as tini)" {
    app='for s in HUP INT QUIT USR1 USR2 WINCH TERM CONT ALRM; do trap "echo $s >>'"$OUT"'/seen" $s; done; touch '"$OUT"'/ready; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); [ -e '"$OUT"'/done ] && exit 0; done'
    for init in pgprelude tini; do
        rm -f "$OUT/seen" "$OUT/ready" "$OUT/done"
        if [[ $init == pgprelude ]]; then
            start_ns "$PGPRELUDE" -c "$CFG" -- sh -c "$app"
        else
            start_ns tini -s -- sh -c "$app"
        fi
        for s in HUP INT QUIT USR1 USR2 WINCH TERM CONT ALRM; do
            kill -"$s" "$NSPID"
            wait_until 3 file_has "$OUT/seen" "^$s\$"
        done
        touch "$OUT/done"
        wait_ns
        run cat "$OUT/seen"
        assert_output "$(printf '%s\n' HUP INT QUIT USR1 USR2 WINCH TERM CONT ALRM)"
        [ "$NSSTATUS" -eq 0 ]
    done
}

@test "PID 1: the app can trap INT and QUIT even when pgprelude inherited them ignored (tini cannot)" {
    app='trap "echo INT >>'"$OUT"'/seen" INT; trap "echo QUIT >>'"$OUT"'/seen" QUIT; touch '"$OUT"'/ready; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); [ -e '"$OUT"'/done ] && exit 0; done'
    # no env --default-signal: started as a background job, with INT and QUIT ignored
    unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c "$app" >"$OUT/log" 2>&1 3>&- &
    BGPID=$!
    wait_until 10 ns_ready
    grep -q '^SigIgn:.*6$' "/proc/$NSPID/status"
    kill -INT "$NSPID"
    kill -QUIT "$NSPID"
    wait_until 3 seen_count 2 || true
    touch "$OUT/done"
    wait_ns
    run cat "$OUT/seen"
    assert_output "$(printf '%s\n' INT QUIT)"
}

@test "PID 1: orphaned grandchildren are reaped, no zombie is left (same as tini)" {
    # the app double-forks short-lived orphans, which are re-parented to PID 1
    app='for i in 1 2 3 4 5; do (sleep 0.2 & ) ; done; touch '"$OUT"'/ready; sleep 30'
    for init in pgprelude tini; do
        rm -f "$OUT/ready"
        if [[ $init == pgprelude ]]; then
            start_ns "$PGPRELUDE" -c "$CFG" -- sh -c "$app"
        else
            start_ns tini -s -- sh -c "$app"
        fi
        sleep 1
        # the orphans were children of PID 1 and are gone, not zombies
        run ps -o stat=,comm= --ppid "$NSPID"
        refute_output --partial 'Z'
        refute_output --partial 'defunct'
        assert_output --regexp '^S.* sh$'
        kill -TERM "$NSPID"
        wait_ns
        [ "$NSSTATUS" -eq 143 ]
    done
}

@test "PID 1: exit statuses 0..255 and 128+N pass through (same as tini)" {
    for code in 0 1 2 42 126 127 128 200 255; do
        run -"$code" unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c "exit $code"
        run -"$code" unshare --pid --fork --mount-proc tini -s -- sh -c "exit $code"
    done
    # the app killed by a signal: 128 + N
    run unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c 'kill -KILL $$'
    [ "$status" -eq 137 ]
    run unshare --pid --fork --mount-proc tini -s -- sh -c 'kill -KILL $$'
    [ "$status" -eq 137 ]
    run unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c 'kill -USR1 $$'
    [ "$status" -eq 138 ]
}

@test "PID 1: TERM during a long SQL statement cancels it, rolls back, releases the lock, exits 143" {
    echo "CREATE TABLE half (a int); SELECT pg_sleep(60);" | mig pre 002_slow.sql
    unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- true >"$OUT/log" 2>&1 3>&- &
    BGPID=$!
    await_session "query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
    NSPID=$(pgrep -P "$BGPID" | head -n 1)
    SECONDS=0
    kill -TERM "$NSPID"
    wait_ns
    [ "$NSSTATUS" -eq 143 ]
    [ "$SECONDS" -le 3 ]
    grep -q 'cancelling the running statement of pre/002_slow.sql' "$OUT/log"
    grep -q 'stopped while applying pre/002_slow.sql; its transaction was rolled back' "$OUT/log"
    grep -q 'stopped by signal 15' "$OUT/log"
    # nothing half-done: no table, no history row, no session, no lock
    run sql "SELECT to_regclass('half') IS NULL, (SELECT count(*) FROM pgprelude.history WHERE file = '002_slow.sql')"
    assert_output 't|0'
    assert_no_pgprelude_session
    run sql "SELECT count(*) FROM pg_locks WHERE $ADVISORY"
    assert_output 0
}

# The statement must end on the server, not only pgprelude: a backend left
# running it would hold its locks (and its transaction) until it finished.
@test "TERM during a long SQL statement cancels it on the server: no backend still runs it after the exit" {
    echo "SELECT pg_sleep(60);" | mig pre 002_slow.sql
    running_sql="SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                 AND state = 'active' AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
    "$PGPRELUDE" -c "$CFG" migrate >"$OUT/log" 2>&1 3>&- &
    pid=$!
    await_session "datname = current_database() AND state = 'active' AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    running=$(sql "$running_sql")
    # whatever the outcome, no sleeping backend outlives the test
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
    [ "$status" -eq 143 ]
    [ "$running" -eq 0 ]
    grep -q 'cancelling the running statement of pre/002_slow.sql' "$OUT/log"
}

@test "TERM during a run step is passed on to its process group and ends the start-up" {
    printf '%s\n' '[phase schema]' "run = sh -c 'trap \"echo schema got TERM; exit 0\" TERM; touch $OUT/ready; while :; do sleep 0.1; done'" >>"$CFG"
    "$PGPRELUDE" -c "$CFG" -- echo never >"$OUT/log" 2>&1 3>&- &
    pid=$!
    wait_until 10 test -e "$OUT/ready"
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 143 ]
    grep -q '\[schema\] schema got TERM' "$OUT/log"
    ! grep -q never "$OUT/log"
}

@test "INT while waiting for the lock stops promptly with 130" {
    "$PSQL" -X -q -c "SELECT pg_advisory_lock(1885827186, hashtext('public.pgprelude_history'))" \
        -c "SELECT pg_sleep(10)" >/dev/null 3>&- &
    holder=$!
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_locks WHERE $ADVISORY AND granted"
    "$PGPRELUDE" -c "$CFG" migrate >"$OUT/log" 2>&1 3>&- &
    pid=$!
    sleep 0.5
    SECONDS=0
    kill -INT "$pid"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 130 ]
    [ "$SECONDS" -le 1 ]
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
}

@test "privilege drop: the app runs as [exec] user, in exec and supervise mode" {
    printf '%s\n' '[exec]' 'user = nobody' >>"$CFG"
    run "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "$(id -u):$(id -g) $(id -G) home=$HOME"'
    assert_success
    nobody_gid=$(id -g nobody)
    assert_line "65534:$nobody_gid $(id -G nobody) home=$(getent passwd nobody | cut -d: -f6)"
    run unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c 'id -u; echo "pid $$"'
    assert_success
    assert_line 65534
    refute_line 'pid 1'
    # user before command in [exec], as people write it
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' '[exec]' 'user = nobody' 'mode = supervise' \
        "command = sh -c 'id -u'" >"$W/order.ini"
    run "$PGPRELUDE" -c "$W/order.ini"
    assert_success
    assert_line 65534
    # UID:GID with numbers that are in no file
    sed -i 's/^user = .*/user = 4321:1234/' "$CFG"
    run "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "$(id -u):$(id -g):$(id -G)"'
    assert_success
    assert_line '4321:1234:1234'
}

@test "privilege drop: an unknown user stops the start-up before anything runs" {
    printf '%s\n' '[exec]' 'user = no-such-user' >>"$CFG"
    run "$PGPRELUDE" -c "$CFG" -- true
    assert_failure 2
    assert_output --partial 'unknown user "no-such-user" in [exec] user: not in /etc/passwd'
    run sql "SELECT to_regclass('pgprelude.history') IS NULL"
    assert_output t
}

@test "privilege drop: refused when pgprelude cannot switch users" {
    # a config that uid 65534 can read, asking for root
    cp -r "$W/pre" "$OUT/pre"
    cp "$CFG" "$OUT/cfg.ini"
    printf '%s\n' '[exec]' 'user = 0' >>"$OUT/cfg.ini"
    chmod -R a+rX "$OUT"
    # not root any more: switching to root must fail, and nothing is started
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$PGPRELUDE" -c "$OUT/cfg.ini" -- echo started
    assert_failure 126
    assert_output --partial 'could not switch to user "0"'
    refute_output --partial started
}

@test "hand-over: the application inherits no descriptor of pgprelude's, in exec and supervise mode" {
    echo "SELECT 1;" | mig pre 002.sql
    printf '%s\n' '[phase schema]' 'run = true' >>"$CFG"
    # the app lists its open descriptors; the same command run directly is the
    # baseline (what the test runner itself passes down)
    list='ls /proc/self/fd | tr "\n" " "'
    baseline=$(sh -c "$list" 3>&- 4>&- 5>&-)
    run "$PGPRELUDE" -c "$CFG" -- sh -c "$list" 3>&- 4>&- 5>&-
    assert_success
    assert_line "$baseline"
    printf '%s\n' '[exec]' 'mode = supervise' >>"$CFG"
    run "$PGPRELUDE" -c "$CFG" -- sh -c "$list" 3>&- 4>&- 5>&-
    assert_success
    assert_line "$baseline"
}
