#!/usr/bin/env python3
"""Logging's cost to its busiest sources, each against the same source
without --log in the same run, interleaved:
  trace    the tracer guest's "bench" round (100 fork+exec+exit, 100
           fork+exit) traced with `trace --events exec,fork,exit --json`,
           with and without `--log DIR`: the round's time (the source's
           throughput is the guest's: every event is one it made)
  fswatch  the fsops guest's "burst" round (2000 files in one transaction)
           under fswatch, with and without --log: the round's time and the
           time from the round's end until fswatch has emitted every event
Throughput ratio = time without --log / time with (target >= 0.92). And per
event, the bytes the log stored against the bytes of the JSON lines.

Usage: bench/bench_log.py [VMSCOPE_BINARY] [ROUNDS]
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
import vmguest  # noqa: E402
from bench_fswatch import timed_round  # noqa: E402


def log_stats(binary, d):
    return json.loads(subprocess.run([binary, "log", "stats", d, "--json"],
                                     stdout=subprocess.PIPE, check=True, text=True).stdout)


def started(proc, word):
    line = proc.stderr.readline()
    while line.startswith("vmscope: ") and word not in line:
        line = proc.stderr.readline()
    if word not in line:
        raise SystemExit("did not start: " + line)


def traced_round(binary, g, logdir):
    out_path = os.path.join(g.rundir, "bench-log.jsonl")
    with open(out_path, "w") as out:
        tr = subprocess.Popen([binary, "trace", "qmp:" + g.qmp_path, "--events",
                               "exec,fork,exit", "--json"] + (["--log", logdir] if logdir else []),
                              stdout=out, stderr=subprocess.PIPE, text=True)
    started(tr, "tracing")
    took = timed_round(g, "bench")
    time.sleep(0.5)
    tr.send_signal(signal.SIGINT)
    tr.communicate(timeout=120)
    with open(out_path) as f:
        lines = f.read().splitlines()
    return took, len(lines), sum(len(l) + 1 for l in lines)


def watched_round(binary, g, logdir):
    """Guest seconds for the burst, then seconds until the last event is out."""
    out_path = os.path.join(g.rundir, "bench-log-fs.jsonl")
    out = open(out_path, "w")
    fw = subprocess.Popen([binary, "fswatch", "qmp:" + g.qmp_path, "--disk", "disk0"] +
                          (["--log", logdir] if logdir else []), stdout=out,
                          stderr=subprocess.PIPE, text=True)
    started(fw, "watching")
    took = timed_round(g, "burst")
    end = time.monotonic()
    size, last_change = -1, time.monotonic()
    while time.monotonic() - last_change < 1.5:  # until output stops growing
        now = os.path.getsize(out_path)
        if now != size:
            size, last_change = now, time.monotonic()
        time.sleep(0.02)
    drained = last_change - end
    fw.send_signal(signal.SIGINT)
    fw.communicate(timeout=300)
    out.close()
    with open(out_path) as f:
        lines = f.read().splitlines()
    return took, drained, len(lines), sum(len(l) + 1 for l in lines)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    top = tempfile.mkdtemp(prefix="vmscope-bench-log-")
    try:
        trace = {"without": [], "with": []}
        with vmguest.Guest(workload="tracer", name="logbench", control=True) as g:
            timed_round(g, "bench")
            for i in range(n):
                trace["without"].append(traced_round(binary, g, None))
                trace["with"].append(traced_round(binary, g, os.path.join(top, "trace")))
        ts = log_stats(binary, os.path.join(top, "trace"))
        fs = {"without": [], "with": []}
        with vmguest.Guest(workload="fsops", name="logbenchfs", control=True) as g:
            timed_round(g, "burst")
            for i in range(max(2, n // 2)):
                fs["without"].append(watched_round(binary, g, None))
                fs["with"].append(watched_round(binary, g, os.path.join(top, "fs")))
        fss = log_stats(binary, os.path.join(top, "fs"))
    finally:
        shutil.rmtree(top, ignore_errors=True)

    med = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
    print("guests: 256 MiB, TCG; medians of %d trace rounds, %d fswatch rounds, interleaved"
          % (n, len(fs["with"])))
    print("%-44s %10s %10s %8s" % ("source", "without s", "with s", "ratio"))
    a, b = med(trace["without"], 0), med(trace["with"], 0)
    print("%-44s %10.3f %10.3f %8.2f" % ("trace exec,fork,exit (bench round)", a, b, a / b))
    a, b = med(fs["without"], 0), med(fs["with"], 0)
    print("%-44s %10.3f %10.3f %8.2f" % ("fswatch, 2000-file burst: guest round", a, b, a / b))
    a, b = med(fs["without"], 1) + med(fs["without"], 0), med(fs["with"], 1) + med(fs["with"], 0)
    print("%-44s %10.3f %10.3f %8.2f" % ("fswatch, 2000-file burst: to the last event", a, b,
                                         a / b))
    for label, runs, st in (("trace", trace["with"], ts), ("fswatch", fs["with"], fss)):
        events = sum(r[-2] for r in runs)
        jbytes = sum(r[-1] for r in runs)
        print("%s: %d events logged (%d printed); %.1f bytes/event stored, %.1f as JSON lines "
              "(%.1f%%)" % (label, st["events"], events, st["stored_bytes"] / st["events"],
                            jbytes / events, 100.0 * st["stored_bytes"] / jbytes))


if __name__ == "__main__":
    main()
