-- db-init/001_app_settings.sql — pre-schema: runs before the schema tool.
--
-- app_settings holds application settings as key → JSON value.  The schema
-- tool (Directus) does not manage this table, so it is created here, before
-- the schema step, and the application can rely on it at start.
--
-- pgprelude runs this file once, in one transaction together with its row in
-- the history table.  IF NOT EXISTS keeps it safe to run again anyway (a
-- restored database, a reset history table).

CREATE TABLE IF NOT EXISTS public.app_settings (
    key        text        PRIMARY KEY,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.app_settings IS
    'Application settings (key → JSON value); created by pgprelude from db-init/, not by Directus.';
