#!/usr/bin/env bats
# The static binary (make static: build/pgprelude-static, musl) as PID 1 in
# roots that have no libc of their own or a foreign one, built by
# tests/tools/mkroot.sh:
#   busybox  BusyBox and nothing else (what the runtime image is)
#   debian   Debian's loader and libc, nsswitch.conf naming absent NSS modules
#   musl     an Alpine-like root: musl's loader, no nsswitch.conf
# It runs in each as `unshare --pid --fork --mount` + chroot, so that it is
# PID 1 of a PID namespace with its own /proc, runs a dir phase against the
# suite's PostgreSQL and hands over to a BusyBox command.

# Each @test runs in its own subshell: a test that sets PGPORT (the TLS
# cluster's) changes only its own.
# shellcheck disable=SC2030,SC2031
load test_helper/common

STATIC=${PGPRELUDE_STATIC:-$REPO/build/pgprelude-static}

setup_file() {
    if ((EUID != 0)); then
        skip "needs root: unshare --mount, mount and chroot build each test's root"
    fi
    if [[ ! -x "$STATIC" ]]; then
        echo "60_static.bats: $STATIC is missing; build it with: make static" >&2
        return 1
    fi
    local kind
    for kind in busybox debian musl; do
        "$REPO/tests/tools/mkroot.sh" "$kind" "$BATS_FILE_TMPDIR/$kind"
        mkdir -p "$BATS_FILE_TMPDIR/$kind/usr/local/bin" "$BATS_FILE_TMPDIR/$kind/run/postgresql"
        cp "$STATIC" "$BATS_FILE_TMPDIR/$kind/usr/local/bin/pgprelude"
    done

    # A test CA and a server certificate for "dbhost", and a second cluster
    # with TLS on (the suite's cluster stays as it is). Under a directory the
    # postgres user can reach (bats' temp dirs are 0700).
    SSLDIR=$(mktemp -d /tmp/pgprelude-ssl.XXXXXX)
    chmod 755 "$SSLDIR"
    export SSLDIR
    make_test_ca "$SSLDIR/ca" dbhost
    PGCLUSTER_SSL_CERT=$SSLDIR/ca/server.crt PGCLUSTER_SSL_KEY=$SSLDIR/ca/server.key \
        "$REPO/tests/tools/pgcluster.sh" start "$SSLDIR/pg" 3>&-
    SSL_PGPORT=$(sed -n 's/.* PGPORT=\([0-9]*\) .*/\1/p' "$SSLDIR/pg/env")
    export SSL_PGPORT
}

teardown_file() {
    if [[ -n "${SSLDIR:-}" && -d "$SSLDIR" ]]; then
        "$REPO/tests/tools/pgcluster.sh" stop "$SSLDIR/pg" 3>&- || true
        rm -rf "$SSLDIR"
    fi
}

# make_test_ca DIR NAME: ca.crt, and server.crt/server.key for CN and SAN NAME
# signed by it.
make_test_ca() {
    local dir=$1 name=$2
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pgprelude test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName = DNS:%s\n' "$name" >"$dir/ext.cnf"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.crt" 2>/dev/null
}

setup() {
    new_db
}

# root KIND: this test file's root of that kind.
root() {
    echo "$BATS_FILE_TMPDIR/$1"
}

# layout ROOT URL: the configuration /entrypoint/pgprelude.ini and one
# migration in /db-init, written for this test's database. The migration
# records what its own connection looked like.
layout() {
    local r=$1 url=$2
    rm -f "$r"/db-init/*.sql
    cat >"$r/entrypoint/pgprelude.ini" <<EOF
[database]
url = $url
wait_timeout = 10s
lock_wait_timeout = 5s

[phase pre]
dir = /db-init
EOF
    cat >"$r/db-init/001_seen.sql" <<'EOF'
CREATE TABLE seen AS
SELECT coalesce(inet_client_addr()::text, 'local') AS client,
       coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl;
EOF
}

# pid1 ROOT CMD...: run CMD chrooted in ROOT as PID 1 of a new PID and mount
# namespace, with /proc mounted and each BINDS entry (SRC:DEST-in-root)
# bind-mounted; only the environment given in ENV (plus PATH and HOME).
pid1() {
    local r=$1
    shift
    # shellcheck disable=SC2086 # ENV is a list of NAME=VALUE words
    env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root ${ENV:-} \
        BINDS="${BINDS:-}" /usr/bin/unshare --pid --fork --mount --propagation private \
        /bin/sh -c '
            r=$1; shift
            mount -t proc proc "$r/proc" || exit 125
            for b in $BINDS; do mount --bind "${b%%:*}" "$r/${b#*:}" || exit 125; done
            exec /usr/sbin/chroot "$r" "$@"' sh "$r" "$@"
}

# The hand-over command: proves it runs in the root, and under which parent.
APP='echo "started: app pid $$, parent $PPID, pid 1 is $(cat /proc/1/comm)"'

assert_ran() {
    assert_success
    assert_output --partial "1 phase done"
    assert_output --regexp "started: app pid [0-9]+, parent 1, pid 1 is pgprelude"
    local saved=$output
    run sql "SELECT count(*) FROM pgprelude.history WHERE file = '001_seen.sql'"
    assert_output 1
    output=$saved
}

@test "static: the binary has no interpreter and needs no shared library" {
    run readelf -l -d "$STATIC"
    assert_success
    refute_output --partial "program interpreter"
    refute_output --partial "NEEDED"
    # and the busybox root has no libc at all
    run find "$(root busybox)" -name 'libc*' -o -name 'ld-*'
    assert_output ""
}

@test "static: busybox root, TCP by host name from the root's /etc/hosts" {
    local r
    r=$(root busybox)
    layout "$r" "host=dbhost port=$PGPORT dbname=$PGDATABASE user=postgres"
    ENV="PGPASSWORD=$PGPASSWORD" run pid1 "$r" /usr/local/bin/pgprelude -- /bin/sh -c "$APP"
    assert_ran
    run sql "SELECT client, ssl FROM seen"
    assert_output "127.0.0.1/32|f"
}

@test "static: busybox root, unix socket in a bind-mounted directory" {
    local r
    r=$(root busybox)
    layout "$r" "host=/run/postgresql port=$PGPORT dbname=$PGDATABASE user=postgres"
    BINDS="$PGPRELUDE_TEST_SOCKDIR:/run/postgresql" run pid1 "$r" \
        /usr/local/bin/pgprelude -- /bin/sh -c "$APP"
    assert_ran
    run sql "SELECT client FROM seen"
    assert_output "local"
}

@test "static: busybox root, sslmode=verify-full against a server with a test CA" {
    local r
    r=$(root busybox)
    cp "$SSLDIR/ca/ca.crt" "$r/etc/test-ca.crt"
    PGPORT=$SSL_PGPORT new_db
    export PGPORT=$SSL_PGPORT
    layout "$r" "host=dbhost port=$SSL_PGPORT dbname=$PGDATABASE user=postgres sslmode=verify-full sslrootcert=/etc/test-ca.crt"
    ENV="PGPASSWORD=$PGPASSWORD" run pid1 "$r" /usr/local/bin/pgprelude -- /bin/sh -c "$APP"
    assert_ran
    run sql "SELECT ssl FROM seen"
    assert_output "t"
}

@test "static: verify-full refuses a server whose certificate names another host (exit 4)" {
    local r
    r=$(root busybox)
    cp "$SSLDIR/ca/ca.crt" "$r/etc/test-ca.crt"
    # 127.0.0.1 is not in the certificate (it names only dbhost)
    layout "$r" "host=127.0.0.1 port=$SSL_PGPORT dbname=postgres user=postgres sslmode=verify-full sslrootcert=/etc/test-ca.crt"
    ENV="PGPASSWORD=$PGPASSWORD" run pid1 "$r" /usr/local/bin/pgprelude -- /bin/sh -c "$APP"
    assert_failure 4
    assert_output --partial "does not match host name"
    refute_output --partial "started:"
}

@test "static: Debian-like root whose nsswitch.conf names absent NSS modules" {
    local r
    r=$(root debian)
    grep -q mdns4_minimal "$r/etc/nsswitch.conf"
    [[ ! -e "$r/lib/x86_64-linux-gnu/libnss_mdns4_minimal.so.2" ]]
    layout "$r" "host=dbhost port=$PGPORT dbname=$PGDATABASE user=postgres"
    # and drop privileges to a user known only from the root's /etc/passwd
    printf '\n[exec]\nuser = app\n' >>"$r/entrypoint/pgprelude.ini"
    ENV="PGPASSWORD=$PGPASSWORD" run pid1 "$r" /usr/local/bin/pgprelude -- /bin/sh -c "$APP; id"
    assert_ran
    assert_output --partial "uid=10001(app) gid=10001(app)"
}

@test "static: Alpine-like musl root, TCP by host name and unix socket" {
    local r
    r=$(root musl)
    [[ -f "$r/lib/ld-musl-x86_64.so.1" && ! -e "$r/etc/nsswitch.conf" ]]
    layout "$r" "host=dbhost port=$PGPORT dbname=$PGDATABASE user=postgres"
    ENV="PGPASSWORD=$PGPASSWORD" run pid1 "$r" /usr/local/bin/pgprelude -- /bin/sh -c "$APP"
    assert_ran

    # a second database over the socket, as a restart elsewhere would
    new_db
    layout "$r" "host=/run/postgresql port=$PGPORT dbname=$PGDATABASE user=postgres"
    BINDS="$PGPRELUDE_TEST_SOCKDIR:/run/postgresql" run pid1 "$r" \
        /usr/local/bin/pgprelude -- /bin/sh -c "$APP"
    assert_ran
    run sql "SELECT client FROM seen"
    assert_output "local"
}

@test "static: a second start in the busybox root applies nothing" {
    local r
    r=$(root busybox)
    layout "$r" "host=dbhost port=$PGPORT dbname=$PGDATABASE user=postgres"
    ENV="PGPASSWORD=$PGPASSWORD" run pid1 "$r" /usr/local/bin/pgprelude -- /bin/sh -c "$APP"
    assert_ran
    ENV="PGPASSWORD=$PGPASSWORD" run pid1 "$r" /usr/local/bin/pgprelude -- /bin/sh -c "$APP"
    assert_success
    assert_output --partial "started: app pid"
    run sql "SELECT count(*) FROM pgprelude.history"
    assert_output 1
}
