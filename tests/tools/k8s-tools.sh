#!/usr/bin/env bash
# Install the npm packages that tests/tools/k8s-validate.mjs needs, outside the
# checkout, and print the folder they are in (its node_modules/ is where Node
# finds them: NODE_PATH, or the validator's --modules option):
#
#   dir=$(tests/tools/k8s-tools.sh)
#   node tests/tools/k8s-validate.mjs --modules "$dir/node_modules" deploy/kubernetes/*.yaml
#
# The folder is ${XDG_CACHE_HOME:-$HOME/.cache}/pgprelude/npm-k8s-KEY, where KEY
# is made from the pinned versions below: a change of version installs into a
# new folder, and an install that is complete (its stamp file written last) is
# not repeated. PGPRELUDE_NPM_CACHE overrides the parent folder.
#
#   kubernetes-models   model classes for every built-in Kubernetes API object,
#                       each with validate() against the API's JSON schema
#   @kubernetes-models/{base,apimachinery,validate}
#                       its own packages, pinned too so that a new release of
#                       one of them does not change the schemas under us
#   yaml                the YAML parser (multi-document files, line numbers)
set -euo pipefail

PACKAGES=(
    kubernetes-models@5.1.0
    @kubernetes-models/base@6.0.1
    @kubernetes-models/apimachinery@3.0.2
    @kubernetes-models/validate@5.0.2
    yaml@2.9.1
)

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$here/lib.sh"

key=$(printf '%s\n' "${PACKAGES[@]}" | sha256sum | cut -c1-12)
npm_install_cached "npm-k8s-$key" "" "${PACKAGES[@]}"
