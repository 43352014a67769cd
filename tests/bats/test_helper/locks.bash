# Helpers for tests in which another session holds a lock that pgprelude's
# statements wait for (45_safe_ddl.bats, 50_constraints.bats). Load after
# common; call locks_setup from setup() and locks_teardown from teardown().
#
#   hold SECS STMT...       in the background, run the statements in one
#                           transaction, then keep it open for SECS while it
#                           runs SELECT pg_sleep(SECS) (active, with a
#                           snapshot); returns once it holds its locks
#   hold_idle SECS STMT...  the same, but the transaction stays idle for SECS
#                           (no snapshot: a concurrent index build waits for
#                           it only if its locks conflict with writes)
# Both set HOLDER (the background psql's pid). locks_teardown ends every
# holder and every other session of this test's database.
#
#   term_migrate COND       run migrate in the background (output in $W/log),
#                           TERM it once a session matches COND
#                           (await_session), and check that it exits 143
#                           within 3 s

locks_setup() {
    BG=()
}

locks_teardown() {
    local p
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null || true
}

# holding SQL-LIKE STATE: wait (at most 5 s) for a session whose query is
# like SQL-LIKE to be in STATE.
holding() {
    local pattern=${1//\'/\'\'}
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '$pattern' AND state = '$2'" && return 0
    echo "hold: the holder did not start" >&2
    return 1
}

hold() {
    local secs=$1
    shift
    local stmts=("$@")
    {
        echo "BEGIN;"
        printf '%s;\n' "${stmts[@]}"
        echo "SELECT pg_sleep($secs);"
        echo "COMMIT;"
    } | "$PSQL" -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 3>&- &
    BG+=("$!")
    # shellcheck disable=SC2034 # for the tests
    HOLDER=$!
    holding "SELECT pg_sleep($secs)%" active
}

hold_idle() {
    local secs=$1
    shift
    local stmts=("$@")
    {
        echo "BEGIN;"
        printf '%s;\n' "${stmts[@]}"
        echo "SELECT 'held idle for $secs s';"
        sleep "$secs"
        echo "COMMIT;"
    } 3>&- | "$PSQL" -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 3>&- &
    BG+=("$!")
    # shellcheck disable=SC2034 # for the tests
    HOLDER=$!
    holding "SELECT 'held idle for $secs s'%" 'idle in transaction'
}

term_migrate() {
    local pid code=0
    "$PGPRELUDE" -c "$CFG" migrate >"$W/log" 2>&1 3>&- &
    pid=$!
    BG+=("$pid")
    await_session "$1"
    SECONDS=0
    kill -TERM "$pid"
    wait "$pid" || code=$?
    [ "$code" -eq 143 ]
    [ "$SECONDS" -le 3 ]
}
