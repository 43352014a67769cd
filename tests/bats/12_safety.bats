#!/usr/bin/env bats
# Data safety on the reading side: files that would run differently from what
# they say are refused before anything runs, or run as they say; checksums
# that do not change with line ends or a BOM.

load test_helper/common
load test_helper/pgprelude

setup() {
    new_db
    setup_layout
}

# ---- transaction control in a transactional file ----

@test "a file wrapped in BEGIN; ... COMMIT; runs as one transaction with its history row, once" {
    two_phase_config
    printf 'BEGIN;\nCREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\nCOMMIT;\n' | mig pre 001.sql
    printf 'START TRANSACTION ISOLATION LEVEL READ COMMITTED;\nINSERT INTO t VALUES (2);\nEND;\n' | mig pre 002.sql
    printf -- '-- wrapped\nbegin work;\nINSERT INTO t VALUES (3);\nSAVEPOINT s;\nINSERT INTO t VALUES (99);\nROLLBACK TO SAVEPOINT s;\nRELEASE s;\ncommit work;\n' | mig pre 003.sql
    printf 'BEGIN ISOLATION LEVEL SERIALIZABLE;\nINSERT INTO t VALUES (4);\nCREATE TABLE iso AS SELECT current_setting($$transaction_isolation$$) AS level;\nEND TRANSACTION;\n' | mig pre 004.sql
    printf 'START TRANSACTION READ WRITE;\nINSERT INTO t VALUES (5);\nCOMMIT AND NO CHAIN;\n' | mig pre 005.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    refute_output --partial 'transaction in progress'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial '0 files applied'
    run sql "SELECT string_agg(a::text, ',' ORDER BY a) FROM t"
    assert_output "1,2,3,4,5"
    run sql "SELECT count(*) FROM pgprelude.history WHERE outcome = 'applied'"
    assert_output 5
    # BEGIN's transaction modes hold for the transaction the file runs in
    run sql "SELECT level FROM iso"
    assert_output serializable
}

@test "a wrapped file whose body fails leaves nothing and names the line" {
    two_phase_config
    printf 'BEGIN;\nCREATE TABLE t (a int);\nINSERT INTO nosuch VALUES (1);\nCOMMIT;\n' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'pre/001.sql:3:13: error: relation "nosuch" does not exist'
    run sql "SELECT to_regclass('t') IS NULL"
    assert_output t
}

@test "BEGIN ATOMIC bodies, DO blocks and a no-transaction file's own BEGIN/COMMIT are not transaction control" {
    two_phase_config
    mig pre 001.sql <<'SQL'
CREATE TABLE t (a int);
CREATE FUNCTION f() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT 1;
END;
DO $$ BEGIN INSERT INTO t VALUES (1); COMMIT; END $$;
SQL
    printf -- '-- pgprelude: no-transaction\nBEGIN;\nINSERT INTO t VALUES (2);\nCOMMIT;\n' | mig pre 002.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    # a DO block cannot COMMIT inside pgprelude's transaction: the server says so
    assert_failure 6
    refute_output --partial 'transaction control'
    sed -i 's/ COMMIT;//' "$W/pre/001.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT string_agg(a::text, ',' ORDER BY a) FROM t"
    assert_output "1,2"
}

# refused_tx NAME TEXT LINE: a transactional file holding TEXT is refused before
# anything runs, exit 2, naming LINE.
refused_tx() {
    two_phase_config
    rm -f "$W"/pre/*.sql
    echo "CREATE TABLE marker (a int);" | mig pre 000_marker.sql
    printf '%b' "$2" | mig pre "$1"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial "pre/$1:$3: error: transaction control"
    run sql "SELECT to_regclass('marker') IS NULL AND to_regclass('t') IS NULL"
    assert_output t
}

@test "COMMIT in the middle of a transactional file is refused before anything runs" {
    refused_tx 001.sql 'CREATE TABLE t (a int);\nCOMMIT;\nINSERT INTO t VALUES (1);\n' 2:1
}

@test "a trailing COMMIT without a leading BEGIN is refused" {
    refused_tx 001.sql 'CREATE TABLE t (a int);\n  commit;\n' 2:3
}

@test "ROLLBACK and ABORT in a transactional file are refused before anything runs" {
    refused_tx 001.sql 'BEGIN;\nCREATE TABLE t (a int);\nROLLBACK;\n' 3:1
    refused_tx 002.sql 'CREATE TABLE t (a int);\nABORT;\n' 2:1
}

@test "COMMIT AND CHAIN and ROLLBACK AND CHAIN in a transactional file are refused" {
    refused_tx 001.sql 'BEGIN;\nCREATE TABLE t (a int);\nCOMMIT AND CHAIN;\nINSERT INTO t VALUES (1);\nCOMMIT;\n' 3:1
    refused_tx 002.sql 'BEGIN;\nCREATE TABLE t (a int);\nCOMMIT AND CHAIN;\n' 3:1
    refused_tx 003.sql 'BEGIN;\nCREATE TABLE t (a int);\nROLLBACK AND CHAIN;\nCOMMIT;\n' 3:1
}

@test "PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED in a transactional file are refused" {
    refused_tx 001.sql "BEGIN;\nCREATE TABLE t (a int);\nPREPARE TRANSACTION 'x';\n" 3:1
    refused_tx 002.sql "CREATE TABLE t (a int);\nCOMMIT PREPARED 'x';\n" 2:1
    refused_tx 003.sql "CREATE TABLE t (a int);\nROLLBACK PREPARED 'x';\n" 2:1
}

@test "a second BEGIN in a transactional file is refused" {
    refused_tx 001.sql 'BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\nBEGIN;\nINSERT INTO t VALUES (1);\nCOMMIT;\n' 3:1
    refused_tx 002.sql 'CREATE TABLE t (a int);\nBEGIN;\nINSERT INTO t VALUES (1);\n' 2:1
}

# ---- bytes and special files ----

@test "a file with a NUL byte is refused before anything runs, naming line and column" {
    two_phase_config
    echo "CREATE TABLE marker (a int);" | mig pre 000_marker.sql
    printf 'CREATE TABLE t (a int);\nSELECT 1;\0 DROP TABLE t;\n' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'pre/001.sql:2:10: error: the file holds a NUL byte'
    run sql "SELECT to_regclass('marker') IS NULL"
    assert_output t
    run "$PGPRELUDE" -c "$CFG" verify
    assert_failure
}

@test "a FIFO named like a migration is refused without opening it, at once" {
    two_phase_config
    mkfifo "$W/pre/001.sql"
    run timeout -k 2 10 "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'pre/001.sql": not a regular file'
}

# ---- clear messages ----

@test "a UTF-8 BOM is skipped, and a directive after it or after a leading block comment is honoured" {
    two_phase_config
    printf '\xef\xbb\xbfCREATE TABLE t (a int);\n' | mig pre 001.sql
    printf '\xef\xbb\xbf-- pgprelude: no-transaction\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n' | mig pre 002.sql
    printf '/* header\n   of the file */\n-- pgprelude: no-transaction\nCREATE INDEX CONCURRENTLY t_a2 ON t (a);\n' | mig pre 003.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT count(*) FROM pg_indexes WHERE tablename = 't'"
    assert_output 2
}

@test "a comment that looks like a directive but is none is a warning naming it" {
    two_phase_config
    printf -- '-- PgPrelude: no-transaction\nCREATE TABLE t (a int);\n' | mig pre 001.sql
    printf -- '-- pgprelude no-transaction\nCREATE TABLE u (a int);\n' | mig pre 002.sql
    printf -- '/* x */\n-- pgprelud: repeatable\n-- pgpreludes: repeatable\nCREATE TABLE v (a int);\n' | mig pre 003.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'pre/001.sql:1: warning: "-- PgPrelude: no-transaction" looks like a pgprelude directive'
    assert_output --partial 'pre/002.sql:1: warning: "-- pgprelude no-transaction" looks like a pgprelude directive'
    assert_output --partial 'pre/003.sql:3: warning: "-- pgpreludes: repeatable" looks like a pgprelude directive'
}

@test "a comment-only or empty file is recorded as applied, with a warning" {
    two_phase_config
    printf -- '-- for another dialect\n/* nothing here */\n' | mig pre 001_comment.sql
    : | mig pre 002_empty.sql
    printf '\xef\xbb\xbf\n' | mig pre 003_bom.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'pre/001_comment.sql: warning: the file holds no SQL statement'
    assert_output --partial 'pre/002_empty.sql: warning: the file holds no SQL statement'
    run sql "SELECT count(*) FROM pgprelude.history WHERE outcome = 'applied'"
    assert_output 3
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
}

@test "psql meta-commands are named as psql-only, with file and line, before anything runs" {
    two_phase_config
    echo "CREATE TABLE marker (a int);" | mig pre 000.sql
    printf 'CREATE TABLE t (a int);\n\\set ON_ERROR_STOP on\n' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'pre/001.sql:2:1: error: "\set" is a psql meta-command'
    refute_output --partial 'syntax error'
    run sql "SELECT to_regclass('marker') IS NULL"
    assert_output t
    # one inside a string or a comment is no meta-command
    printf -- "-- \\\\i x.sql\nCREATE TABLE t (a text DEFAULT E'\\\\\\\\i');\n" | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
}

@test "x.SQL and x.sql.bak in a phase folder get an info line" {
    two_phase_config
    echo "CREATE TABLE t (a int);" | mig pre 001.SQL
    echo "CREATE TABLE u (a int);" | mig pre 002.sql.bak
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'info: phase "pre": skipping "001.SQL"'
    assert_output --partial 'info: phase "pre": skipping "002.sql.bak"'
}

@test "a run that applies reads each folder once: what reading says is said once" {
    two_phase_config
    echo "CREATE TABLE t (a int);" | mig pre 001_a.sql
    echo "CREATE TABLE u (a int);" | mig pre x.SQL
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'phase "pre": 1 file applied'
    run grep -c 'skipping "x.SQL"' <<<"$output"
    assert_output 1
}

@test "the changed-file hint names the accept command, the path quoted for a shell" {
    two_phase_config
    echo "CREATE TABLE t (a int);" | mig pre "001_o'brien.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    echo "CREATE TABLE t (a bigint);" | mig pre "001_o'brien.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 8
    assert_output --partial "pgprelude accept 'pre/001_o'\\''brien.sql';"
    # the hint's command does it
    run "$PGPRELUDE" -c "$CFG" accept "pre/001_o'brien.sql"
    assert_success
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
}

# ---- the moved-file rule ----

@test "a new file whose content equals an applied file of another phase still runs" {
    two_phase_config
    echo "CREATE TABLE log (x text);" | mig pre 000.sql
    echo "INSERT INTO log VALUES ('x');" | mig pre 001_a.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    echo "INSERT INTO log VALUES ('x');" | mig post 001_b.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    refute_output --partial 'already applied as'
    run sql "SELECT count(*) FROM log"
    assert_output 2
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
    # a real move (the old file gone) is still recognised and not run again
    mv "$W/pre/001_a.sql" "$W/post/002_a.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'already applied as "001_a.sql" in phase "pre"'
    run sql "SELECT count(*) FROM log"
    assert_output 2
}

# ---- stable checksums ----

@test "CRLF line ends or a BOM do not change a file; rows of earlier versions still match; a real change does" {
    two_phase_config
    printf 'CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n' | mig pre 001.sql
    printf 'CREATE TABLE u (a int);\n' | mig pre 002.sql
    printf 'CREATE TABLE v (a int);\r\nCREATE TABLE w (a int);\r\n' | mig pre 003.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    # as earlier versions recorded 003.sql: the hash of its bytes as they are
    raw=$(sha256sum "$W/pre/003.sql" | cut -d' ' -f1)
    sql "UPDATE pgprelude.history SET checksum = '$raw' WHERE file = '003.sql'"
    # 001.sql checked out with CRLF, 002.sql saved with a BOM
    sed -i 's/$/\r/' "$W/pre/001.sql"
    printf '\xef\xbb\xbfCREATE TABLE u (a int);\n' >"$W/pre/002.sql"
    before=$(sql "SELECT string_agg(xmin::text || checksum, ',' ORDER BY file) FROM pgprelude.history")
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial '0 files applied'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
    assert_equal "$(sql "SELECT string_agg(xmin::text || checksum, ',' ORDER BY file) FROM pgprelude.history")" "$before"
    printf 'CREATE TABLE t (a bigint);\r\nINSERT INTO t VALUES (1);\r\n' >"$W/pre/001.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 8
    assert_output --partial 'pre/001.sql: error: the file changed after it was applied'
}

# ---- wait_for_query ----

@test "a wait_for_query that returns NULL or no boolean says what it returned" {
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' \
        '[phase w]' 'wait_for_query = SELECT NULL::boolean' 'timeout = 1s' >"$CFG"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 9
    assert_output --partial 'to return true (it returned NULL)'
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' \
        '[phase w]' "wait_for_query = SELECT 'yes'::text" 'timeout = 10s' >"$CFG"
    run timeout -k 2 5 "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'wait_for_query must return one boolean'
    assert_output --partial '"yes"'
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' \
        '[phase w]' "wait_for_query = SELECT true, true" 'timeout = 10s' >"$CFG"
    run timeout -k 2 5 "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'it returned 1 row of 2 columns'
}

# ---- the command line ----

@test "options after the command are accepted" {
    two_phase_config
    echo "CREATE TABLE t (a int);" | mig pre 001.sql
    run "$PGPRELUDE" migrate -c "$CFG"
    assert_success
    run "$PGPRELUDE" status -c "$CFG" --json
    assert_success
    assert_output --partial '"file":"001.sql"'
    run "$PGPRELUDE" verify --config="$CFG" -v
    assert_success
    run "$PGPRELUDE" verify --config="$CFG" extra
    assert_failure 2
    assert_output --partial 'unexpected argument "extra" after "verify"'
}
