#!/usr/bin/env bash
# Install the Debian packages that the build, the tests and the demo need.
# Does nothing (and takes well under a second) when they are all present.
# Never upgrades a package already installed (--no-upgrade): see FACTS.md on
# postgresql-15 moving to a version whose source is not served.
set -euo pipefail

packages=(
    build-essential pkg-config
    libpq-dev libinih-dev libssl-dev libcmocka-dev
    postgresql-15 postgresql-client-15
    bats bats-support bats-assert bats-file
    procps util-linux
    tini python3
)

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
