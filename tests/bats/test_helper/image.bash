# Helpers for the files that run pgprelude's image with podman, offline
# (70_image.bats, 71_compose.bats). Load after common.
#   STATIC                 the static binary the image is built around
#   image_prepare IMAGE TOOL...
#                          in setup_file: build IMAGE from the Dockerfile's
#                          runtime stage around STATIC (image-build.sh
#                          --prebuilt) and check that podman can run it. When
#                          a TOOL is not installed or containers cannot run
#                          here, the reason goes to $BATS_FILE_TMPDIR/skip
#                          (image_skipped then says so); STATIC missing is a
#                          failure (make static builds it)
#   image_skipped          whether image_prepare left a reason to skip
#   skip_without_image     in setup: skip the test, with that reason

STATIC=${PGPRELUDE_STATIC:-$REPO/build/pgprelude-static}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO/build/image/containers.conf}

image_prepare() {
    local image=$1 tool out
    shift
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$tool is not installed (tests/tools/deps.sh installs it)" >"$BATS_FILE_TMPDIR/skip"
            return 0
        fi
    done
    if [[ ! -x "$STATIC" ]]; then
        echo "$(basename "$BATS_TEST_FILENAME"): $STATIC is missing; build it with: make static" >&2
        return 1
    fi
    "$REPO/tests/tools/image-build.sh" --prebuilt "$STATIC" -t "$image" >/dev/null
    # Can containers run here at all? (No user namespaces, no cgroups...)
    if ! out=$(podman run --rm --network host --entrypoint /usr/local/bin/pgprelude "$image" --version 2>&1); then
        printf 'podman cannot run a container here: %s\n' "$(tail -n 1 <<<"$out")" >"$BATS_FILE_TMPDIR/skip"
    fi
}

image_skipped() {
    [[ -f "$BATS_FILE_TMPDIR/skip" ]]
}

skip_without_image() {
    if image_skipped; then
        skip "$(cat "$BATS_FILE_TMPDIR/skip")"
    fi
}
