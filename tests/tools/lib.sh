# shellcheck shell=bash
# What the scripts of tests/tools share; sourced, not run:
#
#   here=$(cd "$(dirname "$0")" && pwd)
#   USAGE="start DIR | stop DIR"     # what usage prints after "usage: NAME"
#   source "$here/lib.sh"
#
# Messages name the script that sourced this file ($prog).

prog=${0##*/}
# For the scripts that source this file: the superuser password of the test
# clusters (pgcluster.sh), which PgBouncer (pgbouncer.sh) logs in with too,
# and where PostgreSQL 15's programs are.
# shellcheck disable=SC2034
PASSWORD=pgprelude-test-pw
# shellcheck disable=SC2034
PGBIN=/usr/lib/postgresql/15/bin

# die MESSAGE [LINE...]: "prog: error: MESSAGE", then "prog: LINE" for each
# LINE ("detail: ...", "hint: ..."), and exit 1.
die() {
    echo "$prog: error: $1" >&2
    shift
    for line in "$@"; do echo "$prog: $line" >&2; done
    exit 1
}

usage() {
    echo "usage: $prog $USAGE" >&2
    exit 2
}

# as_pg CMD...: run CMD as the cluster owner (postgres when we are root).
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# port_free PORT: true when no TCP socket on this machine uses PORT, whether
# listening or connected (a connection's own end blocks a listener's bind).
port_free() {
    [[ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]]
}

# pick_port: print a free TCP port (port_free) below the kernel's range of
# ephemeral ports (ip_local_port_range), so that no connection made meanwhile
# takes it as its own end before the server binds it.
pick_port() {
    local low=32768 first=10000 i port
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range || true
    ((low - first >= 1000)) || first=1024
    for ((i = 0; i < 100; i++)); do
        port=$((first + (RANDOM * 32768 + RANDOM) % (low - first)))
        if port_free "$port"; then
            echo "$port"
            return 0
        fi
    done
    die "could not find a free TCP port in $first-$((low - 1)) after 100 tries"
}

# close_inherited_fds: close every descriptor above 2 that we inherited, so
# that a server started from here (which keeps them) does not hold a
# caller's pipe open -- bats keeps its TAP stream on fd 3, and a reader of
# that pipe would otherwise wait for the server to exit. Bash's own fd 255
# is kept.
close_inherited_fds() {
    local fd
    for fd in /proc/self/fd/*; do
        fd=${fd##*/}
        if ((fd > 2 && fd < 255)); then
            eval "exec $fd>&-" 2>/dev/null || true
        fi
    done
}

# npm_install_cached NAME EXPECT PACKAGE...: install PACKAGE... with npm,
# outside the checkout, into the folder NAME of
# ${PGPRELUDE_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgprelude}, and
# print that folder. An install that is complete (its stamp file .installed
# written last) is not repeated. The install goes into a fresh folder that is
# moved into place only when complete, so that an interrupted install or two
# concurrent ones leave no half tree. EXPECT (a path in the folder, or "")
# must exist after the install. A subshell: its EXIT trap is its own.
npm_install_cached() (
    local name=$1 expect=$2 parent dir
    shift 2
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        die "node and npm are needed (Debian: apt-get install nodejs npm)"
    fi
    parent=${PGPRELUDE_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgprelude}
    dir=$parent/$name
    if [[ ! -f "$dir/.installed" ]]; then
        mkdir -p "$parent"
        tmp=$(mktemp -d "$parent/.$name.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        echo "$prog: installing $* into $dir" >&2
        # npm's stdout goes to stderr: stdout is the folder's name.
        npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$tmp" "$@" >&2
        [[ -z "$expect" || -e "$tmp/$expect" ]] || die "the install has no $expect"
        printf '%s\n' "$@" >"$tmp/.installed"
        if ! mv -T "$tmp" "$dir" 2>/dev/null; then
            # Another run got there first: keep its tree if it is complete.
            [[ -f "$dir/.installed" ]] || { rm -rf "$dir" && mv -T "$tmp" "$dir"; }
        fi
    fi
    printf '%s\n' "$dir"
)
