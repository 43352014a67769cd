#!/usr/bin/env bash
# Regenerate tests/directus/fixtures/snapshot.yaml with the real Directus: a
# throwaway cluster, db-init/*.sql, `directus bootstrap`, `directus start`, the collections
# made through the REST API (make-snapshot.mjs), then `directus schema
# snapshot`. Only loopback traffic.
#
#   tests/directus/make-snapshot.sh [OUT]   (default: the fixture)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$here/fixtures/snapshot.yaml}
dir=${DIRECTUS_DIR:-$("$repo/tests/tools/directus-install.sh")}
cli=(node "$dir/node_modules/@directus/api/dist/cli/run.js")

tmp=$(mktemp -d /tmp/pgprelude-snapshot.XXXXXX)
chmod 755 "$tmp"
app=
cleanup() {
    [[ -n "$app" ]] && kill "$app" 2>/dev/null && wait "$app" 2>/dev/null
    "$repo/tests/tools/pgcluster.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/pg" "$tmp/app/uploads" "$tmp/app/extensions"
"$repo/tests/tools/pgcluster.sh" start "$tmp/pg" >/dev/null
# shellcheck disable=SC1091
source "$tmp/pg/env"
/usr/lib/postgresql/15/bin/createdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" snapshot
# What the pre-schema phase makes in public comes first, as in a database the
# shipped flow set up: `schema apply` drops every table of public that the
# snapshot lacks, so the snapshot must list these too.
for f in "$repo"/db-init/*.sql; do
    /usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d snapshot -f "$f"
done

export DB_CLIENT=pg DB_HOST=127.0.0.1 DB_PORT=$PGPORT DB_DATABASE=snapshot DB_USER=$PGUSER DB_PASSWORD=$PGPASSWORD
export SECRET=pgprelude-snapshot-secret ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD=snapshot-pw
export HOST=127.0.0.1 PORT
PORT=$("$repo/tests/tools/pgcluster.sh" port)
export PUBLIC_URL=http://127.0.0.1:$PORT TELEMETRY=false LOG_LEVEL=warn STORAGE_LOCAL_ROOT=$tmp/app/uploads EXTENSIONS_PATH=$tmp/app/extensions
export CONFIG_PATH=$tmp/app/.env
: >"$CONFIG_PATH"
echo '{"name": "pgprelude-snapshot", "private": true}' >"$tmp/app/package.json"
cd "$tmp/app"

"${cli[@]}" bootstrap
"${cli[@]}" start &
app=$!
for ((i = 0; i < 600; i++)); do
    curl -fsS --max-time 2 "http://127.0.0.1:$PORT/server/health" >/dev/null 2>&1 && break
    sleep 0.1
done
node "$here/make-snapshot.mjs" "http://127.0.0.1:$PORT" "$ADMIN_EMAIL" "$ADMIN_PASSWORD"
kill "$app"
wait "$app" || true
app=
"${cli[@]}" schema snapshot --yes "$tmp/snapshot.yaml"
{
    echo "# tests/directus/fixtures/snapshot.yaml — made by tests/directus/make-snapshot.sh"
    echo "# (the real Directus CLI, collections created through its REST API); do not edit."
    cat "$tmp/snapshot.yaml"
} >"$out"
echo "make-snapshot.sh: wrote $out" >&2
