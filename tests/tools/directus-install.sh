#!/usr/bin/env bash
# Install the Directus CLI (npm: directus, pinned) outside the checkout, for
# tests/directus/, and print the folder it is in. Directus's own CLI entry is
# then
#
#   node "$dir/node_modules/@directus/api/dist/cli/run.js" bootstrap
#
# (not the package's `directus` bin: that one asks the npm registry for a newer
# release on every call). 11.3.5 is the newest release that accepts Node 20.
#
# The folder is ${XDG_CACHE_HOME:-$HOME/.cache}/pgprelude/directus-VERSION; an
# install that is complete (its stamp file written last) is not repeated.
# PGPRELUDE_NPM_CACHE overrides the parent folder. The install takes a few
# minutes and about 500 MB (sqlite3, a dependency, compiles from source).
set -euo pipefail

VERSION=${DIRECTUS_VERSION:-11.3.5}

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "directus-install.sh: error: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi

parent=${PGPRELUDE_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgprelude}
dir=$parent/directus-$VERSION
stamp=$dir/.installed

if [[ ! -f "$stamp" ]]; then
    mkdir -p "$parent"
    # Install into a fresh folder and move it into place only when complete,
    # so that an interrupted install or two concurrent ones leave no half tree.
    tmp=$(mktemp -d "$parent/.directus-$VERSION.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    echo "directus-install.sh: installing directus@$VERSION into $dir (a few minutes)" >&2
    # stdout goes to stderr: this script's stdout is the folder's name.
    npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$tmp" "directus@$VERSION" >&2
    [[ -f "$tmp/node_modules/@directus/api/dist/cli/run.js" ]] || {
        echo "directus-install.sh: error: the install has no node_modules/@directus/api/dist/cli/run.js" >&2
        exit 1
    }
    printf 'directus@%s\n' "$VERSION" >"$tmp/.installed"
    if ! mv -T "$tmp" "$dir" 2>/dev/null; then
        # Another run got there first: keep its tree if it is complete.
        [[ -f "$stamp" ]] || { rm -rf "$dir" && mv -T "$tmp" "$dir"; }
    fi
fi

printf '%s\n' "$dir"
