#!/usr/bin/env bats
# Declarative constraints, hardened: a where cannot run other SQL (nor write
# under plan and verify), a deferrable unique is another definition, the
# predicate is normalised without creating anything (no TEMP privilege, a
# standby), a where the server reduces to true is no predicate, and the
# pre-flight of a unique reads the table only, not its inheritance children.

load test_helper/common
load test_helper/pgprelude
load test_helper/servers

setup() {
    new_db
    setup_layout
    two_phase_config
}

teardown() {
    servers_teardown
}

# cons SQL INI: the schema SQL (pre/001.sql) and the constraint file post/010.ini.
cons() {
    printf '%s\n' "$1" | mig pre 001.sql
    printf "$2" | mig post 010.ini
}

@test "a where that ends the statement cannot run other SQL: migrate and plan refuse it, nothing dropped" {
    # no blank before ";": " ;" would start an INI comment
    cons 'CREATE TABLE t (a int); CREATE TABLE victim (x int); INSERT INTO victim VALUES (1)' \
        '[unique t_a_pos]\ntable = t\ncolumns = a\nwhere = a > 0);COMMIT;DROP TABLE victim;--\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line --regexp '^post/010.ini:4: error: '
    assert_output --partial 'The "where" has unbalanced parentheses'
    run sql "SELECT count(*) FROM victim"
    assert_output 1
    run "$PGPRELUDE" -c "$CFG" plan
    assert_failure 2
    assert_line --regexp '^post/010.ini:4: error: '
    run sql "SELECT count(*) FROM victim"
    assert_output 1
    run sql "SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass"
    assert_output 0
}

@test "plan and verify read in a read-only transaction: a where that writes cannot" {
    cons "CREATE TABLE t (a int); CREATE TABLE victim (x int); INSERT INTO victim VALUES (1), (2);
          CREATE FUNCTION wipe(int) RETURNS boolean LANGUAGE plpgsql AS
            'BEGIN DELETE FROM victim; RETURN true; END';
          INSERT INTO t VALUES (1)" \
        '[unique t_a_other]\ntable = t\ncolumns = a\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    printf '[unique t_a_wiped]\ntable = t\ncolumns = a\nwhere = wipe(a)\n' | mig post 020.ini
    run "$PGPRELUDE" -c "$CFG" plan
    assert_output --partial 'read-only transaction'
    run sql "SELECT count(*) FROM victim"
    assert_output 2
    run "$PGPRELUDE" -c "$CFG" verify
    assert_failure 8
    run sql "SELECT count(*) FROM victim"
    assert_output 2
}

@test "a deferrable unique is another definition: not adopted, the declared one is created" {
    cons 'CREATE TABLE t (a int); ALTER TABLE t ADD CONSTRAINT t_a_later UNIQUE (a) DEFERRABLE;
          CREATE TABLE u (a int); CREATE UNIQUE INDEX u_a_key ON u (a); ALTER TABLE u ADD CONSTRAINT u_a_key UNIQUE USING INDEX u_a_key DEFERRABLE INITIALLY DEFERRED' \
        '[unique t_a_key]\ntable = t\ncolumns = a\n[unique u_a_key]\ntable = u\ncolumns = a\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 8
    assert_line 'post/010.ini:4: error: unique "u_a_key" on public.u exists with another definition'
    # the first one was not adopted: nothing of the file ran (drift), and plan says create
    run "$PGPRELUDE" -c "$CFG" plan
    assert_line --partial 'unique "t_a_key" on public.t: create UNIQUE ("a")'
    sql "ALTER TABLE u DROP CONSTRAINT u_a_key"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "t_a_key" on public.t: created'
    run sql "SELECT condeferrable FROM pg_constraint WHERE conname = 't_a_key'"
    assert_output f
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
}

@test "where is normalised without creating anything: works without the TEMP privilege" {
    local role="r_$PGDATABASE"
    sql "CREATE ROLE \"$role\" LOGIN PASSWORD '$PGPASSWORD';
         GRANT CREATE ON DATABASE \"$PGDATABASE\" TO \"$role\";
         REVOKE TEMP ON DATABASE \"$PGDATABASE\" FROM PUBLIC"
    sql "GRANT ALL ON SCHEMA public TO \"$role\""
    cons 'CREATE TABLE t (a int, live boolean); INSERT INTO t VALUES (1, true), (1, false)' \
        '[unique t_a_live]\ntable = t\ncolumns = a\nwhere = live\n'
    export DATABASE_URL="postgresql://$role:${PGPASSWORD}@127.0.0.1:${PGPORT}/${PGDATABASE}"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "t_a_live" on public.t: created'
    run "$PGPRELUDE" -v -c "$CFG" migrate
    assert_success
    refute_output --partial 'created'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
    # an index with the same predicate written another way is the same definition
    run sql "SELECT count(*) FROM pg_class WHERE relname LIKE 'pgprelude%'"
    assert_output 0
}

@test "verify and plan of a partial unique on a hot standby" {
    cons 'CREATE TABLE t (a int, live boolean)' \
        '[unique t_a_live]\ntable = t\ncolumns = a\nwhere = live IS TRUE\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    standby_start
    standby_sync
    run env DATABASE_URL="$STANDBY_URL" "$PGPRELUDE" -c "$CFG" verify
    assert_success
    assert_line --partial 'unique "t_a_live" on public.t: ok'
    run env DATABASE_URL="$STANDBY_URL" "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_line --partial 'unique "t_a_live" on public.t: nothing to do'
}

@test "an existing index whose predicate is written another way is adopted" {
    cons 'CREATE TABLE t (a int, b int); CREATE UNIQUE INDEX t_a_other ON t (a) WHERE NOT (b IS NULL) AND true' \
        '[unique t_a_b]\ntable = t\ncolumns = a\nwhere = b IS NOT NULL\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'adopted the existing unique index "t_a_other"'
    run sql "SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass"
    assert_output 1
}

@test "a where the server reduces to true is no predicate: created once, then nothing to do" {
    cons 'CREATE TABLE t (a int)' '[unique t_a_all]\ntable = t\ncolumns = a\nwhere = true\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "t_a_all" on public.t: created'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
    run "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_line --partial 'unique "t_a_all" on public.t: nothing to do'
}

@test "the pre-flight of a unique reads the table only, not its inheritance children" {
    cons 'CREATE TABLE t (a int); CREATE TABLE t_child () INHERITS (t);
          INSERT INTO t VALUES (1); INSERT INTO t_child VALUES (1)' \
        '[unique t_a_key]\ntable = t\ncolumns = a\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "t_a_key" on public.t: created'
    run sql "SELECT count(*) FROM t"
    assert_output 2
}

@test "a replaces that names a constraint declared elsewhere is refused, naming both places" {
    cons 'CREATE TABLE t (a int, b int)' \
        '[unique t_a_b_key]\ntable = t\ncolumns = a, b\nreplaces = t_a_key\n'
    printf '[unique t_a_key]\ntable = t\ncolumns = a\n' | mig pre 002.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line 'post/010.ini:4: error: [unique t_a_b_key] replaces "t_a_key", which is declared in pre/002.ini:1'
    run sql "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
    assert_output 0
}

@test "a replaces that matches nothing is reported: a warning, or info once it was dropped" {
    cons 'CREATE TABLE t (a int, b int)' \
        '[unique t_a_b_key]\ntable = t\ncolumns = a, b\nreplaces = t_a_kye\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'post/010.ini:4: warning: unique "t_a_b_key" on public.t: "t_a_kye" (replaces) names no index or constraint of public.t'
    run "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_line 'post/010.ini:4: info: unique "t_a_b_key" on public.t: "t_a_kye" (replaced) is already gone'
}

@test "not_null: a NULL written after the pre-flight leaves the helper CHECK, and the log says so" {
    load test_helper/locks
    locks_setup
    echo 'CREATE TABLE t (a int)' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    printf '[not_null t_a_nn]\ntable = t\ncolumn = a\nlock_timeout = 20s\n' | mig post 010.ini
    # uncommitted when the pre-flight counts, committed before the CHECK is added
    hold 2 'INSERT INTO t VALUES (NULL)'
    run "$PGPRELUDE" -c "$CFG" migrate
    locks_teardown
    assert_failure 6
    assert_line 'post/010.ini:1: warning: not_null "t_a_nn" on public.t: its helper CHECK ("a" IS NOT NULL) NOT VALID stays on the table: it rejects every new NULL in "a"'
    assert_output --partial 'hint: The next run counts the NULLs again'
}
