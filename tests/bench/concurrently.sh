#!/usr/bin/env bash
# How long a composite UNIQUE constraint added to a busy table blocks its
# writers: a plain ALTER TABLE ... ADD CONSTRAINT ... UNIQUE (a, b) against
# the same constraint applied by pgprelude from a no-transaction file
# (CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX),
# measured in one run on a throwaway cluster of its own.
#
#   tests/bench/concurrently.sh        (part of make bench; not of make test)
#
# A table of BENCH_ROWS rows (default 2,000,000) and a writer (pgbench at a
# fixed rate, BENCH_RATE transactions per second, default 200, over TCP on
# loopback) that updates a row, inserts one, and records clock_timestamp()
# into a side table in each transaction. The figure is the longest gap
# between two consecutive writer commits while the constraint is added (the
# writer runs from 1 s before to 1 s after). Prints both gaps and their
# ratio; the target for pgprelude is under 100 ms. Exit status 0 unless
# something failed to run (a missed target is printed, not fatal).
#
# BENCH_DEBUG=1 prints each run's five longest gaps and when they happened;
# BENCH_KEEP=1 keeps the temp dir (logs of pgbench and of each DDL).
set -euo pipefail

prog=concurrently.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PSQL=$PGBIN/psql
PGBENCH=$PGBIN/pgbench
PGPRELUDE=$REPO/build/pgprelude
ROWS=${BENCH_ROWS:-2000000}
RATE=${BENCH_RATE:-200}
TARGET_MS=100

die() {
    echo "$prog: error: $*" >&2
    exit 1
}
note() { echo "$prog: $*" >&2; }

[[ -x "$PGPRELUDE" ]] || die "build pgprelude first (make)"
[[ -x "$PGBENCH" ]] || die "pgbench not found at $PGBENCH (Debian package postgresql-15)"

TMP=$(mktemp -d /tmp/pgprelude-bench-cic.XXXXXX)
chmod 755 "$TMP"
WRITER=
cleanup() {
    if [[ -n "$WRITER" ]]; then kill "$WRITER" 2>/dev/null || true; fi
    "$REPO/tests/tools/pgcluster.sh" stop "$TMP" >/dev/null 2>&1 || true
    if [[ -n "${BENCH_KEEP:-}" ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note "starting a cluster in $TMP"
"$REPO/tests/tools/pgcluster.sh" start "$TMP" >/dev/null
# shellcheck disable=SC1091
source "$TMP/env"
export PGHOST=127.0.0.1 PGPORT PGUSER PGPASSWORD PGDATABASE=bench
"$PSQL" -X -q -d postgres -c "CREATE DATABASE bench"
q() { "$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

note "filling a table of $ROWS rows"
q "CREATE TABLE items (id bigserial PRIMARY KEY, a int NOT NULL, b int NOT NULL, payload text);
   INSERT INTO items (a, b, payload)
        SELECT g / 1000, g % 1000, md5(g::text) FROM generate_series(1, $ROWS) g;
   CREATE SEQUENCE wseq;
   CREATE TABLE beats (run int NOT NULL, ts timestamptz NOT NULL);"
q "VACUUM ANALYZE items"

cat >"$TMP/writer.sql" <<EOF
\\set id random(1, $ROWS)
BEGIN;
UPDATE items SET payload = md5(random()::text) WHERE id = :id;
INSERT INTO items (a, b) VALUES (-nextval('wseq'), 0);
INSERT INTO beats (run, ts) VALUES (:run, clock_timestamp());
COMMIT;
EOF

# measure RUN CMD...: the writer runs from 1 s before CMD to 1 s after it;
# prints "<longest gap ms> <CMD's duration ms> <commits>".
measure() {
    local run=$1 start end
    shift
    "$PGBENCH" -n -c 1 -R "$RATE" -T 3600 -D run="$run" -f "$TMP/writer.sql" >"$TMP/pgbench.$run.log" 2>&1 &
    WRITER=$!
    sleep 1
    start=$(q "SELECT clock_timestamp()")
    "$@" >"$TMP/ddl.$run.log" 2>&1 || { cat "$TMP/ddl.$run.log" >&2; die "run $run failed: $*"; }
    end=$(q "SELECT clock_timestamp()")
    sleep 1
    kill -TERM "$WRITER" 2>/dev/null || true
    wait "$WRITER" 2>/dev/null || true
    WRITER=
    if [[ -n "${BENCH_DEBUG:-}" ]]; then
        q "SELECT ts - '$start'::timestamptz AS at, gap FROM (SELECT ts, ts - lag(ts) OVER (ORDER BY ts) AS gap
             FROM beats WHERE run = $run) g ORDER BY gap DESC NULLS LAST LIMIT 5" >&2
        echo "start $start end $end" >&2
    fi
    q "SELECT round(extract(epoch FROM max(gap)) * 1000), round(extract(epoch FROM '$end'::timestamptz - '$start'::timestamptz) * 1000), count(*)
         FROM (SELECT ts - lag(ts) OVER (ORDER BY ts) AS gap FROM beats WHERE run = $run) g" | tr '|' ' '
}

note "(a) plain ALTER TABLE ... ADD CONSTRAINT ... UNIQUE (a, b), with the writer at $RATE/s"
read -r plain_gap plain_ms plain_n < <(measure 1 "$PSQL" -X -q -v ON_ERROR_STOP=1 \
    -c "ALTER TABLE items ADD CONSTRAINT items_a_b_key UNIQUE (a, b)")
q "ALTER TABLE items DROP CONSTRAINT items_a_b_key"

note "(b) pgprelude: a no-transaction file, CREATE UNIQUE INDEX CONCURRENTLY + ADD CONSTRAINT USING INDEX"
mkdir -p "$TMP/cfg/post"
cat >"$TMP/cfg/pgprelude.ini" <<EOF
[database]
url = postgresql://$PGUSER:$PGPASSWORD@127.0.0.1:$PGPORT/bench
[phase post]
dir = post
EOF
cat >"$TMP/cfg/post/001_items_unique.sql" <<'EOF'
-- pgprelude: no-transaction
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS items_a_b_key ON items (a, b);
ALTER TABLE items ADD CONSTRAINT items_a_b_key UNIQUE USING INDEX items_a_b_key;
EOF
read -r cic_gap cic_ms cic_n < <(measure 2 "$PGPRELUDE" -c "$TMP/cfg/pgprelude.ini" migrate)
[[ "$(q "SELECT count(*) FROM pg_constraint WHERE conname = 'items_a_b_key' AND contype = 'u'")" == 1 ]] ||
    die "pgprelude did not add the constraint"

verdict=met
((cic_gap < TARGET_MS)) || verdict=MISSED
ratio=$(awk -v a="$plain_gap" -v b="$cic_gap" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
echo "concurrently: $ROWS rows, writer at $RATE tx/s (pgbench, loopback TCP)"
printf '  %-58s longest writer gap %6s ms  (DDL %6s ms, %s commits)\n' \
    "plain ALTER TABLE ADD CONSTRAINT UNIQUE (a, b)" "$plain_gap" "$plain_ms" "$plain_n" \
    "pgprelude no-transaction: CREATE UNIQUE INDEX CONCURRENTLY" "$cic_gap" "$cic_ms" "$cic_n"
echo "  ratio plain / concurrently: ${ratio}x; target for concurrently < ${TARGET_MS} ms: $verdict"
