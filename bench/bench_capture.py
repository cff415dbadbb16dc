#!/usr/bin/env python3
"""Guest disk write throughput with vmscope's capture attached versus without,
in one run on one guest (workload ddbench: 1 MiB and 4 KiB direct writes,
timed inside the guest). Rounds alternate: ROUNDS without capture, ROUNDS
with it (events to /dev/null), ROUNDS without again.

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
        before = collect(g, n)
        cap = subprocess.Popen([binary, "capture", "qmp:" + g.qmp_path, "--disk", "disk0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        cap.stderr.readline()  # "capturing writes ...": the mirror is in place
        during = collect(g, n)
        cap.send_signal(signal.SIGINT)
        _, summary = cap.communicate(timeout=60)
        after = collect(g, n)
    print("guest: 256 MiB, TCG, virtio-blk, raw image; median of %d rounds each" % n)
    print("%-28s %12s %12s %12s %8s" % ("writes", "without MB/s", "with MB/s", "again MB/s",
                                         "ratio"))
    for kind, label in (("seq", "1 MiB direct, sequential"), ("4k", "4 KiB direct")):
        base = (rate(before, kind) + rate(after, kind)) / 2
        print("%-28s %12.2f %12.2f %12.2f %8.2f" % (label, rate(before, kind),
                                                    rate(during, kind), rate(after, kind),
                                                    rate(during, kind) / base))
    print("capture: " + summary.strip())


if __name__ == "__main__":
    main()
