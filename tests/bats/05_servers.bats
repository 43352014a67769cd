#!/usr/bin/env bats
# The servers beside the suite's cluster (test_helper/servers.bash): a
# cluster with German messages, a hot standby of the suite's cluster, and
# PgBouncer in front of it. Each must be what it claims to be, and be gone
# once stopped.

load test_helper/common
load test_helper/servers

setup() {
    new_db
    HOLDER=
}

teardown() {
    if [[ -n "$HOLDER" ]]; then kill "$HOLDER" 2>/dev/null || true; fi
    servers_teardown
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null 2>&1 || true
}

# answers PORT: something accepts connections on 127.0.0.1:PORT.
answers() {
    pg_isready -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -t 2
}

# --- German messages -------------------------------------------------------------

@test "servers: the German server sends its login errors in German, with their SQLSTATE" {
    german_server_start
    run german_sql "SHOW lc_messages"
    assert_success
    assert_output de_DE.UTF-8
    # the right password (the suite's) works, by its URL too
    run "$PSQL" -X -A -t -d "$GERMAN_URL" -c "SELECT current_user"
    assert_success
    assert_output postgres
    assert_equal "$GERMAN_HOST" 127.0.0.1

    PGPASSWORD=not-the-password run "$PSQL" -X -A -t -h 127.0.0.1 -p "$GERMAN_PORT" -d postgres -c "SELECT 1"
    assert_failure 2
    assert_output --partial 'FATAL:  Passwort-Authentifizierung für Benutzer »postgres« fehlgeschlagen'
    refute_output --partial 'password authentication failed'
    # psql does not show a failed connection's SQLSTATE; the server logs it
    run grep -F '28P01: Passwort-Authentifizierung für Benutzer »postgres« fehlgeschlagen' "$GERMAN_LOG"
    assert_success

    run "$PSQL" -X -A -t -h 127.0.0.1 -p "$GERMAN_PORT" -d no_such_db -c "SELECT 1"
    assert_failure 2
    assert_output --partial 'FATAL:  Datenbank »no_such_db« existiert nicht'
    run grep -F '3D000: Datenbank »no_such_db« existiert nicht' "$GERMAN_LOG"
    assert_success

    # the same error of the suite's cluster is in English
    PGPASSWORD=not-the-password run "$PSQL" -X -A -t -c "SELECT 1"
    assert_failure 2
    assert_output --partial 'password authentication failed for user "postgres"'
}

@test "servers: german_server_stop stops the German server and removes its folder" {
    german_server_start
    local dir=$GERMAN_DIR port=$GERMAN_PORT pid
    pid=$(server_pid "$dir/pg")
    answers "$port"
    german_server_stop
    run answers "$port"
    assert_failure
    assert process_gone "$pid"
    assert [ ! -e "$dir" ]
    assert_equal "${GERMAN_PORT:-}" ""
    # stopping again is no error
    german_server_stop
}

# --- hot standby -----------------------------------------------------------------

@test "servers: the standby is in recovery, follows the suite's cluster, and refuses writes" {
    sql "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"
    standby_start
    assert [ "$STANDBY_PORT" != "$PGPORT" ]
    run standby_sql "SELECT pg_is_in_recovery()"
    assert_success
    assert_output t
    run "$PSQL" -X -A -t -d "$STANDBY_URL" -c "SELECT count(*) FROM t"
    assert_success
    assert_output 1

    sql "INSERT INTO t VALUES (2)"
    standby_sync
    run standby_sql "SELECT string_agg(x::text, ',' ORDER BY x) FROM t"
    assert_output 1,2

    run standby_sql "INSERT INTO t VALUES (3)" -v VERBOSITY=verbose
    assert_failure
    assert_output --partial 'ERROR:  25006: cannot execute INSERT in a read-only transaction'
    run sql "SELECT pg_is_in_recovery()"
    assert_output f
}

@test "servers: a promoted standby takes writes; the suite's cluster does not see them" {
    sql "CREATE TABLE t (x int)"
    standby_start
    standby_promote
    run standby_sql "SELECT pg_is_in_recovery()"
    assert_success
    assert_output f
    run standby_sql "INSERT INTO t VALUES (3) RETURNING x"
    assert_success
    assert_output 3

    # the suite's cluster goes on as before, on its own
    run sql "SELECT pg_is_in_recovery(), count(*) FROM t"
    assert_output "f|0"
    sql "INSERT INTO t VALUES (4)"
    run standby_sql "SELECT count(*) FROM t"
    assert_output 1
    run sql "SELECT count(*) FROM pg_replication_slots"
    assert_output 0

    local dir=$STANDBY_DIR port=$STANDBY_PORT pid
    pid=$(server_pid "$dir/pg")
    standby_stop
    run answers "$port"
    assert_failure
    assert process_gone "$pid"
    assert [ ! -e "$dir" ]
    run sql "SELECT count(*) FROM pg_stat_replication"
    assert_output 0
}

# --- PgBouncer -------------------------------------------------------------------

# two_transactions: on one client connection through PgBouncer, print the
# server backend of a first transaction, then (while another client's
# transaction is open, started after the first ended) that of a second.
two_transactions() {
    local w
    w=$(workdir bouncer)
    # run by psql's \! between the two: the other client begins a
    # transaction and keeps it open; wait until the cluster runs it
    cat >"$w/hold.sh" <<SH
"$PSQL" -X -q -h 127.0.0.1 -p $PGBOUNCER_PORT -d $PGDATABASE -c BEGIN -c 'SELECT pg_sleep(60)' >/dev/null 2>&1 &
echo \$! >"$w/hold.pid"
i=0
while [ \$i -lt 200 ]; do
    n=\$("$PSQL" -X -A -t -h 127.0.0.1 -p $PGPORT -d $PGDATABASE -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'")
    [ "\$n" = 1 ] && exit 0
    sleep 0.05
    i=\$((i + 1))
done
echo "hold.sh: the other client's transaction did not start" >&2
exit 1
SH
    "$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGBOUNCER_PORT" \
        -c "SELECT pg_backend_pid()" -c "\\! sh $w/hold.sh" -c "SELECT pg_backend_pid()"
    HOLDER=$(cat "$w/hold.pid")
}

@test "servers: PgBouncer in transaction mode: queries pass, one client's transactions move between backends" {
    pgbouncer_start transaction
    assert [ "$PGBOUNCER_PORT" != "$PGPORT" ]
    run "$PSQL" -X -A -t -d "$PGBOUNCER_URL" -c "SELECT 1, current_database(), inet_server_port()"
    assert_success
    assert_output "1|$PGDATABASE|$PGPORT"
    run pgbouncer_admin "SHOW CONFIG"
    assert_success
    assert_line --regexp '^pool_mode\|transaction\|'
    assert_line --regexp '^listen_addr\|127\.0\.0\.1\|'

    two_transactions >"$BATS_TEST_TMPDIR/pids"
    mapfile -t pids <"$BATS_TEST_TMPDIR/pids"
    assert_equal "${#pids[@]}" 2
    assert [ "${pids[0]}" != "${pids[1]}" ]

    # a wrong password is refused (SCRAM)
    PGPASSWORD=not-the-password run "$PSQL" -X -A -t -h 127.0.0.1 -p "$PGBOUNCER_PORT" -c "SELECT 1"
    assert_failure 2
    assert_output --partial 'SASL authentication failed'
}

@test "servers: PgBouncer in session mode keeps one backend per client; any role can log in" {
    sql "CREATE ROLE app_$PGDATABASE LOGIN PASSWORD 'app-pw'"
    pgbouncer_start session
    run pgbouncer_admin "SHOW CONFIG"
    assert_line --regexp '^pool_mode\|session\|'

    two_transactions >"$BATS_TEST_TMPDIR/pids"
    mapfile -t pids <"$BATS_TEST_TMPDIR/pids"
    assert_equal "${#pids[@]}" 2
    assert_equal "${pids[0]}" "${pids[1]}"

    PGPASSWORD=app-pw run "$PSQL" -X -A -t -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U "app_$PGDATABASE" -c "SELECT current_user"
    assert_success
    assert_output "app_$PGDATABASE"
    sql "DROP ROLE app_$PGDATABASE"
}

@test "servers: pgbouncer_stop ends PgBouncer and its clients" {
    pgbouncer_start
    local dir=$PGBOUNCER_DIR port=$PGBOUNCER_PORT pid=$PGBOUNCER_PID
    "$PSQL" -X -q -h 127.0.0.1 -p "$port" -c BEGIN -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
    HOLDER=$!
    wait_until 5 sql_is 1 "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'"
    pgbouncer_stop
    assert process_gone "$pid"
    run answers "$port"
    assert_failure
    assert [ ! -e "$dir" ]
    # its client is cut off
    wait_until 5 process_gone "$HOLDER" || true
    assert process_gone "$HOLDER"
    pgbouncer_stop
}

# --- teardown --------------------------------------------------------------------

@test "servers: servers_teardown stops every server a test started" {
    german_server_start
    standby_start
    pgbouncer_start session
    local pids=("$(server_pid "$GERMAN_DIR/pg")" "$(server_pid "$STANDBY_DIR/pg")" "$PGBOUNCER_PID")
    local ports=("$GERMAN_PORT" "$STANDBY_PORT" "$PGBOUNCER_PORT")
    local p
    for p in "${pids[@]}"; do refute process_gone "$p"; done
    servers_teardown
    for p in "${pids[@]}"; do assert process_gone "$p"; done
    for p in "${ports[@]}"; do
        run answers "$p"
        assert_failure
    done
    # the suite's cluster still answers
    run sql "SELECT 1"
    assert_output 1
}
