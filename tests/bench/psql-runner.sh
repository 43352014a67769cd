#!/bin/sh
# The kind of entrypoint script PostgreSQL-backed containers carry today, kept
# as a peer for the benchmarks: one psql per file to ask whether it was
# applied (by name and SHA-256), one more to apply it and record it.
#
#   psql-runner.sh DIR
#
# Connection from libpq's PG* variables. PSQL names the psql binary (default:
# the real one, not Debian's Perl wrapper). Exits non-zero on the first error.
set -eu

dir=$1
psql=${PSQL:-/usr/lib/postgresql/15/bin/psql}
q() { "$psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

q -c "CREATE TABLE IF NOT EXISTS public.runner_history (
        file text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())" \
    2>/dev/null
for f in "$dir"/*.sql; do
    name=${f##*/}
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    seen=$(q -c "SELECT checksum FROM public.runner_history WHERE file = '$name'")
    if [ -z "$seen" ]; then
        # the file and its history row in one transaction
        { cat "$f"; echo; echo "INSERT INTO public.runner_history (file, checksum) VALUES ('$name', '$sum');"; } |
            q -1 -f -
        echo "applied $name" >&2
    elif [ "$seen" != "$sum" ]; then
        echo "psql-runner.sh: error: $name changed after it was applied" >&2
        exit 1
    fi
done
