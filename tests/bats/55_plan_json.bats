#!/usr/bin/env bats
# plan --json, verify --json and plan --sql: one JSON document on stdout (the
# log stays on stderr), read here with python3's json, never grepped; the SQL
# of plan --sql, run with psql, builds the schema migrate builds.

load test_helper/common
load test_helper/pgprelude

FX=$BATS_TEST_DIRNAME/fixtures/constraints

setup() {
    new_db
    setup_layout
    two_phase_config
}

fx() {
    mig "$1" "$2" <"$FX/${3:-$2}"
}

# js EXPR: the value of the Python expression EXPR over the document in
# $output (d), as JSON ("..." for a string); fails unless stdout is exactly
# one JSON document.
js() {
    python3 -c 'import json, sys
d = json.loads(sys.stdin.read())
print(json.dumps(eval(sys.argv[1]), sort_keys=True))' "$1" <<<"$output"
}

# js_is EXPR VALUE: EXPR (see js) gives the JSON VALUE.
js_is() {
    local got
    got=$(js "$1") || return 1
    [[ "$got" == "$2" ]] || {
        echo "$1: expected $2, got $got" >&2
        return 1
    }
}

# The file named NAME in the document, as a Python expression.
file_expr() {
    echo "[f for p in d['phases'] for f in p['files'] if f['file'] == '$1'][0]"
}

# The constraint item NAME, as a Python expression.
cons_expr() {
    echo "[c for p in d['phases'] for f in p['files'] for c in f.get('constraints', []) if c['name'] == '$1'][0]"
}

# The schema of database DB without pgprelude's history schema.
schema_of() {
    pg_dump --schema-only --no-owner --exclude-schema=pgprelude -d "$1" | grep -Ev '^(--|\\(un)?restrict |$)'
}

# fresh_db: a second database, its name printed; DATABASE_URL still names the test's own.
fresh_db() {
    local name="${PGDATABASE}_b"
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE \"$name\"" >/dev/null
    echo "$name"
}

@test "plan --json on a fresh database: every phase, every pending file, exit 0" {
    fx pre 001_schema.sql junction_schema.sql
    fx pre 002_data.sql junction_clean.sql
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_success
    js_is 'd["command"]' '"plan"'
    js_is '[(p["name"], p["kind"]) for p in d["phases"]]' '[["pre", "dir"], ["post", "dir"]]'
    js_is "[(f['path'], f['state'], f['will_run'], f['why']) for f in d['phases'][0]['files']]" \
        '[["pre/001_schema.sql", "pending", true, "pending: will run"], ["pre/002_data.sql", "pending", true, "pending: will run"]]'
    js_is 'd["pending"]' 2
    js_is 'd["result"]' '"ok"'
    js_is 'd["exit_code"]' 0
    [[ "$stderr" == *"plan: 2 files to apply; the plan can run"* ]]
    run sql "SELECT to_regclass('memberships') IS NULL AND to_regclass('pgprelude.history') IS NULL"
    assert_output t
}

@test "plan --json: a changed file is drift, exit 8, with both checksums; nothing pending on an up-to-date database" {
    fx pre 001_schema.sql junction_schema.sql
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_success
    js_is 'd["pending"]' 0
    js_is "[(f['state'], f['will_run']) for p in d['phases'] for f in p['files']]" '[["applied", false]]'
    js_is '(d["result"], d["exit_code"])' '["ok", 0]'
    echo "-- edited" >>"$W/pre/001_schema.sql"
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_failure 8
    f=$(file_expr 001_schema.sql)
    js_is "($f)['state']" '"changed"'
    js_is "($f)['will_run']" false
    js_is "($f)['why']" '"changed since it was applied: refused"'
    js_is "len(($f)['applied_checksum']) == 64 and ($f)['applied_checksum'] != ($f)['checksum']" true
    js_is '(d["result"], d["exit_code"])' '["drift", 8]'
    [[ "$stderr" == *"the file changed after it was applied"* ]]
    # migrate would send nothing: every line of the script is a comment
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_failure 8
    assert_line '-- A file changed since it was applied: migrate would refuse to run anything (drift); all of it is shown as comments.'
    refute_line --regexp '^[^-]'
}

@test "plan --json: a failing pre-flight is exit 7, with the duplicate counts and the first keys" {
    fx post 010_junction.ini junction.ini
    sql <"$FX/junction_schema.sql"
    sql <"$FX/junction_dirty.sql"
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_failure 7
    m=$(cons_expr memberships_user_id_company_id_key)
    a=$(cons_expr assignments_membership_id_outlet_id_key)
    js_is "($m)['file'], ($m)['line'], ($m)['kind'], ($m)['table'], ($m)['columns']" \
        '["post/010_junction.ini", 2, "unique", "public.memberships", ["user_id", "company_id"]]'
    js_is "($m)['action']" '"create UNIQUE (\"user_id\", \"company_id\")"'
    js_is "($m)['preflight']['result'], ($m)['preflight']['duplicate_groups'], ($m)['preflight']['duplicate_rows']" \
        '["failed", 2, 5]'
    js_is "[k['key'] + [k['rows']] for k in ($m)['preflight']['first_duplicates']]" \
        '[["1", "10", 2], ["3", "30", 3]]'
    js_is "($m)['sql']" \
        '["ALTER TABLE \"public\".\"memberships\" ADD CONSTRAINT \"memberships_user_id_company_id_key\" UNIQUE (\"user_id\", \"company_id\")"]'
    js_is "($a)['preflight']['result'], ($a)['preflight']['duplicate_groups'], ($a)['preflight']['duplicate_rows']" \
        '["failed", 1, 2]'
    js_is '(d["result"], d["exit_code"])' '["preflight-failed", 7]'
    js_is "any('pre-flight failed for unique' in m for m in ($(file_expr 010_junction.ini))['messages'])" true
    [[ "$stderr" == *'pre-flight failed for unique "memberships_user_id_company_id_key"'* ]]
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_failure 7
    assert_line '-- post/010_junction.ini: the run would stop at this file (a pre-flight fails): from here on, nothing is sent'
    assert_line '-- ALTER TABLE "public"."memberships" ADD CONSTRAINT "memberships_user_id_company_id_key" UNIQUE ("user_id", "company_id");'
    refute_line --regexp '^[^-]'
    sql "TRUNCATE memberships, assignments"
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_success
    js_is "($m)['preflight']['result'], ($m)['preflight']['text']" '["passed", "no duplicates"]'
    js_is '(d["result"], d["exit_code"])' '["ok", 0]'
}

@test "plan --json: drift and refusal are the item's flags; a validated not_null's pre-flight is not needed" {
    sql "CREATE TABLE r (id int, c int, note text); CREATE UNIQUE INDEX r_id_u ON r (id);
         CREATE TABLE f (r int REFERENCES r (id));
         ALTER TABLE r ADD CONSTRAINT r_note_nn CHECK (note IS NOT NULL)"
    printf '%s\n' '[unique r_id_c]' 'table = r' 'columns = id' 'where = c > 0' 'replaces = r_id_u' \
        '[not_null r_note_nn]' 'table = r' 'column = note' | mig post 010.ini
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_failure 7
    items="($(file_expr 010.ini))['constraints']"
    js_is "[(c['name'], c['action'], c['drift'], c['refused']) for c in $items]" \
        '[["r_id_c", "create UNIQUE (\"id\") WHERE (c > 0)", false, false], ["r_id_c", "cannot run: foreign keys depend on \"r_id_u\"", false, true], ["r_id_c", "then drop \"r_id_u\" (replaced)", false, false], ["r_note_nn", "SET NOT NULL, drop the CHECK", false, false]]'
    js_is "[c['preflight'] for c in $items]" \
        '[{"result": "passed", "text": "no duplicates"}, null, null, {"result": "not-needed", "text": "not needed"}]'
    js_is '(d["result"], d["exit_code"])' '["preflight-failed", 7]'
    # the same unique, found with another definition
    sql "DROP TABLE f; DROP INDEX r_id_u; CREATE UNIQUE INDEX r_id_c ON r (id, c)"
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_failure 8
    js_is "[(c['action'], c['drift'], c['refused'], c['preflight']) for c in $items if c['name'] == 'r_id_c']" \
        '[["drift: exists with another definition", true, false, null]]'
    js_is '(d["result"], d["exit_code"])' '["drift", 8]'
}

@test "plan --json: run steps say whether they will run and why" {
    mkdir -p "$W/snap"
    echo "version: 1" >"$W/snap/a.yaml"
    two_phase_config '[phase gen]' 'run = psql -X -q -c "CREATE TABLE IF NOT EXISTS made (a int)"' \
        'inputs = snap/*.yaml' 'expect = made' '[phase always]' 'run = true'
    step() {
        js "[(p['step']['will_run'], p['step']['verdict']) for p in d['phases'] if p['name'] == '$1'][0]"
    }
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_success
    assert_equal "$(step gen)" '[true, "never-recorded"]'
    assert_equal "$(step always)" '[true, "always"]'
    js_is "[p['step']['command'] for p in d['phases'] if p['kind'] == 'run']" \
        '[["psql", "-X", "-q", "-c", "CREATE TABLE IF NOT EXISTS made (a int)"], ["true"]]'
    js_is "[p['step']['inputs'] for p in d['phases'] if p['name'] == 'gen'] == [['$W/snap/*.yaml']]" true
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_success
    assert_equal "$(step gen)" '[false, "up-to-date"]'
    assert_equal "$(step always)" '[true, "always"]'
    js_is "[(p['state'], p['step']['recorded_at'] is not None) for p in d['phases'] if p['name'] == 'gen']" '[["applied", true]]'
    sql "DROP TABLE made"
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_equal "$(step gen)" '[true, "expect-unmet"]'
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    echo "version: 2" >"$W/snap/a.yaml"
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_success
    assert_equal "$(step gen)" '[true, "inputs-changed"]'
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_success
    assert_line '-- phase "gen" (run): psql -X -q -c CREATE TABLE IF NOT EXISTS made (a int): will run'
    assert_line '-- phase "always" (run): true: will run (no inputs: on every start)'
}

@test "verify --json: a missing constraint and a pending file are differences, exit 8" {
    fx pre 001_schema.sql junction_schema.sql
    fx post 010_junction.ini junction.ini
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    run --separate-stderr "$PGPRELUDE" -c "$CFG" verify --json
    assert_success
    js_is '(d["command"], d["result"], d["exit_code"], d["differences"])' '["verify", "ok", 0, 0]'
    js_is "[c['ok'] for p in d['phases'] for f in p['files'] for c in f.get('constraints', [])]" '[true, true]'
    sql "ALTER TABLE memberships DROP CONSTRAINT memberships_user_id_company_id_key"
    echo "SELECT 1;" | mig pre 002_more.sql
    run --separate-stderr "$PGPRELUDE" -c "$CFG" verify --json
    assert_failure 8
    m=$(cons_expr memberships_user_id_company_id_key)
    a=$(cons_expr assignments_membership_id_outlet_id_key)
    js_is "($m)['ok'], ($m)['line'], ($m)['table']" '[false, 2, "public.memberships"]'
    js_is "($a)['ok'], ($a)['action']" '[true, "ok"]'
    js_is "($(file_expr 010_junction.ini))['ok']" false
    js_is "any('is missing' in m for m in ($(file_expr 010_junction.ini))['messages'])" true
    js_is "($(file_expr 001_schema.sql))['ok']" true
    js_is "($(file_expr 002_more.sql))['ok'], ($(file_expr 002_more.sql))['why']" '[false, "not applied yet"]'
    js_is '(d["result"], d["exit_code"], d["differences"])' '["drift", 8, 2]'
    [[ "$stderr" == *"verify: 2 differences (see above)"* ]]
}

@test "plan --sql run with psql builds the schema migrate builds" {
    fx pre 001_schema.sql junction_schema.sql
    mig pre 002_more.sql <<'EOF'
CREATE FUNCTION f(a int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RETURN a + 1; -- one; two
END $$;
CREATE VIEW v AS SELECT id, f(user_id) AS g FROM memberships
EOF
    mig pre 003_index.sql <<'EOF'
-- pgprelude: no-transaction
CREATE INDEX CONCURRENTLY memberships_company ON memberships (company_id);
CREATE TABLE "Other" (id int)
EOF
    mig post 010_view.sql <<'EOF'
COMMENT ON VIEW v IS 'a view; with a semicolon';
EOF
    other=$(fresh_db)
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_success
    printf '%s\n' "$output" >"$W/plan.sql"
    grep -q '^-- pre/003_index.sql: pending: will run$' "$W/plan.sql"
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$other" -f "$W/plan.sql" 2>&1
    assert_equal "$(schema_of "$other")" "$(schema_of "$PGDATABASE")"
    run sql "SELECT to_regclass('pgprelude.history') IS NULL" -d "$other"
    assert_output t
}

@test "plan --sql gives the constraint DDL; psql with it builds what migrate builds" {
    fx pre 001_schema.sql junction_schema.sql
    echo 'ALTER TABLE memberships ADD COLUMN note text;' | mig pre 002_note.sql
    fx post 010_junction.ini junction.ini
    printf '[not_null memberships_note_nn]\ntable = memberships\ncolumn = note\n' | mig post 020_nn.ini
    other=$(fresh_db)
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_success
    printf '%s\n' "$output" >"$W/plan.sql"
    grep -qxF 'ALTER TABLE "public"."memberships" ADD CONSTRAINT "memberships_user_id_company_id_key" UNIQUE ("user_id", "company_id");' "$W/plan.sql"
    grep -qxF 'ALTER TABLE "assignments" ADD CONSTRAINT "assignments_membership_id_outlet_id_key" UNIQUE ("membership_id", "outlet_id");' "$W/plan.sql"
    grep -qxF 'ALTER TABLE "memberships" ALTER COLUMN "note" SET NOT NULL;' "$W/plan.sql"
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$other" -f "$W/plan.sql" 2>&1
    assert_equal "$(schema_of "$other")" "$(schema_of "$PGDATABASE")"
    # with the tables there: the DDL converge would run, from the catalog
    sql "ALTER TABLE memberships DROP CONSTRAINT memberships_user_id_company_id_key;
         ALTER TABLE memberships ALTER COLUMN note DROP NOT NULL"
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    assert_success
    js_is "($(cons_expr memberships_user_id_company_id_key))['sql']" \
        '["ALTER TABLE \"public\".\"memberships\" ADD CONSTRAINT \"memberships_user_id_company_id_key\" UNIQUE (\"user_id\", \"company_id\")"]'
    js_is "($(cons_expr assignments_membership_id_outlet_id_key))['sql'], ($(cons_expr assignments_membership_id_outlet_id_key))['action']" \
        '[[], "nothing to do"]'
    n=$(cons_expr memberships_note_nn)
    js_is "len(($n)['sql']), ($n)['sql'][2], ($n)['preflight']['result']" \
        '[4, "ALTER TABLE \"public\".\"memberships\" ALTER COLUMN \"note\" SET NOT NULL", "passed"]'
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_success
    printf '%s\n' "$output" >"$W/again.sql"
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$W/again.sql" 2>&1
    assert_equal "$(schema_of "$other")" "$(schema_of "$PGDATABASE")"
}

@test "plan --sql on existing tables: replaces and concurrently, as migrate runs them" {
    fx post 010_tenant.ini tenant.ini
    { cat "$FX/remote_id.ini"; echo 'concurrently = true'; } | mig post 020_remote.ini
    other=$(fresh_db)
    for db in "$PGDATABASE" "$other"; do
        cat "$FX/tenant_schema.sql" "$FX/remote_id.sql" | "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$db"
    done
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_success
    printf '%s\n' "$output" >"$W/plan.sql"
    assert_line 'ALTER TABLE "public"."invoices" DROP CONSTRAINT "invoices_number_key";'
    assert_line 'DROP INDEX "public"."products_sku_key";'
    assert_line 'CREATE UNIQUE INDEX CONCURRENTLY "contacts_remote_id_key" ON "public"."contacts" ("remote_id");'
    assert_line 'DROP INDEX CONCURRENTLY "public"."contacts_remote_id_idx";'
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --json
    js_is "sum([c['sql'] for p in d['phases'] for f in p['files'] for c in f.get('constraints', []) if c['name'] == 'contacts_remote_id_key'], [])" \
        '["CREATE UNIQUE INDEX CONCURRENTLY \"contacts_remote_id_key\" ON \"public\".\"contacts\" (\"remote_id\")", "ALTER TABLE \"public\".\"contacts\" ADD CONSTRAINT \"contacts_remote_id_key\" UNIQUE USING INDEX \"contacts_remote_id_key\"", "DROP INDEX CONCURRENTLY \"public\".\"contacts_remote_id_idx\""]'
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$other" -f "$W/plan.sql" 2>&1
    assert_equal "$(schema_of "$other")" "$(schema_of "$PGDATABASE")"
}

@test "plan --sql on what interrupted runs left: psql with it builds what migrate builds" {
    mig post 010_left.ini <<'EOF'
[unique t_a_key]
table = t
columns = a
concurrently = true

[unique t_ab_key]
table = t
columns = a, b
concurrently = true

[not_null t_n_nn]
table = t
column = n

[not_null t_m_nn]
table = t
column = m
EOF
    other=$(fresh_db)
    for db in "$PGDATABASE" "$other"; do
        sql "CREATE TABLE t (id int PRIMARY KEY, a int, b int, n int, m int NOT NULL);
             INSERT INTO t VALUES (1, 1, 1, 1, 1), (2, 1, 2, 2, 2);
             CREATE UNIQUE INDEX t_ab_key ON t (a, b);
             ALTER TABLE t ADD CONSTRAINT t_n_nn CHECK (n IS NOT NULL) NOT VALID;
             ALTER TABLE t ADD CONSTRAINT t_m_nn CHECK (m IS NOT NULL)" -d "$db"
        # a concurrent build that failed on a duplicate leaves its index INVALID
        run sql "CREATE UNIQUE INDEX CONCURRENTLY t_a_key ON t (a)" -d "$db"
        assert_failure
        sql "UPDATE t SET a = 2 WHERE id = 2" -d "$db"
    done
    run sql "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
    assert_output 1
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_success
    printf '%s\n' "$output" >"$W/plan.sql"
    run grep -v '^--' "$W/plan.sql"
    assert_line 'DROP INDEX CONCURRENTLY "public"."t_a_key";'
    assert_line 'ALTER TABLE "public"."t" ADD CONSTRAINT "t_ab_key" UNIQUE USING INDEX "t_ab_key";'
    assert_line 'ALTER TABLE "public"."t" VALIDATE CONSTRAINT "t_n_nn";'
    assert_line 'ALTER TABLE "public"."t" DROP CONSTRAINT "t_m_nn";'
    refute_line --partial 'CHECK ("n" IS NOT NULL) NOT VALID'
    "$PGPRELUDE" -c "$CFG" migrate 2>/dev/null
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$other" -f "$W/plan.sql" 2>&1
    assert_equal "$(schema_of "$other")" "$(schema_of "$PGDATABASE")"
}

@test "plan --sql with [database] role: every step after SET ROLE, as migrate sends it" {
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'role = App Owner' 'wait_timeout = 5s' \
        '[phase pre]' 'dir = pre' >"$CFG"
    echo "CREATE TABLE owned (a int, b int);" | mig pre 001.sql
    printf '%s\n' '-- pgprelude: no-transaction' 'CREATE TABLE owned_too (a int);' | mig pre 002.sql
    run --separate-stderr "$PGPRELUDE" -c "$CFG" plan --sql
    assert_success
    assert_line 'BEGIN; SET LOCAL lock_timeout = 5000; SET LOCAL statement_timeout = 0; SET LOCAL ROLE "App Owner";'
    assert_line 'SET lock_timeout = 5000; SET statement_timeout = 0; SET ROLE "App Owner";'
    assert_line 'RESET lock_timeout; RESET statement_timeout; RESET ROLE;'
}

@test "plan --sql and --json: not both; verify takes no --sql, migrate no --json" {
    run "$PGPRELUDE" -c "$CFG" plan --json --sql
    assert_failure 2
    assert_output --partial 'give --json or --sql, not both'
    run "$PGPRELUDE" -c "$CFG" verify --sql
    assert_failure 2
    assert_output --partial '--sql goes with the plan command'
    run "$PGPRELUDE" -c "$CFG" migrate --json
    assert_failure 2
    assert_output --partial '--json goes with the status, plan and verify commands'
    # options may come before the command too
    run --separate-stderr "$PGPRELUDE" --json -c "$CFG" verify
    assert_success
    js_is '(d["command"], d["exit_code"])' '["verify", 0]'
}
