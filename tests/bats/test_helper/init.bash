# Loaded by the PID 1 and hand-over tests (40_init.bats, 42_handover.bats)
# with `load test_helper/init`, after common and pgprelude.
#
#   init_test_setup   a fresh database, a config ($CFG) with one dir phase
#                     "pre" of one file, and $OUT: a folder for the files the
#                     application writes, writable whatever user it runs as

init_test_setup() {
    new_db
    setup_layout
    printf '%s\n' '[database]' 'url = ${DATABASE_URL}' 'wait_timeout = 5s' '[phase pre]' 'dir = pre' >"$CFG"
    echo "CREATE TABLE IF NOT EXISTS t (a int);" | mig pre 001.sql
    OUT=$(mktemp -d /tmp/pgprelude-init.XXXXXX)
    chmod 777 "$OUT"
}
