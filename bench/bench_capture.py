#!/usr/bin/env python3
"""Guest disk write throughput with vmscope attached versus without, in one
run on one guest (workload ddbench: 1 MiB and 4 KiB direct writes, timed
inside the guest). CYCLES times over: ROUNDS rounds without vmscope, ROUNDS
with `vmscope capture` (events to /dev/null), ROUNDS with `vmscope fswatch`
(the ext4 engine on every write); interleaving spreads the machine's drift
over all three. Figures: the median over all rounds of each condition.

Usage: bench/bench_capture.py [VMSCOPE_BINARY] [ROUNDS] [CYCLES]
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


def attached(binary, g, tool, n):
    """n rounds with tool attached: (samples, its summary line)."""
    ready = {"capture": "capturing", "fswatch": "watching"}[tool]
    proc = subprocess.Popen([binary, tool, "qmp:" + g.qmp_path, "--disk", "disk0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # the mirror is in place
    if ready not in line:
        raise SystemExit("%s did not start: %s" % (tool, line))
    samples = collect(g, n)
    proc.send_signal(signal.SIGINT)
    return samples, proc.communicate(timeout=120)[1].strip()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    cycles = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    runs = {"none": [], "capture": [], "fswatch": []}
    summaries = {}
    with vmguest.Guest(workload="ddbench", name="ddbench") as g:
        for _ in range(cycles):
            runs["none"] += collect(g, n)
            for tool in ("capture", "fswatch"):
                samples, summaries[tool] = attached(binary, g, tool, n)
                runs[tool] += samples
    print("guest: 256 MiB, TCG, virtio-blk, raw image; %d cycles of %d rounds per condition, "
          "medians" % (cycles, n))
    print("%-28s %10s %10s %10s %8s %8s" % ("writes", "none MB/s", "capture", "fswatch",
                                            "capture", "fswatch"))
    for kind, label in (("seq", "1 MiB direct, sequential"), ("4k", "4 KiB direct")):
        base = rate(runs["none"], kind)
        print("%-28s %10.2f %10.2f %10.2f %8.2f %8.2f" % (
            label, base, rate(runs["capture"], kind), rate(runs["fswatch"], kind),
            rate(runs["capture"], kind) / base, rate(runs["fswatch"], kind) / base))
    for tool in ("capture", "fswatch"):
        print("%s (last cycle): %s" % (tool, summaries[tool]))


if __name__ == "__main__":
    main()
