#!/usr/bin/env bats
# Bad input: each case is its own test and checks one clear error line (with
# file and line where there is one), the documented exit code, and that the
# database is unchanged. Cases 10_migrate, 20_phases, 30_connect, 40_init and
# 50_constraints already cover are not repeated here; these are the others.
#
# The layout lives under /tmp with mode 755 rather than in bats' 0700 temp dir:
# the permission cases run pgprelude as uid 65534 (nobody), since root reads
# any file whatever its mode.

load test_helper/common

setup() {
    new_db
    W=$(mktemp -d /tmp/pgprelude-bad.XXXXXX)
    chmod 755 "$W"
    CFG=$W/pgprelude.ini
    mkdir -p "$W/pre" "$W/post"
    # a migration that would show if a run got as far as the phases
    echo "CREATE TABLE marker (a int);" >"$W/pre/001_marker.sql"
    export W CFG
    snapshot
}

teardown() {
    rm -rf "$W"
}

# db_state: the relations of the database's own schemas with their xmin (any
# DDL on them changes it), and the list of schemas.
db_state() {
    sql "SELECT coalesce(string_agg(n.nspname || '.' || c.relname || ':' || c.xmin::text, ','
                                    ORDER BY n.nspname, c.relname), 'none')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'"
    sql "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace"
}

# snapshot: remember the database as it is now; assert_unchanged compares.
snapshot() {
    BEFORE=$(db_state)
}

assert_unchanged() {
    assert_equal "$(db_state)" "$BEFORE"
    run sql "SELECT to_regclass('marker') IS NULL AND to_regclass('pgprelude.history') IS NULL"
    assert_output t
}

# cfg LINE...: [database] for this test's database, then LINES, then the
# phase that would create the marker.
cfg() {
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' 'lock_wait_timeout = 5s' \
        "$@" '[phase pre]' 'dir = pre' >"$CFG"
}

# cfg_url URL [LINE...]: the [database] url URL, wait_timeout $WAIT (default
# 1s), then LINES, then the marker's phase.
cfg_url() {
    local url=$1
    shift
    printf '%s\n' '[database]' "url = $url" "wait_timeout = ${WAIT:-1s}" "$@" '[phase pre]' 'dir = pre' >"$CFG"
}

# expect_usage LINE [HINT]: migrate fails with exit 2, LINE is one of its
# lines, HINT its hint, and the database is unchanged.
expect_usage() {
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line "$1"
    if (($# > 1)); then assert_line "pgprelude: hint: $2"; fi
    assert_unchanged
}

# expect_lex LINE: migrate fails with exit 6 (SQL error in a migration) on a
# file it cannot even split into statements: LINE is one of its lines, and
# the database is unchanged (this is found before anything runs).
expect_lex() {
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_line "$1"
    assert_unchanged
}

# expect_sql LINE: with the marker gone, so that the failing file is the only
# migration, migrate fails with exit 6 and LINE is one of its lines. The
# server found the error, so the history table exists by then; it must be
# empty and alone.
expect_sql() {
    rm "$W/pre/001_marker.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_line "$1"
    run sql "SELECT string_agg(relnamespace::regnamespace || '.' || relname, ',' ORDER BY relname)
               FROM pg_class WHERE relnamespace IN ('public'::regnamespace, 'pgprelude'::regnamespace)"
    assert_output 'pgprelude.history,pgprelude.history_pkey'
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 0
}

as_nobody() {
    setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# json_lines_valid: every line of $output is one JSON object in valid UTF-8.
json_lines_valid() {
    python3 -c '
import json, sys
for n, raw in enumerate(sys.stdin.buffer.read().splitlines(), 1):
    try:
        json.loads(raw.decode("utf-8", "strict"))
    except Exception as e:
        sys.exit("line %d is not valid UTF-8 JSON: %s: %r" % (n, e, raw[:120]))
' <<<"$output"
}

# ---- the configuration file ------------------------------------------------
# Errors config_load finds on its own (exit 2, the database untouched by
# construction) are unit tests: tests/unit/test_config.c, exact_cases and
# test_load_secret_folder. What is left here needs the binary itself: its
# stack, or another user's permissions.

@test "config: \${VAR:-default} nested 5000 deep is refused, not a crash" {
    # Continuation lines make a value as long as one likes. Each level of
    # nesting costs a recursion and a scan of the rest: with 8 MiB of stack
    # 300000 levels crash after minutes; 256 KiB make it quick.
    python3 -c '
n = 5000
print("[database]")
print("url = x")
for i in range(0, n, 6):
    print("  " + "${PGPRELUDE_TEST_UNSET_VAR:-" * min(6, n - i))
for i in range(0, n, 150):
    print("  " + "}" * min(150, n - i))
print("[phase pre]")
print("dir = pre")' >"$CFG"
    run bash -c 'ulimit -s 256 && exec "$@"' _ "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line --regexp "^$CFG:2: error: .*nested"
    assert_unchanged
}

@test "config: a *_FILE secret the user cannot read" {
    printf '%s\n' "$PGPASSWORD" >"$W/db_pw"
    chmod 600 "$W/db_pw"
    cfg_url "postgresql://postgres:\${DB_PW}@127.0.0.1:$PGPORT/$PGDATABASE"
    run as_nobody env DB_PW_FILE="$W/db_pw" "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line "$CFG:2: error: could not read DB_PW_FILE \"$W/db_pw\": Permission denied (in url of [database])"
    refute_output --partial "$PGPASSWORD"
    assert_unchanged
}

@test "config: a PGPASSWORD_FILE the user cannot read" {
    printf '%s\n' "$PGPASSWORD" >"$W/pgpw"
    chmod 600 "$W/pgpw"
    cfg_url "postgresql://postgres@127.0.0.1:$PGPORT/$PGDATABASE"
    run as_nobody env -u PGPASSWORD PGPASSWORD_FILE="$W/pgpw" "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line "pgprelude: error: could not read PGPASSWORD_FILE \"$W/pgpw\": Permission denied"
    assert_unchanged
}

@test "config: a configuration file the user cannot read" {
    cfg
    chmod 600 "$CFG"
    run as_nobody "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line "pgprelude: error: could not open configuration file \"$CFG\": Permission denied"
    assert_unchanged
}

# ---- phase folders and migration files ---------------------------------------

@test "files: a phase folder the user cannot read" {
    cfg
    chmod 000 "$W/pre"
    run as_nobody "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line "pgprelude: error: could not open folder \"$W/pre\" of phase \"pre\": Permission denied"
    assert_unchanged
}

@test "files: a migration the user cannot read stops the run before anything is applied" {
    cfg
    echo "CREATE TABLE later (a int);" >"$W/pre/002_secret.sql"
    chmod 000 "$W/pre/002_secret.sql"
    run as_nobody "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line 'pgprelude: error: could not open file "pre/002_secret.sql": Permission denied'
    assert_unchanged
}

@test "files: a phase folder that is a regular file" {
    cfg '[phase post]' 'dir = pgprelude.ini'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line "pgprelude: error: could not open folder \"$W/pgprelude.ini\" of phase \"post\": Not a directory"
    assert_unchanged
}

@test "files: a phase folder that is a dangling symbolic link" {
    ln -s "$W/gone" "$W/db-init"
    cfg '[phase post]' 'dir = db-init'
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line "pgprelude: error: could not open folder \"$W/db-init\" of phase \"post\": No such file or directory"
    assert_unchanged
}

@test "files: a migration holding only comments and blanks is recorded as applied, with a warning" {
    cfg
    printf -- '-- nothing yet\n\n/* TODO */\n  \n' >"$W/pre/002_todo.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'pre/002_todo.sql: warning: the file holds no SQL statement: it is recorded as applied, nothing runs'
    run sql "SELECT string_agg(file, ',' ORDER BY file) FROM pgprelude.history"
    assert_output '001_marker.sql,002_todo.sql'
}

@test "files: a migration that is a symbolic link loop" {
    cfg
    ln -s 003_b.sql "$W/pre/002_a.sql"
    ln -s 002_a.sql "$W/pre/003_b.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_output --partial 'pre/002_a.sql'
    assert_output --partial 'Too many levels of symbolic links'
    assert_unchanged
}

@test "files: a file name that is not UTF-8 is refused before anything runs" {
    cfg
    echo "CREATE TABLE ff (a int);" >"$W/pre/"$'002_\xff.sql'
    expect_usage 'pre/002_\xff.sql: error: the file name is not valid UTF-8'
    # the byte is shown escaped, never raw
    refute_output --partial $'\xff'
}

@test "files: a 50 MB migration (a big comment and one statement) is applied, quickly" {
    cfg
    rm "$W/pre/001_marker.sql"
    yes -- '-- padding padding padding padding padding padding pad' | head -n 1000000 >"$W/pre/001_big.sql"
    echo "CREATE TABLE big (a int);" >>"$W/pre/001_big.sql"
    [ "$(stat -c %s "$W/pre/001_big.sql")" -gt $((50 * 1024 * 1024)) ]
    SECONDS=0
    run timeout 60 "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --regexp '^pgprelude: info: applied pre/001_big.sql \([0-9]+ ms\)$'
    [ "$SECONDS" -lt 30 ]
    run sql "SELECT to_regclass('big') IS NOT NULL, (SELECT checksum FROM pgprelude.history)"
    assert_output "t|$(sha256sum "$W/pre/001_big.sql" | cut -d' ' -f1)"
}

@test "files: a syntax error after 50 MB names its line, and nothing is applied" {
    cfg
    { yes -- '-- padding padding padding padding padding padding pad' | head -n 1000000
      printf 'CREATE TABLE a (x int);\n  SELEC 2;\n'; } >"$W/pre/002_big.sql"
    expect_sql 'pre/002_big.sql:1000002:3: error: syntax error at or near "SELEC" (42601)'
}

# ---- SQL -------------------------------------------------------------------

@test "sql: a syntax error after tabs and multi-byte characters: line and column" {
    cfg
    # "x FORM" reads as x AS form: the error is at "a", column 26 counting characters
    printf 'CREATE TABLE a (x int);\n-- é ü\n\nINSERT INTO a VALUES (1);\n\tSELECT %s, %s, x FORM a;\n' "'é'" "'ü'" \
        >"$W/pre/002.sql"
    expect_sql 'pre/002.sql:5:26: error: syntax error at or near "a" (42601)'
}

@test "sql: an error inside a function body points into the string" {
    cfg
    echo "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELEC 1';" >"$W/pre/002.sql"
    expect_sql 'pre/002.sql:1:50: error: syntax error at or near "SELEC" (42601)'
}

@test "sql: an unterminated dollar quote names where it starts, before anything runs" {
    cfg
    printf 'CREATE TABLE a (x int);\n\nDO $body$\nBEGIN\n  RAISE NOTICE $$x$$;\nEND\n$bdy$;\n' >"$W/pre/002.sql"
    expect_lex 'pre/002.sql:3:4: error: unterminated dollar-quoted string'
}

@test "sql: an unterminated quoted string" {
    cfg
    printf "SELECT 1;\n  SELECT 'it''s;\n" >"$W/pre/002.sql"
    expect_lex 'pre/002.sql:2:10: error: unterminated quoted string'
}

@test "sql: an unterminated E'' string (a backslash-escaped quote) is placed at its E" {
    cfg
    printf "SELECT E'C:\\\\\\\\';\nSELECT E'\\\\';\n" >"$W/pre/002.sql"
    expect_lex 'pre/002.sql:2:8: error: unterminated quoted string'
}

@test "sql: an unterminated quoted identifier" {
    cfg
    printf 'SELECT 1;\n\tSELECT "abc;\n' >"$W/pre/002.sql"
    expect_lex 'pre/002.sql:2:9: error: unterminated quoted identifier'
}

@test "sql: an unterminated nested block comment" {
    cfg
    printf 'SELECT 1;\n/* outer /* inner */\nSELECT 2;\n' >"$W/pre/002.sql"
    expect_lex 'pre/002.sql:2:1: error: unterminated /* comment'
}

# ---- the connection ----------------------------------------------------------

@test "connect: an unknown conninfo keyword" {
    cfg_url "hots=127.0.0.1 port=$PGPORT dbname=$PGDATABASE"
    expect_usage 'pgprelude: error: invalid database url in [database] url: invalid connection option "hots"' \
        'Give a libpq connection string (host=... dbname=...) or a URI (postgresql://user@host:port/dbname).'
}

@test "connect: an unknown URI query parameter" {
    cfg_url "postgresql://postgres@127.0.0.1:$PGPORT/$PGDATABASE?sslmod=require"
    expect_usage 'pgprelude: error: invalid database url in [database] url: invalid URI query parameter: "sslmod"'
}

@test "connect: a bad sslmode value is not waited for" {
    cfg_url "postgresql://postgres@127.0.0.1:$PGPORT/$PGDATABASE?sslmode=requird"
    expect_usage 'pgprelude: detail: invalid sslmode value: "requird"'
    refute_output --partial 'waiting for database'
}

@test "connect: a misspelled URI scheme is refused without echoing the password" {
    cfg_url "postgress://postgres:Pw-In-Url-1@127.0.0.1:$PGPORT/$PGDATABASE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line --partial 'pgprelude: error: invalid database url in [database] url: missing "="'
    refute_output --partial 'Pw-In-Url-1'
    assert_unchanged
}

@test "connect: a broken IPv6 address in a URI is refused without echoing the password" {
    cfg_url "postgresql://postgres:Pw-In-Url-2@[::1:$PGPORT/$PGDATABASE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line --partial 'pgprelude: error: invalid database url in [database] url: end of string reached when looking for matching "]"'
    refute_output --partial 'Pw-In-Url-2'
    assert_unchanged
}

@test "connect: a closed loopback port, wait_timeout 1s: exit 3 after about a second" {
    port=$(closed_port)
    cfg_url "postgresql://postgres@127.0.0.1:$port/$PGDATABASE"
    SECONDS=0
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 3
    [ "$SECONDS" -le 4 ]
    assert_line "pgprelude: error: database 127.0.0.1:$port/$PGDATABASE as postgres still not reachable after 1 s: connection refused"
    assert_unchanged
}

@test "connect: a host name that does not resolve: exit 3" {
    cfg_url "postgresql://postgres@no-such-host.invalid:$PGPORT/$PGDATABASE"
    run timeout 60 "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 3
    assert_output --partial "database no-such-host.invalid:$PGPORT/$PGDATABASE as postgres still not reachable after 1 s"
    assert_output --partial 'could not translate host name "no-such-host.invalid"'
    assert_unchanged
}

@test "connect: TLS required but the server has none: exit 4 at once, not retried" {
    WAIT=30s cfg_url "postgresql://postgres:$PGPASSWORD@127.0.0.1:$PGPORT/$PGDATABASE?sslmode=require"
    SECONDS=0
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 4
    [ "$SECONDS" -lt 10 ]
    assert_line "pgprelude: error: could not connect to 127.0.0.1:$PGPORT/$PGDATABASE as postgres: the server refuses SSL"
    refute_output --partial 'waiting for database'
    assert_unchanged
}

@test "connect: a database name that needs quoting and does not exist: exit 4" {
    WAIT=30s cfg_url "postgresql://postgres:$PGPASSWORD@127.0.0.1:$PGPORT/no%20such%22db"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 4
    assert_line "pgprelude: error: could not connect to 127.0.0.1:$PGPORT/no such\"db as postgres: the database does not exist"
    refute_output --partial 'waiting for database'
    assert_unchanged
}

@test "connect: a wrong password from PGPASSWORD (url without one): exit 4, not shown" {
    WAIT=30s cfg_url "postgresql://postgres@127.0.0.1:$PGPORT/$PGDATABASE"
    PGPASSWORD=Not-The-Pw-3 PGPASSFILE=/dev/null run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 4
    assert_output --partial 'password authentication failed for user "postgres"'
    refute_output --partial 'Not-The-Pw-3'
    assert_unchanged
}

# ---- the hand-over -------------------------------------------------------------

# A configuration without phases: the hand-over is the only thing that can fail.
cfg_exec() {
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' "$@" >"$CFG"
}

@test "exec: [exec] command not found in PATH: 127, with PATH in the hint" {
    cfg_exec '[exec]' 'command = no-such-app --serve'
    PATH=/usr/bin:/bin run -127 "$PGPRELUDE" -c "$CFG"
    assert_line 'pgprelude: error: could not execute "no-such-app": No such file or directory'
    assert_line 'pgprelude: hint: Check that it is installed in the image and in PATH (/usr/bin:/bin).'
    assert_unchanged
}

@test "exec: a directory as the command: 126" {
    cfg_exec
    run "$PGPRELUDE" -c "$CFG" -- "$W/pre"
    assert_failure 126
    assert_line "pgprelude: error: could not execute \"$W/pre\": Permission denied"
    assert_unchanged
}

@test "exec: a script whose #! interpreter is missing: 127, naming the interpreter" {
    cfg_exec
    printf '#!/no/such/interpreter\necho hi\n' >"$W/app.sh"
    chmod 755 "$W/app.sh"
    run -127 "$PGPRELUDE" -c "$CFG" -- "$W/app.sh"
    assert_output --partial "could not execute \"$W/app.sh\""
    assert_output --partial '/no/such/interpreter'
    assert_unchanged
}

@test "exec: supervised, a command not found is 127" {
    cfg_exec '[exec]' 'mode = supervise'
    run -127 "$PGPRELUDE" -c "$CFG" -- no-such-app
    assert_line 'pgprelude: error: could not execute "no-such-app": No such file or directory'
    assert_unchanged
}

@test "exec: supervised, a file without execute permission is 126" {
    cfg_exec '[exec]' 'mode = supervise'
    printf 'echo hi\n' >"$W/app.sh"
    chmod 644 "$W/app.sh"
    run "$PGPRELUDE" -c "$CFG" -- "$W/app.sh"
    assert_failure 126
    assert_line "pgprelude: error: could not execute \"$W/app.sh\": Permission denied"
    refute_line 'hi'
    assert_unchanged
}

@test "exec: [exec] user with an unknown group stops the start-up before anything runs" {
    cfg '[exec]' 'user = nobody:no-such-group'
    run "$PGPRELUDE" -c "$CFG" -- true
    assert_failure 2
    assert_line 'pgprelude: error: unknown group "no-such-group" in [exec] user: not in /etc/group'
    assert_unchanged
}

@test "exec: [exec] user that is not a name or a number stops the start-up" {
    cfg '[exec]' 'user = -5'
    run "$PGPRELUDE" -c "$CFG" -- true
    assert_failure 2
    assert_line 'pgprelude: error: unknown user "-5" in [exec] user: not in /etc/passwd'
    assert_unchanged
}

# ---- logs --------------------------------------------------------------------

@test "logs: JSON lines stay valid UTF-8 when a run step prints bytes that are not" {
    rm "$W/pre/001_marker.sql"
    printf '%s\n' 'log_format = json' '[database]' 'url = ${DATABASE_URL}' '[phase latin1]' \
        "run = printf 'caf\\351\\n'" >"$CFG"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial '[latin1] caf'
    json_lines_valid
}

@test "logs: a long message of multi-byte characters is cut at a character boundary" {
    rm "$W/pre/001_marker.sql"
    printf '%s\n' 'log_format = json' '[database]' 'url = ${DATABASE_URL}' '[phase pre]' 'dir = pre' >"$CFG"
    for pad in 0 1 2; do
        printf "DO \$\$ BEGIN RAISE NOTICE '%%', repeat('x', %d) || repeat('é', 5000); END \$\$;\n" "$pad" \
            >"$W/pre/00${pad}_notice.sql"
    done
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    json_lines_valid
}

# ---- constraint files (a phase folder's *.ini) -----------------------------------

# cons SQL TEXT: make the tables with SQL, take the snapshot, and write TEXT
# (printf %b: \n is a newline) as the constraint file post/010.ini.
cons() {
    sql "$1"
    snapshot
    rm "$W/pre/001_marker.sql"
    printf '%b' "$2" >"$W/post/010.ini"
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' '[phase post]' 'dir = post' >"$CFG"
}

# expect_cons LINE [HINT]: like expect_usage, but the tables made by cons stay
# as they were (and no history table appears).
expect_cons() {
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line "$1"
    if (($# > 1)); then assert_output --partial "$2"; fi
    assert_equal "$(db_state)" "$BEFORE"
}

@test "constraints: a table in a schema that does not exist" {
    cons 'CREATE TABLE t (a int)' '[unique t_a]\ntable = nope.t\ncolumns = a\n'
    expect_cons 'post/010.ini:2: error: table "nope.t" does not exist'
}

@test "constraints: a table that exists, but in another schema than named" {
    cons 'CREATE TABLE t (a int); CREATE SCHEMA other' '[unique t_a]\ntable = other.t\ncolumns = a\n'
    expect_cons 'post/010.ini:2: error: table "other.t" does not exist'
}

@test "constraints: not_null on a column that does not exist" {
    cons 'CREATE TABLE t (a int)' '[not_null t_b]\ntable = t\ncolumn = b\n'
    expect_cons 'post/010.ini:3: error: column "b" of table public.t does not exist'
}

@test "constraints: a column list with a trailing comma" {
    cons 'CREATE TABLE t (a int)' '[unique t_a]\ntable = t\ncolumns = a,\n'
    expect_cons 'post/010.ini:3: error: bad columns "a,": empty name in the list (two commas, or a trailing comma)'
}

@test "constraints: a column named twice" {
    cons 'CREATE TABLE t (a int, b int)' '[unique t_ab]\ntable = t\ncolumns = a, b, a\n'
    expect_cons 'post/010.ini:3: error: bad columns "a, b, a": a column is named twice'
}

@test "constraints: a where that tries to end the statement is refused, the table is intact" {
    cons 'CREATE TABLE t (a int); INSERT INTO t VALUES (1)' \
        '[unique t_a]\ntable = t\ncolumns = a\nwhere = true) ; DROP TABLE t; --\n'
    expect_cons 'post/010.ini:4: error: syntax error at or near ")" (42601)'
    run sql "SELECT count(*) FROM t"
    assert_output 1
}

@test "constraints: keys before any section" {
    cons 'CREATE TABLE t (a int)' 'table = t\ncolumns = a\n'
    expect_cons 'post/010.ini:1: error: key "table" before any [unique NAME] or [not_null NAME] section'
}

@test "constraints: a file of comments only declares nothing" {
    cons 'CREATE TABLE t (a int)' '; uniques will go here\n# later\n'
    expect_cons 'post/010.ini: error: the file declares no constraint' \
        'Declare [unique NAME] or [not_null NAME] sections, or remove the file.'
}

@test "constraints: a name longer than the server keeps" {
    cons 'CREATE TABLE t (a int)' "[unique $(printf 'n%.0s' {1..64})]\ntable = t\ncolumns = a\n"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 2
    assert_line --partial 'post/010.ini:1: error: bad name in [unique nnnn'
    assert_output --partial 'name longer than 63 bytes (the server would truncate it)'
    assert_equal "$(db_state)" "$BEFORE"
}

# The folders are read while the server sets up the connection; what that
# reading has to say is held until the history is loaded, as if read then.
@test "files read while connecting: a bad one is reported after the database is ready" {
    cfg
    printf "SELECT 1;\n  SELECT 'it''s;\n" >"$W/pre/001_bad.sql" # the first file read
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_line 'pre/001_bad.sql:2:10: error: unterminated quoted string'
    ready=$(grep -n 'is ready' <<<"$output" | cut -d: -f1)
    bad=$(grep -n '001_bad.sql:2:10' <<<"$output" | cut -d: -f1)
    [[ -n "$ready" && -n "$bad" && "$ready" -lt "$bad" ]]
    assert_unchanged
}

@test "files read while connecting: nothing of them is shown when the login fails" {
    printf "SELECT 1;\n  SELECT 'it''s;\n" >"$W/pre/002_bad.sql"
    cfg_url "postgresql://postgres:not-the-password@127.0.0.1:$PGPORT/$PGDATABASE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 4
    assert_output --partial 'password authentication failed'
    refute_output --partial '002_bad.sql'
    assert_unchanged
}
