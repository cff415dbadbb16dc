#!/usr/bin/env python3
"""Cold discovery when the guest fights back, per kernel line: `vmscope kernel`
on a dump of the crowd guest (256 MiB, vCPU registers in the core), no
per-build cache, as the guest left it (the baseline: vmcoreinfo's fast path),
with every vmcoreinfo note wiped, and with the notes wiped and 40 look-alike
kallsyms token tables planted below the kernel (what a guest process can do).
Also `ps --cross-check` against `ps` on the live 1 GiB guest.

Usage: bench/bench_discovery.py [VMSCOPE_BINARY] [RUNS] [KERNEL...]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import vmguest  # noqa: E402
from test_linux import plant_tables, rewrite_ram, wipe_notes  # noqa: E402

ENV = dict(os.environ, VMSCOPE_KERNEL_CACHE="")


def median_s(cmd, runs, env=ENV):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def discovery(binary, kernel, runs):
    rows = []
    with vmguest.Guest(workload="crowd", kernel=kernel, ram_mib=256) as g, \
            tempfile.TemporaryDirectory(prefix="vmscope-bench-") as d:
        core = os.path.join(d, "vm.core")
        subprocess.run([binary, "dump", "qmp:" + g.qmp_path, core], check=True)
        base = median_s([binary, "kernel", "dump:" + core], runs)
        rows.append(("as the guest left it (baseline)", base))
        for what, edit in (("every note wiped", wipe_notes),
                           ("notes wiped, 40 look-alike tables below", plant_tables)):
            edited = os.path.join(d, "edited.core")
            rewrite_ram(core, edited, edit)
            rows.append((what, median_s([binary, "kernel", "dump:" + edited], runs)))
            os.unlink(edited)
    return [(kernel, what, secs, secs / base) for what, secs in rows]


def cross_check(binary, runs):
    with vmguest.Guest(workload="crowd", ram_mib=1024) as g:
        target = "qmp:" + g.qmp_path
        # The per-build cache warm: what is timed is the check, not discovery.
        subprocess.run([binary, "ps", target], check=True, stdout=subprocess.DEVNULL)
        ps = median_s([binary, "ps", target], runs, env=os.environ)
        cc = median_s([binary, "ps", target, "--cross-check"], runs, env=os.environ)
    return ps, cc


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    kernels = sys.argv[3:] or vmguest.kernel_lines()
    rows = []
    for kernel in kernels:
        rows += discovery(binary, kernel, runs)
    print("cold `vmscope kernel dump:CORE`, 256 MiB crowd guest, median of %d runs" % runs)
    print("%-28s %-42s %8s %12s" % ("kernel", "RAM", "ms", "x baseline"))
    for kernel, what, secs, ratio in rows:
        print("%-28s %-42s %8.1f %12.2f" % (kernel, what, secs * 1000, ratio))
    ps, cc = cross_check(binary, runs)
    print("\nlive 1 GiB crowd guest, warm cache, median of %d runs" % runs)
    print("%-42s %8s %12s" % ("what", "ms", "x baseline"))
    print("%-42s %8.1f %12.2f" % ("ps (baseline)", ps * 1000, 1.0))
    print("%-42s %8.1f %12.2f" % ("ps --cross-check", cc * 1000, cc / ps))


if __name__ == "__main__":
    main()
