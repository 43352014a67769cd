#!/usr/bin/env bats
# Declarative constraint files (*.ini in a dir phase): pre-flight, lookup by
# definition, adopt, drift, replaces, concurrently, INVALID repair, not_null;
# the guarded-SQL equivalents; plan and verify.  Fixtures: fixtures/constraints.

load test_helper/common
load test_helper/pgprelude
load test_helper/locks

FX=$BATS_TEST_DIRNAME/fixtures/constraints

setup() {
    new_db
    setup_layout
    two_phase_config
    locks_setup
}

teardown() {
    locks_teardown
}

# fx DIR NAME [FIXTURE]: copy fixture FIXTURE (default NAME) into $W/DIR/NAME.
fx() {
    mig "$1" "$2" <"$FX/${3:-$2}"
}

# The catalog rows of the schema's tables, indexes and constraints, with their
# xmin: any DDL changes it.
ddl_state() {
    sql "SELECT string_agg(c.relname || ':' || c.xmin, ',' ORDER BY c.relname) FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace" \
        && sql "SELECT string_agg(conname || ':' || xmin, ',' ORDER BY conname) FROM pg_constraint
                  WHERE connamespace = 'public'::regnamespace" \
        && sql "SELECT string_agg(indexrelid::regclass || ':' || xmin, ',' ORDER BY indexrelid::regclass::text) FROM pg_index
                  WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)"
}

# uniques TABLE: the unique indexes of TABLE, "name:definition" per line.
uniques() {
    sql "SELECT indexrelid::regclass || ' ' || pg_get_indexdef(indexrelid) FROM pg_index
           WHERE indrelid = '$1'::regclass AND indisunique AND NOT indisprimary ORDER BY 1"
}

@test "junction uniques on dirty data: pre-flight lists the duplicates, exit 7, nothing changed" {
    fx pre 001_schema.sql junction_schema.sql
    fx pre 002_data.sql junction_dirty.sql
    fx post 010_junction.ini junction.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 7
    assert_line 'post/010_junction.ini:2: error: pre-flight failed for unique "memberships_user_id_company_id_key" on public.memberships (user_id, company_id): 2 duplicate groups, 5 rows'
    assert_line 'pgprelude: detail: (user_id, company_id) = (1, 10): 2 rows'
    assert_line 'pgprelude: detail: (user_id, company_id) = (3, 30): 3 rows'
    assert_line 'post/010_junction.ini:6: error: pre-flight failed for unique "assignments_membership_id_outlet_id_key" on public.assignments (membership_id, outlet_id): 1 duplicate group, 2 rows'
    assert_output --partial 'hint: See them all with: SELECT "user_id", "company_id", count(*) FROM "public"."memberships"'
    refute_output --regexp 'info: unique .*: (created|adopted)'
    # the query in the hint runs as printed and shows every group
    q=$(grep -o 'SELECT "user_id".*ORDER BY "user_id", "company_id"' <<<"$output")
    run sql "$q"
    assert_output "$(printf '1|10|2\n3|30|3')"
    run sql "SELECT count(*) FROM pg_index WHERE indrelid IN ('memberships'::regclass, 'assignments'::regclass) AND indisunique AND NOT indisprimary"
    assert_output 0
    run sql "SELECT count(*) FROM memberships"
    assert_output 7
}

@test "junction uniques on clean data are created; a second run changes nothing" {
    fx pre 001_schema.sql junction_schema.sql
    fx pre 002_data.sql junction_clean.sql
    fx post 010_junction.ini junction.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --regexp '^post/010_junction.ini:2: info: unique "memberships_user_id_company_id_key" on public.memberships: created \([0-9]+ ms\)$'
    assert_line --partial 'unique "assignments_membership_id_outlet_id_key" on public.assignments: created'
    run sql "SELECT contype::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'memberships_user_id_company_id_key'"
    assert_output "u UNIQUE (user_id, company_id)"
    before=$(ddl_state)
    run "$PGPRELUDE" -v -c "$CFG" migrate
    assert_success
    refute_output --partial 'created'
    assert_output --partial 'post/010_junction.ini: its tables are as they were when it was last found converged'
    assert_equal "$(ddl_state)" "$before"
    # without the digest the file is checked spec by spec, to the same end
    sql "DELETE FROM pgprelude.history WHERE outcome = 'converged'"
    run "$PGPRELUDE" -v -c "$CFG" migrate
    assert_success
    refute_output --partial 'created'
    assert_output --partial 'post/010_junction.ini:2: debug: unique "memberships_user_id_company_id_key" on public.memberships: up to date'
    assert_equal "$(ddl_state)" "$before"
}

@test "junction uniques created out of band are adopted, not duplicated" {
    fx pre 001_schema.sql junction_schema.sql
    fx pre 002_data.sql junction_clean.sql
    echo "ALTER TABLE memberships ADD CONSTRAINT m_pair UNIQUE (user_id, company_id);
          CREATE UNIQUE INDEX a_pair ON assignments (membership_id, outlet_id);" | mig pre 003_by_hand.sql
    fx post 010_junction.ini junction.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'post/010_junction.ini:2: info: unique "memberships_user_id_company_id_key" on public.memberships: adopted the existing constraint "m_pair" (same definition); nothing created'
    assert_line 'post/010_junction.ini:6: info: unique "assignments_membership_id_outlet_id_key" on public.assignments: adopted the existing unique index "a_pair" (same definition); nothing created'
    run sql "SELECT count(*) FROM pg_index WHERE indrelid IN ('memberships'::regclass, 'assignments'::regclass) AND indisunique AND NOT indisprimary"
    assert_output 2
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
    assert_output --partial 'unique "memberships_user_id_company_id_key" on public.memberships: ok (as "m_pair")'
}

@test "junction uniques as guarded SQL: dirty data refused with the count, clean data converges, adopts by definition" {
    fx pre 001_schema.sql junction_schema.sql
    fx pre 002_data.sql junction_dirty.sql
    fx post 010_junction.sql junction_guarded.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial '2 duplicate groups in memberships (user_id, company_id)'
    run sql "SELECT count(*) FROM pg_index WHERE indrelid = 'memberships'::regclass AND indisunique AND NOT indisprimary"
    assert_output 0
    # clean the data, and add one of the two out of band under another name
    sql "DELETE FROM memberships a USING memberships b WHERE a.user_id = b.user_id AND a.company_id = b.company_id AND a.id > b.id;
         DELETE FROM assignments a USING assignments b WHERE a.membership_id = b.membership_id AND a.outlet_id = b.outlet_id AND a.id > b.id;
         CREATE UNIQUE INDEX m_pair ON memberships (user_id, company_id);"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run uniques memberships
    assert_output "m_pair CREATE UNIQUE INDEX m_pair ON public.memberships USING btree (user_id, company_id)"
    run uniques assignments
    assert_output --partial "assignments_membership_id_outlet_id_key"
}

@test "tenant-scoped: global number uniques and a global partial unique are replaced; email and key hash stay" {
    fx pre 001_schema.sql tenant_schema.sql
    fx post 010_tenant.ini tenant.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "invoices_tenant_id_number_key" on public.invoices: created'
    assert_line --partial 'unique "invoices_tenant_id_number_key" on public.invoices: dropped "invoices_number_key" (replaced)'
    assert_line --partial 'unique "products_tenant_id_sku_key" on public.products: dropped "products_sku_key" (replaced)'
    refute_output --partial 'users_email_key" on public.users: created'
    run uniques invoices
    assert_output "invoices_tenant_id_number_key CREATE UNIQUE INDEX invoices_tenant_id_number_key ON public.invoices USING btree (tenant_id, number)"
    run uniques products
    assert_output "products_tenant_id_sku_key CREATE UNIQUE INDEX products_tenant_id_sku_key ON public.products USING btree (tenant_id, sku) WHERE (sku IS NOT NULL)"
    run uniques users
    assert_output "users_email_key CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email)"
    # the same number in another tenant is fine now; in the same tenant it is not
    sql "INSERT INTO invoices (tenant_id, number) VALUES (2, 'A-1'); INSERT INTO products (tenant_id, sku) VALUES (2, 'X')"
    run sql "INSERT INTO invoices (tenant_id, number) VALUES (1, 'A-1')"
    assert_failure
    run sql "INSERT INTO users (email) VALUES ('a@example.com')"
    assert_failure
    before=$(ddl_state)
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    refute_output --regexp 'created|dropped|adopted'
    assert_equal "$(ddl_state)" "$before"
}

@test "tenant-scoped on dirty data: pre-flight honours the where and NULLs, nothing changed" {
    fx pre 001_schema.sql tenant_dirty.sql
    fx post 010_tenant.ini tenant.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 7
    assert_output --partial 'pre-flight failed for unique "invoices_tenant_id_number_key" on public.invoices (tenant_id, number): 1 duplicate group, 2 rows'
    assert_line "pgprelude: detail: (tenant_id, number) = (1, 'A-1'): 2 rows"
    # (1, NULL) twice is not a duplicate under WHERE sku IS NOT NULL; (1, X) twice is
    assert_output --partial 'pre-flight failed for unique "products_tenant_id_sku_key" on public.products (tenant_id, sku): 1 duplicate group, 2 rows'
    refute_output --partial 'quotes_tenant_id_number_key" on public.quotes (tenant_id, number)'
    assert_output --partial 'WHERE "tenant_id" IS NOT NULL AND "sku" IS NOT NULL AND (sku IS NOT NULL) GROUP BY'
    run sql "SELECT count(*) FROM pg_index WHERE indrelid IN ('invoices'::regclass, 'quotes'::regclass, 'products'::regclass)
               AND indisunique AND NOT indisprimary"
    assert_output 0
}

@test "tenant-scoped as guarded SQL: dirty data refused, clean data converges and drops the global uniques" {
    fx pre 001_schema.sql tenant_dirty.sql
    fx post 010_tenant.sql tenant_guarded.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial '1 duplicate groups in invoices (tenant_id, number)'
    run sql "SELECT count(*) FROM pg_index WHERE indrelid = 'invoices'::regclass AND indisunique AND NOT indisprimary"
    assert_output 0
    # a fresh database with the clean schema (global uniques in place)
    new_db
    rm "$W/pre/001_schema.sql"
    fx pre 001_schema.sql tenant_schema.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run uniques invoices
    assert_output "invoices_tenant_id_number_key CREATE UNIQUE INDEX invoices_tenant_id_number_key ON public.invoices USING btree (tenant_id, number)"
    run uniques products
    assert_output "products_tenant_id_sku_key CREATE UNIQUE INDEX products_tenant_id_sku_key ON public.products USING btree (tenant_id, sku) WHERE (sku IS NOT NULL)"
    run uniques users
    assert_output "users_email_key CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email)"
}

@test "a non-unique remote_id index is replaced by a unique one; NULL rows are allowed" {
    fx pre 001_schema.sql remote_id.sql
    fx post 010_remote_id.ini remote_id.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "contacts_remote_id_key" on public.contacts: created'
    assert_line --partial 'dropped "contacts_remote_id_idx" (replaced)'
    run sql "SELECT string_agg(indexrelid::regclass::text || '/' || indisunique, ',' ORDER BY indexrelid::regclass::text) FROM pg_index
               WHERE indrelid = 'contacts'::regclass AND NOT indisprimary"
    assert_output "contacts_remote_id_key/true"
    sql "INSERT INTO contacts (remote_id) VALUES (NULL)"
    run sql "INSERT INTO contacts (remote_id) VALUES ('r1')"
    assert_failure
}

@test "camel-case \"workspaceId\": the unique passes with NULLs, NOT NULL fails its pre-check until a backfill" {
    fx pre 001_schema.sql camel_schema.sql
    fx post 010_unique.ini camel_unique.ini
    fx post 020_not_null.ini camel_not_null.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 7
    assert_line --partial 'post/010_unique.ini:1: info: unique "Connection_workspaceId_provider_key" on public."Connection": created'
    assert_line 'post/020_not_null.ini:1: error: pre-flight failed for not_null "Connection_workspaceId_not_null" on public."Connection": 2 rows have NULL in "workspaceId"'
    assert_line 'pgprelude: detail: id = 2'
    assert_line 'pgprelude: detail: id = 3'
    assert_output --partial 'hint: See them all with: SELECT * FROM "public"."Connection" WHERE "workspaceId" IS NULL;'
    run sql "SELECT attnotnull FROM pg_attribute WHERE attrelid = '\"Connection\"'::regclass AND attname = 'workspaceId'"
    assert_output f
    sql "UPDATE \"Connection\" SET \"workspaceId\" = 100 + id WHERE \"workspaceId\" IS NULL"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'not_null "Connection_workspaceId_not_null" on public."Connection": "workspaceId" set NOT NULL'
    run sql "SELECT attnotnull, (SELECT count(*) FROM pg_constraint WHERE conrelid = '\"Connection\"'::regclass AND contype = 'c')
               FROM pg_attribute WHERE attrelid = '\"Connection\"'::regclass AND attname = 'workspaceId'"
    assert_output "t|0"
    before=$(ddl_state)
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    refute_output --regexp 'created|NOT NULL \('
    assert_equal "$(ddl_state)" "$before"
}

@test "not_null resumes after a crash between its steps (CHECK left NOT VALID, or validated)" {
    fx pre 001_schema.sql camel_schema.sql
    fx post 020_not_null.ini camel_not_null.ini
    echo 'UPDATE "Connection" SET "workspaceId" = 7 WHERE "workspaceId" IS NULL;' | mig pre 002_backfill.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    # as if a run died after ADD CONSTRAINT … NOT VALID
    sql "ALTER TABLE \"Connection\" ALTER COLUMN \"workspaceId\" DROP NOT NULL;
         ALTER TABLE \"Connection\" ADD CONSTRAINT \"Connection_workspaceId_not_null\" CHECK (\"workspaceId\" IS NOT NULL) NOT VALID"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'set NOT NULL'
    # as if a run died after SET NOT NULL, before dropping the CHECK
    sql "ALTER TABLE \"Connection\" ADD CONSTRAINT \"Connection_workspaceId_not_null\" CHECK (\"workspaceId\" IS NOT NULL)"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'dropped the helper CHECK left by an interrupted run'
    run sql "SELECT count(*) FROM pg_constraint WHERE conrelid = '\"Connection\"'::regclass AND contype = 'c'"
    assert_output 0
}

@test "drift: same name, other columns: both definitions, exit 8, nothing changed" {
    echo "CREATE TABLE t (a int, b int, CONSTRAINT t_key UNIQUE (a)); CREATE TABLE u (x int);" | mig pre 001.sql
    printf '[unique u_x_key]\ntable = u\ncolumns = x\n\n[unique t_key]\ntable = t\ncolumns = a, b\n' | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 8
    assert_line 'post/010.ini:5: error: unique "t_key" on public.t exists with another definition'
    assert_line 'pgprelude: detail: The database has: CREATE UNIQUE INDEX t_key ON public.t USING btree (a) (a constraint)'
    assert_line 'pgprelude: detail: The file declares: UNIQUE ("a", "b") on public.t'
    run sql "SELECT count(*) FROM pg_index WHERE indrelid = 'u'::regclass"
    assert_output 0
    run "$PGPRELUDE" -c "$CFG" plan
    assert_failure 8
    assert_output --partial 'drift: exists with another definition'
}

@test "an INVALID index left by a failed concurrent build is dropped and rebuilt" {
    echo "CREATE TABLE t (id int PRIMARY KEY, a int); INSERT INTO t VALUES (1, 1), (2, 1), (3, 2);" | mig pre 001.sql
    printf '[unique t_a_key]\ntable = t\ncolumns = a\nconcurrently = true\n' | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 7
    run sql "CREATE UNIQUE INDEX CONCURRENTLY t_a_key ON t (a)"
    assert_failure
    run sql "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a_key'::regclass"
    assert_output f
    run "$PGPRELUDE" -c "$CFG" plan
    assert_failure 7
    assert_output --partial 'drop the INVALID index "t_a_key" to rebuild it'
    sql "DELETE FROM t WHERE id = 2"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'post/010.ini:1: warning: dropping the INVALID index "t_a_key" on public.t (left by a failed concurrent build) to rebuild it'
    assert_line --partial 'unique "t_a_key" on public.t: rebuilt concurrently'
    run sql "SELECT i.indisvalid, c.contype FROM pg_index i JOIN pg_constraint c ON c.conindid = i.indexrelid
               WHERE i.indexrelid = 't_a_key'::regclass"
    assert_output "t|u"
}

@test "an index left without its constraint (interrupted concurrent run) gets the constraint attached" {
    echo "CREATE TABLE t (a int); CREATE UNIQUE INDEX t_a_key ON t (a);" | mig pre 001.sql
    printf '[unique t_a_key]\ntable = t\ncolumns = a\nconcurrently = yes\n' | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'added the constraint using its existing index'
    run sql "SELECT contype FROM pg_constraint WHERE conname = 't_a_key'"
    assert_output u
}

# The holder's lock outlasts the first attempt of each spec: its statement
# waits 200 ms, is retried after 1 s, 2 s ..., and goes through once the
# holder lets go (after 2 s). A writer's lock (ROW EXCLUSIVE) does not stop
# the pre-flight's SELECT; it stops ALTER TABLE, and a concurrent build waits
# for it.
@test "lock_timeout: a transactional unique and a not_null are retried, naming the holder, and converge once it lets go" {
    two_phase_config 'lock_timeout = 200ms'
    sql "CREATE TABLE t (id int PRIMARY KEY, a int, n int); INSERT INTO t SELECT g, g, g FROM generate_series(1, 100) g"
    printf '[unique t_a_key]\ntable = t\ncolumns = a\n' | mig post 010.ini
    hold_idle 2 "LOCK TABLE t IN ROW EXCLUSIVE MODE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'post/010.ini:1: warning: lock_timeout (200 ms): canceling statement due to lock timeout; retrying unique "t_a_key" in 1 s (retry 1 of 5)'
    assert_output --regexp 'detail: The lock was held by pid [0-9]+ \(user postgres, application "psql", idle in transaction, transaction started [0-9-]+ [0-9:.]+ UTC, query started [0-9-]+ [0-9:.]+ UTC: SELECT .held idle for 2 s.;\)'
    assert_line 'pgprelude: context: while running: ALTER TABLE "public"."t" ADD CONSTRAINT "t_a_key" UNIQUE ("a")'
    assert_line --partial 'unique "t_a_key" on public.t: created'
    run sql "SELECT contype FROM pg_constraint WHERE conname = 't_a_key'"
    assert_output u

    printf '[not_null t_n_not_null]\ntable = t\ncolumn = n\n' | mig post 020.ini
    hold_idle 2 "LOCK TABLE t IN ROW EXCLUSIVE MODE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'post/020.ini:1: warning: lock_timeout (200 ms): canceling statement due to lock timeout; retrying not_null "t_n_not_null" in 1 s (retry 1 of 5)'
    assert_output --regexp 'detail: The lock was held by pid [0-9]+ \(user postgres, application "psql", idle in transaction'
    assert_line 'pgprelude: context: while running: ALTER TABLE "public"."t" ADD CONSTRAINT "t_n_not_null" CHECK ("n" IS NOT NULL) NOT VALID'
    assert_line --partial 'not_null "t_n_not_null" on public.t: "n" set NOT NULL'
    run sql "SELECT attnotnull, (SELECT count(*) FROM pg_constraint WHERE conname = 't_n_not_null') FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'n'"
    assert_output 't|0'
}

@test "lock_timeout: a concurrent unique drops the INVALID index a timed-out build left, and retries ADD CONSTRAINT USING INDEX alone" {
    two_phase_config 'lock_timeout = 200ms'
    sql "CREATE TABLE t (id int PRIMARY KEY, a int, b int); INSERT INTO t SELECT g, g, g FROM generate_series(1, 100) g"
    # a writer: CREATE INDEX CONCURRENTLY makes its index, then times out waiting for the writer
    printf '[unique t_a_key]\ntable = t\ncolumns = a\nconcurrently = true\n' | mig post 010.ini
    hold_idle 2 "LOCK TABLE t IN ROW EXCLUSIVE MODE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'post/010.ini:1: warning: lock_timeout (200 ms): canceling statement due to lock timeout; retrying unique "t_a_key" in 1 s (retry 1 of 5)'
    assert_output --regexp 'detail: The lock was held by pid [0-9]+ \(user postgres, application "psql", idle in transaction'
    assert_line 'pgprelude: context: while running: CREATE UNIQUE INDEX CONCURRENTLY "t_a_key" ON "public"."t" ("a")'
    assert_line 'post/010.ini:1: warning: dropping the INVALID index "t_a_key" on public.t (left by a failed concurrent build) to rebuild it'
    assert_line --partial 'unique "t_a_key" on public.t: rebuilt concurrently'
    run sql "SELECT i.indisvalid, c.contype FROM pg_index i JOIN pg_constraint c ON c.conindid = i.indexrelid
               WHERE i.indexrelid = 't_a_key'::regclass"
    assert_output 't|u'
    # a reader: the build does not wait for it, ADD CONSTRAINT … USING INDEX (ACCESS EXCLUSIVE) does
    printf '[unique t_b_key]\ntable = t\ncolumns = b\nconcurrently = true\n' | mig post 020.ini
    hold_idle 2 "LOCK TABLE t IN ACCESS SHARE MODE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'post/020.ini:1: warning: lock_timeout (200 ms): canceling statement due to lock timeout; retrying unique "t_b_key" in 1 s (retry 1 of 5)'
    assert_line 'pgprelude: context: while running: ALTER TABLE "public"."t" ADD CONSTRAINT "t_b_key" UNIQUE USING INDEX "t_b_key"'
    refute_output --partial 'dropping the INVALID index'
    assert_line --partial 'unique "t_b_key" on public.t: added the constraint using its existing index'
    run sql "SELECT i.indisvalid, c.contype FROM pg_index i JOIN pg_constraint c ON c.conindid = i.indexrelid
               WHERE i.indexrelid = 't_b_key'::regclass"
    assert_output 't|u'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
}

@test "lock_timeout: a holder that outlasts lock_retries: exit 6, nothing half-done; a concurrent build's INVALID index is reported, then repaired" {
    two_phase_config 'lock_timeout = 200ms' 'lock_retries = 2'
    echo "CREATE TABLE t (id int PRIMARY KEY, a int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;" | mig pre 001_t.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    printf '[unique t_a_key]\ntable = t\ncolumns = a\n' | mig post 010.ini
    hold 30 "LOCK TABLE t IN ROW EXCLUSIVE MODE"
    SECONDS=0
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    [ "$SECONDS" -le 6 ]
    assert_output --partial 'retrying unique "t_a_key" in 1 s (retry 1 of 2)'
    assert_output --partial 'retrying unique "t_a_key" in 2 s (retry 2 of 2)'
    assert_line 'post/010.ini:1: error: canceling statement due to lock timeout (55P03)'
    assert_output --regexp 'detail: The lock was held by pid [0-9]+ \(user postgres, application "psql", active'
    assert_line 'pgprelude: hint: Gave up after 2 retries. Let that session finish (or end it with SELECT pg_terminate_backend(pid)), or raise lock_timeout (of [unique t_a_key] or of the phase) or lock_retries in phase "post".'
    run sql "SELECT count(*) FROM pg_class WHERE relname = 't_a_key'"
    assert_output 0

    # concurrently: the build made its index before it timed out; left INVALID, and said so
    printf '[unique t_a_key]\ntable = t\ncolumns = a\nconcurrently = true\n' | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_failure 6
    assert_output --partial 'retrying unique "t_a_key" in 2 s (retry 2 of 2)'
    assert_line 'post/010.ini:1: warning: the failed concurrent build left the INVALID index "t_a_key" on public.t: CREATE UNIQUE INDEX t_a_key ON public.t USING btree (a)'
    assert_line 'pgprelude: hint: The next run drops it and builds it again.'
    run sql "SELECT indisvalid, (SELECT count(*) FROM pg_constraint WHERE conname = 't_a_key') FROM pg_index WHERE indexrelid = 't_a_key'::regclass"
    assert_output 'f|0'
    run sql "SELECT file, outcome FROM pgprelude.history"
    assert_output '001_t.sql|applied'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_failure 8
    assert_line 'post/010.ini:1: error: unique "t_a_key" on public.t is missing (only an INVALID index is there)'

    # the holder gone: the next run drops the INVALID index and builds it again
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'" >/dev/null
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line 'post/010.ini:1: warning: dropping the INVALID index "t_a_key" on public.t (left by a failed concurrent build) to rebuild it'
    assert_line --partial 'unique "t_a_key" on public.t: rebuilt concurrently'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
}

@test "TERM during a concurrent unique's build cancels it at once, exit 143; the next run repairs its INVALID index" {
    two_phase_config 'lock_timeout = 0'
    sql "CREATE TABLE t (id int PRIMARY KEY, a int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g"
    printf '[unique t_a_key]\ntable = t\ncolumns = a\nconcurrently = true\n' | mig post 010.ini
    hold 30 "INSERT INTO t VALUES (0, 0)"
    term_migrate "query LIKE 'CREATE UNIQUE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'"
    run cat "$W/log"
    assert_output --partial 'signal 15 received: cancelling the running statement of post/010.ini'
    assert_line 'post/010.ini:1: error: cancelled by signal 15 while running: CREATE UNIQUE INDEX CONCURRENTLY "t_a_key" ON "public"."t" ("a")'
    assert_line 'post/010.ini:1: warning: the failed concurrent build left the INVALID index "t_a_key" on public.t: CREATE UNIQUE INDEX t_a_key ON public.t USING btree (a)'
    assert_no_pgprelude_session
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'" >/dev/null
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "t_a_key" on public.t: rebuilt concurrently'
}

@test "a pre-flight waiting for a lock names its holder, goes on once it is released, and a TERM cancels it" {
    sql "CREATE TABLE t (id int PRIMARY KEY, a int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g"
    printf '[unique t_a_key]\ntable = t\ncolumns = a\n' | mig post 010.ini
    # held 7 s: the pre-flight's count waits, says so after 5 s, then passes
    hold 7 "LOCK TABLE t IN ACCESS EXCLUSIVE MODE"
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --regexp 'post/010.ini:1: info: still running after 5 s: waiting for a relation lock held by pid [0-9]+ \(user postgres, application "psql"'
    assert_line --partial 'unique "t_a_key" on public.t: created'
    # held for good: a TERM cancels the waiting pre-flight at once, nothing is created
    sql "ALTER TABLE t DROP CONSTRAINT t_a_key"
    hold 30 "LOCK TABLE t IN ACCESS EXCLUSIVE MODE"
    term_migrate "application_name LIKE 'pgprelude%' AND wait_event_type = 'Lock'"
    run cat "$W/log"
    assert_output --partial 'signal 15 received: cancelling the running statement of post/010.ini'
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'" >/dev/null
    run sql "SELECT count(*) FROM pg_constraint WHERE conname = 't_a_key'"
    assert_output 0
}

@test "awkward identifiers: a table named user, a quoted mixed-case column, a column with a space" {
    echo 'CREATE TABLE "user" (id int, "Full Name" text, "orgId" int);' | mig pre 001.sql
    mig post 010.ini <<'INI'
[unique "user name per org"]
table = user
columns = "orgId", "Full Name"
nulls_not_distinct = true
INI
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run sql "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'user name per org'"
    assert_output 'UNIQUE NULLS NOT DISTINCT ("orgId", "Full Name")'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
}

@test "partial uniques are compared by the server's form of the predicate" {
    echo "CREATE TABLE p (t int, sku text, deleted boolean);
          CREATE UNIQUE INDEX p_live ON p (t, sku) WHERE deleted IS NOT TRUE AND sku <> '';" | mig pre 001.sql
    printf '[unique p_t_sku_live]\ntable = p\ncolumns = t, sku\nwhere = (deleted is not true)   and   sku<>%s\n' "''" | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'adopted the existing unique index "p_live"'
    # another predicate is another definition
    printf '[unique p_t_sku_live]\ntable = p\ncolumns = t, sku\nwhere = sku <> %s\n' "''" | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_output --partial 'unique "p_t_sku_live" on public.p: created'
}

@test "lookup by definition compares each key's collation, operator class and order, and takes no expression for a column" {
    echo 'CREATE TABLE t (a text, n int, c text COLLATE "C", v varchar);
          CREATE UNIQUE INDEX t_a_c ON t (a COLLATE "C");
          CREATE UNIQUE INDEX t_a_pattern ON t (a text_pattern_ops);
          CREATE UNIQUE INDEX t_n_expr ON t ((n + 0));
          CREATE UNIQUE INDEX t_n_desc ON t (n DESC);
          CREATE UNIQUE INDEX t_c_own ON t (c);
          CREATE UNIQUE INDEX t_v_own ON t (v);' | mig pre 001.sql
    # another name: only a key with the column's own collation and default operator class is adopted
    printf '[unique t_a_key]\ntable = t\ncolumns = a\n[unique t_n_key]\ntable = t\ncolumns = n\n[unique t_c_key]\ntable = t\ncolumns = c\n[unique t_v_key]\ntable = t\ncolumns = v\n' | mig post 010.ini
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    assert_line --partial 'unique "t_a_key" on public.t: created'
    assert_line --partial 'unique "t_n_key" on public.t: created'
    assert_line --partial 'unique "t_c_key" on public.t: adopted the existing unique index "t_c_own"'
    assert_line --partial 'unique "t_v_key" on public.t: adopted the existing unique index "t_v_own"'
    run sql "SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 't'::regclass"
    assert_output 't_a_c,t_a_key,t_a_pattern,t_c_own,t_n_desc,t_n_expr,t_n_key,t_v_own'
    # the same name: drift, naming both definitions
    drift() { # name column index-definition
        printf '[unique %s]\ntable = t\ncolumns = %s\n' "$1" "$2" | mig post 010.ini
        run "$PGPRELUDE" -c "$CFG" migrate
        assert_failure 8
        assert_line "post/010.ini:1: error: unique \"$1\" on public.t exists with another definition"
        assert_line "pgprelude: detail: The database has: CREATE UNIQUE INDEX $1 ON public.t USING btree $3"
        assert_line "pgprelude: detail: The file declares: UNIQUE (\"$2\") on public.t"
    }
    drift t_a_c a '(a COLLATE "C")'
    drift t_a_pattern a '(a text_pattern_ops)'
    drift t_n_expr n '(((n + 0)))'
    drift t_n_desc n '(n DESC)'
    run "$PGPRELUDE" -c "$CFG" verify
    assert_failure 8
}

@test "bad constraint files: one line naming file and line, exit 2, nothing changed" {
    echo "CREATE TABLE t (a int, \"Camel\" int);" | mig pre 001.sql
    check() { # expected line [expected hint], then the file on stdin
        mig post 010.ini
        run "$PGPRELUDE" -c "$CFG" migrate
        assert_failure 2
        assert_line "$1"
        if (($# > 1)); then assert_output --partial "$2"; fi
    }
    printf '[primary t_pk]\ntable = t\n' | check 'post/010.ini:1: error: unknown constraint kind "primary" in [primary t_pk]'
    printf '[unique t_a]\ntable = t\ncolumn = a\n' | check 'post/010.ini:3: error: unknown key "column" in [unique t_a]'
    printf '[unique t_a]\ncolumns = a\n' | check 'post/010.ini:1: error: [unique t_a] has no "table" key'
    printf '[unique t_a]\ntable = t\n' | check 'post/010.ini:1: error: [unique t_a] has no "columns" key'
    printf '[unique t_a]\ntable = t\ncolumns = \n' | check 'post/010.ini:3: error: bad columns "": empty column list'
    printf '[unique t_a]\ntable = t\ncolumns = a\nconcurrently = maybe\n' | check 'post/010.ini:4: error: bad boolean "maybe" for concurrently: give true or false'
    # the catalog is checked before any DDL of the file: the first spec is not created either
    printf '[unique t_a]\ntable = t\ncolumns = a\n[unique x_a]\ntable = nope\ncolumns = a\n' | check 'post/010.ini:5: error: table "nope" does not exist'
    printf '[unique t_a]\ntable = t\ncolumns = a\n[unique t_c]\ntable = t\ncolumns = camel\n' | check 'post/010.ini:6: error: column "camel" of table public.t does not exist' \
        'hint: Did you mean "Camel"?'
    printf '[unique t_a]\ntable = t\ncolumns = a\nwhere = b > 0\n' | check 'post/010.ini:4: error: column "b" does not exist (42703)'
    run sql "SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass"
    assert_output 0
}

@test "plan shows files and constraint actions with pre-flights, and changes nothing" {
    fx pre 001_schema.sql junction_schema.sql
    fx pre 002_data.sql junction_clean.sql
    fx post 010_junction.ini junction.ini
    # before anything ran, the tables do not exist: the constraints wait for the pending files
    run "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_line 'pre/001_schema.sql: pending: will run'
    assert_line --partial 'post/010_junction.ini:2: unique "memberships_user_id_company_id_key" on memberships: the table does not exist yet'
    run sql "SELECT to_regclass('memberships') IS NULL"
    assert_output t
    # with the tables there: create, with the pre-flight result
    sql <"$FX/junction_schema.sql"
    sql <"$FX/junction_dirty.sql"
    before=$(ddl_state)
    writes=$(table_writes)
    run "$PGPRELUDE" -c "$CFG" plan
    assert_failure 7
    assert_output --partial 'pre-flight failed for unique "memberships_user_id_company_id_key"'
    assert_line 'post/010_junction.ini:2: unique "memberships_user_id_company_id_key" on public.memberships: create UNIQUE ("user_id", "company_id"); pre-flight: FAILED (duplicates, see above)'
    sql "TRUNCATE memberships, assignments"
    before=$(ddl_state)
    run "$PGPRELUDE" -c "$CFG" plan
    assert_success
    assert_line 'post/010_junction.ini:6: unique "assignments_membership_id_outlet_id_key" on public.assignments: create UNIQUE ("membership_id", "outlet_id"); pre-flight: no duplicates'
    assert_equal "$(ddl_state)" "$before"
    run sql "SELECT to_regclass('pgprelude.history') IS NULL"
    assert_output t
}

@test "verify: 0 after a run, 8 with each difference listed after a constraint is dropped or a file changed" {
    fx pre 001_schema.sql junction_schema.sql
    fx post 010_junction.ini junction.ini
    fx post 020_not_null.ini camel_not_null.ini
    fx pre 003_camel.sql camel_schema.sql
    sql "SELECT 1" >/dev/null
    echo 'UPDATE "Connection" SET "workspaceId" = 0 WHERE "workspaceId" IS NULL;' | mig pre 004_backfill.sql
    run "$PGPRELUDE" -c "$CFG" migrate
    assert_success
    run "$PGPRELUDE" -c "$CFG" verify
    assert_success
    assert_line 'pre/001_schema.sql: applied, checksum matches'
    assert_line 'post/010_junction.ini:2: unique "memberships_user_id_company_id_key" on public.memberships: ok'
    assert_line 'post/020_not_null.ini:1: not_null "Connection_workspaceId_not_null" on public."Connection": ok'
    sql 'ALTER TABLE memberships DROP CONSTRAINT memberships_user_id_company_id_key;
         ALTER TABLE "Connection" ALTER COLUMN "workspaceId" DROP NOT NULL'
    echo "-- edited" >>"$W/pre/001_schema.sql"
    before=$(ddl_state)
    run "$PGPRELUDE" -c "$CFG" verify
    assert_failure 8
    assert_line 'post/010_junction.ini:2: error: unique "memberships_user_id_company_id_key" on public.memberships is missing'
    assert_line 'post/020_not_null.ini:1: error: not_null "Connection_workspaceId_not_null" on public."Connection": column "workspaceId" is nullable'
    assert_output --partial 'pre/001_schema.sql: error: the file changed after it was applied'
    assert_line 'pgprelude: error: verify: 3 differences (see above)'
    assert_equal "$(ddl_state)" "$before"
}

@test "status lists constraint files as declared" {
    fx pre 001_schema.sql junction_schema.sql
    fx post 010_junction.ini junction.ini
    run "$PGPRELUDE" -c "$CFG" status
    assert_success
    assert_output --regexp 'post +dir +010_junction.ini +declared'
}
