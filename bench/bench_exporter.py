#!/usr/bin/env python3
"""Scrape latency of `vmscope exporter` with many VMs registered and one of
them hung (its QEMU stopped with SIGSTOP: the QMP socket accepts and never
answers), beside a baseline taken in the same run on the same server: a GET
of "/", which answers without rendering anything. Also the exporter's own CPU
per VM per sample (every VM sampled once a second) from its /proc/PID/stat.

Usage: bench/bench_exporter.py [VMSCOPE_BINARY] [VMS] [SCRAPES]
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
import vmguest  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_s(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()
    return time.perf_counter() - t0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    nvms = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    scrapes = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    with ExitStack() as stack:
        guests = [stack.enter_context(vmguest.Guest(workload="idle", name="vm%02d" % i,
                                                    ram_mib=128, disk=i % 4 == 0))
                  for i in range(nvms)]
        os.kill(guests[-1].pid, signal.SIGSTOP)
        port = free_port()
        ex = subprocess.Popen([binary, "exporter", "--listen", "127.0.0.1:%d" % port,
                               "--interval", "1", "--timeout", "1"] +
                              ["qmp:" + g.qmp_path for g in guests], stderr=subprocess.PIPE)
        try:
            ex.stderr.readline()
            time.sleep(4)
            base_url, url = "http://127.0.0.1:%d/" % port, "http://127.0.0.1:%d/metrics" % port
            size = len(urllib.request.urlopen(url, timeout=10).read())
            c0, t0 = cpu_s(ex.pid), time.monotonic()
            time.sleep(15)  # sampling and rendering only, no scrapes
            quiet = (cpu_s(ex.pid) - c0) / (time.monotonic() - t0)
            c0, t0 = cpu_s(ex.pid), time.monotonic()
            base, scrape = [], []
            for _ in range(scrapes):
                base.append(get_s(base_url))
                scrape.append(get_s(url))
                time.sleep(0.1)
            cpu = (cpu_s(ex.pid) - c0) / (time.monotonic() - t0)
        finally:
            ex.send_signal(signal.SIGINT)
            ex.wait(timeout=30)
            os.kill(guests[-1].pid, signal.SIGCONT)
    med_b, med_s = statistics.median(base), statistics.median(scrape)
    p99 = sorted(scrape)[int(len(scrape) * 0.99) - 1]
    print("%d VMs registered (one frozen with SIGSTOP), sampled every 1 s; %d scrapes of %d "
          "bytes" % (nvms, scrapes, size))
    print("%-40s %10s %10s" % ("what", "ms", "x baseline"))
    print("%-40s %10.2f %10.2f" % ("GET / (baseline, no rendering)", med_b * 1000, 1.0))
    print("%-40s %10.2f %10.2f" % ("GET /metrics, median", med_s * 1000, med_s / med_b))
    print("%-40s %10.2f %10.2f" % ("GET /metrics, 99th percentile", p99 * 1000, p99 / med_b))
    print("exporter CPU, no scrapes: %.1f %% of a core, %.0f us per VM per sample (sample and "
          "render, %d VMs at 1 Hz)" % (quiet * 100, quiet * 1e6 / nvms, nvms))
    print("exporter CPU, scraped every 0.1 s: %.1f %% of a core, %.0f us per VM per second"
          % (cpu * 100, cpu * 1e6 / nvms))


if __name__ == "__main__":
    main()
