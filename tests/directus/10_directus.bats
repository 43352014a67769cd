#!/usr/bin/env bats
# entrypoint/pgprelude.ini with the real Directus CLI as its schema step, on a
# throwaway PostgreSQL: pre-schema SQL → directus bootstrap → directus schema
# apply → db-init-post/ → directus start. Only what the image's layout fixes is
# replaced (shipped_config). Every Directus listens on 127.0.0.1 only.
#
# Run with `make test-directus` (it installs Directus outside the checkout).

load test_helper/directus

setup() {
    new_db
    directus_env
    shipped_config "$BATS_TEST_TMPDIR/pgprelude.ini"
    CONFIG=$BATS_TEST_TMPDIR/pgprelude.ini
    BOOTSTRAP="$DIRECTUS_CLI bootstrap"
    BACKGROUND=()
}

teardown() {
    local pid
    for pid in "${BACKGROUND[@]}"; do
        alive "$pid" && stop "$pid"
    done
    return 0
}

# alive PID: PID runs (a child that exited is a zombie until waited for, and
# kill -0 still finds it).
alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ "$state" != Z* ]]
}

gone() {
    ! alive "$1"
}

# stop PID: SIGTERM, then wait for it (SIGKILL after 30 s); sets STOP_STATUS.
stop() {
    local watchdog
    kill -TERM "$1" 2>/dev/null
    (sleep 30 && kill -KILL "$1" 2>/dev/null) &
    watchdog=$!
    STOP_STATUS=0
    wait "$1" 2>/dev/null || STOP_STATUS=$?
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null || true
}

# start_app LOG: the whole entrypoint, its [exec] command included, in the
# background on $PORT; sets APP.
start_app() {
    "$PGPRELUDE" -c "$CONFIG" >"$1" 2>&1 &
    APP=$!
    BACKGROUND+=("$APP")
}

# stop_app: SIGTERM to the app (pgprelude exec'd Directus: not PID 1); it
# must end by itself, with status 0 or 143.
stop_app() {
    stop "$APP"
    [[ "$STOP_STATUS" == 0 || "$STOP_STATUS" == 143 ]] || {
        echo "# the app ended with status $STOP_STATUS"
        return 1
    }
}

# up LOG PID [PORT]: Directus answers on PORT, or the log says why not.
up() {
    local log=$1 pid=$2 port=${3:-$PORT}
    if ! wait_until 180 healthy_or_gone "$pid" "$port"; then
        cat "$log"
        return 1
    fi
    healthy "$port" || { echo "# exited before it was healthy:"; cat "$log"; return 1; }
}

healthy_or_gone() {
    healthy "$2" || ! alive "$1"
}

# no_directus_errors LOG: Directus logs some failures at level 50 and still
# exits 0; none may be in LOG.
no_directus_errors() {
    if grep -E '"level":(50|60)|\[(ERROR|FATAL)\]' "$1"; then
        echo "# Directus logged errors in $1:"
        cat "$1"
        return 1
    fi
}

EXPECTED_UNIQUES='event_participants(UNIQUE (event_id, user_id)) organization_devices(UNIQUE (organization_id, device_id)) organization_users(UNIQUE (organization_id, user_id)) organization_vehicles(UNIQUE (organization_id, vehicle_id))'
EXPECTED_HISTORY='bootstrap (run)
post 001_junction_uniques.sql
pre 001_app_settings.sql
pre 002_app_settings_note.sql
schema (run)'

@test "directus: fresh database, then a restart that runs no CLI step: healthy both times, constraints and history once" {
    start_app first.log
    up first.log "$APP"
    no_directus_errors first.log
    run cat first.log
    assert_output --partial '001_app_settings.sql'
    assert_output --partial '001_junction_uniques.sql'
    # what the schema step made, and what pre-schema SQL made before it, both there
    run sql "SELECT count(*) FROM directus_collections WHERE collection IN
               ('organization_users', 'organization_vehicles', 'organization_devices', 'event_participants')"
    assert_output 4
    run sql "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name = 'app_settings'"
    assert_output 'key,note,updated_at,value'
    run sql "SELECT count(*) FROM directus_users WHERE email = '$ADMIN_EMAIL'"
    assert_output 1
    run junction_uniques
    assert_output "$EXPECTED_UNIQUES"
    run history_rows
    assert_output "$EXPECTED_HISTORY"
    stop_app

    # The restart runs no Directus CLI step: their inputs are unchanged.
    start_app second.log
    up second.log "$APP"
    no_directus_errors second.log
    run cat second.log
    assert_output --partial 'phase "pre": 0 files applied, 2 up to date'
    assert_output --partial 'phase "bootstrap": up to date (inputs unchanged since'
    assert_output --partial 'phase "schema": up to date (inputs unchanged since'
    assert_output --partial 'phase "post": 0 files applied, 1 up to date'
    refute_output --regexp '^\[(bootstrap|schema)\]'
    run junction_uniques
    assert_output "$EXPECTED_UNIQUES"
    run history_rows
    assert_output "$EXPECTED_HISTORY"
    run sql "SELECT count(*) FROM directus_users"
    assert_output 1
    run sql "SELECT count(*) FROM directus_migrations GROUP BY version HAVING count(*) > 1"
    assert_output ''
}

@test "directus: three replicas at once on a fresh database: all healthy, everything applied once" {
    local i ports=() pids=()
    for i in 1 2 3; do
        PORT=$("$REPO/tests/tools/pgcluster.sh" port)
        ports+=("$PORT")
        start_app "replica$i.log"
        pids+=("$APP")
    done
    for i in 0 1 2; do
        up "replica$((i + 1)).log" "${pids[$i]}" "${ports[$i]}"
    done
    for i in 1 2 3; do
        no_directus_errors "replica$i.log"
    done
    # one replica applied each file, the others found it applied
    run grep -l 'applied .*001_junction_uniques.sql' replica1.log replica2.log replica3.log
    assert_equal "${#lines[@]}" 1
    run junction_uniques
    assert_output "$EXPECTED_UNIQUES"
    run history_rows
    assert_output "$EXPECTED_HISTORY"
    run sql "SELECT count(*) FROM directus_users"
    assert_output 1
    run sql "SELECT count(*) FROM directus_migrations GROUP BY version HAVING count(*) > 1"
    assert_output ''
    run sql "SELECT string_agg(collection, ' ' ORDER BY collection) FROM directus_collections"
    assert_output 'devices event_participants events organization_devices organization_users organization_vehicles organizations vehicles'
}

@test "directus: SIGTERM during directus bootstrap stops at once (143), the next start completes" {
    "$PGPRELUDE" -c "$CONFIG" migrate >term.log 2>&1 &
    APP=$!
    BACKGROUND+=("$APP")
    # The run step has started (Node is loading Directus, which takes a
    # second or more before it touches the database).
    wait_until 60 pgrep -f "$BOOTSTRAP"
    kill -TERM "$APP"
    local t0=$SECONDS
    wait_until 10 gone "$APP"
    run wait "$APP"
    assert_equal "$status" 143
    ((SECONDS - t0 <= 10))
    # nothing of the run step is left behind
    run pgrep -f "$BOOTSTRAP"
    assert_failure
    run cat term.log
    assert_output --partial 'run step "bootstrap"'
    # Directus's install is not one transaction: a TERM that lands after it
    # made its first table leaves a database the next bootstrap cannot finish
    # (see the README). This test is about the TERM before that.
    run sql "SELECT to_regclass('public.directus_collections') IS NULL"
    assert_output t

    start_app next.log
    up next.log "$APP"
    no_directus_errors next.log
    run junction_uniques
    assert_output "$EXPECTED_UNIQUES"
    run history_rows
    assert_output "$EXPECTED_HISTORY"
    run sql "SELECT count(*) FROM directus_users WHERE email = '$ADMIN_EMAIL'"
    assert_output 1
}
