#!/usr/bin/env python3
"""How long `vmscope info` takes on the live demo guest, beside baselines
measured in the same run on the same guest:

  read RAM file   `cat` of the guest's whole RAM file to /dev/null: the cost of
                  touching every byte once, which the banner scan must do
  QMP round trip  connect, greeting, capabilities and one query-status from a
                  C-speed client (socat), what any QMP-based tool pays

Usage: bench/bench_info.py [VMSCOPE_BINARY] [RUNS]
"""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
import vmguest  # noqa: E402


def median_s(cmd, runs, **kw):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    rows = []
    for shm in (True, False):
        with vmguest.Guest(workload="demo", ram_mib=256, shm=shm) as g:
            target = "qmp:" + g.qmp_path
            qmp_cmd = ["socat", "-", "UNIX-CONNECT:" + g.qmp_path]
            qmp_in = b'{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n'
            base_qmp = median_s(qmp_cmd, runs, input=qmp_in)
            info = median_s([binary, "info", target], runs)
            label = "shared-memory file" if shm else "/proc/PID/mem"
            if shm:
                base_cat = median_s(["cat", g.shm_path], runs)
                rows.append(("read RAM file (baseline)", base_cat, 1.0))
            rows.append(("QMP round trip (baseline), %s VM" % label, base_qmp, None))
            rows.append(("vmscope info, %s" % label, info, info / base_cat))
    print("guest: 256 MiB, TCG, demo workload; median of %d runs" % runs)
    print("%-48s %10s %14s" % ("what", "ms", "x read-RAM"))
    for name, secs, ratio in rows:
        print("%-48s %10.1f %14s" % (name, secs * 1000, "%.2f" % ratio if ratio else "-"))


if __name__ == "__main__":
    main()
