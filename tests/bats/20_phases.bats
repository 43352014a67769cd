#!/usr/bin/env bats
# run and wait_for phases, expect, and the hand-over.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
}

# config HEAD PHASE-LINES...: a [database] section, then the given lines
config() {
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' "$@" >"$CFG"
}

@test "run: argv without a shell, output under the phase's prefix, in order with SQL phases" {
    echo "CREATE TABLE before_run (a int);" | mig pre 001.sql
    echo "INSERT INTO made_by_run VALUES (1);" | mig post 001.sql
    config '[phase pre]' 'dir = pre' \
        '[phase schema]' "run = $PSQL -X -q -A -t -c \"CREATE TABLE made_by_run (a int)\" -c \"SELECT 'from run; no shell: \$HOME'\"" \
        '[phase post]' 'dir = post'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line '[schema] from run; no shell: $HOME'
    assert_output --partial 'run step "schema" finished in'
    run sql "SELECT count(*) FROM made_by_run"
    assert_output 1
}

@test "run: a failing command stops the start-up with its status, and later phases do not run" {
    echo "CREATE TABLE never (a int);" | mig post 001.sql
    config '[phase schema]' "run = sh -c 'echo partial output; echo oops >&2; exit 3'" '[phase post]' 'dir = post'
    run "$PGPRELUDE" -c "$CFG" -- echo never-started
    assert_failure 9
    assert_line '[schema] partial output'
    assert_line '[schema] oops'
    assert_output --partial 'run step "schema" failed: command "sh" exited with status 3'
    refute_output --partial never-started
    run sql "SELECT to_regclass('never') IS NULL"
    assert_output t
}

@test "run: a command that does not exist, and a timeout that kills the step" {
    config '[phase schema]' 'run = no-such-schema-tool apply'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 9
    assert_output --partial 'command "no-such-schema-tool" not found'
    # a value no other process on the machine uses, to look for leftovers
    config '[phase schema]' "run = sh -c 'sleep 61.$BATS_SUITE_TEST_NUMBER$$ & sleep 61.$BATS_SUITE_TEST_NUMBER$$'" 'timeout = 500ms'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 9
    assert_output --partial 'timed out'
    run pgrep -f "sleep 61.$BATS_SUITE_TEST_NUMBER$$"
    assert_failure
}

@test "expect: a step that exits 0 without creating its tables stops the start-up" {
    config '[phase schema]' 'run = true' 'expect = organization_users, public.event_participants'
    run "$PGPRELUDE" -c "$CFG" -- echo never-started
    assert_failure 9
    assert_line 'pgprelude: error: phase "schema" finished, but organization_users, public.event_participants do not exist'
    refute_output --partial never-started
    sql "CREATE TABLE organization_users (a int); CREATE TABLE event_participants (a int)"
    run "$PGPRELUDE" -c "$CFG" -- echo started
    assert_success
    assert_output --partial started
}

@test "wait_for: relations that already exist, and relations created while it waits" {
    sql "CREATE TABLE ready_now (a int)"
    config '[phase other]' 'wait_for = ready_now, made_later' 'timeout = 20s'
    ( sleep 1.5; sql "CREATE TABLE made_later (a int)" ) &
    run "$PGPRELUDE" -c "$CFG" migrate
    wait
    assert_success
    assert_output --partial 'phase "other": condition met after'
}

@test "wait_for: times out naming what is missing" {
    config '[phase other]' 'wait_for = never_made' 'timeout = 1s'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 9
    assert_output --partial 'phase "other": timed out after 1 s waiting for never_made to exist'
}

@test "wait_for_query: waits until the query returns true" {
    sql "CREATE TABLE flags (ready boolean); INSERT INTO flags VALUES (false)"
    config '[phase other]' 'wait_for_query = SELECT bool_and(ready) FROM flags' 'timeout = 20s'
    ( sleep 1.5; sql "UPDATE flags SET ready = true" ) &
    run "$PGPRELUDE" -c "$CFG" migrate
    wait
    assert_success
    assert_output --partial 'condition met'
    config '[phase other]' 'wait_for_query = SELECT false' 'timeout = 1s'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 9
    assert_output --partial 'waiting for wait_for_query to return true'
}

@test "hand-over: exec keeps the pid and the environment; [exec] command is the default" {
    # "$$" in a value is a literal "$", so the shell's $$ is written $$$$
    config '[exec]' "command = sh -c 'echo \"pid=\$\$\$\$ token=\$APP_TOKEN\"'"
    APP_TOKEN=t0k3n run bash -c 'echo "outer=$$"; exec "$0" -c "$1"' "$PGPRELUDE" "$CFG"
    assert_success
    outer=$(sed -n 's/^outer=//p' <<<"$output")
    assert_line "pid=$outer token=t0k3n"
    # the command after -- wins over [exec] command, with its own options untouched
    run "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "args: $*"' x -v --help
    assert_success
    assert_line 'args: -v --help'
}

@test "hand-over: the application's exit status is pgprelude's" {
    config
    run "$PGPRELUDE" -c "$CFG" -- sh -c 'exit 42'
    assert_failure 42
}

@test "hand-over: command not found is 127, not executable is 126" {
    config
    run -127 "$PGPRELUDE" -c "$CFG" -- /no/such/app
    assert_output --partial 'could not execute "/no/such/app"'
    printf 'echo hi\n' >"$W/app.sh"
    chmod 644 "$W/app.sh"
    run "$PGPRELUDE" -c "$CFG" -- "$W/app.sh"
    assert_failure 126
}

@test "no command to hand over to is a usage error before anything runs" {
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    config '[phase pre]' 'dir = pre'
    run "$PGPRELUDE" -c "$CFG"
    assert_failure 2
    assert_output --partial 'no command to hand over to'
    run sql "SELECT to_regclass('t') IS NULL"
    assert_output t
}
