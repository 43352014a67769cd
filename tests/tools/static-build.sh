#!/usr/bin/env bash
# Build a fully static pgprelude with TLS (make static, and the Dockerfile's
# build stage).
#
#   static-build.sh [-l musl|glibc] [-o OUT]
#
#   -l LIBC   the C library to link (default musl, $PGPRELUDE_STATIC_LIBC):
#             musl    libpq, libpgcommon, libpgport, OpenSSL and inih are all
#                     built here from their Debian source packages with musl-gcc
#             glibc   libpq & co. from PostgreSQL's source; OpenSSL and inih are
#                     Debian's own static archives (libssl-dev, libinih-dev)
#   -o OUT    the binary (default build/pgprelude-static; build/pgprelude-static-glibc
#             for glibc); OUT.debug keeps the unstripped one
#
# Why musl is the default: a static glibc binary still goes through NSS for
# host, user and group names, so it reads /etc/nsswitch.conf of whatever image
# it is copied into and may dlopen that image's libnss_*.so (built against
# another glibc); musl has no NSS and reads /etc/hosts, /etc/resolv.conf,
# /etc/passwd and /etc/group directly, the same way in every root. The tests
# in tests/bats/60_static.bats run the binary in a root with no libc, a
# Debian-like root with NSS modules named but absent, and a musl root.
#
# Sources come with `apt-get source` from the Debian release this machine runs
# (a deb-src entry for its main suite is added when none is configured). The
# version is pinned to what the main suite lists, because the security suite's
# newer sources are not served (see FACTS.md); other listed versions are tried
# in turn. Downloaded sources and built libraries are kept under
# $PGPRELUDE_STATIC_DEPS (default build/static-deps), so a second run only
# compiles pgprelude itself, and works offline.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
prog=static-build.sh

libc=${PGPRELUDE_STATIC_LIBC:-musl}
out=""
while getopts "l:o:h" opt; do
    case "$opt" in
    l) libc=$OPTARG ;;
    o) out=$OPTARG ;;
    *)
        echo "usage: $prog [-l musl|glibc] [-o OUT]" >&2
        exit 2
        ;;
    esac
done
case "$libc" in
musl) out=${out:-build/pgprelude-static} ;;
glibc) out=${out:-build/pgprelude-static-glibc} ;;
*)
    echo "$prog: error: unknown C library \"$libc\" (musl or glibc)" >&2
    exit 2
    ;;
esac

deps=${PGPRELUDE_STATIC_DEPS:-$top/build/static-deps}
[[ "$deps" == /* ]] || deps=$top/$deps
src=$deps/src
prefix=$deps/$libc
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$src" "$prefix/lib" "$prefix/include" "$deps/log"

die() {
    echo "$prog: error: $1" >&2
    shift
    for line in "$@"; do echo "$prog: $line" >&2; done
    exit 1
}

step() {
    echo "$prog: $*" >&2
}

# run LOG CMD...: run CMD with its output in $deps/log/LOG; on failure show
# the end of it.
run() {
    local log=$deps/log/$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "failed: $*" "detail: the whole output is in $log"
    fi
}

need() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 ||
            die "\"$cmd\" not found" "hint: Run tests/tools/deps.sh (or: make deps)."
    done
}

as_root() {
    if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

# ensure_deb_src: make `apt-get source` work for this release's main suite.
ensure_deb_src() {
    local codename
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    if apt-cache showsrc postgresql-15 2>/dev/null | grep -q '^Version:'; then
        return 0
    fi
    step "adding a deb-src entry for $codename main and running apt-get update"
    as_root tee /etc/apt/sources.list.d/pgprelude-deb-src.sources >/dev/null <<EOF
# added by pgprelude tests/tools/static-build.sh: apt-get source for the static build
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    run apt-update.log as_root apt-get update -q
}

# source_versions PKG: the versions apt can fetch PKG's source in, the main
# suite's first (the one FACTS.md says is served), then the others.
source_versions() {
    apt-cache madison "$1" 2>/dev/null | awk -F'|' '$3 ~ /Sources/ {
            gsub(/ /, "", $2)
            if ($3 ~ /-(security|updates|backports)/) later = later " " $2
            else print $2
        } END { n = split(later, v, " "); for (i = 1; i <= n; i++) print v[i] }' | awk '!seen[$0]++'
}

# fetch PKG: unpack PKG's Debian source under $src once; prints its directory.
# Returns 1 (having said why) when no version of it can be downloaded.
fetch() {
    local pkg=$1 dir ver
    dir=$(find "$src" -maxdepth 1 -type d -name "$pkg-*" -print -quit 2>/dev/null || true)
    if [[ -n "$dir" && -f "$dir/.pgprelude-unpacked" ]]; then
        echo "$dir"
        return 0
    fi
    need apt-get dpkg-source
    ensure_deb_src
    local tried=()
    while read -r ver; do
        [[ -n "$ver" ]] || continue
        tried+=("$ver")
        rm -rf "$src/dl" && mkdir -p "$src/dl"
        step "downloading the source of $pkg $ver"
        if (cd "$src/dl" && apt-get source -q --download-only "$pkg=$ver") \
                >"$deps/log/fetch-$pkg.log" 2>&1; then
            rm -rf "$src/$pkg-$ver"
            (cd "$src/dl" && dpkg-source -x ./*.dsc "$src/$pkg-$ver") >>"$deps/log/fetch-$pkg.log" 2>&1 ||
                die "could not unpack the source of $pkg $ver" "detail: see $deps/log/fetch-$pkg.log"
            touch "$src/$pkg-$ver/.pgprelude-unpacked"
            rm -rf "$src/dl"
            echo "$src/$pkg-$ver"
            return 0
        fi
        step "$pkg $ver is not served, trying the next version"
    done < <(source_versions "$pkg")
    rm -rf "$src/dl"
    step "could not download the source of $pkg (tried: ${tried[*]:-no version listed}); see $deps/log/fetch-$pkg.log"
    return 1
}

# Toolchain per C library. musl-gcc's specs hide /usr/include; OpenSSL and
# PostgreSQL need a few kernel headers from it, so they get a directory of
# symbolic links to just those.
if [[ "$libc" == musl ]]; then
    need musl-gcc
    CC_STATIC=musl-gcc
    kinc=$deps/musl/kernel-include
    if [[ ! -d "$kinc" ]]; then
        mkdir -p "$kinc"
        ln -s /usr/include/linux /usr/include/asm-generic "$kinc/"
        ln -s "/usr/include/$(gcc -print-multiarch)/asm" "$kinc/asm"
    fi
    DEP_CFLAGS=(-O2 -fPIC -isystem "$kinc")
else
    need gcc
    CC_STATIC=gcc
    DEP_CFLAGS=(-O2 -fPIC)
fi
need make ar strip

# --- OpenSSL (musl only; glibc uses Debian's libssl.a and libcrypto.a) -------
if [[ "$libc" == musl && ! -f "$prefix/.openssl-done" ]]; then
    dir=$(fetch openssl) || die "no source for openssl" "hint: A deb-src entry for deb.debian.org and apt-get update are needed."
    step "building OpenSSL ($(basename "$dir")) for musl, about two minutes"
    b=$deps/musl/build-openssl
    rm -rf "$b" && cp -a "$dir" "$b"
    # no-engine/no-dso: nothing to dlopen in a static binary; the CA path is
    # the usual /etc/ssl (libpq looks for ~/.postgresql/root.crt or sslrootcert).
    run openssl-configure.log env -C "$b" CC="$CC_STATIC" CFLAGS="${DEP_CFLAGS[*]}" \
        ./Configure linux-x86_64 --prefix="$prefix" --libdir=lib --openssldir=/etc/ssl \
        no-shared no-dso no-engine no-async no-afalgeng no-tests no-ui-console
    run openssl-build.log make -C "$b" -j"$jobs" build_libs
    run openssl-install.log make -C "$b" install_dev
    rm -rf "$b"
    touch "$prefix/.openssl-done"
fi

# --- inih ----------------------------------------------------------------------
# glibc: Debian's libinih.a as it is. musl: Debian's source compiled with
# musl-gcc (Debian patches inih so that its options are variables with the
# upstream defaults, INI_MAX_LINE 200 among them: the same parser either way).
# Where that source is not served (some mirrors lack it), the object in Debian's
# libinih.a is reused: it calls only fopen64, fgets, fclose, malloc, realloc,
# free, strchr, strlen, __ctype_b_loc and __stack_chk_fail, which musl provides
# with the same ABI; the list is checked so that a future libinih cannot
# slip in a glibc-only symbol.
if [[ "$libc" == musl && ! -f "$prefix/.inih-done" ]]; then
    if dir=$(fetch libinih); then
        step "building inih ($(basename "$dir")) for musl"
        run inih.log "$CC_STATIC" "${DEP_CFLAGS[@]}" -c -o "$prefix/ini.o" "$dir/ini.c"
        run inih-ar.log ar rcs "$prefix/lib/libinih.a" "$prefix/ini.o"
        cp "$dir/ini.h" "$prefix/include/"
        rm -f "$prefix/ini.o"
    else
        a=/usr/lib/$(gcc -print-multiarch)/libinih.a
        [[ -f "$a" && -f /usr/include/ini.h ]] || die "no inih source and no $a" "hint: Install libinih-dev."
        step "using the object of Debian's $a for musl (its source is not served here)"
        allowed=" fopen64 fgets fclose malloc realloc free strchr strlen __ctype_b_loc __stack_chk_fail _GLOBAL_OFFSET_TABLE_ "
        for sym in $(nm -u "$a" | awk 'NF == 2 && $1 == "U" { print $2 }'); do
            [[ "$allowed" == *" $sym "* ]] ||
                die "$a needs \"$sym\", which is not known to be ABI-compatible with musl" \
                    "hint: Make the libinih source available (deb-src) instead."
        done
        cp "$a" "$prefix/lib/libinih.a"
        cp /usr/include/ini.h "$prefix/include/"
    fi
    touch "$prefix/.inih-done"
fi

# --- libpq, libpgcommon, libpgport -------------------------------------------------
# src/patches/postgresql-15-*.patch are applied to PostgreSQL's source; the
# libraries are built again whenever those patches change.
pg_patches=(src/patches/postgresql-15-*.patch)
pg_patches_sum=$(cat "${pg_patches[@]}" | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$prefix/.libpq-done" 2>/dev/null)" != "$pg_patches_sum" ]]; then
    dir=$(fetch postgresql-15) || die "no source for postgresql-15" "hint: A deb-src entry for deb.debian.org and apt-get update are needed."
    step "building libpq ($(basename "$dir")) for $libc"
    b=$deps/$libc/build-pg
    rm -rf "$b" && cp -a "$dir" "$b"
    for p in "${pg_patches[@]}"; do
        run "pg-patch-$libc.log" patch -d "$b" -p1 --forward --input="$top/$p"
    done
    ssl_flags=()
    if [[ "$libc" == musl ]]; then
        ssl_flags=(--with-includes="$prefix/include" --with-libraries="$prefix/lib")
    fi
    run "pg-configure-$libc.log" env -C "$b" CC="$CC_STATIC" CFLAGS="${DEP_CFLAGS[*]}" \
        ./configure --prefix="$prefix" --with-ssl=openssl "${ssl_flags[@]}" \
        --without-readline --without-zlib --without-icu --without-gssapi --without-ldap \
        --without-llvm --without-perl --without-python --without-tcl --disable-nls \
        --without-systemd --without-lz4 --without-zstd
    run "pg-include-$libc.log" make -C "$b/src/include" -j"$jobs"
    # PostgreSQL's makefiles generate headers such as utils/errcodes.h only
    # when make runs at the top level; under another make (make static,
    # make test: MAKELEVEL is set) they must be asked for explicitly.
    run "pg-headers-$libc.log" make -C "$b/src/backend" generated-headers
    run "pg-common-$libc.log" make -C "$b/src/common" -j"$jobs"
    run "pg-port-$libc.log" make -C "$b/src/port" -j"$jobs"
    run "pg-libpq-$libc.log" make -C "$b/src/interfaces/libpq" -j"$jobs" all-static-lib
    cp "$b/src/interfaces/libpq/libpq.a" "$b/src/common/libpgcommon.a" \
        "$b/src/port/libpgport.a" "$prefix/lib/"
    cp "$b/src/interfaces/libpq/libpq-fe.h" "$b/src/include/postgres_ext.h" \
        "$b/src/include/pg_config_ext.h" "$prefix/include/"
    rm -rf "$b"
    echo "$pg_patches_sum" >"$prefix/.libpq-done"
fi

# --- pgprelude ---------------------------------------------------------------------
version=$(cat VERSION 2>/dev/null || echo 0.0.0)
warn=(-Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes
    -Wmissing-prototypes -Wvla)
if [[ -n "${CI:-}" ]]; then warn+=(-Werror); fi
cppflags=(-D_GNU_SOURCE "-DPGPRELUDE_VERSION=\"$version\"" -I"$prefix/include" -Isrc)
libs=(-L"$prefix/lib" -lpq -lpgcommon -lpgport -linih -lssl -lcrypto -lpthread)
if [[ "$libc" == glibc ]]; then
    # Debian's libinih.a and OpenSSL archives, found on the default path;
    # _FORTIFY_SOURCE only means something with glibc.
    cppflags+=(-D_FORTIFY_SOURCE=2)
    libs+=(-ldl)
fi
mkdir -p "$(dirname "$out")"
step "linking $out ($libc, static)"
# -static-pie where the toolchain has it (ASLR for a static binary), else -static.
# (Debian's musl-gcc specs turn -static-pie into a dynamic PIE: check the result.)
link=(-static-pie -fPIE)
probe=$deps/log/static-pie-probe
if ! echo 'int main(void){return 0;}' | "$CC_STATIC" -x c -static-pie -fPIE -o "$probe" - 2>/dev/null ||
        readelf -l "$probe" | grep -q 'program interpreter'; then
    link=(-static -no-pie)
fi
rm -f "$probe"
"$CC_STATIC" "${cppflags[@]}" -std=c11 -O2 -g "${warn[@]}" -fstack-protector-strong \
    "${link[@]}" -Wl,-z,relro,-z,now -o "$out.debug" src/*.c "${libs[@]}" 2>"$deps/log/link-$libc.log" || {
    cat "$deps/log/link-$libc.log" >&2
    die "could not build $out"
}
# Static glibc warns that getaddrinfo/getpwnam need the shared libc's NSS at
# run time: that is the point against glibc made above; pass other output on.
grep -v -e 'statically linked applications requires at runtime' -e 'in function `' \
    "$deps/log/link-$libc.log" >&2 || true
strip -o "$out" "$out.debug"
if readelf -l "$out" | grep -q 'program interpreter' || readelf -d "$out" | grep -q NEEDED; then
    die "$out is not static"
fi
step "built $out: $(stat -c %s "$out") bytes stripped ($libc)"
