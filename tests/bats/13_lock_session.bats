#!/usr/bin/env bats
# Every file once, on the backend that holds the lock, in a clean session:
# idle timeouts cannot end pgprelude's sessions, a lost lock records nothing,
# each file starts with the session as at login; and passwords reach the
# server intact, whatever they hold, and never appear in a message.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
}

# own_role NAME [SETTING...]: a login role owning this test's database, with
# the suite's password; each SETTING (e.g. "idle_session_timeout = '1s'") set on
# the role. Exports ROLE_URL.
own_role() {
    local name=$1
    shift
    sql "DROP ROLE IF EXISTS $name" -d postgres 2>/dev/null || true
    sql "CREATE ROLE $name LOGIN PASSWORD '$PGPASSWORD'" -d postgres
    sql "ALTER DATABASE \"$PGDATABASE\" OWNER TO $name" -d postgres
    sql "GRANT CREATE ON SCHEMA public TO $name"
    for setting in "$@"; do
        sql "ALTER ROLE $name SET $setting" -d postgres
    done
    export ROLE_URL="postgresql://$name:${PGPASSWORD}@127.0.0.1:${PGPORT}/${PGDATABASE}"
}

@test "a role's idle_session_timeout cannot end the lock session: two replicas apply a slow file once" {
    own_role r_idle "idle_session_timeout = '1s'" "idle_in_transaction_session_timeout = '1s'"
    printf '%s\n' '[database]' "url = $ROLE_URL" 'wait_timeout = 5s' 'lock_wait_timeout = 30s' \
        '[phase pre]' 'dir = pre' >"$CFG"
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    echo "SELECT pg_sleep(2.5); INSERT INTO t VALUES (1);" | mig pre 002_slow.sql
    "$PGPRELUDE" -c "$CFG" migrate >"$W/a.log" 2>&1 &
    a=$!
    "$PGPRELUDE" -c "$CFG" migrate >"$W/b.log" 2>&1 &
    b=$!
    sa=0 sb=0
    wait "$a" || sa=$?
    wait "$b" || sb=$?
    cat "$W/a.log" "$W/b.log"
    [ "$sa" -eq 0 ]
    [ "$sb" -eq 0 ]
    run sql "SELECT count(*) FROM t"
    assert_output 1
}

@test "a lock session ended mid-file: the file is rolled back, not recorded, and the run exits 10" {
    two_phase_config
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    echo "SELECT pg_sleep(2); INSERT INTO t VALUES (1);" | mig pre 002_slow.sql
    "$PGPRELUDE" -c "$CFG" migrate >"$W/out.log" 2>&1 &
    pid=$!
    await_session "query LIKE 'SELECT pg_sleep(2)%' AND state = 'active' AND application_name LIKE 'pgprelude%'"
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name LIKE 'pgprelude%' AND datname = current_database()
            AND query NOT LIKE '%pg_sleep%'"
    status=0
    wait "$pid" || status=$?
    cat "$W/out.log"
    [ "$status" -eq 10 ]
    grep -q 'lost the migration lock' "$W/out.log"
    run sql "SELECT count(*) FROM t"
    assert_output 0
    run sql "SELECT count(*) FROM pgprelude.history WHERE file = '002_slow.sql'"
    assert_output 0
    # the next run applies it, once
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT count(*) FROM t"
    assert_output 1
}

@test "each file starts in a clean session: settings, search_path, temp tables, role" {
    two_phase_config
    sql "CREATE ROLE r_clean NOLOGIN" -d postgres 2>/dev/null || true
    sql "GRANT ALL ON SCHEMA public TO r_clean"
    echo "CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (p int REFERENCES parent);" | mig pre 001.sql
    echo "SET session_replication_role = replica;" | mig pre 002_replica.sql
    echo "INSERT INTO child VALUES (42);" | mig pre 003_child.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'pre/003_child.sql'
    assert_output --partial '23503'
    rm "$W/pre/003_child.sql"
    echo "SELECT pg_catalog.set_config('search_path', '', false); CREATE TEMP TABLE scratch (a int); SET ROLE r_clean;" | mig pre 004_state.sql
    echo "CREATE TABLE plain (a int); CREATE TEMP TABLE scratch (a int);" | mig pre 005_plain.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT count(*) FROM child"
    assert_output 0
    run sql "SELECT tableowner FROM pg_tables WHERE tablename = 'plain'"
    assert_output postgres
    run sql "SELECT string_agg(DISTINCT applied_by, ',') FROM pgprelude.history"
    assert_output postgres
}

# A login role whose password holds blanks, quotes, \, @, %, = reaches the
# server through every way of writing the url.
@test "passwords with blanks, quotes, backslashes, @, % and = work in conninfo and URI urls" {
    two_phase_config
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    sql "DROP ROLE IF EXISTS r_pw; CREATE ROLE r_pw LOGIN SUPERUSER" -d postgres
    for pw in 'a b c' "it's" 'back\slash' 'at@sign%41=x' " lead'\\ ing"; do
        sql "ALTER ROLE r_pw PASSWORD \$pw\$$pw\$pw\$" -d postgres
        for url in "host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=r_pw password=\${PW}" \
            "host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=r_pw password='\${PW}'" \
            "postgresql://r_pw:\${PW}@127.0.0.1:$PGPORT/$PGDATABASE"; do
            printf '%s\n' '[database]' "url = $url" 'wait_timeout = 3s' '[phase pre]' 'dir = pre' >"$CFG"
            PW=$pw run "$PGPRELUDE" -c "$CFG" migrate
            assert_success
        done
    done
}

@test "no error shows any part of a password" {
    pw="s3cr et'pa\\ss@w%rd"
    for url in "host=127.0.0.1 port=$PGPORT dbname=$PGDATABASE user=nobody_here password=\${PW}" \
        "postgresql://nobody_here:\${PW}@127.0.0.1:$PGPORT/$PGDATABASE" \
        "host=127.0.0.1 port=notaport password=\${PW}" "host=127.0.0.1 port password=\${PW}"; do
        printf '%s\n' '[database]' "url = $url" 'wait_timeout = 1s' >"$CFG"
        PW=$pw run "$PGPRELUDE" -c "$CFG" wait
        assert_failure
        for part in s3cr "et'pa" 'ss@w' 'w%rd'; do
            refute_output --partial "$part"
        done
    done
}

@test "a rotated password file is read again at each connection attempt" {
    port=$(closed_port)
    two_phase_config
    printf '%s\n' '[database]' "url = postgresql://postgres@127.0.0.1:$port/$PGDATABASE" 'wait_timeout = 30s' >"$CFG"
    echo "stale-token" >"$W/pw"
    # the server appears after 2 s; the sidecar rotates the token after 1 s
    ( sleep 1; echo "$PGPASSWORD" >"$W/pw.new"; mv "$W/pw.new" "$W/pw" ) &
    ( sleep 2; exec socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$PGPORT" ) 3>&- &
    forwarder=$!
    run env -u PGPASSWORD PGPASSWORD_FILE="$W/pw" PGPASSFILE=/dev/null "$PGPRELUDE" -c "$CFG" wait
    kill "$forwarder" 2>/dev/null || true
    wait "$forwarder" 2>/dev/null || true
    assert_success
    assert_output --partial 'is ready'
    # and ${VAR} with VAR_FILE in the url too
    echo "stale-token" >"$W/pw"
    printf '%s\n' '[database]' "url = postgresql://postgres:\${TOKEN}@127.0.0.1:$port/$PGDATABASE" 'wait_timeout = 30s' >"$CFG"
    ( sleep 1; echo "$PGPASSWORD" >"$W/pw.new"; mv "$W/pw.new" "$W/pw" ) &
    ( sleep 2; exec socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$PGPORT" ) 3>&- &
    forwarder=$!
    run env -u PGPASSWORD TOKEN_FILE="$W/pw" PGPASSFILE=/dev/null "$PGPRELUDE" -c "$CFG" wait
    kill "$forwarder" 2>/dev/null || true
    wait "$forwarder" 2>/dev/null || true
    assert_success
}
