# Loaded by every test file with `load test_helper/common`.
#
# Gives:
#   PGPRELUDE  the binary under test: $PGPRELUDE when set (an absolute path,
#              e.g. the ASan+UBSan build/asan/pgprelude), else <repo>/build/pgprelude
#   PSQL       the real psql (/usr/lib/postgresql/15/bin/psql; Debian's
#              /usr/bin/psql is a slow Perl wrapper). That directory is also put
#              first on PATH, so plain `psql`, `createdb`, `pg_isready` are fast.
#   REPO       the repository root
#   new_db           make a fresh, empty database for this test; exports
#                    PGDATABASE and DATABASE_URL (call it from setup())
#   sql QUERY [ARGS] run QUERY in $PGDATABASE (psql -X -A -t -q, ON_ERROR_STOP);
#                    with no QUERY, reads SQL from stdin
#   write_config FILE   write stdin to FILE (creating its directory)
#   workdir [SUBDIR]    print this test's temp dir ($BATS_TEST_TMPDIR), or
#                       create SUBDIR in it and print that
#   memory_limited KB CMD...  run CMD with at most KB KiB of memory
#   wait_until SECONDS CMD...  run CMD every 0.05 s until it succeeds (at most
#                    SECONDS); its last status is the result
#   sql_is VALUE QUERY  whether QUERY (in $PGDATABASE) returns VALUE
#   file_has FILE ERE   whether a line of FILE matches ERE
#   closed_port         a loopback port no socket uses (tests/tools/lib.sh pick_port)
#   ADVISORY            the SQL condition for advisory locks in this test's
#                       database (other tests' sessions may still be ending)
# The cluster itself comes from setup_suite.bash (PGHOST, PGPORT, PGUSER,
# PGPASSWORD, PGPRELUDE_TEST_SOCKDIR, PGPRELUDE_TEST_PGBIN, PGPRELUDE_TEST_CLUSTER).

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
PGPRELUDE=${PGPRELUDE:-$REPO/build/pgprelude}
PSQL=/usr/lib/postgresql/15/bin/psql
PATH=/usr/lib/postgresql/15/bin:$PATH
export REPO PGPRELUDE PSQL PATH

if [[ -z "${PGPRELUDE_TEST_CLUSTER:-}" || -z "${PGPORT:-}" ]]; then
    echo "common.bash: error: no test cluster; run the tests with bats on the tests/bats" \
        "folder (or a file in it) so that setup_suite.bash starts one" >&2
    return 1
fi

# (its quotes are SQL's, meant literally)
# shellcheck disable=SC2089,SC2090
ADVISORY="locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
# shellcheck disable=SC2090
export ADVISORY

# new_db: create a database with a unique name and make it this test's default.
new_db() {
    local name="t_${BATS_SUITE_TEST_NUMBER:-0}_${RANDOM}${RANDOM}"
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE \"$name\"" ||
        { echo "new_db: could not create database $name" >&2; return 1; }
    export PGDATABASE=$name
    export DATABASE_URL="postgresql://postgres:${PGPASSWORD}@127.0.0.1:${PGPORT}/${name}"
}

# sql QUERY [PSQL-ARGS...]: run QUERY, print the unaligned, tuples-only result.
# Without QUERY, the SQL is read from stdin.
sql() {
    if (($# == 0)); then
        "$PSQL" -X -A -t -q -v ON_ERROR_STOP=1
    else
        local query=$1
        shift
        "$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 "$@" -c "$query"
    fi
}

# write_config FILE <<EOF ... EOF
write_config() {
    mkdir -p "$(dirname "$1")"
    cat >"$1"
}

# workdir [SUBDIR]: this test's own temp dir (removed by bats afterwards).
workdir() {
    if (($# == 0)); then
        echo "$BATS_TEST_TMPDIR"
    else
        mkdir -p "$BATS_TEST_TMPDIR/$1"
        echo "$BATS_TEST_TMPDIR/$1"
    fi
}

# memory_limited KB CMD...: run CMD with at most KB KiB of memory: ulimit -v.
# An ASan build cannot start under such a limit (it reserves terabytes of
# address space for its shadow memory), so for one ASan's allocator is told
# instead to fail every allocation larger than KB (allocator_may_return_null),
# which is what the limit provokes; its warning about that goes to stderr,
# not to the report folder of run-tests.sh --sanitizers (both runtimes read
# log_path: UBSan's, read last, wins).
memory_limited() {
    local kb=$1
    shift
    if LC_ALL=C grep -q -a -m 1 __asan_init "$1" 2>/dev/null; then
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1:max_allocation_size_mb=$((kb / 1024)):log_path=stderr" \
            UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=stderr" "$@"
    else
        bash -c 'ulimit -v "$1" && shift && exec "$@"' _ "$kb" "$@"
    fi
}

# wait_until SECONDS CMD...: poll instead of sleeping a guessed time. Returns
# CMD's last status: in a test, a condition that never came fails it there.
wait_until() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 20; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    "$@" && return 0
    echo "wait_until: still false after $limit s: $*" >&2
    return 1
}

sql_is() {
    [[ "$(sql "$2")" == "$1" ]]
}

file_has() {
    grep -Eq -- "$2" "$1" 2>/dev/null
}

closed_port() {
    bash -c 'source "$1/tests/tools/lib.sh" && pick_port' closed_port "$REPO"
}
