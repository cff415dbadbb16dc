#!/usr/bin/env python3
"""Record/replay's costs, on the rr guest (a fixed run of forks, execs,
reads of /dev/urandom and the clock, then power-off), each against plain
TCG in the same run:
  plain     QEMU as given, start to exit
  icount    the same with -icount shift=auto only (what record mode needs
            before it records anything)
  record    under `vmscope record` (checkpoints every 2 s)
  replay    `vmscope replay` of the first recording, checkpoints checked
and the replay log's size: raw and zstd-compressed, per second of guest time
(the guest's own uptime at its last step; target <= 10 KB/s compressed),
replay time against record time (target <= 1.5).

Usage: bench/bench_rr.py [VMSCOPE_BINARY] [ROUNDS]
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import vmguest  # noqa: E402
from test_rr import put_input, qemu_command  # noqa: E402


def timed(argv):
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       timeout=900)
    if r.returncode:
        raise SystemExit("%s failed: %s" % (argv[:3], r.stderr[-500:]))
    return time.monotonic() - t0


def guest_seconds(truth_path):
    with open(truth_path) as f:
        ups = re.findall(r"^STEP \d+ up=([\d.]+)", f.read(), re.M)
    return float(ups[-1])


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    image = vmguest.build(None)
    top = tempfile.mkdtemp(prefix="vmscope-bench-rr-")
    times = {"plain": [], "icount": [], "record": [], "replay": []}
    try:
        rundir = os.path.join(top, "run")
        os.mkdir(rundir)
        disk = os.path.join(rundir, "data.img")
        shutil.copyfile(os.path.join(image, "data.img"), disk)
        put_input(disk, "2\n")
        cmd, truth = qemu_command(rundir, image, disk)
        base = os.path.join(rundir, "plain.img")
        for i in range(n):
            shutil.copyfile(disk, base)  # the plain run writes its disk
            plain = [a.replace(disk, base) for a in cmd]
            times["plain"].append(timed(plain))
            guest_s = guest_seconds(truth)
            shutil.copyfile(disk, base)
            times["icount"].append(timed(plain + ["-icount", "shift=auto"]))
            rec = os.path.join(top, "rec%d" % i)
            times["record"].append(timed([binary, "record", rec, "--checkpoint-every", "2",
                                          "--"] + cmd))
            times["replay"].append(timed([binary, "replay", rec]))
        with open(os.path.join(top, "rec0", "recording.json")) as f:
            meta = json.load(f)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("guest: 256 MiB, TCG, one vCPU; the rr workload (%.1f s of guest time); medians "
          "of %d" % (guest_s, n))
    print("%-24s %10s %8s" % ("run", "wall s", "ratio"))
    for k in times:
        print("%-24s %10.2f %8.2f" % (k, med[k], med[k] / med["plain"]))
    raw, stored = meta["replay_log_bytes"], meta["replay_log_stored_bytes"]
    print("replay log: %d bytes raw, %d compressed (%.0fx); %.1f KB/s raw, %.2f KB/s "
          "compressed per second of guest time" % (raw, stored, raw / stored,
                                                   raw / guest_s / 1e3, stored / guest_s / 1e3))
    print("replay / record: %.2f" % (med["replay"] / med["record"]))


if __name__ == "__main__":
    main()
