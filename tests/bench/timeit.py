#!/usr/bin/env python3
"""Time commands round-robin and print the median wall time of each.

    timeit.py [-r RUNS] [-w WARMUP] [-p PREPARE] LABEL[@COPIES]=COMMAND...

Each COMMAND is split like a shell would (shlex) and run without a shell,
its output thrown away, so that what is timed is the program and not a
shell around it (write `sh -c '...'` to get one). The commands take turns,
one round after another, so that a change in the machine's load while the
benchmark runs falls on every command alike rather than on the one that
happened to run then.

  -r RUNS     timed rounds (default 10)
  -w WARMUP   untimed rounds first (default 1)
  @COPIES     start COPIES of that command at the same instant and time
              until the last one exits (e.g. replicas@16=...)
  -p PREPARE  a shell command run before each run of each command, untimed
              (e.g. to make a fresh database); $LABEL is set for it

Prints one line per command:

    LABEL median_ms min_ms max_ms runs

(Peak RSS is not measured here: a child's ru_maxrss counts the Python
process it was forked from. Use /usr/bin/time -f %M for that.)
Exits 1, with the command's output, when a run fails.
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(argv, copies):
    """Start copies of argv together; return the wall seconds until the last exits."""
    outs = []
    procs = []
    start = time.perf_counter()
    for _ in range(copies):
        out = tempfile.TemporaryFile()
        outs.append(out)
        procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.STDOUT))
    failed = None
    for p, out in zip(procs, outs):
        p.wait()
        if p.returncode != 0 and failed is None:
            failed = (p.returncode, out)
    wall = time.perf_counter() - start
    if failed:
        code, out = failed
        out.seek(0)
        sys.stderr.write(out.read().decode(errors="replace"))
        sys.stderr.write("timeit.py: error: %s exited with status %d\n" % (shlex.join(argv), code))
        sys.exit(1)
    for out in outs:
        out.close()
    return wall


def main():
    ap = argparse.ArgumentParser(description="Time commands round-robin; print medians.")
    ap.add_argument("-r", "--runs", type=int, default=10)
    ap.add_argument("-w", "--warmup", type=int, default=1)
    ap.add_argument("-p", "--prepare", default=None)
    ap.add_argument("commands", nargs="+", metavar="LABEL=COMMAND")
    args = ap.parse_args()

    cmds = []
    for spec in args.commands:
        label, sep, command = spec.partition("=")
        if not sep or not label or not command:
            ap.error("expected LABEL=COMMAND, got %r" % spec)
        copies = 1
        if "@" in label:
            label, _, n = label.partition("@")
            if not n.isdigit() or int(n) < 1:
                ap.error("expected LABEL@COPIES=COMMAND, got %r" % spec)
            copies = int(n)
        cmds.append((label, shlex.split(command), copies))

    times = {label: [] for label, _, _ in cmds}
    for round_no in range(args.warmup + args.runs):
        for label, argv, copies in cmds:
            if args.prepare:
                subprocess.run(args.prepare, shell=True, check=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, env=dict(os.environ, LABEL=label))
            wall = run_once(argv, copies)
            if round_no >= args.warmup:
                times[label].append(wall * 1000.0)

    for label, _, _ in cmds:
        t = times[label]
        print("%s %.1f %.1f %.1f %d" % (label, statistics.median(t), min(t), max(t), len(t)))


if __name__ == "__main__":
    main()
