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

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$here/lib.sh"

npm_install_cached "directus-$VERSION" node_modules/@directus/api/dist/cli/run.js "directus@$VERSION"
