# Helpers for the fault tests (90_faults.bats, 91_faults_notx.bats): killed
# runs, their orphaned sessions, a PostgreSQL of the test's own to stop and
# restart. Load after common and pgprelude; call faults_setup from setup()
# and faults_teardown from teardown().
#
#   faults_config [LINES...]    [database] on this test's database (60 s lock
#                               wait), then the lines
#   (wait_until SECS CMD... comes from common.bash)
#   active PATTERN              another session runs a statement like PATTERN
#   lock_held / no_lock         the migration lock is held / no advisory lock
#   no_sessions                 pgprelude has no session left in the database
#   gone PID                    the process is gone (or a zombie)
#   start_bg ARGS... / kill9    pgprelude in the background ($PID, $W/bg.log);
#                               SIGKILL it and reap it
#   after_kill                  the killed run's sessions end; no lock is left
#   applied_once TABLE KEYS...  column k of TABLE holds each key exactly once
#   consistent TABLE FILES...   history row for FILE.sql <=> row k = FILE
#   start_own_cluster, own_sql, own_stop, own_start, own_active
#                               a cluster of the test's own ($OWN_URL)
#   track PID                   SIGKILL PID at the end of the test if it is
#                               still running (and still the same process)

# starttime PID: when the process started (clock ticks since boot), which with
# its pid names it uniquely; fails when there is no such process.
starttime() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }
    # shellcheck disable=SC2086 # split the fields
    set -- $s
    echo "${20}"
}

# track PID: SIGKILL it in faults_teardown if it is still that process.
track() {
    local t
    if t=$(starttime "$1"); then TRACKED+=("$1:$t"); fi
}

faults_setup() {
    new_db
    setup_layout
    TRACKED=()
    OWN=
}

faults_teardown() {
    local e
    for e in "${TRACKED[@]}"; do
        if [[ "$(starttime "${e%%:*}")" == "${e#*:}" ]]; then kill -KILL "${e%%:*}" 2>/dev/null || true; fi
    done
    if [[ -n "$OWN" ]]; then
        "$REPO/tests/tools/pgcluster.sh" stop "$OWN/pg" >/dev/null 2>&1 3>&- || true
        rm -rf "$OWN"
    fi
    # sessions a killed run left behind in this test's database
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null 2>&1 || true
}

# faults_config [LINES...]: [database] on this test's database, long lock wait.
faults_config() {
    {
        printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 10s' 'lock_wait_timeout = 60s'
        if (($#)); then printf '%s\n' "$@"; fi
    } >"$CFG"
}

# count_of QUERY: the single number QUERY returns in this test's database.
count_of() { sql "$1"; }

# active PATTERN: a session other than ours runs a statement containing PATTERN.
active() {
    [[ "$(count_of "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%$1%'")" -ge 1 ]]
}

# lock_held: the migration lock (advisory, first key "pgpr" = 1885827186) is
# granted on this database.
lock_held() {
    [[ "$(count_of "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                     AND classid = 1885827186
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")" == 1 ]]
}

# no_lock: no advisory lock at all on this database, granted or awaited.
no_lock() {
    [[ "$(count_of "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")" == 0 ]]
}

# no_sessions: pgprelude has no session left in this database (the server
# noticed that a killed client is gone, and its statements are over).
no_sessions() {
    [[ "$(count_of "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND application_name LIKE 'pgprelude%'")" == 0 ]]
}

# gone PID: no such process (a zombie counts as gone).
gone() {
    local stat
    stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
    [[ "$stat" == Z* ]]
}

# start_bg ARGS...: pgprelude ARGS in the background, output in $W/bg.log; sets PID.
start_bg() {
    "$PGPRELUDE" "$@" >"$W/bg.log" 2>&1 3>&- &
    PID=$!
    track "$PID"
}

# kill9: SIGKILL for $PID, and reap it.
kill9() {
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null || true
}

# after_kill: the killed run's sessions end (bounded) and leave no lock.
after_kill() {
    wait_until 20 no_sessions
    no_lock
}

# applied_once TABLE KEYS...: every key is in TABLE's column k exactly once,
# and nothing else is.
applied_once() {
    local table=$1
    shift
    run sql "SELECT string_agg(k || ':' || n, ',' ORDER BY k) FROM (SELECT k, count(*) AS n FROM $table GROUP BY k) s"
    assert_output "$(printf '%s:1,' "$@" | sed 's/,$//')"
}

# consistent TABLE FILES...: for every file, a history row exists exactly when
# its effect (the row k = file name in TABLE) does, and no effect is doubled.
consistent() {
    local table=$1 f rows hist
    shift
    for f in "$@"; do
        rows=0
        hist=0
        if [[ "$(count_of "SELECT to_regclass('$table') IS NOT NULL")" == t ]]; then
            rows=$(count_of "SELECT count(*) FROM $table WHERE k = '$f'")
        fi
        if [[ "$(count_of "SELECT to_regclass('pgprelude.history') IS NOT NULL")" == t ]]; then
            hist=$(count_of "SELECT count(*) FROM pgprelude.history WHERE file = '$f.sql'")
        fi
        if [[ "$rows" != "$hist" || "$rows" -gt 1 ]]; then
            echo "consistent: $f: $rows effect row(s), $hist history row(s)" >&2
            return 1
        fi
    done
}

# start_own_cluster: a PostgreSQL of this test's own, which it may stop and
# restart; sets OWN (its folder), OWN_PORT and OWN_URL (its postgres database).
start_own_cluster() {
    OWN=$(mktemp -d /tmp/pgprelude-faults.XXXXXX)
    chmod 755 "$OWN"
    "$REPO/tests/tools/pgcluster.sh" start "$OWN/pg" >/dev/null 3>&-
    OWN_PORT=$(sed -n 's/.*PGPORT=\([0-9]*\).*/\1/p' "$OWN/pg/env")
    # shellcheck disable=SC2034 # for the tests
    OWN_URL="postgresql://postgres:${PGPASSWORD}@127.0.0.1:$OWN_PORT/postgres"
}
own_sql() { sql "$1" -p "$OWN_PORT" -d postgres; }
own_stop() { "$REPO/tests/tools/pgcluster.sh" stop "$OWN/pg" >/dev/null 3>&-; }
own_start() { PGCLUSTER_PORT=$OWN_PORT "$REPO/tests/tools/pgcluster.sh" start "$OWN/pg" >/dev/null 3>&-; }
own_active() {
    [[ "$(own_sql "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
                    AND state = 'active' AND query LIKE '%$1%'")" -ge 1 ]]
}
# exists FILE: for wait_until.
exists() { [[ -e "$1" ]]; }
