#!/usr/bin/env bats
# pg_dump output as a migration file: the \restrict / \unrestrict lines of
# current pg_dump versions are no-ops, and COPY ... FROM stdin data goes
# through the COPY protocol. A dump restored through pgprelude must equal
# the same dump restored with psql.

load test_helper/common
load test_helper/pgprelude

PG_DUMP=/usr/lib/postgresql/15/bin/pg_dump

setup() {
    setup_layout
    new_db
    SRC=$PGDATABASE
    build_source
}

# The database the dumps are made of: an extension from contrib, a schema,
# sequences (one set with setval), a function with a $$ body, a view, an
# identity column, indexes, comments; data with quotes, tabs, backslashes,
# NULLs, multibyte text, line breaks and a value that is exactly "\.".
build_source() {
    sql <<'EOF'
CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE SCHEMA app;
CREATE SEQUENCE app.counter START 7;
SELECT setval('app.counter', 42);
CREATE TABLE app.people (
    id serial PRIMARY KEY,
    name citext NOT NULL UNIQUE,
    note text,
    attrs hstore,
    born date
);
CREATE FUNCTION app.greet(p text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN 'hello; ' || p || E'\n\\.';
END
$$;
CREATE VIEW app.greetings AS SELECT id, app.greet(name::text) AS greeting FROM app.people;
CREATE TABLE public.log (id bigint GENERATED ALWAYS AS IDENTITY, msg text, at date DEFAULT '2024-01-01');
CREATE TABLE public.empty (a int);
CREATE INDEX people_born ON app.people (born);
COMMENT ON TABLE app.people IS 'people; it''s a table';
INSERT INTO app.people (name, note, attrs, born) VALUES
    ('O''Brien', E'tab\there; semi', 'a=>1', '2000-01-02'),
    (E'back\\slash', E'line1\nline2 \\. end\r', NULL, NULL),
    ('Zoë 日本語', NULL, '"k;"=>"v\"q"', '1999-12-31'),
    (E'\\.', '\.', NULL, NULL),
    ('semi;colon', '$$ not a quote', '', '2020-02-29');
INSERT INTO public.log (msg) VALUES ('one'), (NULL), (E'two\ttabs');
EOF
}

# restore_both FILE: restore FILE (a dump) into two fresh databases, one
# through pgprelude as the only file of a dir phase, one with psql; sets
# VIA (pgprelude's, also PGDATABASE) and REF (psql's).
restore_both() {
    new_db
    REF=$PGDATABASE
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$1" >/dev/null
    new_db
    VIA=$PGDATABASE
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' '[phase schema]' 'dir = pre' >"$CFG"
    cp "$1" "$W/pre/001_dump.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'applied pre/001_dump.sql'
}

# same_dumps: pg_dump of VIA (without pgprelude's schema) equals that of REF.
same_dumps() {
    "$PG_DUMP" --exclude-schema=pgprelude -d "$VIA" | grep -v '^\\\(un\)\?restrict ' >"$W/via.sql"
    "$PG_DUMP" -d "$REF" | grep -v '^\\\(un\)\?restrict ' >"$W/ref.sql"
    run diff -u "$W/ref.sql" "$W/via.sql"
    assert_success
}

@test "a full plain pg_dump restores through pgprelude as psql restores it" {
    "$PG_DUMP" -d "$SRC" >"$W/full.sql"
    # the pg_dump here writes \restrict and \unrestrict (or not: both work)
    restore_both "$W/full.sql"
    same_dumps
    # what was compared holds the data
    file_has "$W/via.sql" "^COPY app.people"
    run sql "SELECT count(*) FROM app.people WHERE note = E'tab\there; semi' OR name = 'Zoë 日本語'
               OR name = E'\\\\.' OR note IS NULL"
    assert_output 3
    run sql "SELECT last_value FROM app.counter"
    assert_output 42
    run sql "SELECT app.greet('x')"
    assert_output "$(printf 'hello; x\n\\.')"
    run sql "SELECT count(*) FROM pgprelude.history WHERE file = '001_dump.sql' AND outcome = 'applied'"
    assert_output 1
}

@test "a schema-only pg_dump restores through pgprelude as psql restores it" {
    "$PG_DUMP" --schema-only -d "$SRC" >"$W/schema.sql"
    restore_both "$W/schema.sql"
    same_dumps
    run sql "SELECT count(*) FROM app.people"
    assert_output 0
    run sql "SELECT extname FROM pg_extension WHERE extname IN ('citext', 'hstore') ORDER BY 1"
    assert_output "$(printf 'citext\nhstore')"
}

@test "a dump with CRLF line ends restores as psql restores it" {
    "$PG_DUMP" --data-only -d "$SRC" --table=public.log | sed 's/$/\r/' >"$W/crlf.sql"
    new_db
    sql "CREATE TABLE public.log (id bigint GENERATED ALWAYS AS IDENTITY, msg text, at date)"
    REF=$PGDATABASE
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$W/crlf.sql" >/dev/null
    new_db
    VIA=$PGDATABASE
    sql "CREATE TABLE public.log (id bigint GENERATED ALWAYS AS IDENTITY, msg text, at date)"
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' '[phase schema]' 'dir = pre' >"$CFG"
    cp "$W/crlf.sql" "$W/pre/001_data.sql"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT string_agg(coalesce(msg, 'NULL'), ',' ORDER BY id) FROM public.log"
    assert_output "$(printf 'one,NULL,two\ttabs')"
    assert_equal "$(sql 'TABLE public.log ORDER BY id')" "$(sql 'TABLE public.log ORDER BY id' -d "$REF")"
}

@test "\\restrict and \\unrestrict lines are no-ops; other meta-commands are still refused" {
    new_db
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' '[phase pre]' 'dir = pre' >"$CFG"
    mig pre 001.sql <<'EOF'
-- a dump
\restrict abc
CREATE TABLE t (a int);
INSERT INTO t VALUES (1);
\unrestrict abc
EOF
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'applied pre/001.sql'
    run sql "SELECT a FROM t"
    assert_output 1
    mig pre 002.sql <<'EOF'
\restrict abc
SELECT 1;
\set x 1
\unrestrict abc
EOF
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure
    assert_output --partial 'pre/002.sql:3:1: error: "\set" is a psql meta-command'
}

# A file in pg_dump's style whose second COPY holds a bad row on line 11.
bad_row_file() {
    cat <<'EOF'
CREATE TABLE a (id int PRIMARY KEY, v text);
CREATE TABLE b (id int PRIMARY KEY, v text);
COPY public.a (id, v) FROM stdin;
1	one; with a semicolon
2	\N
\.

COPY public.b (id, v) FROM stdin;
1	x
2	y
three	z
\.
CREATE INDEX b_v ON b (v);
EOF
}

@test "a transactional dump that fails half way leaves nothing, and the error names the data line" {
    new_db
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' '[phase pre]' 'dir = pre' >"$CFG"
    bad_row_file | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure
    assert_output --partial 'pre/001.sql:11: error: invalid input syntax for type integer: "three" (22P02)'
    run sql "SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b')"
    assert_output 0
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 0
    # fixed, it runs
    bad_row_file | sed 's/^three/3/' | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT string_agg(id || ':' || coalesce(v, 'NULL'), ',' ORDER BY id) FROM a"
    assert_output '1:one; with a semicolon,2:NULL'
    run sql "SELECT count(*) FROM b"
    assert_output 3
}

@test "a no-transaction file with COPY data runs statement by statement; a bad row names its line" {
    new_db
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' '[phase pre]' 'dir = pre' >"$CFG"
    { echo '-- pgprelude: no-transaction'; bad_row_file; } | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure
    assert_output --partial 'pre/001.sql:12: error: invalid input syntax for type integer: "three" (22P02)'
    # the first COPY was committed, the second not
    run sql "SELECT (SELECT count(*) FROM a) || ',' || (SELECT count(*) FROM b)"
    assert_output '2,0'
    run sql "SELECT outcome FROM pgprelude.history"
    assert_output --partial 'failed at line 12:'
    { echo '-- pgprelude: no-transaction'; bad_row_file; } |
        sed -e 's/^three/3/' -e 's/^CREATE TABLE/CREATE TABLE IF NOT EXISTS/' \
            -e 's/^COPY public.a/TRUNCATE a; COPY public.a/' -e 's/^CREATE INDEX/CREATE INDEX CONCURRENTLY/' |
        mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'applied pre/001.sql (no transaction, 6 statements'
    run sql "SELECT (SELECT count(*) FROM a) || ',' || (SELECT count(*) FROM b)"
    assert_output '2,3'
}

@test "a dump cut off inside its COPY data is refused before anything runs, naming the COPY" {
    new_db
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' '[phase pre]' 'dir = pre' >"$CFG"
    bad_row_file | head -n 10 | mig pre 001.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure
    assert_output --partial 'pre/001.sql:8:1: error: COPY FROM STDIN without a \. line ending its data'
    run sql "SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b')"
    assert_output 0
}
