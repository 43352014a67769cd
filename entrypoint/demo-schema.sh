#!/bin/sh
# entrypoint/demo-schema.sh — the stand-in for the schema tool in `make demo`.
#
# In the real image this step is `npx directus schema apply`, which creates the
# application's tables, among them the junction tables that db-init-post/ then
# gives their composite UNIQUE constraints.  This script creates the same
# tables with psql so that the demo needs nothing but PostgreSQL.
#
# pgprelude runs it as the [phase schema] of entrypoint/demo.ini, with the
# environment intact: DATABASE_URL and/or libpq's PG* variables say where the
# database is.  PSQL may name the psql binary (the demo points it at the one of
# the throwaway cluster).  Safe to run again: CREATE TABLE IF NOT EXISTS.
set -eu

if [ -n "${DATABASE_URL:-}" ]; then
	set -- -d "$DATABASE_URL"
else
	set --
fi

echo "creating the application tables (stand-in for: directus schema apply)"

"${PSQL:-psql}" -X -q -v ON_ERROR_STOP=1 "$@" <<'SQL'
SET client_min_messages = warning;  -- no "already exists, skipping" on a re-run
BEGIN;

CREATE TABLE IF NOT EXISTS public.users (
    id         serial PRIMARY KEY,
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS public.organizations (
    id   serial PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE IF NOT EXISTS public.vehicles (
    id    serial PRIMARY KEY,
    plate text NOT NULL
);
CREATE TABLE IF NOT EXISTS public.devices (
    id     serial PRIMARY KEY,
    serial text NOT NULL
);
CREATE TABLE IF NOT EXISTS public.events (
    id       serial PRIMARY KEY,
    title    text NOT NULL,
    start_at timestamptz
);

-- Junction tables as Directus makes them: an id of their own, two foreign
-- keys, and no composite UNIQUE (db-init-post/ adds that).
CREATE TABLE IF NOT EXISTS public.organization_users (
    id              serial PRIMARY KEY,
    organization_id integer REFERENCES public.organizations (id) ON DELETE CASCADE,
    user_id         integer REFERENCES public.users (id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS public.organization_vehicles (
    id              serial PRIMARY KEY,
    organization_id integer REFERENCES public.organizations (id) ON DELETE CASCADE,
    vehicle_id      integer REFERENCES public.vehicles (id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS public.organization_devices (
    id              serial PRIMARY KEY,
    organization_id integer REFERENCES public.organizations (id) ON DELETE CASCADE,
    device_id       integer REFERENCES public.devices (id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS public.event_participants (
    id       serial PRIMARY KEY,
    event_id integer REFERENCES public.events (id) ON DELETE CASCADE,
    user_id  integer REFERENCES public.users (id) ON DELETE CASCADE
);

COMMIT;
SQL

echo "application tables are in place"
