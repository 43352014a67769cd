#!/usr/bin/env bash
# Run the unit test binaries and the bats suite, pass their TAP output through
# as it comes, and end with one summary line:
#
#   run-tests.sh [--unit BIN...] [--bats DIR]
#
#   N passed, N failed[, N skipped]
#
# Every TAP result line counts ("ok ..." / "not ok ...", a "# skip" directive
# counts as skipped, a "not ok ... # TODO" as passed). A program that crashes or
# exits non-zero without reporting a failing test counts as one failure.
# Exit status: 1 if anything failed or nothing ran, else 0.
set -uo pipefail

usage() {
    echo "usage: run-tests.sh [--unit BIN...] [--bats DIR]" >&2
    exit 2
}

units=()
bats_dirs=()
mode=""
while (($#)); do
    case "$1" in
    --unit) mode=unit ;;
    --bats) mode=bats ;;
    -h | --help) usage ;;
    -*) echo "run-tests.sh: error: unknown option \"$1\"" >&2; usage ;;
    *)
        case "$mode" in
        unit) units+=("$1") ;;
        bats) bats_dirs+=("$1") ;;
        *) usage ;;
        esac
        ;;
    esac
    shift
done

passed=0
failed=0
skipped=0
tmp=$(mktemp -d /tmp/pgprelude-run-tests.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# run_tap NAME CMD...: run CMD, echo its output line by line, count results.
run_tap() {
    local name=$1 line rc lower
    shift
    local failed_here=0 results_here=0
    rm -f "$tmp/rc"
    while IFS= read -r line || [[ -n "$line" ]]; do
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
}

for bin in "${units[@]}"; do
    echo "# unit: $bin"
    if [[ ! -x "$bin" ]]; then
        echo "# run-tests.sh: $bin: not found or not executable"
        failed=$((failed + 1))
        continue
    fi
    CMOCKA_MESSAGE_OUTPUT=TAP run_tap "$bin" "$bin"
done

for dir in "${bats_dirs[@]}"; do
    echo "# bats: $dir"
    if ! command -v bats >/dev/null 2>&1; then
        echo "# run-tests.sh: bats not found (run tests/tools/deps.sh)"
        failed=$((failed + 1))
        continue
    fi
    # Serial: --jobs needs GNU parallel, and the suite shares one cluster.
    run_tap "bats $dir" bats --tap "$dir"
done

summary="$passed passed, $failed failed"
if ((skipped > 0)); then
    summary+=", $skipped skipped"
fi
echo "$summary"
if ((failed > 0 || passed == 0)); then
    exit 1
fi
exit 0
