#!/usr/bin/env python3
"""Guest disk write throughput with vmscope attached versus without, in one
run on one guest (workload ddbench: 1 MiB and 4 KiB direct writes, timed
inside the guest). Rounds alternate: ROUNDS without, ROUNDS with `vmscope
capture` (events to /dev/null), ROUNDS without, ROUNDS with `vmscope
fswatch` (the ext4 engine on every write), ROUNDS without again; each
attached figure is compared with the mean of the rounds either side.

Usage: bench/bench_capture.py [VMSCOPE_BINARY] [ROUNDS]
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


def rounds(g):
    found = {}
    for m in re.finditer(r"^DD (\d+) (\w+) (\d+) (\d+)$", g._read(g.truth_path), re.M):
        found.setdefault(int(m.group(1)), {})[m.group(2)] = (int(m.group(3)), int(m.group(4)))
    return {r: v for r, v in found.items() if len(v) == 2}


def collect(g, n):
    start = max(rounds(g) or {-1: 0}) + 1
    while len([r for r in rounds(g) if r >= start + 1]) < n:  # skip a round in progress
        time.sleep(0.2)
    return [v for r, v in rounds(g).items() if start + 1 <= r <= start + n]


def rate(samples, kind):
    """Median MB/s over the rounds (centisecond timer: a zero time counts as one tick)."""
    return statistics.median(s[kind][0] / max(s[kind][1], 1) * 100 / 1e6 for s in samples)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with vmguest.Guest(workload="ddbench", name="ddbench") as g:
        base = [collect(g, n)]
        attached, summaries = [], []
        for tool, ready in (("capture", "capturing"), ("fswatch", "watching")):
            proc = subprocess.Popen([binary, tool, "qmp:" + g.qmp_path, "--disk", "disk0"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            line = proc.stderr.readline()  # the mirror is in place
            if ready not in line:
                raise SystemExit("%s did not start: %s" % (tool, line))
            attached.append(collect(g, n))
            proc.send_signal(signal.SIGINT)
            summaries.append(proc.communicate(timeout=120)[1].strip())
            base.append(collect(g, n))
    print("guest: 256 MiB, TCG, virtio-blk, raw image; median of %d rounds each" % n)
    print("%-28s %8s %10s %8s %10s %8s %8s %8s" % ("writes", "base", "capture", "base",
                                                    "fswatch", "base", "capture", "fswatch"))
    print("%-28s %8s %10s %8s %10s %8s %8s %8s" % ("", "MB/s", "MB/s", "MB/s", "MB/s", "MB/s",
                                                    "ratio", "ratio"))
    for kind, label in (("seq", "1 MiB direct, sequential"), ("4k", "4 KiB direct")):
        b = [rate(x, kind) for x in base]
        a = [rate(x, kind) for x in attached]
        print("%-28s %8.2f %10.2f %8.2f %10.2f %8.2f %8.2f %8.2f" % (
            label, b[0], a[0], b[1], a[1], b[2], a[0] / ((b[0] + b[1]) / 2),
            a[1] / ((b[1] + b[2]) / 2)))
    for tool, summary in zip(("capture", "fswatch"), summaries):
        print("%s: %s" % (tool, summary))

if __name__ == "__main__":
    main()
