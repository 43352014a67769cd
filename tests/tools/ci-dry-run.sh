#!/usr/bin/env bash
# The CI dry-run: on a fresh PostgreSQL, the whole start-up sequence
# (entrypoint/demo.ini: db-init/ -> schema step -> db-init-post/ -> app), then
# the whole sequence again, which must apply nothing.
#
#   ci-dry-run.sh [BINARY]      (default build/pgprelude-static)
#
# The database comes from libpq's PG* variables (PGHOST, PGPORT, PGUSER,
# PGPASSWORD, PGDATABASE); it must not have been migrated before.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/pgprelude-static}
prog=ci-dry-run.sh
log=$(mktemp -d /tmp/pgprelude-dry-run.XXXXXX)
trap 'rm -rf "$log"' EXIT
unset DATABASE_URL

die() {
    echo "$prog: error: $*" >&2
    exit 1
}

[[ -x "$bin" ]] || die "$bin not found (make static)"
command -v psql >/dev/null 2>&1 || die "psql not found (postgresql-client-15)"
if [[ "$(psql -X -A -t -c "SELECT to_regclass('pgprelude.history') IS NULL")" != t ]]; then
    die "the database $PGDATABASE is not fresh: it has a history table already"
fi

echo "== first start: every phase runs, then the app =="
"$bin" -c entrypoint/demo.ini 2>&1 | tee "$log/first"
grep -q 'applied .*db-init/' "$log/first" || die "the first start applied nothing"
applied=$(psql -X -A -t -c 'SELECT count(*) FROM pgprelude.history')

echo "== second start: must apply nothing =="
"$bin" -c entrypoint/demo.ini 2>&1 | tee "$log/second"
if grep -E 'applied [^ ]*\.sql' "$log/second"; then
    die "the second start applied files (above)"
fi
again=$(psql -X -A -t -c 'SELECT count(*) FROM pgprelude.history')
[[ "$again" == "$applied" ]] || die "the history grew from $applied to $again rows on the second start"
"$bin" -c entrypoint/demo.ini status
echo "$prog: ok: $applied files applied once, nothing on the second start"
