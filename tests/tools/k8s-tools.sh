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

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "k8s-tools.sh: error: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi

parent=${PGPRELUDE_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgprelude}
key=$(printf '%s\n' "${PACKAGES[@]}" | sha256sum | cut -c1-12)
dir=$parent/npm-k8s-$key
stamp=$dir/.installed

if [[ ! -f "$stamp" ]]; then
    mkdir -p "$parent"
    # Install into a fresh folder and move it into place only when complete,
    # so that an interrupted install or two concurrent ones leave no half tree.
    tmp=$(mktemp -d "$parent/.npm-k8s-$key.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    echo "k8s-tools.sh: installing ${PACKAGES[*]} into $dir" >&2
    # stdout goes to stderr: this script's stdout is the folder's name.
    npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$tmp" "${PACKAGES[@]}" >&2
    printf '%s\n' "${PACKAGES[@]}" >"$tmp/.installed"
    if ! mv -T "$tmp" "$dir" 2>/dev/null; then
        # Another run got there first: keep its tree if it is complete.
        [[ -f "$stamp" ]] || { rm -rf "$dir" && mv -T "$tmp" "$dir"; }
    fi
fi

printf '%s\n' "$dir"
