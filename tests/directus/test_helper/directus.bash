# Loaded by the tests/directus files: `load test_helper/directus`. Loads
# tests/bats/test_helper/common.bash (new_db, sql, wait_until, ...) and gives:
#
#   DIRECTUS_CLI      argv of Directus's own CLI entry (not the npm `directus`
#                     bin, which asks the npm registry for updates on every call)
#   SNAPSHOT          the Directus snapshot the schema step applies
#   directus_env      export what Directus needs for this test's database: DB_*,
#                     SECRET, the first admin, HOST=127.0.0.1 and a free PORT,
#                     TELEMETRY=false, uploads and extensions in the test's
#                     folder, an empty ./.env and ./package.json; cd there
#   shipped_config FILE
#                     write entrypoint/pgprelude.ini to FILE with only what the
#                     image's layout fixes replaced: /db-init, /db-init-post,
#                     `npx directus`, /directus/snapshot.yaml, /directus/package.json
#                     (the installed directus package's)
#   healthy [PORT]    whether Directus on 127.0.0.1:PORT answers /server/health
#                     with status ok
#   history_rows      phase/file of every history row, one a line, sorted
#   junction_uniques  the UNIQUE constraints in public, Directus's own left out,
#                     on one line

load ../bats/test_helper/common

DIRECTUS_CLI="node $DIRECTUS_DIR/node_modules/@directus/api/dist/cli/run.js"
SNAPSHOT=$BATS_TEST_DIRNAME/fixtures/snapshot.yaml
ADMIN_EMAIL=admin@example.com
ADMIN_PASSWORD=pgprelude-directus-test
export DIRECTUS_CLI SNAPSHOT

directus_env() {
    local dir
    dir=$(workdir directus)
    mkdir -p "$dir/uploads" "$dir/extensions"
    export DB_CLIENT=pg DB_HOST=127.0.0.1 DB_PORT=$PGPORT DB_DATABASE=$PGDATABASE
    export DB_USER=postgres DB_PASSWORD=$PGPASSWORD
    export SECRET=pgprelude-test-secret-0123456789abcdef KEY=pgprelude-test-key
    export ADMIN_EMAIL ADMIN_PASSWORD
    export HOST=127.0.0.1 PORT
    PORT=$("$REPO/tests/tools/pgcluster.sh" port)
    export TELEMETRY=false CACHE_ENABLED=false RATE_LIMITER_ENABLED=false
    export LOG_LEVEL=${DIRECTUS_LOG_LEVEL:-info} LOG_STYLE=raw
    export STORAGE_LOCATIONS=local STORAGE_LOCAL_ROOT=$dir/uploads EXTENSIONS_PATH=$dir/extensions
    export PUBLIC_URL=http://127.0.0.1:$PORT
    export CONFIG_PATH=$dir/.env
    : >"$CONFIG_PATH"
    # Directus looks for package extensions in ./package.json (the image's
    # /directus has one).
    echo '{"name": "pgprelude-directus-test", "private": true}' >"$dir/package.json"
    cd "$dir" || return 1
}

shipped_config() {
    local out=$1
    sed -e "s#^dir = /db-init\$#dir = $REPO/db-init#" \
        -e "s#^dir = /db-init-post\$#dir = $REPO/db-init-post#" \
        -e "s#npx directus #$DIRECTUS_CLI #" \
        -e "s#/directus/snapshot.yaml#$SNAPSHOT#g" \
        -e "s#/directus/package.json#$DIRECTUS_DIR/node_modules/directus/package.json#g" \
        "$REPO/entrypoint/pgprelude.ini" >"$out"
    # Every replacement must have happened: a shipped file that moved on
    # should fail here, not run something else.
    if grep -vE '^[[:space:]]*[;#]' "$out" | grep -E '= /db-init|npx| /directus/'; then
        echo "shipped_config: entrypoint/pgprelude.ini has lines this helper does not know" >&2
        return 1
    fi
    [[ $(grep -c "^dir = $REPO/db-init" "$out") == 2 && $(grep -c "$DIRECTUS_CLI" "$out") == 3 ]] || {
        echo "shipped_config: expected 2 dir and 3 Directus lines in entrypoint/pgprelude.ini" >&2
        return 1
    }
}

healthy() {
    local port=${1:-$PORT}
    curl -fsS --max-time 2 "http://127.0.0.1:$port/server/health" 2>/dev/null | grep -q '"status":"ok"'
}

history_rows() {
    sql "SELECT phase || ' ' || file FROM pgprelude.history ORDER BY 1"
}

junction_uniques() {
    sql "SELECT string_agg(conrelid::regclass || '(' || pg_get_constraintdef(oid) || ')', ' ' ORDER BY conrelid::regclass::text)
           FROM pg_constraint WHERE contype = 'u' AND connamespace = 'public'::regnamespace
            AND conrelid::regclass::text NOT LIKE 'directus\_%'"
}
