-- db-init/002_app_settings_note.sql — pre-schema: a free-text note per setting.
--
-- A later change to a table of 001 goes into a new file: an applied file is
-- never edited (pgprelude refuses a file whose checksum changed).  Runs once,
-- in a transaction; IF NOT EXISTS keeps it safe to run again anyway.

ALTER TABLE public.app_settings ADD COLUMN IF NOT EXISTS note text;

COMMENT ON COLUMN public.app_settings.note IS 'Why the setting has its value; for humans.';
