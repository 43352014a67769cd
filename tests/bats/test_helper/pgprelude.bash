# Helpers for tests that run pgprelude on a phase layout in this test's temp dir.
#   W, CFG              the test's temp dir and its config file (setup_layout)
#   two_phase_config    [database] + [phase pre] dir=pre + [phase post] dir=post,
#                       then each argument as one more line
#   mig DIR NAME        write stdin to $W/DIR/NAME
#   table_writes        rows inserted, updated or deleted in this database's tables
#   await_session COND  wait (at most 10 s) for one session where COND holds
#   assert_no_pgprelude_session  pgprelude's sessions are gone (within 3 s)

setup_layout() {
    W=$(workdir)
    CFG=$W/pgprelude.ini
    mkdir -p "$W/pre" "$W/post"
    export W CFG
}

two_phase_config() {
    {
        printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' \
            'lock_wait_timeout = 5s' '[phase pre]' 'dir = pre' '[phase post]' 'dir = post'
        if (($#)); then printf '%s\n' "$@"; fi
    } >"$CFG"
}

mig() {
    mkdir -p "$W/$1"
    cat >"$W/$1/$2"
}

table_writes() {
    sql "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
}

# COND is an SQL condition over pg_stat_activity. Goes on after 10 s anyway:
# what the test checks next says what went wrong.
await_session() {
    wait_until 10 sql_is 1 "SELECT count(*) FROM pg_stat_activity WHERE $1" || true
}

assert_no_pgprelude_session() {
    local q="SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgprelude%'"
    wait_until 3 sql_is 0 "$q" || true
    run sql "$q"
    assert_output 0
}
