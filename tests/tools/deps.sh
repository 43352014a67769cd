#!/usr/bin/env bash
# Install the Debian packages that the build, the tests and the demo need.
# Does nothing (and takes well under a second) when they are all present.
#
#   deps.sh          build, tests (including the static binary and the image), demo
#   deps.sh lint     also what `make lint` needs: clang-format, cppcheck,
#                    ShellCheck and npm
#   deps.sh bench    also what `make bench` needs (tests/bench/run.sh): GNU time
# Never upgrades a package already installed (--no-upgrade): see FACTS.md on
# postgresql-15 moving to a version whose source is not served.
set -euo pipefail

packages=(
    build-essential pkg-config
    libpq-dev libinih-dev libssl-dev libcmocka-dev
    postgresql-15 postgresql-client-15
    bats bats-support bats-assert bats-file
    procps util-linux iproute2
    tini python3 socat
    # tests/bats/test_helper/servers.bash: a German server (localedef),
    # PgBouncer in front of the suite's cluster
    locales pgbouncer
    # make static (tests/tools/static-build.sh): apt-get source, musl
    dpkg-dev patch musl musl-tools musl-dev file binutils
    # tests/bats/60_static.bats: BusyBox roots, a test CA
    busybox-static openssl
    # make image, tests/bats/70_image.bats: podman offline (tests/tools/image-build.sh)
    podman buildah runc conmon catatonit debootstrap
    # tests/bats/71_compose.bats: docker-compose.yml with podman-compose; the
    # CNI plugin that lets the services find each other by name (db)
    podman-compose golang-github-containernetworking-plugin-dnsname
    # the ASan+UBSan build, the libFuzzer targets (clang's runtimes are in
    # libclang-rt-14-dev), symbolized reports (llvm-symbolizer), make valgrind
    clang libclang-rt-14-dev llvm valgrind
)
if [[ "${1:-}" == lint ]]; then
    packages+=(clang-format cppcheck shellcheck)
    # npm only when there is none: a NodeSource nodejs brings its own, and
    # Debian's npm package would conflict with it.
    if ! command -v npm >/dev/null 2>&1; then
        packages+=(npm)
    fi
fi
if [[ "${1:-}" == bench ]]; then
    packages+=(time)
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

sudo=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps.sh: error: not root and sudo is missing; install: ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "deps.sh: installing ${missing[*]}"
log=$(mktemp /tmp/pgprelude-deps.XXXXXX.log)

# postgresql-15's postinst creates a default cluster and starts it with
# invoke-rc.d under `set -e`: where that start fails (port 5432 taken, no init
# system) the whole install fails. The tests never use that cluster, so keep
# it from starting with a temporary policy-rc.d, unless the machine has one
# already (Debian container images do).
policy=/usr/sbin/policy-rc.d
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n# temporary, from pgprelude tests/tools/deps.sh\nexit 101\n' |
        "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi

if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 ||
   ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends --no-upgrade "${missing[@]}" </dev/null >>"$log" 2>&1; then
    echo "deps.sh: error: package installation failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
fi
rm -f "$log"
