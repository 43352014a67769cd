#!/usr/bin/env bash
# Run test programs that speak TAP, pass their output through as it comes,
# and end with one summary line:
#
#   run-tests.sh [GROUP | SETTING]...
#
#   N passed, N failed[, N skipped]
#
# Groups run in the order given:
#   --unit BIN...       cmocka unit test binaries
#   --bats PATH...      one bats run over these folders and/or .bats files
#   --valgrind BIN...   unit test binaries again, each under valgrind
#                       (--leak-check=full); memory errors or leaks count as
#                       one more failure of that binary
#   --fuzz BIN...       libFuzzer targets, each for $FUZZ_SECONDS (default
#                       10), one test each (tests/tools/fuzz.sh)
# Settings apply to the groups after them:
#   --label TEXT        put "[TEXT] " in front of each test's name
#   --env NAME=VALUE    export NAME=VALUE
#   --sanitizers        run under ASan+UBSan rules: ASAN_OPTIONS and
#                       UBSAN_OPTIONS make every report fatal
#                       (abort_on_error, halt_on_error, leaks checked) and
#                       write it to a fresh folder; at the very end, one
#                       more test passes only if no process of those groups
#                       wrote a report (and prints the reports if any did).
#                       This catches processes whose exit status no test
#                       looks at (a supervised app's init, a background run).
#
# Every TAP result line counts ("ok ..." / "not ok ...", a "# skip" directive
# counts as skipped, a "not ok ... # TODO" as passed). A program that crashes or
# exits non-zero without reporting a failing test counts as one failure.
# Exit status: 1 if anything failed or nothing ran, else 0.
set -uo pipefail

usage() {
    echo "usage: run-tests.sh [--unit BIN...] [--bats PATH...] [--valgrind BIN...] [--fuzz BIN...]" \
        "[--label TEXT] [--env NAME=VALUE] [--sanitizers]" >&2
    exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
skipped=0
label=""
san_dir=""
san_label=""
tmp=$(mktemp -d /tmp/pgprelude-run-tests.XXXXXX)
trap 'rm -rf "$tmp" ${san_dir:+"$san_dir"}' EXIT

# run_tap NAME CMD...: run CMD, echo its output line by line, count results.
# Sets last_rc (CMD's exit status) and last_failed (its failed results).
run_tap() {
    local name=$1 line rc lower
    shift
    local failed_here=0 results_here=0
    rm -f "$tmp/rc"
    while IFS= read -r line || [[ -n "$line" ]]; do
        if [[ -n "$label" && "$line" =~ ^(ok|not\ ok)(\ [0-9]+)?(\ -)?\ (.*)$ ]]; then
            line="${BASH_REMATCH[1]}${BASH_REMATCH[2]}${BASH_REMATCH[3]} [$label] ${BASH_REMATCH[4]}"
        fi
        printf '%s\n' "$line"
        lower=${line,,}
        if [[ "$line" =~ ^ok([[:space:]]|$) ]]; then
            results_here=$((results_here + 1))
            if [[ "$lower" =~ \#[[:space:]]*skip ]]; then
                skipped=$((skipped + 1))
            else
                passed=$((passed + 1))
            fi
        elif [[ "$line" =~ ^not\ ok([[:space:]]|$) ]]; then
            results_here=$((results_here + 1))
            if [[ "$lower" =~ \#[[:space:]]*skip ]]; then
                skipped=$((skipped + 1))
            elif [[ "$lower" =~ \#[[:space:]]*todo ]]; then
                passed=$((passed + 1))
            else
                failed=$((failed + 1))
                failed_here=$((failed_here + 1))
            fi
        fi
    done < <(
        "$@" </dev/null 2>&1
        echo $? >"$tmp/rc"
    )
    wait $! 2>/dev/null || true
    rc=$(cat "$tmp/rc" 2>/dev/null || echo 255)
    if ((rc != 0 && failed_here == 0)); then
        if ((rc > 128)); then
            echo "# run-tests.sh: $name: killed by signal $((rc - 128)) after $results_here results"
        else
            echo "# run-tests.sh: $name: exited with status $rc without reporting a failed test"
        fi
        failed=$((failed + 1))
    fi
    last_rc=$rc
    last_failed=$failed_here
}

# Exit status valgrind uses for its own findings (not a test's status).
VALGRIND_STATUS=99

group_unit() {
    local bin
    for bin in "$@"; do
        echo "# unit${label:+ [$label]}: $bin"
        if [[ ! -x "$bin" ]]; then
            echo "# run-tests.sh: $bin: not found or not executable"
            failed=$((failed + 1))
            continue
        fi
        CMOCKA_MESSAGE_OUTPUT=TAP run_tap "$bin" "$bin"
    done
}

group_bats() {
    echo "# bats${label:+ [$label]}: $*"
    if ! command -v bats >/dev/null 2>&1; then
        echo "# run-tests.sh: bats not found (run tests/tools/deps.sh)"
        failed=$((failed + 1))
        return
    fi
    # Serial: --jobs needs GNU parallel, and the suite shares one cluster.
    run_tap "bats $*" bats --tap "$@"
}

group_valgrind() {
    local bin outer=$label
    local label="${label:+$label, }valgrind"
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "# run-tests.sh: valgrind not found (run tests/tools/deps.sh)"
        failed=$((failed + 1))
        return
    fi
    for bin in "$@"; do
        echo "# valgrind${outer:+ [$outer]}: $bin"
        if [[ ! -x "$bin" ]]; then
            echo "# run-tests.sh: $bin: not found or not executable"
            failed=$((failed + 1))
            continue
        fi
        CMOCKA_MESSAGE_OUTPUT=TAP run_tap "valgrind $bin" valgrind -q --leak-check=full \
            --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible \
            --error-exitcode="$VALGRIND_STATUS" "$bin"
        if ((last_rc == VALGRIND_STATUS)); then
            echo "# run-tests.sh: valgrind reported memory errors or leaks in $bin (see above)"
            # run_tap counted it already when no test of it failed
            if ((last_failed > 0)); then failed=$((failed + 1)); fi
        fi
    done
}

group_fuzz() {
    echo "# fuzz${label:+ [$label]}: $* (${FUZZ_SECONDS:-10} s each)"
    run_tap "fuzz" "$here/fuzz.sh" --tap -t "${FUZZ_SECONDS:-10}" "$@"
}

setting_sanitizers() {
    if [[ -z "$san_dir" ]]; then
        san_dir=$(mktemp -d /tmp/pgprelude-sanitizers.XXXXXX)
        # processes that dropped privileges (setpriv, [exec] user) write here too
        chmod 1777 "$san_dir"
        san_label=$label
    fi
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=1:log_path=$san_dir/asan"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$san_dir/ubsan"
}

# check_sanitizer_reports: the last test of a --sanitizers run.
check_sanitizer_reports() {
    local name="${san_label:+[$san_label] }no sanitizer report from any process" f
    local -a reports=()
    for f in "$san_dir"/*; do
        [[ -f "$f" ]] && reports+=("$f")
    done
    if ((${#reports[@]} == 0)); then
        echo "ok - $name"
        passed=$((passed + 1))
        return
    fi
    echo "not ok - $name"
    for f in "${reports[@]}"; do
        echo "# --- $f"
        head -n 60 "$f" | sed 's/^/# /'
    done
    failed=$((failed + 1))
}

# Collect the groups first, so that a typo fails before anything runs.
steps=()
kind=""
while (($#)); do
    case "$1" in
    --unit | --bats | --valgrind | --fuzz)
        kind=${1#--}
        steps+=("group:$kind")
        ;;
    --label)
        (($# >= 2)) || usage
        steps+=("label:$2")
        kind=""
        shift
        ;;
    --env)
        (($# >= 2)) || usage
        [[ "$2" == [A-Za-z_]*=* ]] || { echo "run-tests.sh: error: --env needs NAME=VALUE, got \"$2\"" >&2; usage; }
        steps+=("env:$2")
        kind=""
        shift
        ;;
    --sanitizers)
        steps+=("sanitizers:")
        kind=""
        ;;
    -h | --help) usage ;;
    -*) echo "run-tests.sh: error: unknown option \"$1\"" >&2; usage ;;
    *)
        [[ -n "$kind" ]] || usage
        steps+=("arg:$1")
        ;;
    esac
    shift
done

# run_group KIND ARGS...: run one group, then say how long it took.
run_group() {
    local kind=$1 start=$SECONDS
    shift
    (($#)) || return 0
    case "$kind" in
    unit) group_unit "$@" ;;
    bats) group_bats "$@" ;;
    valgrind) group_valgrind "$@" ;;
    fuzz) group_fuzz "$@" ;;
    esac
    echo "# run-tests.sh: $kind${label:+ [$label]} took $((SECONDS - start)) s"
}

current=""
args=()
for step in "${steps[@]}" "end:"; do
    case "$step" in
    arg:*)
        args+=("${step#arg:}")
        continue
        ;;
    esac
    if [[ -n "$current" ]]; then
        run_group "$current" "${args[@]}"
    fi
    current=""
    args=()
    case "$step" in
    group:*) current=${step#group:} ;;
    label:*) label=${step#label:} ;;
    env:*) export "${step#env:}" ;;
    sanitizers:) setting_sanitizers ;;
    esac
done

if [[ -n "$san_dir" ]]; then
    check_sanitizer_reports
fi

summary="$passed passed, $failed failed"
if ((skipped > 0)); then
    summary+=", $skipped skipped"
fi
echo "$summary"
if ((failed > 0 || passed == 0)); then
    exit 1
fi
exit 0
