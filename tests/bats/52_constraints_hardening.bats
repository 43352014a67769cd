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

@test "a bare unique index with the spec's name satisfies it as it is: no constraint attached (an ORM may DROP INDEX it), also on a partitioned table" {
    cons 'CREATE TABLE t (a int); CREATE UNIQUE INDEX t_a_key ON t (a);
          CREATE TABLE p (k int, a int) PARTITION BY RANGE (k);
          CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
          CREATE UNIQUE INDEX p_k_a_key ON p (k, a)' \
        '[unique t_a_key]\ntable = t\ncolumns = a\n[unique p_k_a_key]\ntable = p\ncolumns = k, a\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    refute_output --partial 'added the constraint'
    run sql "SELECT count(*) FROM pg_constraint WHERE conrelid IN ('t'::regclass, 'p'::regclass)"
    assert_output 0
    run "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_line 'post/010.ini:1: unique "t_a_key" on public.t: nothing to do'
    assert_line 'post/010.ini:4: unique "p_k_a_key" on public.p: nothing to do'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
    # what an ORM's next migration does with its own index
    sql "DROP INDEX t_a_key; DROP INDEX p_k_a_key"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "t_a_key" on public.t: created'
    assert_line --partial 'unique "p_k_a_key" on public.p: created'
}

# bad_spec SQL INI CODE LINE: with the tables of SQL, plan and migrate refuse
# the file with exit CODE and an error at post/010.ini:LINE, before any DDL:
# the good first spec ([unique ok_a] on table ok) is not created either.
bad_spec() {
    sql "CREATE TABLE ok (a int); $1"
    printf "[unique ok_a]\ntable = ok\ncolumns = a\n$2" | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" plan
    assert_failure "$3"
    assert_line --regexp "^post/010.ini:$4: error: "
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure "$3"
    assert_line --regexp "^post/010.ini:$4: error: "
    refute_output --partial 'created'
    [[ $(sql "SELECT count(*) FROM pg_index WHERE indrelid = 'ok'::regclass") == 0 ]]
}

@test "what can never work is refused before any DDL, exit 2: a partition key left out, concurrently on a partitioned table, json or point keys, 33 columns" {
    local part='CREATE TABLE p (k int, a int) PARTITION BY RANGE (k); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)'
    bad_spec "$part" '[unique p_a]\ntable = p\ncolumns = a\n' 2 6
    assert_output --partial 'public.p is partitioned, and a unique on it must contain every column of its partition key'
    assert_line 'pgprelude: detail: Its partition key: k.'
    new_db
    bad_spec "$part" '[unique p_k_a]\ntable = p\ncolumns = k, a\nconcurrently = true\n' 2 4
    assert_output --partial 'concurrently on the partitioned table public.p'
    new_db
    bad_spec 'CREATE TABLE t (a int, j json)' '[unique t_a_j]\ntable = t\ncolumns = a, j\n' 2 6
    assert_output --partial 'column "j" of public.t has type json, which has no default btree operator class'
    new_db
    bad_spec 'CREATE TABLE t (pt point)' '[unique t_pt]\ntable = t\ncolumns = pt\n' 2 6
    assert_output --partial 'has type point'
    new_db
    local cols names
    cols=$(seq -f 'c%g int' -s ', ' 1 33)
    names=$(seq -f 'c%g' -s ', ' 1 33)
    bad_spec "CREATE TABLE w ($cols)" "[unique w_all]\ntable = w\ncolumns = $names\n" 2 6
    assert_output --partial '[unique w_all]: 33 columns, but an index of this server takes at most 32'
    # a partitioned table with its key among the columns is fine; so are varchar, arrays, enums
    new_db
    cons "$part; CREATE TYPE mood AS ENUM ('ok'); CREATE TABLE v (s varchar(9), arr int[], m mood)" \
        '[unique p_a_k]\ntable = p\ncolumns = a, k\n[unique v_all]\ntable = v\ncolumns = s, arr, m\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
}

@test "what the state of the database forbids is refused before any DDL, exit 7: a foreign key on the replaced unique, a table of another owner" {
    bad_spec 'CREATE TABLE r (id int, c int); CREATE UNIQUE INDEX r_id_u ON r (id);
              CREATE TABLE f (r int REFERENCES r (id))' \
        '[unique r_id_c]\ntable = r\ncolumns = id\nwhere = c > 0\nreplaces = r_id_u\n' 7 8
    assert_line 'post/010.ini:8: error: [unique r_id_c]: "r_id_u" (replaces) cannot be dropped: foreign keys depend on it'
    assert_line 'pgprelude: detail: Depending on it: f_r_fkey on f.'
    # another owner: the connecting role is neither the owner nor a member of its role
    new_db
    local role="r_$PGDATABASE" other="o_$PGDATABASE"
    sql "CREATE ROLE \"$role\" LOGIN PASSWORD '$PGPASSWORD'; CREATE ROLE \"$other\";
         GRANT CREATE ON DATABASE \"$PGDATABASE\" TO \"$role\"; GRANT ALL ON SCHEMA public TO \"$role\""
    export DATABASE_URL="postgresql://$role:${PGPASSWORD}@127.0.0.1:${PGPORT}/${PGDATABASE}"
    cons 'CREATE TABLE ok (a int); CREATE TABLE w (x int, y int)' '[not_null ok_a]\ntable = ok\ncolumn = a\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    sql "ALTER TABLE w OWNER TO \"$other\"; GRANT SELECT ON w TO \"$role\""
    printf '[unique ok_a]\ntable = ok\ncolumns = a\n[unique w_x]\ntable = w\ncolumns = x\n[not_null w_y]\ntable = w\ncolumn = y\n' | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" plan
    assert_failure 7
    assert_line "post/010.ini:4: error: [unique w_x]: the role \"$role\" may not alter public.w, owned by \"$other\""
    assert_line "post/010.ini:7: error: [not_null w_y]: the role \"$role\" may not alter public.w, owned by \"$other\""
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 7
    refute_output --partial 'created'
    run sql "SELECT count(*) FROM pg_index WHERE indrelid = 'ok'::regclass"
    assert_output 0
    # a member of the owner's role may
    sql "GRANT \"$other\" TO \"$role\""
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
}

@test "offending keys are quoted: the string 'NULL' is not NULL, a comma stays inside its value" {
    cons "CREATE TABLE t (a text, b text, n int);
          INSERT INTO t VALUES ('a,b', NULL, 1), ('a,b', NULL, 1), ('a,b', 'NULL', 2), ('a,b', 'NULL', 2), ('it''s', 'x', 3), ('it''s', 'x', 3)" \
        '[unique t_a_b]\ntable = t\ncolumns = a, b\nnulls_not_distinct = true\n[unique t_n]\ntable = t\ncolumns = n\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 7
    assert_line "pgprelude: detail: (a, b) = ('a,b', NULL): 2 rows"
    assert_line "pgprelude: detail: (a, b) = ('a,b', 'NULL'): 2 rows"
    assert_line "pgprelude: detail: (a, b) = ('it''s', 'x'): 2 rows"
    assert_line 'pgprelude: detail: n = 1: 2 rows'
}

@test "an exit-6 failure of a constraint names its file, line and spec; a plan line with a long where is one whole line" {
    cons 'CREATE TABLE t (a int, b int); INSERT INTO t VALUES (1, 1)' \
        '[unique t_a_odd]\ntable = t\ncolumns = a\nwhere = a / (b - 1) > 0\n'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'division by zero'
    assert_line 'pgprelude: context: in [unique t_a_odd] at post/010.ini:1'
    # a where of 3 KB written on indented lines
    local where i
    where='b = 0'
    for i in $(seq 1 300); do where+=$'\n'"  OR b = $i"; done
    printf '[unique t_b_many]\ntable = t\ncolumns = b\nwhere = %s\n' "$where" | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_line --regexp '^post/010.ini:1: unique "t_b_many" on public.t: create UNIQUE \("b"\) WHERE \(b = 0 OR b = 1 OR .* OR b = 299 OR b = 300\); pre-flight: no duplicates$'
}

@test "a no-op start with declared constraints reads the catalog in a few pipelines, takes no transaction ID, and still sees a bad where" {
    local i schema='' ini='' x0 c0 c1
    for i in $(seq 1 10); do
        schema+="CREATE TABLE t$i (a int, b int, live boolean, n int);"
        ini+="[unique t${i}_a_b_key]\ntable = t$i\ncolumns = a, b\n"
        ini+="[unique t${i}_b_live]\ntable = t$i\ncolumns = b\nwhere = live\n"
        ini+="[not_null t${i}_n]\ntable = t$i\ncolumn = n\n"
    done
    cons "$schema" "$ini"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    # every statement outside a transaction block commits on its own; a
    # pipeline's statements commit once: the commits count the round trips
    commits() { sql "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"; }
    x0=$(sql 'SELECT pg_catalog.txid_current()')
    c0=$(commits)
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    c1=$(commits)
    # 30 specs read one by one took about 140 statements
    ((c1 - c0 < 45)) || fail "a no-op start committed $((c1 - c0)) times"
    sql_is "$((x0 + 1))" 'SELECT pg_catalog.txid_current()'
    # a where that no longer parses is still reported as before
    sql 'ALTER TABLE t3 RENAME COLUMN live TO alive'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'column "live" does not exist'
    assert_line --regexp '^post/010.ini:[0-9]+: error: '
}
