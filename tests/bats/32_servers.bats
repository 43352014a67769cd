#!/usr/bin/env bats
# pgprelude against the servers users put beside or in front of it: a server
# that speaks German, a hot standby and its promotion, several hosts, and
# PgBouncer in transaction and session mode (test_helper/servers.bash).

load test_helper/common
load test_helper/pgprelude
load test_helper/servers

setup() {
    new_db
    setup_layout
}

teardown() {
    servers_teardown
}

# url_config URL [LINE...]: [database] url URL (wait_timeout 3s), then LINES.
url_config() {
    local url=$1
    shift
    printf '%s\n' '[database]' "url = $url" 'wait_timeout = 3s' 'lock_wait_timeout = 5s' "$@" >"$CFG"
}

@test "German server: a wrong password is an authentication failure at once (exit 4), not a wait" {
    german_server_start
    url_config "host=$GERMAN_HOST port=$GERMAN_PORT user=postgres password=wrong dbname=postgres"
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 4
    assert_output --partial 'password authentication failed'
    assert_output --partial 'Passwort-Authentifizierung'
    refute_output --partial 'still not reachable'
}

@test "German server: an unknown database is exit 4 at once; the right login works" {
    german_server_start
    url_config "host=$GERMAN_HOST port=$GERMAN_PORT user=postgres password=$PGPASSWORD dbname=no_such_db"
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 4
    assert_output --partial 'the database does not exist'
    url_config "$GERMAN_URL"
    run "$PGPRELUDE" -c "$CFG" wait
    assert_success
}

@test "German server: too many connections stays a reason to wait (exit 3 after wait_timeout)" {
    german_server_start
    german_sql "CREATE ROLE r_full LOGIN PASSWORD '$PGPASSWORD' CONNECTION LIMIT 0"
    printf '%s\n' '[database]' "url = host=$GERMAN_HOST port=$GERMAN_PORT user=r_full password=$PGPASSWORD dbname=postgres" \
        'wait_timeout = 2s' >"$CFG"
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 3
    assert_output --partial 'still not reachable after'
}

@test "a hot standby is waited for as a standby (in recovery), then exit 3" {
    standby_start
    url_config "$STANDBY_URL"
    run "$PGPRELUDE" -c "$CFG" wait
    assert_failure 3
    assert_output --partial 'the server is a standby (in recovery)'
}

@test "a standby promoted while pgprelude waits: it goes on and migrates" {
    standby_start
    printf '%s\n' '[database]' "url = $STANDBY_URL" 'wait_timeout = 30s' '[phase pre]' 'dir = pre' >"$CFG"
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    "$PGPRELUDE" -c "$CFG" migrate >"$W/out.log" 2>&1 &
    pid=$!
    wait_until 5 file_has "$W/out.log" 'standby \(in recovery\)'
    standby_promote
    status=0
    wait "$pid" || status=$?
    cat "$W/out.log"
    [ "$status" -eq 0 ]
    run standby_sql "SELECT to_regclass('t') IS NOT NULL"
    assert_output t
}

@test "several hosts with target_session_attrs=read-write: the primary is used and named" {
    standby_start
    url_config "host=127.0.0.1,127.0.0.1 port=$STANDBY_PORT,$PGPORT dbname=$PGDATABASE user=postgres password=$PGPASSWORD target_session_attrs=read-write" \
        '[phase pre]' 'dir = pre'
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial "database 127.0.0.1:$PGPORT/$PGDATABASE as postgres is ready"
    run sql "SELECT to_regclass('t') IS NOT NULL"
    assert_output t
}

@test "PgBouncer in transaction mode is refused with a hint, and no advisory lock is left behind" {
    pgbouncer_start transaction
    url_config "$PGBOUNCER_URL" '[phase pre]' 'dir = pre'
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'transaction pooler'
    assert_output --partial 'hint: Give pgprelude a direct connection'
    run sql "SELECT count(*) FROM pg_locks WHERE $ADVISORY"
    assert_output 0
    run sql "SELECT to_regclass('t') IS NULL"
    assert_output t
}

@test "PgBouncer in session mode: everything works, twice" {
    pgbouncer_start session
    url_config "$PGBOUNCER_URL" '[phase pre]' 'dir = pre'
    echo "CREATE TABLE t (a int); INSERT INTO t VALUES (1);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial '0 files applied'
    run sql "SELECT count(*) FROM t"
    assert_output 1
}
