#!/usr/bin/env bash
# Build the pgprelude image with podman, offline: no registry is reached.
#
#   image-build.sh [-t TAG] [--prebuilt BIN]
#
#   (default)       the real Dockerfile, both stages (make image)
#   --prebuilt BIN  only the Dockerfile's runtime stage, with BIN (the static
#                   binary make static built) in place of the build stage's
#                   output: what tests/bats/70_image.bats runs, in seconds
#   -t TAG          the image name (default localhost/pgprelude:latest)
#
# The base images the Dockerfile names are made from local root file systems
# and imported under those names once (podman then does not pull them):
#   docker.io/library/busybox:1.36    tests/tools/mkroot.sh's BusyBox root
#                                     (Debian's busybox-static), plain
#   docker.io/library/debian:bookworm a debootstrap --variant=minbase of this
#                                     machine's release (only for the full build)
# Their tarballs are kept in $PGPRELUDE_IMAGE_CACHE (default build/image), so
# that a new podman store re-imports them in seconds.
#
# podman reads $CONTAINERS_CONF; when unset it is pointed at a file written
# here that sets what this kind of machine needs (FACTS.md): default_ulimits
# within the limits a process without CAP_SYS_RESOURCE may set, and runc.
# Prints the image ID last.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
prog=image-build.sh

tag=localhost/pgprelude:latest
prebuilt=""
while (($#)); do
    case "$1" in
    -t) tag=$2; shift ;;
    --prebuilt) prebuilt=$2; shift ;;
    *) echo "usage: $prog [-t TAG] [--prebuilt BIN]" >&2; exit 2 ;;
    esac
    shift
done

cache=${PGPRELUDE_IMAGE_CACHE:-$top/build/image}
mkdir -p "$cache"
busybox_image=docker.io/library/busybox:1.36
debian_image=docker.io/library/debian:bookworm

die() {
    echo "$prog: error: $1" >&2
    shift
    for line in "$@"; do echo "$prog: $line" >&2; done
    exit 1
}
step() { echo "$prog: $*" >&2; }

command -v podman >/dev/null 2>&1 || die "podman not found" "hint: Run tests/tools/deps.sh."

# Written when no other file is named, and when the caller names this one
# (the tests do) before it exists: a fresh checkout has none yet.
if [[ -z "${CONTAINERS_CONF:-}" || "$CONTAINERS_CONF" == "$cache/containers.conf" ]]; then
    mkdir -p "$cache"
    cat >"$cache/containers.conf.tmp" <<'EOF'
# written by tests/tools/image-build.sh (see FACTS.md)
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
    mv "$cache/containers.conf.tmp" "$cache/containers.conf"
    export CONTAINERS_CONF=$cache/containers.conf
fi

# import NAME TARBALL: make NAME from TARBALL unless it is there already.
import() {
    local name=$1 tarball=$2
    podman image exists "$name" && return 0
    step "importing $name from $tarball"
    podman import --quiet --change 'CMD ["/bin/sh"]' "$tarball" "$name" >/dev/null
}

busybox_base() {
    local tarball=$cache/busybox-rootfs.tar
    if [[ ! -f "$tarball" ]]; then
        local root=$cache/busybox-rootfs
        rm -rf "$root"
        tests/tools/mkroot.sh busybox "$root"
        # As plain as the official image: no test users, no pgprelude folders.
        rm -rf "$root"/{db-init,db-init-post,entrypoint,home/app}
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$root/etc/passwd"
        printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
        tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
    fi
    import "$busybox_image" "$tarball"
}

debian_base() {
    local tarball=$cache/debian-rootfs.tar
    if [[ ! -f "$tarball" ]]; then
        command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found" "hint: Run tests/tools/deps.sh."
        local root=$cache/debian-rootfs codename
        # shellcheck disable=SC1091
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
        rm -rf "$root"
        step "debootstrap --variant=minbase $codename (a few minutes, once)"
        if ! debootstrap --variant=minbase "$codename" "$root" http://deb.debian.org/debian \
                >"$cache/debootstrap.log" 2>&1; then
            tail -n 20 "$cache/debootstrap.log" >&2
            die "debootstrap failed" "detail: see $cache/debootstrap.log"
        fi
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
    fi
    import "$debian_image" "$tarball"
}

busybox_base
if [[ -n "$prebuilt" ]]; then
    [[ -x "$prebuilt" ]] || die "$prebuilt is missing" "hint: make static"
    # The runtime stage of the real Dockerfile, with the binary from the
    # context instead of from the build stage.
    ctx=$(mktemp -d /tmp/pgprelude-image.XXXXXX)
    trap 'rm -rf "$ctx"' EXIT
    cp -a db-init db-init-post entrypoint "$ctx/"
    mkdir -p "$ctx/out"
    cp "$prebuilt" "$ctx/out/pgprelude"
    {
        sed -n '/^ARG RUNTIME_IMAGE/p' Dockerfile
        sed -n '/^FROM \${RUNTIME_IMAGE}/,$p' Dockerfile |
            sed 's|^COPY --from=build /out/pgprelude |COPY out/pgprelude |'
    } >"$ctx/Dockerfile"
    grep -q '^COPY out/pgprelude ' "$ctx/Dockerfile" ||
        die "the Dockerfile's runtime stage no longer copies /out/pgprelude from the build stage"
    step "building $tag (runtime stage, prebuilt $prebuilt)"
    podman build --quiet --network host --pull=never -t "$tag" "$ctx"
else
    debian_base
    step "building $tag from the Dockerfile (both stages)"
    podman build --network host --pull=never -t "$tag" . >&2
    podman image inspect --format '{{.Id}}' "$tag"
fi
