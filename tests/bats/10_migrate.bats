#!/usr/bin/env bats
# dir phases: order, history, idempotence, changed/repeatable/moved files, SQL errors.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
}

@test "fresh run applies every file in byte order, records it, and hands over" {
    two_phase_config
    echo "CREATE TABLE seen (n serial, name text);" | mig pre 001_seen.sql
    echo "INSERT INTO seen (name) VALUES ('10');" | mig pre 10_b.sql
    echo "INSERT INTO seen (name) VALUES ('2');" | mig pre 2_a.sql
    echo "INSERT INTO seen (name) VALUES ('B');" | mig pre B.sql
    echo "INSERT INTO seen (name) VALUES ('post');" | mig post 001_post.sql
    run "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "app says hello"'
    assert_success
    assert_output --partial "app says hello"
    assert_output --partial 'applied pre/001_seen.sql'
    assert_output --partial 'handing over to "sh"'
    # byte order: 001 < 10_b < 2_a < B, and phases in file order
    run sql "SELECT string_agg(name, ',' ORDER BY n) FROM seen"
    assert_output "10,2,B,post"
    run sql "SELECT phase || ':' || file FROM pgprelude.history ORDER BY phase DESC, file"
    assert_output "$(printf 'pre:001_seen.sql\npre:10_b.sql\npre:2_a.sql\npre:B.sql\npost:001_post.sql')"
    run sql "SELECT count(*) FROM pgprelude.history WHERE length(checksum) = 64 AND applied_by = 'postgres'
               AND applied_host <> '' AND pgprelude_version <> '' AND outcome = 'applied' AND duration_ms >= 0"
    assert_output 5
    # the checksum is the SHA-256 of the file
    run sql "SELECT checksum FROM pgprelude.history WHERE file = 'B.sql'"
    assert_output "$(sha256sum "$W/pre/B.sql" | cut -d' ' -f1)"
}

@test "second run applies nothing and writes to no table" {
    two_phase_config
    echo "CREATE TABLE t (a int); INSERT INTO t VALUES (1);" | mig pre 001.sql
    echo "ALTER TABLE t ADD COLUMN b int;" | mig post 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    before=$(table_writes)
    xmin_before=$(sql "SELECT string_agg(xmin::text, ',' ORDER BY file) FROM pgprelude.history")
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'phase "pre": 0 files applied, 1 up to date'
    assert_output --partial 'phase "post": 0 files applied, 1 up to date'
    refute_output --partial 'applied pre/'
    assert_equal "$(table_writes)" "$before"
    assert_equal "$(sql "SELECT string_agg(xmin::text, ',' ORDER BY file) FROM pgprelude.history")" "$xmin_before"
}

@test "a changed file is refused with both checksums, before anything runs" {
    two_phase_config
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    old=$(sha256sum "$W/pre/001.sql" | cut -d' ' -f1)
    echo "CREATE TABLE t (a bigint);" | mig pre 001.sql
    new=$(sha256sum "$W/pre/001.sql" | cut -d' ' -f1)
    echo "CREATE TABLE later (a int);" | mig pre 002.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 8
    assert_output --partial "pre/001.sql: error: the file changed after it was applied"
    assert_output --partial "$old"
    assert_output --partial "$new"
    assert_output --partial "hint: Restore the file"
    # nothing ran: the pending file was not applied
    run sql "SELECT to_regclass('later') IS NULL"
    assert_output t
}

@test "a repeatable file runs again when it changes, and only then" {
    two_phase_config
    printf -- '-- pgprelude: repeatable\nCREATE OR REPLACE VIEW v AS SELECT 1 AS x;\n' | mig post 100_view.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_output --partial '0 files applied'
    printf -- '-- pgprelude: repeatable\nCREATE OR REPLACE VIEW v AS SELECT 2 AS x;\n' | mig post 100_view.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'applied post/100_view.sql again'
    run sql "SELECT x FROM v"
    assert_output 2
    run sql "SELECT outcome FROM pgprelude.history WHERE file = '100_view.sql'"
    assert_output reapplied
}

@test "a file moved to another phase is reported, not run twice" {
    two_phase_config
    echo "CREATE TABLE moved (a int);" | mig pre 005_moved.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    mv "$W/pre/005_moved.sql" "$W/post/001_moved.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'post/001_moved.sql: warning: already applied as "005_moved.sql" in phase "pre"'
    run "$PGPRELUDE" -c "$CFG" status
    assert_output --regexp 'post +dir +001_moved.sql +moved'
    assert_output --regexp 'pre +dir +005_moved.sql +missing'
}

@test "an SQL error names file, line and column, SQLSTATE, and rolls the whole file back" {
    two_phase_config
    mig post 001_x.sql <<'SQL'
-- junction uniques
CREATE TABLE ok_before (a int);

ALTER TABLE organization_users
  ADD CONSTRAINT u UNIQUE (organization_id, user_id);
SQL
    run "$PGPRELUDE" -c "$CFG" -- true
    assert_failure 6
    assert_line 'post/001_x.sql:4:1: error: relation "organization_users" does not exist (42P01)'
    run sql "SELECT to_regclass('ok_before') IS NULL, (SELECT count(*) FROM pgprelude.history WHERE file = '001_x.sql')"
    assert_output "t|0"
}

@test "SQL error detail, hint and context are printed; positions count characters" {
    two_phase_config
    mig pre 001.sql <<'SQL'
CREATE TABLE t (a int PRIMARY KEY, note text);
INSERT INTO t VALUES (1, 'héhé ünïcødé');
INSERT INTO t VALUES (1, 'dup');
SQL
    mig pre 002.sql <<'SQL'
SELECT 'ééé', nosuchcolumn FROM t;
SQL
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_line 'pre/001.sql:3:1: error: duplicate key value violates unique constraint "t_pkey" (23505)'
    assert_line 'pgprelude: detail: Key (a)=(1) already exists.'
    echo "CREATE TABLE t (a int PRIMARY KEY, note text);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_line 'pre/002.sql:1:15: error: column "nosuchcolumn" does not exist (42703)'
    mig pre 002.sql <<'SQL'
DO $$ BEGIN RAISE EXCEPTION 'custom failure' USING HINT = 'Fix the data first.'; END $$;
SQL
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_line 'pre/002.sql:1:1: error: custom failure (P0001)'
    assert_line 'pgprelude: hint: Fix the data first.'
    assert_line --partial 'pgprelude: context: PL/pgSQL function inline_code_block line 1 at RAISE'
}

@test "NOTICEs and WARNINGs from a migration reach the log under the file's name" {
    two_phase_config
    mig pre 001.sql <<'SQL'
DO $$ BEGIN RAISE NOTICE 'backfilled % rows', 42; RAISE WARNING 'check this'; END $$;
SQL
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'pre/001.sql: info: NOTICE: backfilled 42 rows'
    assert_line 'pre/001.sql: warning: check this'
    refute_output --partial 'WARNING:'
}

@test "hidden and non-.sql files are skipped (with a debug line)" {
    two_phase_config
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    echo "garbage" | mig pre .002_hidden.sql
    echo "garbage" | mig pre README.md
    echo "garbage" | mig pre 003.sql.bak
    run "$PGPRELUDE" -v -c "$CFG" migrate
    assert_success
    assert_output --partial 'skipping hidden file ".002_hidden.sql"'
    assert_output --partial 'skipping "README.md" (not a .sql file)'
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 1
}

@test "a file that commits by itself is refused before it runs, and not recorded" {
    two_phase_config
    printf 'CREATE TABLE a (x int);\nCOMMIT;\n' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'pre/001.sql:2:1: error: transaction control in a file that runs in a transaction: "COMMIT;"'
    run sql "SELECT to_regclass('a') IS NULL AND to_regclass('pgprelude.history') IS NULL"
    assert_output t
}

@test "bad migration files: a directory, a dangling link, an unknown directive" {
    two_phase_config
    mkdir "$W/pre/002_dir.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'pre/002_dir.sql'
    assert_output --partial 'it is a directory'
    rmdir "$W/pre/002_dir.sql"
    ln -s "$W/nowhere.sql" "$W/pre/003_link.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'dangling symbolic link'
    rm "$W/pre/003_link.sql"
    printf -- '-- pgprelude: repeatible\nSELECT 1;\n' | mig pre 004.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line 'pre/004.sql:1: error: unknown pgprelude directive'
    # none of these runs created anything
    run sql "SELECT to_regclass('pgprelude.history') IS NULL"
    assert_output t
}

@test "a missing phase folder is a clear error" {
    two_phase_config
    rmdir "$W/post"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial "could not open folder \"$W/post\" of phase \"post\": No such file or directory"
}

@test "history table name and schema are configurable" {
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' '[history]' 'table = ops.migrations' \
        '[phase pre]' 'dir = pre' >"$CFG"
    echo "CREATE TABLE a (x int);" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT count(*) FROM ops.migrations"
    assert_output 1
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_output --partial '0 files applied'
}
