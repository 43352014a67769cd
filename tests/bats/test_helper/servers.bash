# Real servers beside the suite's cluster, for tests of what users put in
# front of or next to pgprelude. Load after common (`load test_helper/servers`)
# and stop whatever a test started from its teardown, which bats runs even
# when the test fails:
#
#   teardown() { servers_teardown; }
#
# Each server lives in a folder of its own next to the suite's cluster (on the
# same file system, reachable by the postgres user), listens on a free port of
# 127.0.0.1 only, and takes about a second to start.
#
#   german_server_start   a separate cluster (tests/tools/pgcluster.sh,
#                         PGCLUSTER_LOCALE=de_DE.UTF-8) whose messages are
#                         German: lc_messages de_DE.UTF-8, so a wrong password
#                         gives "Passwort-Authentifizierung für Benutzer
#                         »postgres« fehlgeschlagen" (SQLSTATE 28P01). Same
#                         superuser and password as the suite's cluster.
#                         log_error_verbosity is verbose, so its log
#                         ($GERMAN_LOG) shows each error's SQLSTATE: psql
#                         does not show one of a failed connection.
#                         Exports GERMAN_DIR GERMAN_HOST (127.0.0.1)
#                         GERMAN_PORT GERMAN_LOG and GERMAN_URL (its postgres
#                         database)
#   german_sql QUERY [PSQL-ARGS...]
#                         sql (common.bash) in the German server's postgres
#   german_server_stop
#
#   standby_start         a hot standby of the suite's cluster (pg_basebackup
#                         -R, no replication slot), with every database the
#                         cluster has when it starts: call it after new_db.
#                         Exports STANDBY_DIR STANDBY_PORT and STANDBY_URL
#                         (this test's database, $PGDATABASE)
#   standby_sql QUERY [PSQL-ARGS...]
#                         sql in this test's database on the standby
#   standby_sync          wait (at most 10 s) until the standby has replayed
#                         everything the suite's cluster has written so far
#                         (its insert position: with synchronous_commit off,
#                         a commit may not be written out yet)
#   standby_promote       promote it (returns once it is a primary); the
#                         suite's cluster is not affected: the former standby
#                         goes its own way on a new timeline
#   standby_stop
#
#   pgbouncer_start [MODE]
#                         PgBouncer (tests/tools/pgbouncer.sh) in front of the
#                         suite's cluster, every database, pool_mode MODE
#                         (transaction, the default, or session). Clients log
#                         in with SCRAM as any role of the cluster with its
#                         password; the admin console is its database
#                         pgbouncer (admin: postgres). Exports PGBOUNCER_DIR
#                         PGBOUNCER_PORT PGBOUNCER_PID and PGBOUNCER_URL (this
#                         test's database, $PGDATABASE, through PgBouncer)
#   pgbouncer_admin COMMAND
#                         run COMMAND (e.g. SHOW CONFIG) on its admin console
#   pgbouncer_stop        stop it at once (its clients are cut off)
#
#   servers_teardown      stop every server this test started (each stop
#                         function is also safe to call when nothing runs)
#   server_pid DIR        print the pid of the postmaster of the cluster in
#                         DIR (as GERMAN_DIR/pg, STANDBY_DIR/pg), if it runs
#   process_gone PID      the process has exited (a zombie counts as gone:
#                         an orphan is reaped late by the container's init)

# servers_dir NAME: make and print a fresh folder for a server, next to the
# suite's cluster and reachable by the postgres user.
servers_dir() {
    local base dir
    base=$(dirname "$PGPRELUDE_TEST_CLUSTER")
    dir=$(mktemp -d "$base/pgprelude-$1.XXXXXX") || return 1
    chmod 755 "$dir"
    echo "$dir"
}

# env_number ENVFILE NAME: the value of NAME=N in an env file of tests/tools.
env_number() {
    sed -n "s/.* $2=\([0-9]*\).*/\1/p" "$1" | head -n 1
}

server_pid() {
    local pid
    pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && ! process_gone "$pid" || return 1
    echo "$pid"
}

process_gone() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    [[ "${stat:0:1}" == Z ]]
}

german_server_start() {
    if [[ -n "${GERMAN_DIR:-}" ]]; then
        echo "german_server_start: already started ($GERMAN_DIR)" >&2
        return 1
    fi
    GERMAN_DIR=$(servers_dir german) || return 1
    export GERMAN_DIR
    # 3>&-: the server must not inherit bats' TAP stream.
    PGCLUSTER_LOCALE=de_DE.UTF-8 PGCLUSTER_SETTINGS="log_error_verbosity = verbose" \
        "$REPO/tests/tools/pgcluster.sh" start "$GERMAN_DIR/pg" >/dev/null 3>&- || return 1
    GERMAN_HOST=127.0.0.1
    GERMAN_PORT=$(env_number "$GERMAN_DIR/pg/env" PGPORT)
    GERMAN_LOG=$GERMAN_DIR/pg/log/postgresql.log
    GERMAN_URL="postgresql://postgres:${PGPASSWORD}@127.0.0.1:$GERMAN_PORT/postgres"
    export GERMAN_HOST GERMAN_PORT GERMAN_LOG GERMAN_URL
}

german_sql() {
    local query=$1
    shift
    sql "$query" -h 127.0.0.1 -p "$GERMAN_PORT" -d postgres "$@"
}

german_server_stop() {
    [[ -n "${GERMAN_DIR:-}" ]] || return 0
    "$REPO/tests/tools/pgcluster.sh" stop "$GERMAN_DIR/pg" >/dev/null 3>&- || return 1
    rm -rf "$GERMAN_DIR"
    unset GERMAN_DIR GERMAN_HOST GERMAN_PORT GERMAN_LOG GERMAN_URL
}

standby_start() {
    if [[ -n "${STANDBY_DIR:-}" ]]; then
        echo "standby_start: already started ($STANDBY_DIR)" >&2
        return 1
    fi
    STANDBY_DIR=$(servers_dir standby) || return 1
    export STANDBY_DIR
    "$REPO/tests/tools/pgcluster.sh" standby "$STANDBY_DIR/pg" "$PGPRELUDE_TEST_CLUSTER" >/dev/null 3>&- ||
        return 1
    STANDBY_PORT=$(env_number "$STANDBY_DIR/pg/env" PGPORT)
    STANDBY_URL="postgresql://postgres:${PGPASSWORD}@127.0.0.1:$STANDBY_PORT/$PGDATABASE"
    export STANDBY_PORT STANDBY_URL
}

standby_sql() {
    local query=$1
    shift
    sql "$query" -h 127.0.0.1 -p "$STANDBY_PORT" "$@"
}

standby_sync() {
    local lsn i
    lsn=$(sql "SELECT pg_current_wal_insert_lsn()") || return 1
    for ((i = 0; i < 200; i++)); do
        [[ "$(standby_sql "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" == t ]] && return 0
        sleep 0.05
    done
    echo "standby_sync: the standby did not replay up to $lsn within 10 s" >&2
    return 1
}

standby_promote() {
    "$REPO/tests/tools/pgcluster.sh" promote "$STANDBY_DIR/pg" >/dev/null 3>&-
}

standby_stop() {
    [[ -n "${STANDBY_DIR:-}" ]] || return 0
    "$REPO/tests/tools/pgcluster.sh" stop "$STANDBY_DIR/pg" >/dev/null 3>&- || return 1
    rm -rf "$STANDBY_DIR"
    unset STANDBY_DIR STANDBY_PORT STANDBY_URL
}

pgbouncer_start() {
    local mode=${1:-transaction}
    if [[ -n "${PGBOUNCER_DIR:-}" ]]; then
        echo "pgbouncer_start: already started ($PGBOUNCER_DIR)" >&2
        return 1
    fi
    PGBOUNCER_DIR=$(servers_dir pgbouncer) || return 1
    export PGBOUNCER_DIR
    "$REPO/tests/tools/pgbouncer.sh" start "$PGBOUNCER_DIR" "$PGPRELUDE_TEST_CLUSTER" "$mode" 3>&- ||
        return 1
    PGBOUNCER_PORT=$(env_number "$PGBOUNCER_DIR/env" PGBOUNCER_PORT)
    PGBOUNCER_PID=$(env_number "$PGBOUNCER_DIR/env" PGBOUNCER_PID)
    PGBOUNCER_URL="postgresql://postgres:${PGPASSWORD}@127.0.0.1:$PGBOUNCER_PORT/$PGDATABASE"
    export PGBOUNCER_PORT PGBOUNCER_PID PGBOUNCER_URL
}

pgbouncer_admin() {
    "$PSQL" -X -A -t -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U postgres -d pgbouncer -c "$1"
}

pgbouncer_stop() {
    [[ -n "${PGBOUNCER_DIR:-}" ]] || return 0
    "$REPO/tests/tools/pgbouncer.sh" stop "$PGBOUNCER_DIR" 3>&- || return 1
    rm -rf "$PGBOUNCER_DIR"
    unset PGBOUNCER_DIR PGBOUNCER_PORT PGBOUNCER_PID PGBOUNCER_URL
}

servers_teardown() {
    local rc=0
    pgbouncer_stop || rc=1
    standby_stop || rc=1
    german_server_stop || rc=1
    return "$rc"
}
