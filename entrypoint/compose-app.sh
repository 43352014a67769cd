#!/bin/sh
# entrypoint/compose-app.sh — the application of docker-compose.yml's app
# service, a stand-in for the real one (Directus): BusyBox httpd serving
# /db-init on port 8080.
#
# pgprelude hands over to it once every phase has run, and stays PID 1. On
# `docker compose stop app` the runtime sends TERM to pgprelude, which passes it
# on to this script: it says so, stops httpd and exits 0, and that status is
# the container's. (Without the pass-on, the runtime would kill everything
# after the grace period: status 137.)

echo "app: started (httpd on port 8080, serving /db-init)"
httpd -f -v -p 8080 -h /db-init &
httpd=$!
trap 'echo "app: got TERM, stopping"; kill -TERM "$httpd" 2>/dev/null; wait "$httpd"; exit 0' TERM
wait "$httpd"
status=$?
echo "app: httpd exited with status $status"
exit "$status"
