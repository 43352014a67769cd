#!/usr/bin/env bash
# A throwaway PgBouncer in front of a cluster of tests/tools/pgcluster.sh.
#
#   pgbouncer.sh start DIR CLUSTER [MODE]
#                     start PgBouncer with its files in DIR (ini, userlist,
#                     log, pid), listening on 127.0.0.1:<free port> only (no
#                     unix socket), every database (`*`) going to the
#                     cluster whose folder is CLUSTER, pool_mode MODE
#                     (transaction, the default, session or statement);
#                     writes DIR/env (sourceable: exports PGBOUNCER_PORT)
#   pgbouncer.sh stop DIR
#                     stop it (SIGTERM: at once, its clients are cut off;
#                     SIGKILL after 5 s); a missing PgBouncer is not an error
#
# Clients log in as any role of the cluster with its password, by SCRAM
# (auth_type scram-sha-256): the userlist holds the superuser `postgres` with
# the cluster's password, and other roles are looked up with auth_query as
# postgres. postgres is also admin_users: `psql -h 127.0.0.1 -p PORT -U
# postgres pgbouncer -c 'SHOW CONFIG'` is the admin console.
# PgBouncer refuses to run as root, so when root it runs as `postgres`.
set -euo pipefail

USAGE="start DIR CLUSTER [transaction|session|statement] | stop DIR"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$here/lib.sh"

# running_pid DIR: print the pid of DIR's PgBouncer if it runs.
running_pid() {
    local pid
    pid=$(cat "$1/pgbouncer.pid" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == pgbouncer ]] || return 1
    # an exited one that its parent has not reaped yet does not run
    local stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat:0:1}" != Z ]] || return 1
    echo "$pid"
}

write_ini() {
    local dir=$1 port=$2 backend=$3 mode=$4
    # shellcheck disable=SC2016 # $1 is for the inner sh
    as_pg sh -c 'cat >"$1"' sh "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$backend

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
auth_user = postgres
admin_users = postgres
stats_users = postgres
pool_mode = $mode
max_client_conn = 200
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
server_login_retry = 1
INI
}

cmd_start() {
    local dir=$1 cluster=$2 mode=$3 backend port attempt pid logsize i
    close_inherited_fds
    command -v pgbouncer >/dev/null 2>&1 || die "pgbouncer not found" \
        "hint: Run tests/tools/deps.sh (package pgbouncer)."
    if running_pid "$dir" >/dev/null; then
        [[ -f "$dir/env" ]] || die "a PgBouncer runs in \"$dir\" but its env file is gone" \
            "hint: Stop it with: $prog stop $dir"
        return 0
    fi
    backend=$(sed -n 's/.* PGPORT=\([0-9]*\) .*/\1/p' "$cluster/env" 2>/dev/null || true)
    [[ -n "$backend" ]] || die "no cluster's env file in \"$cluster\"" \
        "hint: Start it with: tests/tools/pgcluster.sh start $cluster"

    mkdir -p "$dir"
    if ((EUID == 0)); then
        chown postgres:postgres "$dir"
    fi
    as_pg test -w "$dir" || die "the postgres user cannot write to \"$dir\"" \
        "hint: Put it under a directory every user can traverse (mode 755)."
    # shellcheck disable=SC2016 # $1 $2 are for the inner sh
    as_pg sh -c 'umask 077; printf "\"postgres\" \"%s\"\n" "$1" >"$2"' sh "$PASSWORD" "$dir/userlist.txt"

    # A port found free can be taken before PgBouncer binds it: try again.
    for attempt in 1 2 3; do
        port=$(pick_port)
        write_ini "$dir" "$port" "$backend" "$mode"
        logsize=$(stat -c %s "$dir/pgbouncer.log" 2>/dev/null || echo 0)
        rm -f "$dir/pgbouncer.pid"
        if ! as_pg pgbouncer -q -d "$dir/pgbouncer.ini" >"$dir/start.log" 2>&1; then
            if ((attempt < 3)) && grep -q "Address already in use" "$dir/start.log"; then
                continue
            fi
            cat "$dir/start.log" >&2
            tail -c +$((logsize + 1)) "$dir/pgbouncer.log" 2>/dev/null | tail -n 20 >&2 || true
            die "could not start PgBouncer in \"$dir\""
        fi
        # ready once it answers on its port (the pid file comes first)
        for ((i = 0; i < 100; i++)); do
            if pid=$(running_pid "$dir") && pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -t 1; then
                echo "export PGBOUNCER_PORT=$port PGBOUNCER_PID=$pid" >"$dir/env.tmp"
                mv "$dir/env.tmp" "$dir/env"
                return 0
            fi
            # it forks away before it binds its port: a failure is in its log
            if tail -c +$((logsize + 1)) "$dir/pgbouncer.log" 2>/dev/null | grep -q " FATAL "; then
                break
            fi
            sleep 0.05
        done
        cmd_stop "$dir"
        if ((attempt < 3)) && tail -c +$((logsize + 1)) "$dir/pgbouncer.log" 2>/dev/null |
                grep -q "Address already in use"; then
            echo "$prog: port $port was taken meanwhile, trying another" >&2
            continue
        fi
        cat "$dir/start.log" >&2
        tail -c +$((logsize + 1)) "$dir/pgbouncer.log" 2>/dev/null | tail -n 20 >&2 || true
        die "PgBouncer in \"$dir\" did not come up on port $port"
    done
    die "could not start PgBouncer in \"$dir\" after 3 ports"
}

cmd_stop() {
    local dir=$1 pid i
    rm -f "$dir/env"
    pid=$(running_pid "$dir") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        running_pid "$dir" >/dev/null || return 0
        sleep 0.05
    done
    echo "$prog: PgBouncer $pid did not stop within 5 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        [[ -e "/proc/$pid" ]] || return 0
        sleep 0.05
    done
    return 0
}

PATH=$PGBIN:$PATH
action=${1:-}
case "$action" in
start)
    (($# == 3 || $# == 4)) || usage
    mode=${4:-transaction}
    case "$mode" in transaction | session | statement) ;; *) usage ;; esac
    [[ "$2" == /* && "$3" == /* ]] || die "DIR and CLUSTER must be absolute paths"
    cmd_start "${2%/}" "${3%/}" "$mode"
    ;;
stop)
    (($# == 2)) || usage
    [[ "$2" == /* ]] || die "DIR must be an absolute path, got \"$2\""
    cmd_stop "${2%/}"
    ;;
*) usage ;;
esac
