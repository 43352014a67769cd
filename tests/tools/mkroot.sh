#!/usr/bin/env bash
# Assemble a minimal root file system to run the static pgprelude in
# (tests/bats/60_static.bats, and the BusyBox base image of the image build).
#
#   mkroot.sh KIND DIR
#
#   busybox  BusyBox (Debian's busybox-static, itself static) and nothing else:
#            no libc, no loader, no NSS -- what the runtime image is
#   debian   the busybox root plus what makes a Debian root look up names the
#            glibc way: Debian's loader and libc.so.6 with its libnss_files and
#            libnss_dns, /etc/debian_version, and an /etc/nsswitch.conf that
#            names modules that are not there (mdns4_minimal, myhostname,
#            systemd), as in a Debian image where libnss-mdns was removed
#   musl     the busybox root plus musl's loader/libc (Debian's musl package)
#            at /lib/ld-musl-x86_64.so.1, /etc/alpine-release and no
#            nsswitch.conf: an Alpine-like root
#
# Every root gets /etc/passwd (root, nobody, app 10001), /etc/group,
# /etc/hosts (localhost; dbhost -> 127.0.0.1), /etc/resolv.conf, /dev/null,
# /dev/zero, /dev/random, /dev/urandom (device nodes, or empty files when
# mknod is not allowed: bind-mount the host's over them then), and empty
# /proc, /tmp, /run, /db-init, /db-init-post, /entrypoint.
set -euo pipefail
prog=mkroot.sh

die() {
    echo "$prog: error: $*" >&2
    exit 1
}

(($# == 2)) || { echo "usage: $prog busybox|debian|musl DIR" >&2; exit 2; }
kind=$1
root=$2
case "$kind" in busybox | debian | musl) ;; *) die "unknown kind \"$kind\"" ;; esac

busybox=""
for b in /bin/busybox /usr/bin/busybox; do
    if [[ -x "$b" ]] && ! readelf -l "$b" 2>/dev/null | grep -q 'program interpreter'; then
        busybox=$b
        break
    fi
done
[[ -n "$busybox" ]] || die "no static busybox" "(install busybox-static: tests/tools/deps.sh)"

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,run,root,home/app,db-init,db-init-post,entrypoint}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list-full 2>/dev/null || "$busybox" --list | sed 's|^|bin/|'); do
    [[ "$applet" == */busybox ]] && continue
    [[ -e "$root/$applet" ]] || ln -s /bin/busybox "$root/$applet"
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:10001:10001:pgprelude app:/home/app:/bin/sh
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
app:x:10001:
EOF
chown 10001:10001 "$root/home/app" 2>/dev/null || true
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
127.0.0.1	dbhost
EOF
# A name server that answers nothing, so that a lookup the hosts file cannot
# answer fails fast instead of waiting on a real resolver.
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$root/etc/resolv.conf"

make_dev() {
    local name=$1 major=$2 minor=$3
    rm -f "$root/dev/$name"
    if ! mknod -m 666 "$root/dev/$name" c "$major" "$minor" 2>/dev/null; then
        : >"$root/dev/$name"
    fi
}
make_dev null 1 3
make_dev zero 1 5
make_dev random 1 8
make_dev urandom 1 9

case "$kind" in
debian)
    multiarch=x86_64-linux-gnu
    mkdir -p "$root/lib64" "$root/lib/$multiarch"
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
    for lib in libc.so.6 libnss_files.so.2 libnss_dns.so.2; do
        cp -L "/lib/$multiarch/$lib" "$root/lib/$multiarch/"
    done
    cp /etc/debian_version "$root/etc/debian_version" 2>/dev/null || echo 12.0 >"$root/etc/debian_version"
    printf 'PRETTY_NAME="Debian-like test root"\nID=debian\n' >"$root/etc/os-release"
    cat >"$root/etc/nsswitch.conf" <<'EOF'
# As in a Debian image with libnss-mdns, libnss-myhostname and libnss-systemd
# configured but not installed: none of these modules is in this root.
passwd:         files systemd
group:          files systemd
shadow:         files
hosts:          files mdns4_minimal [NOTFOUND=return] dns myhostname
networks:       files
protocols:      db files
services:       db files
EOF
    ;;
musl)
    musl=/usr/lib/x86_64-linux-musl/libc.so
    [[ -f "$musl" ]] || die "$musl not found (install musl: tests/tools/deps.sh)"
    mkdir -p "$root/lib"
    cp "$musl" "$root/lib/ld-musl-x86_64.so.1"
    ln -sf ld-musl-x86_64.so.1 "$root/lib/libc.musl-x86_64.so.1"
    echo 3.19.0 >"$root/etc/alpine-release"
    printf 'PRETTY_NAME="Alpine-like test root (musl)"\nID=alpine\n' >"$root/etc/os-release"
    ;;
esac
