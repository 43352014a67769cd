#!/usr/bin/env bats
# Where the history lives: its own schema by default, out of the way of a
# schema tool that drops what it does not know in public; the table earlier
# versions kept in public is moved there; a step that drops it is named.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
}

@test "the history lives in the schema pgprelude: a step that empties public loses nothing" {
    two_phase_config
    # a stand-in for `directus schema apply`: drops every table in public it does not know
    sed -i '/\[phase post\]/i [phase schema]\nrun = psql -X -q -v ON_ERROR_STOP=1 -c "DROP TABLE IF EXISTS stray"\n' "$CFG"
    echo "CREATE TABLE stray (a int); INSERT INTO stray VALUES (1);" | mig pre 001.sql
    echo "CREATE TABLE kept (a int);" | mig post 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 2
    run sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'pgprelude%'"
    assert_output 0
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'phase "pre": 0 files applied, 1 up to date'
}

@test "the history an earlier version kept in public is moved to pgprelude.history, rows and all" {
    two_phase_config
    echo "CREATE TABLE t (a int); INSERT INTO t VALUES (1);" | mig pre 001.sql
    echo "INSERT INTO t VALUES (2);" | mig pre 002.sql
    sum=$(sha256sum "$W/pre/001.sql" | cut -d' ' -f1)
    sql "CREATE TABLE t (a int); INSERT INTO t VALUES (1);
         CREATE TABLE public.pgprelude_history (phase text NOT NULL, file text NOT NULL,
           checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
           duration_ms integer NOT NULL, applied_by text NOT NULL DEFAULT current_user,
           applied_host text NOT NULL, pgprelude_version text NOT NULL, outcome text NOT NULL,
           PRIMARY KEY (phase, file));
         INSERT INTO public.pgprelude_history (phase, file, checksum, duration_ms, applied_host,
           pgprelude_version, outcome) VALUES ('pre', '001.sql', '$sum', 1, 'old', '0.1.0', 'applied')"
    # status reads it where it is, and changes nothing
    run "$PGPRELUDE" -c "$CFG" status
    assert_success
    assert_output --regexp 'pre +dir +001.sql +applied'
    run sql "SELECT to_regclass('public.pgprelude_history') IS NOT NULL"
    assert_output t
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'moved the history table public.pgprelude_history to "pgprelude"."history" (1 row)'
    run sql "SELECT string_agg(a::text, ',' ORDER BY a) FROM t"
    assert_output "1,2"
    run sql "SELECT string_agg(file || ':' || applied_host, ',' ORDER BY file) FROM pgprelude.history"
    assert_output "001.sql:old,002.sql:$(hostname)"
    run sql "SELECT to_regclass('public.pgprelude_history') IS NULL"
    assert_output t
}

@test "a run step that drops the history table is named, exit 9, and nothing more runs" {
    two_phase_config
    sed -i '/\[phase post\]/i [phase schema]\nrun = psql -X -q -c "DROP TABLE pgprelude.history"\n' "$CFG"
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    echo "CREATE TABLE later (a int);" | mig post 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 9
    assert_output --partial 'error: the history table "pgprelude"."history" is gone: run step "schema" dropped it'
    refute_output --partial 'SQL error'
    run sql "SELECT to_regclass('later') IS NULL"
    assert_output t
}
