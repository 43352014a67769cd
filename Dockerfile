# syntax=docker/dockerfile:1
# pgprelude: a static binary that gets PostgreSQL ready, then runs the app.
#
#   docker build -t pgprelude .            (or: make image, with podman/buildah)
#
# Stage 1 builds the static binary (musl, with TLS) with the same script as
# `make static`; stage 2 is BusyBox with the binary, the migration folders and
# the configuration. To put pgprelude into another application image, as one
# does with tini:
#
#   COPY --from=pgprelude /usr/local/bin/pgprelude /usr/local/bin/pgprelude
#   COPY db-init/ /db-init/
#   COPY entrypoint/pgprelude.ini /entrypoint/pgprelude.ini
#   ENTRYPOINT ["/usr/local/bin/pgprelude", "--"]
#   CMD ["npx", "directus", "start"]
#
# The base images are named in full so that a builder with no registry access
# can use local images imported under these names (tests/tools/image-build.sh).
ARG BUILD_IMAGE=docker.io/library/debian:bookworm
ARG RUNTIME_IMAGE=docker.io/library/busybox:1.36

FROM ${BUILD_IMAGE} AS build
# The same Debian packages tests/tools/deps.sh installs for `make static`.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-upgrade \
        build-essential ca-certificates dpkg-dev patch libssl-dev libinih-dev musl-tools musl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY VERSION Makefile ./
COPY tests/tools/static-build.sh tests/tools/static-build.sh
COPY src/ src/
# The downloaded sources and built static libraries (OpenSSL, libpq, inih) are
# kept in a cache mount, so that a rebuild after a source change takes seconds.
RUN --mount=type=cache,target=/src/build/static-deps,id=pgprelude-static-deps \
    CI=1 tests/tools/static-build.sh -l musl -o /out/pgprelude \
 && /out/pgprelude --version

FROM ${RUNTIME_IMAGE}
# A user for the application; pgprelude itself needs no privilege: it runs as
# this user too, as PID 1. (Drop from root with [exec] user = app instead, if
# the container must start as root.)
# (Written directly: not every BusyBox build has adduser.)
RUN echo 'app:x:10001:10001:app:/nonexistent:/bin/false' >>/etc/passwd \
 && echo 'app:x:10001:' >>/etc/group
COPY --from=build /out/pgprelude /usr/local/bin/pgprelude
COPY db-init/ /db-init/
COPY db-init-post/ /db-init-post/
COPY entrypoint/ /entrypoint/
USER app
ENTRYPOINT ["/usr/local/bin/pgprelude", "--"]
# Replace with the application's command; this one only shows the hand-over.
CMD ["/bin/sh", "-c", "echo 'pgprelude: handed over; give the application as the command'; exec sleep 2147483647"]
