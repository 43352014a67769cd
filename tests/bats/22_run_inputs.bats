#!/usr/bin/env bats
# run steps with inputs: skipped while their fingerprint (argv and the files
# their inputs name) is the one recorded after their last success and their
# expect holds; run again when either changes. expect_query.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
    mkdir -p "$W/snap"
    echo "version: 1" >"$W/snap/a.yaml"
    # the step: counts its runs in a file, and (re)creates the table it is expected to
    STEP="sh -c 'echo run >>$W/runs; psql -X -q -c \"CREATE TABLE IF NOT EXISTS made (a int)\"'"
}

# step_config [LINE...]: [database], then [phase schema] running STEP with LINES.
step_config() {
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' \
        '[phase schema]' "run = $STEP" 'expect = made' "$@" >"$CFG"
}

runs() {
    wc -l <"$W/runs" 2>/dev/null || echo 0
}

@test "a step with inputs runs once, then is skipped while nothing changed; status and plan say so" {
    step_config 'inputs = snap/*.yaml'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    [ "$(runs)" -eq 1 ]
    run "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_output --partial 'phase "schema": run sh: up to date (inputs unchanged since'
    run "$PGPRELUDE" -c "$CFG" status
    assert_output --regexp 'schema +run +- +applied'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'phase "schema": up to date (inputs unchanged since'
    [ "$(runs)" -eq 1 ]
    json=$("$PGPRELUDE" -c "$CFG" status --json 2>/dev/null)
    python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["phases"][0]["state"] == "applied", d' <<<"$json"
}

@test "a changed input, a new file for a glob, or a changed command runs the step again" {
    step_config 'inputs = snap/*.yaml'
    "$PGPRELUDE" -c "$CFG" migrate
    echo "version: 2" >"$W/snap/a.yaml"
    run "$PGPRELUDE" -c "$CFG" plan
    assert_output --partial 'will run (its inputs or command changed)'
    "$PGPRELUDE" -c "$CFG" migrate
    [ "$(runs)" -eq 2 ]
    echo "more: 1" >"$W/snap/b.yaml"
    "$PGPRELUDE" -c "$CFG" migrate
    [ "$(runs)" -eq 3 ]
    "$PGPRELUDE" -c "$CFG" migrate
    [ "$(runs)" -eq 3 ]
    STEP="$STEP # another"
    step_config 'inputs = snap/*.yaml'
    "$PGPRELUDE" -c "$CFG" migrate
    [ "$(runs)" -eq 4 ]
}

@test "a dropped expected table heals: the step runs again though its inputs did not change" {
    step_config 'inputs = snap/a.yaml'
    "$PGPRELUDE" -c "$CFG" migrate
    sql "DROP TABLE made"
    run "$PGPRELUDE" -c "$CFG" plan
    assert_output --partial "will run (inputs unchanged, but its expect does not hold)"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    [ "$(runs)" -eq 2 ]
    run sql "SELECT to_regclass('made') IS NOT NULL"
    assert_output t
}

@test "without inputs a step runs on every start" {
    step_config
    "$PGPRELUDE" -c "$CFG" migrate
    "$PGPRELUDE" -c "$CFG" migrate
    [ "$(runs)" -eq 2 ]
    run "$PGPRELUDE" -c "$CFG" status
    assert_output --regexp 'schema +run +- +always'
}

@test "expect_query must hold after the step, and must return one boolean" {
    step_config 'inputs = snap/a.yaml' 'expect_query = SELECT count(*) > 0 FROM made'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 9
    assert_output --partial 'phase "schema" finished, but its expect_query returned f'
    # not recorded: the next start runs it again
    sql "INSERT INTO made VALUES (1)"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    [ "$(runs)" -eq 2 ]
    run "$PGPRELUDE" -c "$CFG" migrate
    [ "$(runs)" -eq 2 ]
    step_config 'expect_query = SELECT 42'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'expect_query must return one boolean (one row, one column); it returned "42", not a boolean'
}

@test "an input that cannot be read stops the start before anything runs" {
    mkdir "$W/snap/dir.yaml"
    step_config 'inputs = snap/*.yaml'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'could not read input'
    assert_output --partial 'it is a folder'
    [ "$(runs)" -eq 0 ]
}

@test "a run that runs the step reads its inputs once: what reading says is said once" {
    step_config 'inputs = snap/none-*.yaml'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    [ "$(runs)" -eq 1 ]
    run grep -c 'inputs: nothing matches' <<<"$output"
    assert_output 1
}

@test "an input glob under a folder that is not there matches nothing, and says so" {
    step_config 'inputs = nofolder/*.yaml'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --regexp 'inputs: nothing matches [^ ]*/nofolder/\*\.yaml'
    [ "$(runs)" -eq 1 ]
}
