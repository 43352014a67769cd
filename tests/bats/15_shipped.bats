#!/usr/bin/env bats
# The shipped db-init/, db-init-post/ and entrypoint/demo.ini, as make demo
# runs them: clean data, a restart, dirty data, and constraints made out of band.

load test_helper/common

setup() {
    new_db
    cd "$REPO"
}

@test "shipped pipeline: fresh database, then a restart that applies nothing" {
    run "$PGPRELUDE" -c entrypoint/demo.ini -- true
    assert_success
    assert_output --partial 'applied ../db-init/001_app_settings.sql'
    assert_output --partial 'applied ../db-init-post/001_junction_uniques.sql'
    run sql "SELECT string_agg(conrelid::regclass || '(' || pg_get_constraintdef(oid) || ')', ' ' ORDER BY conrelid::regclass::text)
               FROM pg_constraint WHERE contype = 'u' AND connamespace = 'public'::regnamespace"
    assert_output 'event_participants(UNIQUE (event_id, user_id)) organization_devices(UNIQUE (organization_id, device_id)) organization_users(UNIQUE (organization_id, user_id)) organization_vehicles(UNIQUE (organization_id, vehicle_id))'
    run sql "SELECT column_name FROM information_schema.columns WHERE table_name = 'app_settings' AND column_name = 'note'"
    assert_output note
    run "$PGPRELUDE" -c entrypoint/demo.ini -- true
    assert_success
    assert_output --partial 'phase "pre": 0 files applied, 2 up to date'
    assert_output --partial 'phase "post": 0 files applied, 1 up to date'
}

@test "shipped junction uniques: duplicates stop the start-up with the keys, nothing is added" {
    PSQL=$PSQL sh entrypoint/demo-schema.sh >/dev/null
    sql "INSERT INTO organizations (id, name) VALUES (1, 'o'); INSERT INTO users (id, email) VALUES (7, 'a'), (8, 'b');
         INSERT INTO organization_users (organization_id, user_id) VALUES (1, 7), (1, 7), (1, 8), (1, 8), (1, 8)"
    run "$PGPRELUDE" -c entrypoint/demo.ini -- true
    assert_failure 6
    assert_output --partial 'organization_users has 2 duplicate value(s) of (organization_id, user_id)'
    assert_output --partial 'First duplicates (value x rows): (1,7) x 2; (1,8) x 3.'
    run sql "SELECT count(*) FROM pg_constraint WHERE contype = 'u' AND connamespace = 'public'::regnamespace"
    assert_output 0
    # after the clean-up the same start goes through
    sql "DELETE FROM organization_users a USING organization_users b WHERE a.id > b.id
           AND a.organization_id = b.organization_id AND a.user_id = b.user_id"
    run "$PGPRELUDE" -c entrypoint/demo.ini -- true
    assert_success
    run sql "SELECT count(*) FROM pg_constraint WHERE contype = 'u' AND connamespace = 'public'::regnamespace"
    assert_output 4
}

@test "shipped junction uniques: a constraint made out of band is found by definition, not duplicated" {
    PSQL=$PSQL sh entrypoint/demo-schema.sh >/dev/null
    sql "ALTER TABLE organization_users ADD CONSTRAINT made_by_hand UNIQUE (organization_id, user_id)"
    run "$PGPRELUDE" -c entrypoint/demo.ini -- true
    assert_success
    assert_output --partial 'organization_users is already unique on (organization_id, user_id) by constraint made_by_hand'
    run sql "SELECT string_agg(conname, ',') FROM pg_constraint WHERE contype = 'u' AND conrelid = 'organization_users'::regclass"
    assert_output made_by_hand
}

@test "shipped junction uniques: the same name with other columns is drift" {
    PSQL=$PSQL sh entrypoint/demo-schema.sh >/dev/null
    sql "ALTER TABLE organization_users ADD CONSTRAINT organization_users_organization_id_user_id_key UNIQUE (user_id)"
    run "$PGPRELUDE" -c entrypoint/demo.ini -- true
    assert_failure 6
    assert_output --partial 'organization_users_organization_id_user_id_key already exists but is not UNIQUE (organization_id, user_id)'
}
