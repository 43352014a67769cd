#!/usr/bin/env bash
# Build a stand-in for the postgres:15 image that docker-compose.yml runs,
# offline: this machine's own PostgreSQL 15 (Debian's postgresql-15, which
# tests/tools/deps.sh installs for the test suite) with the shared libraries it
# links, on the BusyBox base image that tests/tools/image-build.sh imports.
#
#   compose-postgres-image.sh [-t TAG]   (default localhost/pgprelude-compose-postgres:15)
#
# There is no registry here, and a Debian root with the postgresql-15 packages
# would need the network to be assembled; these files are on the machine
# already, and the image builds in seconds. It answers the part of the official
# image's interface that the compose file uses: POSTGRES_PASSWORD, POSTGRES_DB
# and POSTGRES_USER on the first start, the data directory
# /var/lib/postgresql/data (a volume), password authentication over TCP,
# postgres as PID 1 with a fast shutdown on stop (STOPSIGNAL SIGINT), and psql
# and pg_isready on the PATH (the compose file's schema service and
# healthcheck). Use it with:
#
#   POSTGRES_IMAGE=localhost/pgprelude-compose-postgres:15 podman-compose up -d
#
# podman reads $CONTAINERS_CONF as in image-build.sh (tests/bats/71_compose.bats
# points it at the file image-build.sh writes).
set -euo pipefail
cd "$(dirname "$0")/../.."
prog=compose-postgres-image.sh

tag=localhost/pgprelude-compose-postgres:15
while (($#)); do
    case "$1" in
    -t) tag=$2; shift ;;
    *) echo "usage: $prog [-t TAG]" >&2; exit 2 ;;
    esac
    shift
done

die() {
    echo "$prog: error: $1" >&2
    shift
    for line in "$@"; do echo "$prog: $line" >&2; done
    exit 1
}

base=docker.io/library/busybox:1.36
pgbin=/usr/lib/postgresql/15/bin
pglib=/usr/lib/postgresql/15/lib
pgshare=/usr/share/postgresql/15

command -v podman >/dev/null 2>&1 || die "podman not found" "hint: Run tests/tools/deps.sh."
[[ -x "$pgbin/postgres" && -d "$pgshare" ]] ||
    die "PostgreSQL 15 is not installed in $pgbin" "hint: Run tests/tools/deps.sh."
podman image exists "$base" ||
    die "the base image $base is missing" "hint: Run tests/tools/image-build.sh (it imports it)."

ctx=$(mktemp -d /tmp/pgprelude-compose-postgres.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/root
mkdir -p "$root"

# The server, the client programs the compose file calls, the server's
# modules (plpgsql, the text search dictionaries initdb loads) without the
# JIT, whose LLVM library alone is larger than all the rest.
bins=(postgres initdb pg_ctl psql pg_isready)
files=()
for b in "${bins[@]}"; do files+=("$pgbin/$b"); done
while IFS= read -r -d '' so; do files+=("$so"); done < <(
    find "$pglib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -print0)
for f in "${files[@]}"; do
    cp -L --parents "$f" "$root/"
done
# Every library they link, and the loader, at the paths ldd names (no
# ld.so.cache: the loader's default directories find them).
ldd "${files[@]}" 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' |
    sort -u | while IFS= read -r lib; do
        cp -L --parents "$lib" "$root/"
    done
tar -C / -cf - "${pgshare#/}" usr/share/zoneinfo | tar -C "$root" -xf -
rm -rf "${root:?}$pglib/bitcode"
mkdir -p "$root/var/lib/postgresql/data" "$root/var/run/postgresql" "$root/usr/local/bin"

cat >"$root/usr/local/bin/postgres-entrypoint.sh" <<'EOF'
#!/bin/sh
# The stand-in postgres:15 image's entrypoint (tests/tools/compose-postgres-image.sh):
# initialise $PGDATA on the first start, then run postgres as PID 1.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ]; then
		echo "postgres-entrypoint: error: POSTGRES_PASSWORD is not set" >&2
		exit 1
	fi
	user=${POSTGRES_USER:-postgres}
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	initdb -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
		-E UTF8 --locale=C -D "$PGDATA" >/dev/null
	rm -f "$pwfile"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	db=${POSTGRES_DB:-$user}
	if [ "$db" != postgres ]; then
		echo "CREATE DATABASE \"$db\"" | postgres --single -D "$PGDATA" postgres >/dev/null
	fi
	echo "postgres-entrypoint: initialised $PGDATA (database \"$db\", user \"$user\")"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
chmod 755 "$root/usr/local/bin/postgres-entrypoint.sh"

cat >"$ctx/Dockerfile" <<EOF
FROM $base
COPY root/ /
RUN echo 'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh' >>/etc/passwd \\
 && echo 'postgres:x:999:' >>/etc/group \\
 && chown -R 999:999 /var/lib/postgresql /var/run/postgresql \\
 && chmod 700 /var/lib/postgresql/data
ENV PATH=$pgbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PGDATA=/var/lib/postgresql/data TZ=UTC
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
EOF
echo "$prog: building $tag from $pgbin and the libraries it links" >&2
podman build --quiet --network host --pull=never -t "$tag" "$ctx"
