#!/usr/bin/env bash
# make demo: the demo pipeline against a throwaway PostgreSQL owned by the project.
#   1. start a private cluster under .demo/ (git-ignored) and create a fresh database
#   2. run the whole job: db-init/ → stand-in schema step → db-init-post/ → demo app
#   3. run it again: a restart applies nothing
#   4. stop the cluster
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
pgdir=$top/.demo/pg

trap 'tests/tools/pgcluster.sh stop "$pgdir" >/dev/null 2>&1 || true' EXIT
tests/tools/pgcluster.sh start "$pgdir"
# shellcheck disable=SC1091
source "$pgdir/env"
export PSQL=$PGPRELUDE_TEST_PGBIN/psql
"$PSQL" -X -q -d postgres -c 'DROP DATABASE IF EXISTS demo' -c 'CREATE DATABASE demo'
export PGDATABASE=demo
export DATABASE_URL="postgresql://$PGUSER@$PGHOST:$PGPORT/demo"

echo
echo "== first start: every phase runs, then the demo application =="
build/pgprelude -c entrypoint/demo.ini
echo
echo "== second start: nothing to apply =="
build/pgprelude -c entrypoint/demo.ini -- sh -c 'echo "demo application started again"'
echo
echo "== status =="
build/pgprelude -c entrypoint/demo.ini status
