#!/usr/bin/env bats
# The image, built and run with podman offline (tests/tools/image-build.sh):
# its entrypoint is PID 1, runs the phases against the suite's PostgreSQL as a
# non-root user, hands over, and `podman stop` ends the container promptly
# with the application's own exit status.
#
# To stay fast, this builds the Dockerfile's runtime stage around the binary
# `make static` built (image-build.sh --prebuilt); `make image` builds the
# whole Dockerfile, build stage included.

load test_helper/common
load test_helper/image

IMAGE=localhost/pgprelude:bats-test

setup_file() {
    image_prepare "$IMAGE" podman
}

teardown_file() {
    if command -v podman >/dev/null 2>&1; then
        podman ps -aq --filter label=pgprelude-test=70_image |
            xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
    fi
}

setup() {
    skip_without_image
    new_db
    NAME=pgprelude-bats-$BATS_SUITE_TEST_NUMBER-$RANDOM
}

teardown() {
    if [[ -n "${NAME:-}" ]] && command -v podman >/dev/null 2>&1; then
        podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    fi
}

# start_app CMD...: start the image detached with the test configuration and
# CMD as the application; wait until the app says it started.
app_started() {
    podman logs "$NAME" 2>&1 | grep -q "app started"
}

start_app() {
    podman run -d --name "$NAME" --label pgprelude-test=70_image --network host \
        -e DATABASE_URL="$DATABASE_URL" -e PGPRELUDE_CONFIG=/etc/pgprelude-test.ini \
        -v "$BATS_TEST_DIRNAME/fixtures/image/pgprelude.ini:/etc/pgprelude-test.ini:ro" \
        "$IMAGE" "$@" >/dev/null
    wait_until 10 app_started && return 0
    podman logs "$NAME" >&2
    echo "start_app: the app did not start within 10 s" >&2
    return 1
}

# stop_ms: podman stop the container; prints how long it took in ms.
stop_ms() {
    local t0 t1
    t0=$(date +%s%N)
    podman stop -t 10 "$NAME" >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

exit_code() {
    podman inspect --format '{{.State.ExitCode}}' "$NAME"
}

APP_TRAP='trap "echo app got TERM; exit 42" TERM; echo app started; while :; do sleep 0.1; done'

@test "image: pgprelude is PID 1 as a non-root user, runs the phases, hands over" {
    start_app /bin/sh -c "$APP_TRAP"
    run podman exec "$NAME" cat /proc/1/comm
    assert_output pgprelude
    run podman exec "$NAME" cat /proc/1/status
    assert_output --regexp $'Uid:\t10001\t'
    run podman logs "$NAME"
    assert_output --partial 'applied /db-init/001_app_settings.sql'
    assert_output --partial 'handing over to "/bin/sh" (supervised)'
    run sql "SELECT count(*) FROM pgprelude.history WHERE phase = 'pre'"
    assert_output 2
    run sql "SELECT to_regclass('public.app_settings') IS NOT NULL"
    assert_output t
}

@test "image: podman stop forwards TERM and exits with the app's status within a second" {
    start_app /bin/sh -c "$APP_TRAP"
    local ms
    ms=$(stop_ms)
    run exit_code
    assert_output 42
    run podman logs "$NAME"
    assert_output --partial "app got TERM"
    echo "# podman stop took $ms ms" >&3
    # podman stop's own overhead is a few hundred ms; a lost signal would take 10 s
    ((ms < 2000))
}

@test "image: an app killed by TERM gives 143, and a restart applies nothing" {
    start_app /bin/sh -c 'echo app started; exec sleep 2147483647'
    local ms
    ms=$(stop_ms)
    run exit_code
    assert_output 143
    ((ms < 2000))
    podman rm -f -t 0 "$NAME" >/dev/null

    start_app /bin/sh -c 'echo app started; exec sleep 2147483647'
    run podman logs "$NAME"
    refute_output --partial 'applied /db-init'
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 2
}

@test "image: the binary can be copied into another image (COPY --from)" {
    local ctx
    ctx=$(workdir ctx)
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM docker.io/library/busybox:1.36
COPY --from=$IMAGE /usr/local/bin/pgprelude /usr/local/bin/pgprelude
ENTRYPOINT ["/usr/local/bin/pgprelude", "--"]
DOCKERFILE
    podman build --quiet --network host --pull=never -t localhost/pgprelude-copy:bats-test "$ctx" >/dev/null
    run podman run --rm --network host --entrypoint /usr/local/bin/pgprelude localhost/pgprelude-copy:bats-test --version
    podman rmi -f localhost/pgprelude-copy:bats-test >/dev/null 2>&1 || true
    assert_success
    assert_output --partial "pgprelude"
}
