#!/usr/bin/env python3
"""Tracing's cost to the guest. One TCG guest (workload tracer) runs its
"bench" round (100 forks that exec /bin/true and 100 forks that exit with a
code: a fork/exec-heavy shell loop), timed from the host: ROUNDS times
without tracing, with `vmscope trace --events exec,exit,fork` (through the
process-events connector), the same with --breakpoints, and with every probe
(open included), interleaved. From vmscope's summary: events, stops and the
time the VM spent stopped on vmscope's account; per event, that time and the
whole cost to the guest (the round's extra time over untraced).

Usage: bench/bench_trace.py [VMSCOPE_BINARY] [ROUNDS]
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
import vmguest  # noqa: E402
from bench_fswatch import timed_round  # noqa: E402

ALL = "exec,fork,exit,module_load,module_unload,open,connect,accept"
# exec, fork and exit go through the process-events connector unless --breakpoints.
SETS = {"exec,exit,fork": ["--events", "exec,exit,fork"],
        "exec,exit,fork --breakpoints": ["--events", "exec,exit,fork", "--breakpoints"],
        "all": ["--events", ALL]}


def traced_round(binary, g, args):
    out = open(os.path.join(g.rundir, "bench-trace.jsonl"), "w")
    tr = subprocess.Popen([binary, "trace", "qmp:" + g.qmp_path, "--json"] + args,
                          stdout=out, stderr=subprocess.PIPE, text=True)
    line = tr.stderr.readline()
    while line.startswith("vmscope: ") and "tracing" not in line:
        line = tr.stderr.readline()
    if "tracing" not in line:
        raise SystemExit("trace did not start: " + line)
    took = timed_round(g, "bench")
    # A child's exit event comes after its parent is woken (another vCPU may
    # print DONE first): let the last ones in before detaching.
    time.sleep(0.5)
    tr.send_signal(signal.SIGINT)
    summary = tr.communicate(timeout=120)[1].strip()
    out.close()
    m = re.search(r"(\d+) events from (\d+) stops.*VM stopped ([\d.]+) s", summary)
    return took, int(m.group(1)), float(m.group(3)), summary


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    times = {label: [] for label in ["none"] + list(SETS)}
    per_event, summaries = {}, {}
    with vmguest.Guest(workload="tracer", name="tracebench", control=True) as g:
        timed_round(g, "bench")  # warm the page cache
        for _ in range(n):
            times["none"].append(timed_round(g, "bench"))
            for label, args in SETS.items():
                took, count, stopped, summaries[label] = traced_round(binary, g, args)
                times[label].append(took)
                per_event.setdefault(label, []).append((count, stopped, took))
    base = statistics.median(times["none"])
    print("guest: 256 MiB, TCG; round: 100 fork+exec+exit and 100 fork+exit; median of %d"
          % n)
    print("%-30s %10s %8s %10s %14s %14s %14s" % ("tracing", "round s", "ratio", "events",
                                                  "events/s", "us stopped", "us guest cost"))
    print("%-30s %10.3f %8.2f" % ("none", base, 1.0))
    for label in SETS:
        took = statistics.median(times[label])
        count = statistics.median(c for c, _, _ in per_event[label])
        stopped = statistics.median(s for _, s, _ in per_event[label])
        # Per event: the time vmscope held the VM stopped, and the whole cost to the
        # guest (the round's extra time over untraced, per event).
        print("%-30s %10.3f %8.2f %10d %14.0f %14.0f %14.0f" % (
            label, took, base / took, count, count / took, stopped / count * 1e6,
            (took - base) / count * 1e6))
    for label in SETS:
        print("%s: %s" % (label, summaries[label]))


if __name__ == "__main__":
    main()
