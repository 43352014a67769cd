#!/usr/bin/env bash
# Run libFuzzer targets for a bounded time, all at once, and report each.
#
#   fuzz.sh [--tap] [-t SECONDS] BIN...
#
# BIN is a target built by `make fuzz-build`: <build>/fuzz/fuzz_NAME. Each runs
# for SECONDS (default $FUZZ_SECONDS, else 60) on
#   <build>/fuzz/corpus/NAME   new inputs it finds (kept between runs)
#   tests/fuzz/corpus/NAME     the seed corpus (read only)
# with the dictionary tests/fuzz/NAME.dict when there is one. A crash, leak,
# sanitizer report, broken invariant or timeout (-timeout=10 s per input)
# leaves the input in <build>/fuzz/artifacts/NAME/ and fails that target;
# replay it with: BIN ARTIFACT. The target's own log lines are discarded
# (-close_fd_mask=2: libFuzzer and the sanitizers still report).
# With --tap the output is TAP, one test per target ("fuzz: NAME"), with the
# tail of a failing target's log as comments. Exit status: 1 if any failed.
set -uo pipefail

tap=0
seconds=${FUZZ_SECONDS:-60}
while (($#)); do
    case "$1" in
    --tap) tap=1 ;;
    -t)
        (($# >= 2)) || { echo "fuzz.sh: error: -t needs a number of seconds" >&2; exit 2; }
        seconds=$2
        shift
        ;;
    -*) echo "fuzz.sh: error: unknown option \"$1\"" >&2; exit 2 ;;
    *) break ;;
    esac
    shift
done
(($#)) || { echo "usage: fuzz.sh [--tap] [-t SECONDS] BIN..." >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: error: bad number of seconds \"$seconds\"" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
logs=$(mktemp -d /tmp/pgprelude-fuzz.XXXXXX)
trap 'rm -rf "$logs"' EXIT

# The fuzzers may not inherit a --sanitizers run's settings: their reports
# belong in their own output.
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

pids=()
names=()
builds=()
touch "$logs/start"
for bin in "$@"; do
    name=$(basename "$bin")
    name=${name#fuzz_}
    names+=("$name")
    if [[ ! -x "$bin" ]]; then
        echo "fuzz.sh: $bin: not found or not executable (make fuzz-build)" >"$logs/$name.log"
        echo 127 >"$logs/$name.rc"
        pids+=("")
        builds+=("")
        continue
    fi
    build=$(cd "$(dirname "$bin")" && pwd)
    builds+=("$build")
    mkdir -p "$build/corpus/$name" "$build/artifacts/$name"
    opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192
        -close_fd_mask=2 -print_final_stats=1 -artifact_prefix="$build/artifacts/$name/")
    if [[ -f "$repo/tests/fuzz/$name.dict" ]]; then
        opts+=(-dict="$repo/tests/fuzz/$name.dict")
    fi
    dirs=("$build/corpus/$name")
    if [[ -d "$repo/tests/fuzz/corpus/$name" ]]; then
        dirs+=("$repo/tests/fuzz/corpus/$name")
    fi
    (
        "$bin" "${opts[@]}" "${dirs[@]}" >"$logs/$name.log" 2>&1
        echo $? >"$logs/$name.rc"
    ) &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    if [[ -n "$pid" ]]; then wait "$pid"; fi
done

# report LOG: the first report in LOG (up to its SUMMARY line, at most 50
# lines), and where libFuzzer saved the input.
report() {
    awk '/ERROR: |runtime error|invariant failed|deadly signal/ && !start { start = NR }
         start && NR < start + 50 && !done { print; if (/^SUMMARY: /) done = 1 }' "$1"
    grep -E '^(Test unit written to|Base64:)' "$1" || tail -n 5 "$1"
}

((tap)) && echo "1..${#names[@]}"
status=0
for ((i = 1; i <= ${#names[@]}; i++)); do
    name=${names[i - 1]}
    build=${builds[i - 1]}
    rc=$(cat "$logs/$name.rc" 2>/dev/null || echo 255)
    # "Done 123456 runs in 10 second(s)", "stat::number_of_executed_units: N"
    runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$logs/$name.log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$logs/$name.log" | tail -n 1)
    what="${runs:-?} runs in ${seconds} s${cov:+, $cov}"
    if ((rc == 0)); then
        if ((tap)); then echo "ok $i fuzz: $name ($what)"; else echo "fuzz: $name: ok ($what)"; fi
    else
        status=1
        if ((tap)); then
            echo "not ok $i fuzz: $name (exit status $rc)"
            report "$logs/$name.log" | sed 's/^/# /'
        else
            echo "fuzz: $name: FAILED (exit status $rc)"
            report "$logs/$name.log"
        fi
        if [[ -n "$build" ]]; then
            find "$build/artifacts/$name" -type f -newer "$logs/start" | while read -r a; do
                if ((tap)); then echo "# replay: $build/fuzz_$name $a"; else echo "replay: $build/fuzz_$name $a"; fi
            done
        fi
    fi
done
exit "$status"
