#!/bin/sh
# entrypoint/demo-app.sh — the "application" of `make demo`.
#
# pgprelude hands over to it ([exec] command in entrypoint/demo.ini) once every
# phase has run.  It shows what is now in the database — the tables, their
# PRIMARY KEY and UNIQUE constraints, and pgprelude's history — and exits 0.
# Like demo-schema.sh it finds the database through DATABASE_URL or libpq's
# PG* variables, and runs "${PSQL:-psql}".
set -eu

if [ -n "${DATABASE_URL:-}" ]; then
	set -- -d "$DATABASE_URL"
else
	set --
fi

echo "demo application: started; this is the database it was handed"

"${PSQL:-psql}" -X -q -v ON_ERROR_STOP=1 -P pager=off "$@" <<'SQL'
\echo
\echo 'Tables in schema public:'
SELECT table_name AS "table"
  FROM information_schema.tables
 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
 ORDER BY 1;

\echo 'Primary keys and UNIQUE constraints:'
SELECT con.conrelid::regclass AS "table",
       con.conname AS "constraint",
       pg_get_constraintdef(con.oid) AS definition
  FROM pg_constraint con
 WHERE con.connamespace = 'public'::regnamespace
   AND con.contype IN ('p', 'u')
 ORDER BY 1::text, 2;

\echo 'Migrations applied by pgprelude (pgprelude.history):'
SELECT to_regclass('pgprelude.history') IS NOT NULL AS has_history \gset
\if :has_history
SELECT phase, file, left(checksum, 12) AS checksum, applied_at
  FROM pgprelude.history
 ORDER BY applied_at, phase, file;
\else
\echo '(no history table)'
\endif
SQL

echo "demo application: done"
