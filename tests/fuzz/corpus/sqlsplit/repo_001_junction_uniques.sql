-- db-init-post/001_junction_uniques.sql — post-schema: composite UNIQUE
-- constraints on the junction tables the schema tool (Directus) created.
--
-- Directus models many-to-many relations with junction tables that have their
-- own id primary key and nothing that stops the same pair being linked twice.
-- This file adds one UNIQUE constraint per junction table:
--
--   organization_users     (organization_id, user_id)
--   organization_vehicles  (organization_id, vehicle_id)
--   organization_devices   (organization_id, device_id)
--   event_participants     (event_id, user_id)
--
-- pgprelude runs the file once, in one transaction with its history row; it is
-- still written to be safe to run again.  For each junction table, the block:
--
--   1. fails clearly when the table or one of the columns is missing (the
--      schema step should have created them);
--   2. looks for an existing constraint BY DEFINITION, not by name: a UNIQUE
--      (or PRIMARY KEY) constraint in pg_constraint on this table whose conkey
--      equals the attnums of the wanted columns in this order.  If there is
--      one, whatever it is called, nothing is done;
--   3. fails when the name is already taken by another constraint or index,
--      i.e. something with this name but another definition (drift);
--   4. pre-flight: counts the groups of duplicate rows (rows with a NULL in a
--      key column never conflict, as in a UNIQUE constraint) and fails with
--      the first five keys instead of a bare unique violation.  No row is
--      ever deleted here: cleaning data is a human decision;
--   5. adds the constraint, named as PostgreSQL would name it.
--
-- Any failure rolls the whole file back, so the database is never left with
-- only some of the constraints.  Steps 4 and 5 are not atomic against
-- concurrent writers; a duplicate written in between makes step 5 fail with
-- a plain unique violation, and the file is retried on the next start.
--
-- One DO block walks the list below; add a junction table by adding a row.

DO $do$
DECLARE
    spec     record;
    t_table  text;
    t_cols   text[];
    t_name   text;
    rel      regclass;
    nsp      text;
    want     int2[];
    col_list text;
    not_null text;
    have     text;
    n_dups   bigint;
    sample   text;
BEGIN
    FOR spec IN
        SELECT * FROM (VALUES
            -- an organization lists a user, a vehicle, a device once; an event a participant once
            ('public.organization_users',    ARRAY['organization_id', 'user_id'],
             'organization_users_organization_id_user_id_key'),
            ('public.organization_vehicles', ARRAY['organization_id', 'vehicle_id'],
             'organization_vehicles_organization_id_vehicle_id_key'),
            ('public.organization_devices',  ARRAY['organization_id', 'device_id'],
             'organization_devices_organization_id_device_id_key'),
            ('public.event_participants',    ARRAY['event_id', 'user_id'],
             'event_participants_event_id_user_id_key')
        ) AS s(tbl, cols, name)
    LOOP
        t_table := spec.tbl;
        t_cols  := spec.cols;
        t_name  := spec.name;
        -- 1. the table and its columns
        rel := to_regclass(t_table);
        IF rel IS NULL THEN
            RAISE EXCEPTION 'table % does not exist', t_table
                USING ERRCODE = 'undefined_table',
                      HINT = 'db-init-post/ runs after the schema step, which should have created it.';
        END IF;
        SELECT relnamespace::regnamespace::text INTO nsp FROM pg_class WHERE oid = rel;

        SELECT array_agg(a.attnum ORDER BY c.ord),
               string_agg(quote_ident(c.col), ', ' ORDER BY c.ord),
               string_agg(quote_ident(c.col) || ' IS NOT NULL', ' AND ' ORDER BY c.ord)
          INTO want, col_list, not_null
          FROM unnest(t_cols) WITH ORDINALITY AS c(col, ord)
          JOIN pg_attribute a
            ON a.attrelid = rel AND a.attname = c.col AND a.attnum > 0 AND NOT a.attisdropped;
        IF cardinality(want) IS DISTINCT FROM cardinality(t_cols) THEN
            RAISE EXCEPTION 'table % lacks one of the columns (%)', rel, array_to_string(t_cols, ', ')
                USING ERRCODE = 'undefined_column';
        END IF;

        -- 2. already unique on exactly these columns, under any name?
        SELECT con.conname INTO have
          FROM pg_constraint con
         WHERE con.conrelid = rel
           AND con.contype IN ('u', 'p')
           AND con.conkey = want
         ORDER BY con.conname
         LIMIT 1;
        IF have IS NOT NULL THEN
            RAISE NOTICE '% is already unique on (%) by constraint %', rel, col_list, have;
            CONTINUE;
        END IF;

        -- 3. the name taken by something else (a constraint with another
        --    definition, or any index or relation of that name in the schema)
        IF EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conrelid = rel AND con.conname = t_name)
           OR to_regclass(format('%s.%I', nsp, t_name)) IS NOT NULL THEN
            RAISE EXCEPTION '% already exists but is not UNIQUE (%) on %', t_name, col_list, rel
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Inspect it with \d+ in psql; drop or rename it if it is obsolete.';
        END IF;

        -- 4. pre-flight: duplicates
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s GROUP BY %s HAVING count(*) > 1) d',
                       rel, not_null, col_list)
           INTO n_dups;
        IF n_dups > 0 THEN
            EXECUTE format('SELECT string_agg(k, ''; '') FROM ('
                           'SELECT ROW(%s)::text || '' x '' || count(*) AS k FROM %s WHERE %s'
                           ' GROUP BY %s HAVING count(*) > 1 ORDER BY %s LIMIT 5) d',
                           col_list, rel, not_null, col_list, col_list)
               INTO sample;
            RAISE EXCEPTION '% has % duplicate value(s) of (%); cannot add UNIQUE (%)',
                            rel, n_dups, col_list, col_list
                USING ERRCODE = 'unique_violation',
                      DETAIL = format('First duplicates (value x rows): %s.', sample),
                      HINT = 'Delete or merge the duplicate rows, then start again. Nothing was changed.';
        END IF;

        -- 5. add it
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE (%s)', rel, t_name, col_list);
        RAISE NOTICE 'added constraint % UNIQUE (%) on %', t_name, col_list, rel;
    END LOOP;
END
$do$;
