#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests and the demo.
#
#   pgcluster.sh start DIR   create (if needed) and start a cluster in DIR/data,
#                            listening on 127.0.0.1:<free port> and DIR/sock;
#                            writes DIR/env (sourceable, exports PG* variables)
#   pgcluster.sh stop DIR    stop it (fast); a missing cluster is not an error
#   pgcluster.sh standby DIR PRIMARY
#                            create (if needed, pg_basebackup -R from the
#                            running cluster of folder PRIMARY, which stays
#                            untouched) and start a hot standby of it in DIR,
#                            like start (DIR/env; stop it with stop DIR)
#   pgcluster.sh promote DIR promote the standby in DIR (waits until it is a
#                            primary); its former primary goes on as before
#   pgcluster.sh port        print a free TCP port (for other servers)
#
# PGCLUSTER_PORT=N asks for that port instead of a free one picked at random.
# PGCLUSTER_SETTINGS='LINES' adds those postgresql.conf lines (for this start
# only: the settings file is rewritten by every start).
# PGCLUSTER_LOCALE=NAME makes initdb use that locale (default C.UTF-8), and
# with it the server's message language (lc_messages): e.g. de_DE.UTF-8 for
# German errors. A locale the system lacks is made with localedef (when root;
# Debian's locales package). It only matters when DIR/data is created.
# PGCLUSTER_SSL_CERT=FILE and PGCLUSTER_SSL_KEY=FILE (both, PEM) turn on TLS
# with that server certificate and key (copied into the data directory);
# unset, the cluster has no TLS, as before.
#
# The superuser is `postgres` with password "pgprelude-test-pw" (scram-sha-256
# over TCP, trust over the unix socket). Durability is off: it is for tests.
# initdb refuses to run as root, so when root everything runs as `postgres`.
set -euo pipefail

USAGE="start|stop|promote DIR | standby DIR PRIMARY | port"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$here/lib.sh"

is_running() {
    [[ -f "$1/data/PG_VERSION" ]] && as_pg "$PGBIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

write_env() {
    local dir=$1 port=$2
    cat >"$dir/env.tmp" <<ENV
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGPASSWORD=$PASSWORD PGDATABASE=postgres PGPRELUDE_TEST_SOCKDIR=$dir/sock PGPRELUDE_TEST_PGBIN=$PGBIN
ENV
    mv "$dir/env.tmp" "$dir/env"
}

# check_reachable DIR: the postgres user must be able to reach DIR.
check_reachable() {
    local dir=$1
    ((EUID == 0)) || return 0
    if ! runuser -u postgres -- test -x "$dir" -a -w "$dir"; then
        local d=$dir blocked=""
        while [[ "$d" != / ]]; do
            d=$(dirname "$d")
            if ! runuser -u postgres -- test -x "$d"; then blocked=$d; fi
        done
        if [[ -n "$blocked" ]]; then
            die "the postgres user cannot reach \"$dir\"" \
                "detail: \"$blocked\" is not searchable by postgres (mode $(stat -c %a "$blocked"))." \
                "hint: Put the cluster under a directory every user can traverse, e.g. mktemp -d /tmp/pg.XXXXXX && chmod 755 it."
        fi
        die "the postgres user cannot write to \"$dir\""
    fi
}

# write_settings DIR PORT: the test settings, in a file postgresql.conf includes,
# rewritten on every start (the port changes).
write_settings() {
    local dir=$1 port=$2
    # shellcheck disable=SC2016 # $1 is for the inner sh
    as_pg sh -c 'cat >"$1"' sh "$dir/data/pgprelude-test.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
logging_collector = off
CONF
    if [[ -n "${PGCLUSTER_SETTINGS:-}" ]]; then
        # shellcheck disable=SC2016 # $1 is for the inner sh
        printf '%s\n' "$PGCLUSTER_SETTINGS" | as_pg sh -c 'cat >>"$1"' sh "$dir/data/pgprelude-test.conf"
    fi
    if [[ -n "${PGCLUSTER_SSL_CERT:-}" || -n "${PGCLUSTER_SSL_KEY:-}" ]]; then
        [[ -r "${PGCLUSTER_SSL_CERT:-}" && -r "${PGCLUSTER_SSL_KEY:-}" ]] ||
            die "PGCLUSTER_SSL_CERT and PGCLUSTER_SSL_KEY must both name readable files"
        # The server refuses a key that others can read: owned by the cluster owner, mode 600.
        as_pg sh -c 'umask 077; cat >"$1"' sh "$dir/data/pgprelude-test-server.crt" <"$PGCLUSTER_SSL_CERT"
        as_pg sh -c 'umask 077; cat >"$1"' sh "$dir/data/pgprelude-test-server.key" <"$PGCLUSTER_SSL_KEY"
        # shellcheck disable=SC2016 # $1 is for the inner sh
        as_pg sh -c 'cat >>"$1"' sh "$dir/data/pgprelude-test.conf" <<CONF
ssl = on
ssl_cert_file = 'pgprelude-test-server.crt'
ssl_key_file = 'pgprelude-test-server.key'
CONF
    fi
    if ! grep -q "^include_if_exists = 'pgprelude-test.conf'" "$dir/data/postgresql.conf"; then
        as_pg sh -c "echo \"include_if_exists = 'pgprelude-test.conf'\" >>\"\$1\"" sh "$dir/data/postgresql.conf"
    fi
}

cmd_start() {
    local dir=$1 port
    close_inherited_fds
    [[ -x "$PGBIN/initdb" ]] || die "$PGBIN/initdb not found" "hint: Run tests/tools/deps.sh (package postgresql-15)."

    if is_running "$dir"; then
        if [[ ! -f "$dir/env" ]]; then
            # Running but its env file is gone: recover the port it listens on.
            port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/pgprelude-test.conf" 2>/dev/null || true)
            [[ -n "$port" ]] || die "a server runs in \"$dir/data\" but its port is unknown" \
                "hint: Stop it with: $prog stop $dir"
            write_env "$dir" "$port"
        fi
        return 0
    fi

    make_dirs "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        local locale=${PGCLUSTER_LOCALE:-C.UTF-8}
        ensure_locale "$locale"
        rm -rf "$dir/data"
        local pwfile
        pwfile="$dir/pwfile"
        # shellcheck disable=SC2016 # $1 $2 are for the inner sh
        as_pg sh -c 'umask 077; printf "%s\n" "$1" >"$2"' sh "$PASSWORD" "$pwfile"
        if ! as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" \
                -E UTF8 --locale="$locale" --auth-local=trust --auth-host=scram-sha-256 \
                --no-sync >"$dir/log/initdb.log" 2>&1; then
            rm -f "$pwfile"
            cat "$dir/log/initdb.log" >&2
            die "initdb failed in \"$dir/data\""
        fi
        rm -f "$pwfile"
    fi
    launch "$dir"
}

# make_dirs DIR: DIR, DIR/sock and DIR/log, reachable and owned by postgres.
make_dirs() {
    local dir=$1
    mkdir -p "$dir"
    if ((EUID == 0)); then
        chown postgres:postgres "$dir"
    fi
    check_reachable "$dir"
    as_pg mkdir -p "$dir/sock" "$dir/log"
}

# ensure_locale NAME: the system must have locale NAME (e.g. de_DE.UTF-8);
# when it does not, make it with localedef (root only).
ensure_locale() {
    local name=$1 want
    case "$name" in C | POSIX | C.UTF-8 | C.utf8) return 0 ;; esac
    # `locale -a` spells de_DE.UTF-8 as de_DE.utf8
    want=${name,,}
    want=${want//-/}
    if locale -a 2>/dev/null | tr '[:upper:]' '[:lower:]' | tr -d '-' | grep -qxF "$want"; then
        return 0
    fi
    [[ "$name" =~ ^([A-Za-z_@]+)\.([A-Za-z0-9-]+)$ ]] ||
        die "locale \"$name\" is missing and not of the form LANG_COUNTRY.CHARSET"
    ((EUID == 0)) || die "locale \"$name\" is missing" \
        "hint: As root: localedef -i ${BASH_REMATCH[1]} -f ${BASH_REMATCH[2]} $name"
    command -v localedef >/dev/null 2>&1 || die "localedef not found" \
        "hint: Run tests/tools/deps.sh (package locales)."
    # one localedef at a time: they rewrite the same locale archive
    if ! flock /tmp/pgcluster-localedef.lock \
            localedef -i "${BASH_REMATCH[1]}" -f "${BASH_REMATCH[2]}" "$name" >&2; then
        die "localedef could not make locale \"$name\"" \
            "hint: Is Debian's locales package installed (tests/tools/deps.sh)?"
    fi
}

# launch DIR: start the server of DIR/data on a free port (or $PGCLUSTER_PORT)
# and write DIR/env.
launch() {
    local dir=$1 port
    # A port found free can be taken before the server binds it: try again.
    local attempt
    for attempt in 1 2 3; do
        port=${PGCLUSTER_PORT:-$(pick_port)}
        write_settings "$dir" "$port"
        if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log/postgresql.log" -w -t 60 \
                start >"$dir/log/pg_ctl.log" 2>&1; then
            break
        fi
        # Whatever the failure (the server's log may be in another language, and the
        # port's taker may have let go of it again), try another port: a failure that
        # is not the port's fails the same way three times, and its log is shown.
        if ((attempt < 3)) && [[ -z "${PGCLUSTER_PORT:-}" ]]; then
            echo "$prog: could not start on port $port (taken meanwhile?), trying another" >&2
            continue
        fi
        cat "$dir/log/pg_ctl.log" >&2
        tail -n 20 "$dir/log/postgresql.log" >&2 || true
        die "could not start the cluster in \"$dir/data\"" "detail: see $dir/log/postgresql.log"
    done
    write_env "$dir" "$port"
}

cmd_stop() {
    local dir=$1
    rm -f "$dir/env"
    if [[ -f "$dir/data/PG_VERSION" ]] && is_running "$dir"; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    fi
    return 0
}

# cmd_standby DIR PRIMARY: a hot standby of the cluster in folder PRIMARY.
cmd_standby() {
    local dir=$1 primary=$2 pport
    close_inherited_fds
    if is_running "$dir"; then
        [[ -f "$dir/env" ]] || die "a server runs in \"$dir/data\" but its env file is gone" \
            "hint: Stop it with: $prog stop $dir"
        return 0
    fi
    if [[ ! -f "$primary/env" ]] || ! is_running "$primary"; then
        die "no running cluster in \"$primary\"" "hint: Start it with: $prog start $primary"
    fi
    pport=$(sed -n 's/.* PGPORT=\([0-9]*\) .*/\1/p' "$primary/env")
    [[ -n "$pport" ]] || die "no PGPORT in \"$primary/env\""

    make_dirs "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        rm -rf "$dir/data"
        # -R: standby.signal and primary_conninfo (with the password); no
        # replication slot, so that nothing of the standby stays on the primary.
        if ! as_pg env PGPASSWORD="$PASSWORD" "$PGBIN/pg_basebackup" -D "$dir/data" -R \
                -X stream -c fast --no-sync -h 127.0.0.1 -p "$pport" -U postgres -w \
                >"$dir/log/basebackup.log" 2>&1; then
            cat "$dir/log/basebackup.log" >&2
            rm -rf "$dir/data"
            die "pg_basebackup from \"$primary\" failed"
        fi
    fi
    launch "$dir"
}

cmd_promote() {
    local dir=$1
    is_running "$dir" || die "no running server in \"$dir/data\""
    [[ -f "$dir/data/standby.signal" ]] || die "the server in \"$dir/data\" is not a standby"
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -w -t 60 promote >"$dir/log/promote.log" 2>&1 || {
        cat "$dir/log/promote.log" >&2
        die "could not promote the standby in \"$dir/data\""
    }
}

# absdir PATH: PATH without a trailing slash; it must be absolute.
absdir() {
    [[ "$1" == /* ]] || die "DIR must be an absolute path, got \"$1\""
    echo "${1%/}"
}

action=${1:-}
case "$action" in
start | stop | promote)
    (($# == 2)) || usage
    dir=$(absdir "$2")
    "cmd_$action" "$dir"
    ;;
standby)
    (($# == 3)) || usage
    dir=$(absdir "$2")
    primary=$(absdir "$3")
    cmd_standby "$dir" "$primary"
    ;;
port)
    (($# == 1)) || usage
    pick_port
    ;;
*) usage ;;
esac
