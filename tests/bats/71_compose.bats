#!/usr/bin/env bats
# docker-compose.yml, run as it is with podman-compose, offline: PostgreSQL,
# the stand-in for the schema step and the app started through pgprelude on
# the project's own podman network. `up -d` applies db-init/ and
# db-init-post/ and hands over, `restart app` applies nothing, `stop app`
# reaches the app through pgprelude and the container ends with the app's
# status, `down -v` removes the containers and the data volume.
#
# Nothing is pulled or built from the network. The images are built here
# first: the app's under the name podman-compose gives the service's build
# (PROJECT_app), from the Dockerfile's runtime stage around the binary
# `make static` built (image-build.sh --prebuilt, as 70_image.bats), so that
# `up` finds it and does not build; PostgreSQL's from this machine's own
# PostgreSQL 15 (tests/tools/compose-postgres-image.sh), named by the compose
# file's POSTGRES_IMAGE. The published ports are free loopback ports
# (DB_HOST_PORT, APP_HOST_PORT). The stack, the steps and their checks are one
# sequence: each test continues from the one before.

load test_helper/common
load test_helper/image

# One name for this run of the file, also lowercase (podman's image names).
PROJECT=pgprelude-bats-compose-$(cksum <<<"$BATS_FILE_TMPDIR" | cut -d ' ' -f 1)
APP_IMAGE=localhost/${PROJECT}_app
PG_IMAGE=localhost/pgprelude-compose-postgres:bats-test

setup_file() {
    image_prepare "$APP_IMAGE" podman podman-compose || return 1
    ! image_skipped || return 0
    "$REPO/tests/tools/compose-postgres-image.sh" -t "$PG_IMAGE" >/dev/null
    compose_network
    DB_HOST_PORT=$(closed_port)
    APP_HOST_PORT=$(closed_port)
    [[ "$APP_HOST_PORT" != "$DB_HOST_PORT" ]] || APP_HOST_PORT=$(closed_port)
    echo "$DB_HOST_PORT" >"$BATS_FILE_TMPDIR/DB_HOST_PORT"
    echo "$APP_HOST_PORT" >"$BATS_FILE_TMPDIR/APP_HOST_PORT"
}

teardown_file() {
    command -v podman >/dev/null 2>&1 || return 0
    if [[ -f "$BATS_FILE_TMPDIR/DB_HOST_PORT" ]]; then
        compose down -v >/dev/null 2>&1 || true
    fi
    # podman-compose 1.0.3's down leaves the project's network.
    podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
    podman rmi -f "$APP_IMAGE" >/dev/null 2>&1 || true
}

setup() {
    skip_without_image
}

# compose_network: make the project's network before podman-compose does
# (it then uses it as it is), and a containers.conf for podman-compose's
# podman that gives the containers this network's own name server only.
#
# podman 4.3 writes the network's name server (dnsmasq, from the dnsname
# plugin, which knows the services' names) into the containers' resolv.conf,
# and then the host's name servers. musl's resolver (the app image's static
# pgprelude) asks all of them at once and takes the first answer: when the
# host's "no such name" for db comes first, libpq fails with 'could not
# translate host name "db" to address: Name does not resolve', and pgprelude
# stops (exit 10 when it was its second connection). A glibc resolver asks
# them in order, and Docker gives a container one name server (its own):
# this is podman's networks with a musl image. It happened in two runs in
# fifteen here; a name server setting in the compose file cannot help, since
# the network's address is not known before the network exists.
compose_network() {
    local net=${PROJECT}_default gw
    podman network create --label "io.podman.compose.project=$PROJECT" \
        --label "com.docker.compose.project=$PROJECT" "$net" >/dev/null
    gw=$(podman network inspect --format '{{range .Subnets}}{{.Gateway}}{{end}}' "$net")
    [[ -n "$gw" ]] || { echo "71_compose.bats: no gateway address for $net" >&2; return 1; }
    if grep -q '^\[containers\]' "$CONTAINERS_CONF"; then
        sed "/^\[containers\]/a dns_servers = [\"$gw\"]" "$CONTAINERS_CONF"
    else
        cat "$CONTAINERS_CONF"
        printf '\n[containers]\ndns_servers = ["%s"]\n' "$gw"
    fi >"$BATS_FILE_TMPDIR/containers.conf"
}

# compose ARGS...: podman-compose on the repository's compose file, with this
# file's project, images, ports and name server.
compose() {
    env CONTAINERS_CONF="$BATS_FILE_TMPDIR/containers.conf" \
        POSTGRES_IMAGE="$PG_IMAGE" DB_HOST_PORT="$(cat "$BATS_FILE_TMPDIR/DB_HOST_PORT")" \
        APP_HOST_PORT="$(cat "$BATS_FILE_TMPDIR/APP_HOST_PORT")" \
        podman-compose -f "$REPO/docker-compose.yml" -p "$PROJECT" "$@"
}

# compose_ok ARGS...: compose, its output kept in a file and shown on failure
# (podman-compose echoes every podman command it runs).
compose_ok() {
    local log=$BATS_FILE_TMPDIR/compose.log
    if ! compose "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "podman-compose $* failed" >&2
        return 1
    fi
}

container() {
    echo "${PROJECT}_$1_1"
}

# logged SERVICE ERE: whether a line of the service container's log matches ERE.
logged() {
    podman logs "$(container "$1")" 2>&1 | grep -Eq -- "$2"
}

# count SERVICE ERE: how many lines of the service container's log match ERE.
count() {
    podman logs "$(container "$1")" 2>&1 | grep -Ec -- "$2" || true
}

state() {
    podman inspect --format '{{.State.Status}}' "$(container "$1")"
}

state_is() {
    [[ "$(state "$1")" == "$2" ]]
}

# count_is SERVICE N ERE: whether N lines of the service container's log match ERE.
count_is() {
    [[ "$(count "$1" "$3")" == "$2" ]]
}

# over_or_exited SERVICE N: whether pgprelude has handed over N times, or the
# container has ended (so that a wait ends at once when pgprelude stopped).
over_or_exited() {
    count_is "$1" "$2" 'handing over to "sh"' || state_is "$1" exited
}

exit_code() {
    podman inspect --format '{{.State.ExitCode}}' "$(container "$1")"
}

# host_sql QUERY: QUERY in the compose file's database, through its published port.
host_sql() {
    PGPASSWORD=dev-password "$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$(cat "$BATS_FILE_TMPDIR/DB_HOST_PORT")" -U postgres -d app -c "$1"
}

show_logs() {
    local s
    echo "--- podman-compose" >&2
    cat "$BATS_FILE_TMPDIR/compose.log" >&2 || true
    echo "--- containers" >&2
    podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
        --format '{{.Names}} {{.Status}}' >&2 || true
    for s in db schema app; do
        echo "--- $s" >&2
        podman logs "$(container "$s")" >&2 2>&1 || true
    done
}

@test "compose: up -d starts db, schema and app; pgprelude applies db-init and db-init-post and hands over" {
    local t0=$SECONDS
    compose_ok up -d
    # The services find each other by name (PGHOST=db): with podman's CNI
    # network backend only through the dnsname plugin (tests/tools/deps.sh).
    run podman network inspect --format '{{.DNSEnabled}}' "${PROJECT}_default"
    assert_output true
    # one name server: the network's (compose_network)
    run podman exec "$(container app)" grep -c '^nameserver' /etc/resolv.conf
    assert_output 1
    # the database's container runs: podman-compose goes on when podman could not
    # start one (after one more try of its own); say why, and start it once more
    if ! wait_until 30 state_is db running; then
        {
            show_logs
            echo "the db container was not running after 30 s; starting it again"
            podman start "$(container db)" || true
        } 2>&1 | sed 's/^/# /' >&3
        wait_until 30 state_is db running || { show_logs; false; }
    fi
    # (or until the container ended: pgprelude stopped, its log says why)
    wait_until 60 over_or_exited app 1 || { show_logs; false; }
    wait_until 10 logged app '^app: started' || { show_logs; false; }
    echo "# up -d until the hand-over: $((SECONDS - t0)) s" >&3
    run podman logs "$(container app)"
    assert_output --partial 'pgprelude: info: applied /db-init/001_app_settings.sql'
    assert_output --partial 'pgprelude: info: phase "pre": 2 files applied, 0 up to date'
    assert_output --partial 'pgprelude: info: phase "schema": condition met'
    assert_output --partial 'pgprelude: info: applied /db-init-post/001_junction_uniques.sql'
    assert_output --partial 'pgprelude: info: phase "post": 1 file applied, 0 up to date'
    run podman logs "$(container schema)"
    assert_output --partial 'application tables are in place'
    wait_until 10 state_is schema exited
    run exit_code schema
    assert_output 0
    # pgprelude is the app container's PID 1, the app its child
    run podman exec "$(container app)" cat /proc/1/comm
    assert_output pgprelude
    # the database, through the published port
    run host_sql "SELECT count(*) FROM pgprelude.history"
    assert_output 3
    run host_sql "SELECT count(*) FROM pg_constraint WHERE conname = 'organization_users_organization_id_user_id_key'"
    assert_output 1
}

@test "compose: restart app applies nothing" {
    compose_ok restart app
    wait_until 30 over_or_exited app 2 || { show_logs; false; }
    # the log holds both starts: one applied the files, the second nothing
    run count app '^pgprelude: info: applied '
    assert_output 3
    run count app 'the migration lock was not needed'
    assert_output 1
    run count app 'phase "post": 0 files applied, 1 up to date'
    assert_output 1
    run host_sql "SELECT count(*) FROM pgprelude.history"
    assert_output 3
}

@test "compose: stop app passes TERM to the app through pgprelude; the container's status is the app's" {
    wait_until 10 count_is app 2 '^app: started' || { show_logs; false; }
    local t0 t1
    t0=$(date +%s%N)
    compose_ok stop app
    t1=$(date +%s%N)
    local ms=$(((t1 - t0) / 1000000))
    echo "# podman-compose stop app took $ms ms" >&3
    run podman logs "$(container app)"
    assert_output --partial 'app: got TERM, stopping'
    # the app's own status (0), not 143 (pgprelude ended by TERM) nor 137
    # (killed after the grace period)
    run exit_code app
    assert_output 0
    ((ms < 5000))
}

@test "compose: down -v removes the containers and the data volume" {
    compose_ok down -v
    run podman ps -a --format '{{.Names}}' --filter "label=io.podman.compose.project=$PROJECT"
    assert_output ''
    run podman volume ls --format '{{.Name}}' --filter "label=io.podman.compose.project=$PROJECT"
    assert_output ''
}
