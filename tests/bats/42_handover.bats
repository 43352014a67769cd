#!/usr/bin/env bats
# The hand-over, beyond 40_init.bats: signals that pgprelude raises itself
# (SIGPIPE on a closed stderr, SIGXFSZ past the file size limit) reach
# nobody, HOME for a user without one, the application dies with its
# supervisor, and a shell's job control on a terminal. Where it shows the
# behaviour is the same, Debian's tini runs the same check.

load test_helper/common
load test_helper/pgprelude
load test_helper/init

setup() {
    init_test_setup
    KILL_PIDS=()
}

teardown() {
    local pid
    for pid in "${KILL_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$OUT"
}

# closed_stderr CMD...: run CMD with every signal at its default and its
# stderr on a pipe whose read end is closed, as when the log collector went
# away: every write to stderr fails with EPIPE and raises SIGPIPE. The exit
# status is CMD's (128+N when a signal killed it).
closed_stderr() {
    python3 -c 'import os, subprocess, sys
r, w = os.pipe()
os.close(r)
rc = subprocess.call(sys.argv[1:], stderr=w)
sys.exit(128 - rc if rc < 0 else rc)' "$@"
}

# full_stderr CMD...: run CMD with stderr appended to a file that is already
# at the file size limit (ulimit -f 1): every write to stderr fails with EFBIG
# and raises SIGXFSZ.
full_stderr() {
    head -c 1024 /dev/zero >"$OUT/full"
    bash -c 'ulimit -f 1; exec env --default-signal "$@" 2>>"$0"' "$OUT/full" "$@"
}

@test "a closed stderr: pgprelude's own SIGPIPE reaches neither the app nor pgprelude, as PID 1 (same as tini)" {
    app="sleep 0.5; echo ran >$OUT/ran"
    run closed_stderr unshare --pid --fork --mount-proc tini -s -- sh -c "$app"
    assert_success
    rm -f "$OUT/ran"
    run closed_stderr unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c "$app"
    assert_success
    assert_file_exists "$OUT/ran"
}

@test "a closed stderr: in exec mode the app still starts, with SIGPIPE at its default" {
    run closed_stderr "$PGPRELUDE" -c "$CFG" -- sh -c "exec grep '^SigBlk\|^SigIgn' /proc/self/status >$OUT/ran"
    assert_success
    run cat "$OUT/ran"
    assert_line --regexp '^SigBlk:\s+0+$'
    # no standard signal ignored (SIGPIPE among them); the C library's reserved
    # real-time signals (32, 33) are left as the caller had them, as by any init
    ign=$(sed -n 's/^SigIgn:\s*//p' "$OUT/ran")
    (( (0x$ign & 0x7fffffff) == 0 ))
}

@test "a closed stderr: a run step is not sent pgprelude's SIGPIPE" {
    printf '%s\n' '[phase schema]' "run = sh -c 'echo step says hello; sleep 0.5; echo ok >$OUT/step'" \
        '[exec]' 'mode = supervise' >>"$CFG"
    run closed_stderr "$PGPRELUDE" -c "$CFG" -- sh -c "echo ran >$OUT/ran"
    assert_success
    assert_file_exists "$OUT/step"
    assert_file_exists "$OUT/ran"
}

@test "a full stderr: pgprelude's own SIGXFSZ reaches neither the app nor pgprelude, supervised or exec" {
    app="sleep 0.5; echo ran >$OUT/ran"
    run full_stderr unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c "$app"
    assert_success
    assert_file_exists "$OUT/ran"
    rm -f "$OUT/ran"
    run full_stderr "$PGPRELUDE" -c "$CFG" -- sh -c "$app"
    assert_success
    assert_file_exists "$OUT/ran"
}

@test "PID 1: SIGPIPE and SIGXFSZ sent by another process are still forwarded to the app" {
    app='trap "echo PIPE >>'"$OUT"'/seen" PIPE; trap "echo XFSZ >>'"$OUT"'/seen" XFSZ; touch '"$OUT"'/ready; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); [ -e '"$OUT"'/done ] && exit 0; done'
    env --default-signal unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c "$app" >"$OUT/log" 2>&1 3>&- &
    bg=$!
    wait_until 10 test -e "$OUT/ready"
    nspid=$(pgrep -P "$bg" | head -n 1)
    KILL_PIDS+=("$nspid")
    kill -PIPE "$nspid"
    wait_until 3 file_has "$OUT/seen" '^PIPE$'
    kill -XFSZ "$nspid"
    wait_until 3 file_has "$OUT/seen" '^XFSZ$'
    touch "$OUT/done"
    status=0
    wait "$bg" || status=$?
    [ "$status" -eq 0 ]
}

@test "privilege drop: a user without passwd entry gets HOME=/ (as su-exec and gosu), in exec and supervise mode" {
    printf '%s\n' '[exec]' 'user = 4321:1234' >>"$CFG"
    run env HOME=/root "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "home=$HOME"'
    assert_success
    assert_line 'home=/'
    run env HOME=/root unshare --pid --fork --mount-proc "$PGPRELUDE" -c "$CFG" -- sh -c 'echo "home=$HOME"'
    assert_success
    assert_line 'home=/'
}

@test "not PID 1: a supervised app dies with a SIGKILLed pgprelude, also after a switch of user" {
    for user in '' nobody; do
        cp "$CFG" "$W/sup.ini"
        printf '%s\n' '[exec]' 'mode = supervise' ${user:+"user = $user"} >>"$W/sup.ini"
        rm -f "$OUT/app"
        "$PGPRELUDE" -c "$W/sup.ini" -- sh -c "echo \$\$ >$OUT/app.tmp; mv $OUT/app.tmp $OUT/app; exec sleep 30" >"$OUT/log" 2>&1 3>&- &
        pid=$!
        KILL_PIDS+=("$pid")
        wait_until 10 test -s "$OUT/app" || { cat "$OUT/log"; false; }
        app=$(cat "$OUT/app")
        KILL_PIDS+=("$app")
        [ "$(ps -o ppid= -p "$app" | tr -d ' ')" = "$pid" ]
        kill -KILL "$pid"
        wait "$pid" || true
        wait_until 5 bash -c "! kill -0 $app 2>/dev/null"
    done
}

# on_terminal SCRIPT: run an interactive bash on a pseudo-terminal and feed
# it SCRIPT's lines: a line "wait PATTERN" waits (at most 10 s) until the
# terminal showed PATTERN (a Python regex), "sleep SECS" waits, "until FILE"
# waits (at most 10 s) for FILE to exist, "^Z" types Ctrl-Z (no newline), any
# other line is typed, with a newline. Prints
# everything the terminal showed; fails when a wait timed out.
on_terminal() {
    python3 -c '
import os, pty, re, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
seen = b""
def pump(secs, done):
    global seen
    end = time.time() + secs
    while time.time() < end:
        if done():
            return True
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return done()
ok = True
os.write(fd, b"PS1=\"$ \"; PS2=\"\"\n")
for line in sys.argv[1].splitlines():
    if line.startswith("wait "):
        pat = line[5:].encode()
        ok = pump(10, lambda: re.search(pat, seen) is not None) and ok
    elif line.startswith("sleep "):
        pump(float(line[6:]), lambda: False)
    elif line.startswith("until "):
        ok = pump(10, lambda: os.path.exists(line[6:])) and ok
    elif line == "^Z":
        os.write(fd, b"\x1a")
        pump(0.2, lambda: False)
    else:
        os.write(fd, line.encode() + b"\n")
        pump(0.2, lambda: False)
os.write(fd, b"exit\n")
pump(2, lambda: False)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(0 if ok else 1)' "$1"
}

# assert_job LINE: on_terminal succeeded and the app wrote "got LINE" to
# $OUT/got, and fg returned 0. The job's pgprelude (its pid in $OUT/pid) and
# its app go at teardown whatever the outcome.
assert_job() {
    local pid
    if [[ -s "$OUT/pid" ]]; then
        pid=$(cat "$OUT/pid")
        KILL_PIDS+=("$pid" $(pgrep -P "$pid" || true))
    fi
    echo "$output"
    assert_success
    run cat "$OUT/got" "$OUT/fg"
    assert_output "$(printf '%s\n' "got $1" 'fg=0')"
}

@test "job control: supervised as a background job, the app gets the terminal with fg" {
    printf '%s\n' '[exec]' 'mode = supervise' >>"$CFG"
    run on_terminal "$(printf '%s\n' \
        "$PGPRELUDE -c $CFG -- sh -c 'read l; echo \"got \$l\" >$OUT/got' & echo \$! >$OUT/pid" \
        "until $OUT/pid" \
        'wait handing over' \
        'sleep 1' \
        'fg' \
        'sleep 1' \
        'hello' \
        "until $OUT/got" \
        "echo \"fg=\$?\" >$OUT/fg" \
        "until $OUT/fg")"
    assert_job hello
}

@test "job control: ^Z stops the supervised app and pgprelude with it; fg gives the terminal back" {
    printf '%s\n' '[exec]' 'mode = supervise' >>"$CFG"
    run on_terminal "$(printf '%s\n' \
        "$PGPRELUDE -c $CFG -- sh -c 'read l; echo \"got \$l\" >$OUT/got'" \
        'wait handing over' \
        'sleep 1' \
        '^Z' \
        'wait Stopped' \
        "jobs -p >$OUT/pid" \
        "until $OUT/pid" \
        'fg' \
        'sleep 1' \
        'again' \
        "until $OUT/got" \
        "echo \"fg=\$?\" >$OUT/fg" \
        "until $OUT/fg")"
    assert_job again
}
