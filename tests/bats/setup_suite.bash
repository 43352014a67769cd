# bats-core runs setup_suite once before the first test file and teardown_suite
# once after the last (this file is found by its name, next to the .bats files).
#
# One PostgreSQL 15 cluster serves the whole suite; each test makes its own
# database in it (new_db in test_helper/common.bash). Its connection settings
# are exported for every test: PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
# PGPRELUDE_TEST_SOCKDIR PGPRELUDE_TEST_PGBIN PGPRELUDE_TEST_CLUSTER.
#
# To keep a cluster across runs (faster when iterating), start one yourself and
# point PGPRELUDE_TEST_CLUSTER at it:
#   tests/tools/pgcluster.sh start /tmp/pgp && PGPRELUDE_TEST_CLUSTER=/tmp/pgp bats tests/bats
# It is then neither stopped nor removed at the end.

setup_suite() {
    local repo
    repo=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

    if [[ -n "${PGPRELUDE_TEST_CLUSTER:-}" ]]; then
        PGPRELUDE_TEST_CLUSTER_OWNED=
    else
        # Mode 755 so that the postgres user can reach it when we are root
        # (bats' own temp dirs are 0700). On tmpfs when there is room (each
        # test's database is about 8 MB; Docker's default /dev/shm is only
        # 64 MB): CREATE DATABASE and initdb are 2-4 times faster there.
        local base=/tmp avail
        avail=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }') || avail=0
        if [[ -w /dev/shm && "${avail:-0}" -ge $((2 * 1024 * 1024)) ]]; then
            base=/dev/shm
        fi
        PGPRELUDE_TEST_CLUSTER=$(mktemp -d "$base/pgprelude-test.XXXXXX")
        chmod 755 "$PGPRELUDE_TEST_CLUSTER"
        PGPRELUDE_TEST_CLUSTER_OWNED=1
    fi
    export PGPRELUDE_TEST_CLUSTER PGPRELUDE_TEST_CLUSTER_OWNED

    # 3>&-: the server must not inherit bats' TAP stream.
    "$repo/tests/tools/pgcluster.sh" start "$PGPRELUDE_TEST_CLUSTER" 3>&-

    # shellcheck disable=SC1091
    source "$PGPRELUDE_TEST_CLUSTER/env"
    export PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGPRELUDE_TEST_SOCKDIR PGPRELUDE_TEST_PGBIN
}

teardown_suite() {
    local repo
    repo=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    if [[ -n "${PGPRELUDE_TEST_CLUSTER_OWNED:-}" && -d "${PGPRELUDE_TEST_CLUSTER:-}" ]]; then
        "$repo/tests/tools/pgcluster.sh" stop "$PGPRELUDE_TEST_CLUSTER" 3>&-
        rm -rf "$PGPRELUDE_TEST_CLUSTER"
    fi
}
