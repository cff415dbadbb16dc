#!/usr/bin/env python3
"""File events: how fast they come and what inference costs. One TCG guest
(workload fsops) runs its "basic" round (every kind of operation, each
followed by sync: one journal commit each) and its "burst" round (2000 small
files created, then deleted) with `vmscope fswatch` attached. From
fswatch's own summary: the delay from the write that reveals a change (for
metadata, the journal commit block reaching vmscope's NBD server) to the
event being queued, p50 and p99; and the inference thread's CPU time for the
captured bytes. The same rounds run once without fswatch first, timed from
the host, for the cost to the guest.

Usage: bench/bench_fswatch.py [VMSCOPE_BINARY]
"""
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
import vmguest  # noqa: E402

PREFIX = os.environ.get("BENCH_PREFIX", "").split()


def timed_round(g, name):
    done = "DONE %s" % name
    before = g._read(g.truth_path).count(done)
    t0 = time.monotonic()
    g.send(name)
    while g._read(g.truth_path).count(done) == before:
        if time.monotonic() - t0 > 900:
            raise SystemExit("the guest did not finish " + name)
        time.sleep(0.02)
    return time.monotonic() - t0


SUMMARY = re.compile(r"(\d+) file events .* from (\d+) writes \((\d+) bytes\) and (\d+) "
                     r"transactions.*latency p50 (\d+) us, p99 (\d+) us; inference ([\d.]+) s CPU")


def watched_round(binary, g, name):
    """One round with fswatch attached: (guest seconds, parsed summary, summary)."""
    fw = subprocess.Popen(PREFIX + [binary, "fswatch", "qmp:" + g.qmp_path, "--disk", "disk0"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if "watching" not in fw.stderr.readline():
        raise SystemExit("fswatch did not start")
    took = timed_round(g, name)
    time.sleep(2)
    fw.send_signal(signal.SIGINT)
    summary = fw.communicate(timeout=300)[1].strip()
    m = SUMMARY.search(summary)
    if not m:
        raise SystemExit("unexpected summary: " + summary)
    return took, [float(x) for x in m.groups()], summary


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    with vmguest.Guest(workload="fsops", name="fsbench", control=True) as g:
        bare = timed_round(g, "burst")
        _, basic, basic_summary = watched_round(binary, g, "basic")
        watched, burst, burst_summary = watched_round(binary, g, "burst")
    print("guest: 256 MiB, TCG, ext4 with 1 KiB blocks, journal (data=ordered)")
    print("%-34s %8s %8s %8s %10s %10s %12s" % ("round", "events", "commits", "MB", "p50 ms",
                                                "p99 ms", "infer MB/s"))
    for label, f in (("basic (each operation synced)", basic),
                     ("burst (2000 files, 2 commits)", burst)):
        events, _, nbytes, commits, p50, p99, cpu = f
        print("%-34s %8d %8d %8.1f %10.2f %10.2f %12.0f" % (
            label, events, commits, nbytes / 1e6, p50 / 1e3, p99 / 1e3,
            nbytes / 1e6 / cpu if cpu else float("inf")))
    print("p50/p99: from the write that reveals a change (for metadata, the journal commit "
          "block reaching vmscope) to the event being queued")
    print("burst, host-timed: %.2f s without fswatch, %.2f s with: ratio %.2f"
          % (bare, watched, bare / watched))
    print("basic: " + basic_summary)
    print("burst: " + burst_summary)


if __name__ == "__main__":
    main()
