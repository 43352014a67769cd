# bats-core runs setup_suite once before the first test file of tests/directus
# and teardown_suite once after the last: the same throwaway PostgreSQL cluster
# as tests/bats (its setup_suite.bash, reused), plus the Directus CLI, installed
# outside the checkout by tests/tools/directus-install.sh (a few minutes the
# first time, then nothing). DIRECTUS_DIR is exported for the tests; set it
# yourself to use another install (its node_modules/@directus/api must be there).

# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../bats/setup_suite.bash"
eval "cluster_$(declare -f setup_suite)"
eval "cluster_$(declare -f teardown_suite)"

setup_suite() {
    local repo
    repo=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    if [[ -z "${DIRECTUS_DIR:-}" ]]; then
        DIRECTUS_DIR=$("$repo/tests/tools/directus-install.sh" 3>&-)
    fi
    export DIRECTUS_DIR
    cluster_setup_suite
}

teardown_suite() {
    cluster_teardown_suite
}
