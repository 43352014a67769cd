#!/usr/bin/env bash
# The benchmarks behind `make bench`: pgprelude against the floor (what any
# program must do) and against its peers, measured in one run on this machine
# against a throwaway PostgreSQL 15 cluster of its own. Prints the figures and
# their ratios, and writes them to build/bench.txt too. Times are medians of
# several runs; the commands compared take turns (tests/bench/timeit.py), so
# that other load on the machine falls on all of them alike. Nothing here
# asserts a timing: a missed target is printed as MISSED, and the exit status
# is 0 unless something failed to run.
#
#   tests/bench/run.sh            (make bench)
#
# Environment:
#   BENCH_N=200        migration files (tests/bench/gen.sh)
#   BENCH_RUNS=15      timed runs of each no-op restart (the slow ones get fewer)
#   BENCH_OUT=FILE     where to write the results (default build/bench.txt)
#   DBMATE_VERSION     the dbmate npm package to compare with (default 2.36.0);
#                      installed with npm into build/bench/npm, not globally
#
# Every tool connects the same way: TCP to 127.0.0.1, scram-sha-256 password
# authentication, as an application container does.
set -euo pipefail

prog=run.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$REPO/tests/bench
N=${BENCH_N:-200}
RUNS=${BENCH_RUNS:-15}
OUT=${BENCH_OUT:-$REPO/build/bench.txt}
DBMATE_VERSION=${DBMATE_VERSION:-2.36.0}
PGBIN=/usr/lib/postgresql/15/bin
PSQL=$PGBIN/psql
PGPRELUDE=$REPO/build/pgprelude
STATIC=$REPO/build/pgprelude-static

die() {
    echo "$prog: error: $*" >&2
    exit 1
}
note() { echo "$prog: $*" >&2; }

# say LINE...: a line of results, to stdout and to $OUT.
say() {
    printf '%s\n' "$@" | tee -a "$OUT"
}

[[ -x "$PGPRELUDE" ]] || die "$PGPRELUDE not built (run make)"

# Benchmark-only packages; the rest come from make deps.
"$REPO/tests/tools/deps.sh" bench

tmp=$(mktemp -d /tmp/pgprelude-bench.XXXXXX)
chmod 755 "$tmp" # the postgres user must reach the cluster's folder
cleanup() {
    "$REPO/tests/tools/pgcluster.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

note "starting a PostgreSQL cluster in $tmp/pg"
"$REPO/tests/tools/pgcluster.sh" start "$tmp/pg"
# shellcheck disable=SC1091
source "$tmp/pg/env"
export PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
export PATH=$PGBIN:$PATH
url() { echo "postgresql://$PGUSER:$PGPASSWORD@127.0.0.1:$PGPORT/$1"; }
SERVERLOG=$tmp/pg/log/postgresql.log

# The floor: connect, SELECT 1, disconnect; with Debian's libpq for the
# dynamic build, and with the static build's own libraries (make static) for
# the static binary, so that each is compared with the same libpq.
cc -O2 -std=c11 -Wall -Wextra -I/usr/include/postgresql -o "$tmp/floor" "$BENCH/floor.c" -lpq
STATIC_DEPS=${PGPRELUDE_STATIC_DEPS:-$REPO/build/static-deps}/musl
FLOOR_STATIC=
if [[ -x "$STATIC" && -f "$STATIC_DEPS/lib/libpq.a" ]] && command -v musl-gcc >/dev/null 2>&1; then
    musl-gcc -O2 -static -I"$STATIC_DEPS/include" -o "$tmp/floor-static" "$BENCH/floor.c" \
        -L"$STATIC_DEPS/lib" -lpq -lpgcommon -lpgport -lssl -lcrypto -lpthread && FLOOR_STATIC=$tmp/floor-static
fi

note "generating $N migration files"
"$BENCH/gen.sh" -n "$N" "$tmp/mig"
"$BENCH/gen.sh" -n "$N" -f dbmate "$tmp/dbmate"
# The cold floor: one psql session, each file in its own transaction.
for f in "$tmp"/mig/*.sql; do printf 'BEGIN;\n\\i %s\nCOMMIT;\n' "$f"; done >"$tmp/floor.sql"

# config NAME DB: a pgprelude configuration applying $tmp/mig to DB.
config() {
    printf '%s\n' '[database]' "url = $(url "$2")" 'lock_wait_timeout = 5m' '[phase bench]' "dir = $tmp/mig" >"$tmp/$1.ini"
}
config noop bench_noop
config cold bench_cold

# dbmate, from npm (its package carries a prebuilt Go binary per platform).
DBMATE=
if command -v npm >/dev/null 2>&1; then
    npmdir=$REPO/build/bench/npm
    DBMATE=$(find "$npmdir/node_modules/@dbmate" -path '*/bin/dbmate' -type f 2>/dev/null | head -n 1 || true)
    if [[ -z "$DBMATE" || "$("$DBMATE" --version 2>/dev/null)" != "dbmate version $DBMATE_VERSION" ]]; then
        note "installing dbmate $DBMATE_VERSION with npm into $npmdir"
        mkdir -p "$npmdir"
        if npm install --prefix "$npmdir" --no-audit --no-fund --no-save --silent "dbmate@$DBMATE_VERSION" >"$tmp/npm.log" 2>&1; then
            DBMATE=$(find "$npmdir/node_modules/@dbmate" -path '*/bin/dbmate' -type f 2>/dev/null | head -n 1 || true)
        else
            note "npm install dbmate failed; dbmate is left out (see below)"
            tail -n 5 "$tmp/npm.log" >&2
            DBMATE=
        fi
    fi
fi
dbmate() { "$DBMATE" --no-dump-schema -u "$(url "$1")?sslmode=disable" -d "$tmp/dbmate" "${@:2}"; }

timeit() { python3 "$BENCH/timeit.py" "$@"; }
# field LABEL COLUMN < timeit output: that column (2 median, 3 min, 4 max) of LABEL's line.
field() { awk -v l="$1" -v c="$2" '$1 == l { print $c }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# verdict VALUE OP TARGET: "ok" or "MISSED".
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = op == "<=" ? v <= t : op == ">=" ? v >= t : v < t; print ok ? "ok" : "MISSED" }'; }

: >"$OUT"
say "pgprelude benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), make bench)" \
    "machine: $(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $("$PSQL" -XAtc 'SHOW server_version')," \
    "  TCP 127.0.0.1 with scram-sha-256 for every tool; $N migration files (tests/bench/gen.sh)" \
    "pgprelude $("$PGPRELUDE" --version | cut -d' ' -f2) (build/pgprelude$([[ -x "$STATIC" ]] && echo ", and build/pgprelude-static as make static left it on $(date -u -r "$STATIC" '+%Y-%m-%d %H:%M')"))" \
    "libpq's default sslmode (prefer) for pgprelude, the floor and psql; sslmode=disable for dbmate, whose driver wants TLS otherwise" ""

# --- no-op restart -----------------------------------------------------------
note "preparing the no-op restart: applying $N files with each tool"
createdb bench_noop
createdb bench_runner
"$PGPRELUDE" -c "$tmp/noop.ini" migrate 2>"$tmp/prime.log" || { cat "$tmp/prime.log" >&2; die "pgprelude could not apply the generated files"; }
PGDATABASE=bench_runner "$BENCH/psql-runner.sh" "$tmp/mig" 2>/dev/null
if [[ -n "$DBMATE" ]]; then
    createdb bench_dbmate
    dbmate bench_dbmate migrate >/dev/null
fi
# Every run must find everything applied.
"$PGPRELUDE" -c "$tmp/noop.ini" migrate 2>&1 | grep -q "0 files applied, $N up to date" ||
    die "a second pgprelude run did not find all $N files applied"

note "timing the no-op restart ($RUNS runs each)"
cmds=("pgprelude=$PGPRELUDE -c $tmp/noop.ini migrate")
[[ -x "$STATIC" ]] && cmds+=("pgprelude-static=$STATIC -c $tmp/noop.ini migrate")
cmds+=("floor=$tmp/floor $(url bench_noop)")
[[ -n "$FLOOR_STATIC" ]] && cmds+=("floor-static=$FLOOR_STATIC $(url bench_noop)")
[[ -n "$DBMATE" ]] && cmds+=("dbmate=$DBMATE --no-dump-schema -u $(url bench_dbmate)?sslmode=disable -d $tmp/dbmate migrate")
timeit -r "$RUNS" -w 2 "${cmds[@]}" >"$tmp/noop.txt"
note "timing the psql-per-file runner (3 runs: it is slow)"
PGDATABASE=bench_runner timeit -r 3 -w 0 "psql-runner=$BENCH/psql-runner.sh $tmp/mig" >>"$tmp/noop.txt"

med() { field "$1" 2 <"$tmp/noop.txt"; }
say "no-op restart, all $N files applied (median ms of $RUNS runs; min..max):"
for l in pgprelude pgprelude-static floor floor-static dbmate psql-runner; do
    line=$(awk -v l="$l" '$1 == l' "$tmp/noop.txt")
    [[ -n "$line" ]] || continue
    read -r _ m lo hi _ <<<"$line"
    case $l in
    pgprelude) what="pgprelude migrate (dynamic, build/pgprelude)" ;;
    pgprelude-static) what="pgprelude migrate (static, build/pgprelude-static)" ;;
    floor) what="floor: libpq connect + SELECT 1 (tests/bench/floor.c, Debian's libpq)" ;;
    floor-static) what="floor, static with the static build's libpq" ;;
    dbmate) what="dbmate $DBMATE_VERSION migrate (its Go binary from npm)" ;;
    psql-runner) what="psql per file + sha256sum guard (tests/bench/psql-runner.sh, 3 runs)" ;;
    esac
    say "$(printf '  %-70s %8.1f   (%s..%s)' "$what" "$m" "$lo" "$hi")"
done
[[ -n "$DBMATE" ]] || say "  dbmate: not measured (npm missing or npm install dbmate@$DBMATE_VERSION failed)"
peers=(psql-runner)
[[ -n "$DBMATE" ]] && peers+=(dbmate)
fastest=
for p in "${peers[@]}"; do
    if [[ -z "$fastest" ]] || awk -v a="$(med "$p")" -v b="$(med "$fastest")" 'BEGIN { exit !(a < b) }'; then fastest=$p; fi
done
low=floor
[[ -n "$FLOOR_STATIC" ]] && awk -v a="$(med floor-static)" -v b="$(med floor)" 'BEGIN { exit !(a < b) }' && low=floor-static
say "  $fastest / $low: $(ratio "$(med "$fastest")" "$(med "$low")") (the most a libpq program could be faster than $fastest here)"
for l in pgprelude pgprelude-static; do
    [[ -n "$(med "$l")" ]] || continue
    fl=floor
    [[ $l == pgprelude-static && -n "$FLOOR_STATIC" ]] && fl=floor-static
    r=$(ratio "$(med "$l")" "$(med "$fl")")
    say "  ratio $l / $fl: $r (target <= 1.5: $(verdict "$r" '<=' 1.5))"
    r=$(ratio "$(med "$fastest")" "$(med "$l")")
    say "  ratio fastest peer ($fastest) / $l: $r (target >= 2: $(verdict "$r" '>=' 2))"
done

# Round trips: every statement the server sees in one no-op run.
size=$(stat -c %s "$SERVERLOG")
PGOPTIONS='-c log_statement=all' "$PGPRELUDE" -c "$tmp/noop.ini" migrate 2>/dev/null
sleep 0.3 # the server writes its log asynchronously
tail -c +$((size + 1)) "$SERVERLOG" | grep -E 'LOG:  (statement|execute [^:]*):' |
    sed -E 's/.*LOG:  (statement|execute [^:]*): //' >"$tmp/queries.txt" || true
say "  queries per no-op restart: $(wc -l <"$tmp/queries.txt") (one connection; each query is one round trip)"
while IFS= read -r q; do say "    ${q:0:110}"; done <"$tmp/queries.txt"
say ""

# --- no-op restart with declared constraints ------------------------------------
# 50 tables, each with a declared unique, a partial unique and a not_null, all
# converged already; against the same tables without the constraint file.
note "preparing the no-op restart with 150 declared constraints"
mkdir -p "$tmp/cons" "$tmp/cons0"
for i in $(seq 1 50); do
    echo "CREATE TABLE ct_$i (a int, b int, live boolean, n int);"
done >"$tmp/cons/001_tables.sql"
cp "$tmp/cons/001_tables.sql" "$tmp/cons0/"
for i in $(seq 1 50); do
    printf '[unique ct_%s_a_b_key]\ntable = ct_%s\ncolumns = a, b\n' "$i" "$i"
    printf '[unique ct_%s_b_live]\ntable = ct_%s\ncolumns = b\nwhere = live\n' "$i" "$i"
    printf '[not_null ct_%s_n]\ntable = ct_%s\ncolumn = n\n' "$i" "$i"
done >"$tmp/cons/002_constraints.ini"
for c in cons cons0; do
    printf '%s\n' '[database]' "url = $(url "bench_$c")" '[phase bench]' "dir = $tmp/$c" >"$tmp/$c.ini"
    createdb "bench_$c"
    "$PGPRELUDE" -c "$tmp/$c.ini" migrate 2>"$tmp/prime.log" || { cat "$tmp/prime.log" >&2; die "pgprelude could not apply $tmp/$c"; }
done
xid() { "$PSQL" -XAtd bench_cons -c 'SELECT pg_catalog.txid_current()'; }
x0=$(xid)
"$PGPRELUDE" -c "$tmp/cons.ini" migrate 2>/dev/null
xids=$(($(xid) - x0 - 1))
# The statements the server sees in one such run; those that read the
# catalog ahead go in a few pipelines, one round trip each.
size=$(stat -c %s "$SERVERLOG")
PGOPTIONS='-c log_statement=all' "$PGPRELUDE" -c "$tmp/cons.ini" migrate 2>/dev/null
sleep 0.3 # the server writes its log asynchronously
cstmts=$(tail -c +$((size + 1)) "$SERVERLOG" | grep -cE 'LOG:  (statement|execute [^:]*):' || true)
timeit -r "$RUNS" -w 2 "with=$PGPRELUDE -c $tmp/cons.ini migrate" "without=$PGPRELUDE -c $tmp/cons0.ini migrate" >"$tmp/cons.txt"
cw=$(field with 2 <"$tmp/cons.txt")
c0=$(field without 2 <"$tmp/cons.txt")
r=$(ratio "$cw" "$c0")
say "no-op restart with 50 uniques, 50 partial uniques and 50 not_null declared (median ms of $RUNS runs):"
say "$(printf '  %-70s %8.1f' "with the constraint file (150 specs on 50 tables)" "$cw")"
say "$(printf '  %-70s %8.1f' "without it (the same tables)" "$c0")"
say "  ratio with / without: $r (target <= 1.3: $(verdict "$r" '<=' 1.3)); transaction IDs taken by a no-op run: $xids"
say "  statements per no-op run with the constraint file: $cstmts"
# Without the file's digest (a start after an upgrade, or after DDL on its
# tables) every spec is checked; another session holding the migration lock
# keeps each run from recording the digest again.
PGAPPNAME=bench-holder "$PSQL" -Xq -d bench_cons -c "DELETE FROM pgprelude.history WHERE outcome = 'converged'" \
    -c "SELECT pg_advisory_lock(1885827186, hashtext('public.pgprelude_history'))" -c "SELECT pg_sleep(3600)" \
    >/dev/null 2>&1 &
holder=$!
for _ in $(seq 50); do
    [[ $("$PSQL" -XAtq -d bench_cons -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == 1 ]] && break
    sleep 0.1
done
timeit -r "$RUNS" -w 2 "specs=$PGPRELUDE -c $tmp/cons.ini migrate" "without=$PGPRELUDE -c $tmp/cons0.ini migrate" >"$tmp/cons1.txt"
"$PSQL" -XAtq -d bench_cons -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bench-holder'" >/dev/null
wait "$holder" 2>/dev/null || true
say "$(printf '  %-70s %8.1f   (%s times without)' "with the file but no digest: every spec checked" "$(field specs 2 <"$tmp/cons1.txt")" \
    "$(ratio "$(field specs 2 <"$tmp/cons1.txt")" "$(field without 2 <"$tmp/cons1.txt")")")"
say ""

# --- cold apply ----------------------------------------------------------------
CRUNS=7
note "timing the cold apply of $N files ($CRUNS runs each, a fresh database for every run)"
cmds=("pgprelude=$PGPRELUDE -c $tmp/cold.ini migrate")
[[ -x "$STATIC" ]] && cmds+=("pgprelude-static=$STATIC -c $tmp/cold.ini migrate")
cmds+=("floor=$PSQL -X -q -v ON_ERROR_STOP=1 -d bench_cold -f $tmp/floor.sql")
[[ -n "$DBMATE" ]] && cmds+=("dbmate=$DBMATE --no-dump-schema -u $(url bench_cold)?sslmode=disable -d $tmp/dbmate migrate")
timeit -r "$CRUNS" -w 1 -p "$PGBIN/dropdb --if-exists bench_cold 2>/dev/null; $PGBIN/createdb bench_cold" "${cmds[@]}" >"$tmp/cold.txt"
cmed() { field "$1" 2 <"$tmp/cold.txt"; }
say "cold apply of $N files on a fresh database (median ms of $CRUNS runs; min..max):"
for l in pgprelude pgprelude-static floor dbmate; do
    line=$(awk -v l="$l" '$1 == l' "$tmp/cold.txt")
    [[ -n "$line" ]] || continue
    read -r _ m lo hi _ <<<"$line"
    case $l in
    pgprelude) what="pgprelude migrate (dynamic)" ;;
    pgprelude-static) what="pgprelude migrate (static)" ;;
    floor) what="floor: one psql session, BEGIN; \\i file; COMMIT; per file" ;;
    dbmate) what="dbmate $DBMATE_VERSION migrate" ;;
    esac
    say "$(printf '  %-70s %8.1f   (%s..%s)' "$what" "$m" "$lo" "$hi")"
done
for l in pgprelude pgprelude-static; do
    [[ -n "$(cmed "$l")" ]] || continue
    r=$(ratio "$(cmed "$l")" "$(cmed floor)")
    say "  ratio $l / floor: $r (target <= 1.25: $(verdict "$r" '<=' 1.25))"
done
say ""

# --- 16 replicas -------------------------------------------------------------------
RRUNS=5
BIN=$PGPRELUDE
[[ -x "$STATIC" ]] && BIN=$STATIC
note "timing 16 replicas started together ($RRUNS runs each)"
timeit -r "$RRUNS" -w 1 "one=$BIN -c $tmp/noop.ini migrate" "replicas@16=$BIN -c $tmp/noop.ini migrate" \
    "floors@16=$tmp/floor $(url bench_noop)" >"$tmp/rep-noop.txt"
timeit -r "$RRUNS" -w 1 -p "$PGBIN/dropdb --if-exists bench_cold 2>/dev/null; $PGBIN/createdb bench_cold" \
    "one=$BIN -c $tmp/cold.ini migrate" "replicas@16=$BIN -c $tmp/cold.ini migrate" >"$tmp/rep-cold.txt"
say "16 replicas started at the same instant, total wall time until the last exits ($(basename "$BIN"); median ms of $RRUNS runs):"
for k in noop cold; do
    one=$(field one 2 <"$tmp/rep-$k.txt")
    many=$(field replicas 2 <"$tmp/rep-$k.txt")
    say "$(printf '  %-5s  one run %8.1f   16 replicas %8.1f   ratio %s' "$([[ $k == noop ]] && echo no-op || echo cold)" "$one" "$many" "$(ratio "$many" "$one")")"
done
floors=$(field floors 2 <"$tmp/rep-noop.txt")
say "$(printf '  16 floors (connect + SELECT 1) at the same instant: %.1f; the 16 no-op replicas take %s times that' "$floors" \
    "$(ratio "$(field replicas 2 <"$tmp/rep-noop.txt")" "$floors")")"
say ""

# --- scaling --------------------------------------------------------------------
N10=$((N * 10))
note "timing the no-op restart with $N10 files"
"$BENCH/gen.sh" -n "$N10" "$tmp/mig10"
printf '%s\n' '[database]' "url = $(url bench_noop10)" '[phase bench]' "dir = $tmp/mig10" >"$tmp/noop10.ini"
createdb bench_noop10
"$BIN" -c "$tmp/noop10.ini" migrate 2>/dev/null
timeit -r "$RUNS" -w 1 "n=$BIN -c $tmp/noop.ini migrate" "n10=$BIN -c $tmp/noop10.ini migrate" >"$tmp/scale.txt"
t1=$(field n 2 <"$tmp/scale.txt")
t10=$(field n10 2 <"$tmp/scale.txt")
say "no-op restart as the folder grows ($(basename "$BIN"); median ms of $RUNS runs):"
say "$(printf '  %5d files %8.1f\n  %5d files %8.1f   (%s times; %.0f us per extra file)' "$N" "$t1" "$N10" "$t10" \
    "$(ratio "$t10" "$t1")" "$(awk -v a="$t1" -v b="$t10" -v n="$((N10 - N))" 'BEGIN { print (b - a) * 1000 / n }')")"
say ""

# --- memory and size -------------------------------------------------------------------
# peak_rss CMD...: the largest maximum resident set size of 5 runs, in KiB.
peak_rss() {
    local kib max=0
    for _ in 1 2 3 4 5; do
        kib=$(/usr/bin/time -f '%M' -o "$tmp/rss" "$@" >/dev/null 2>&1 && cat "$tmp/rss") || { echo "?"; return; }
        ((kib > max)) && max=$kib
    done
    echo "$max"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.2f MiB", k / 1024 }'; }
# A program's text is mapped a page-cache folio at a time, and the folios'
# sizes depend on how the file was written: a static build peaked up to
# 0.85 MiB higher run from the file the build wrote than from a copy. The
# programs built here are measured as copies, as a container runs the files
# its image's layers were unpacked into.
copy() { cp "$1" "$tmp/rss-$(basename "$1")" && echo "$tmp/rss-$(basename "$1")"; }
say "peak RSS of a no-op restart (largest of 5 runs, /usr/bin/time -f %M; the programs built here copied first):"
for l in pgprelude pgprelude-static floor floor-static dbmate; do
    case $l in
    pgprelude) cmd=("$(copy "$PGPRELUDE")" -c "$tmp/noop.ini" migrate) ;;
    pgprelude-static) [[ -x "$STATIC" ]] || continue; cmd=("$(copy "$STATIC")" -c "$tmp/noop.ini" migrate) ;;
    floor) cmd=("$(copy "$tmp/floor")" "$(url bench_noop)") ;;
    floor-static) [[ -n "$FLOOR_STATIC" ]] || continue; cmd=("$(copy "$FLOOR_STATIC")" "$(url bench_noop)") ;;
    dbmate) [[ -n "$DBMATE" ]] || continue; cmd=("$DBMATE" --no-dump-schema -u "$(url bench_dbmate)?sslmode=disable" -d "$tmp/dbmate" migrate) ;;
    esac
    kib=$(peak_rss "${cmd[@]}")
    extra=""
    [[ $l == pgprelude-static ]] && extra=" (target < 4 MiB: $(verdict "$kib" '<' 4096))"
    say "$(printf '  %-18s %6s KiB = %s%s' "$l" "$kib" "$(mib "$kib")" "$extra")"
done
say "binary size, stripped:"
for b in "$PGPRELUDE" "$STATIC"; do
    if [[ -x "$b" ]]; then
        strip -o "$tmp/stripped" "$b"
        bytes=$(stat -c %s "$tmp/stripped")
        say "$(printf '  %-26s %9d bytes = %s' "build/$(basename "$b")" "$bytes" "$(mib $((bytes / 1024)))")"
    else
        say "  build/$(basename "$b"): not built (make static)"
    fi
done
image=not-built
if command -v podman >/dev/null 2>&1; then
    conf=$REPO/build/image/containers.conf
    [[ -f "$conf" ]] && export CONTAINERS_CONF=$conf
    if bytes=$(podman image inspect --format '{{.Size}}' localhost/pgprelude:latest 2>/dev/null); then
        image=$bytes
    fi
fi
if [[ "$image" == not-built ]]; then
    say "runtime image localhost/pgprelude:latest: not built (make image)"
else
    say "$(printf 'runtime image localhost/pgprelude:latest: %d bytes = %.2f MB (target < 8 MB: %s)' "$image" \
        "$(awk -v b="$image" 'BEGIN { print b / 1e6 }')" "$(verdict "$image" '<' 8000000)")"
fi
say "" "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
note "results written to $OUT"
