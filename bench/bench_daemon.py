#!/usr/bin/env python3
"""vmscoped's cost per VM: N light guests (80 MiB, the least that boots the test kernel
and initramfs; every fourth runs the busy workload, the rest start a process every
3 s) booted four at a time and found in a directory of QMP sockets, each sampled once a
second; then (a reload) also its process, module and socket views polled every 5 s
and diffed into events. Baselines from the same run and the same daemon: its CPU
and memory with no VM, before the sockets are linked in; and for scrape latency, a
GET of a path that renders nothing (404). Then the same with one guest hung (its
QEMU stopped with SIGSTOP: its socket accepts and never answers), and 100
attach/detach cycles of one VM (its socket linked in and out), after which the
daemon's memory and open descriptors are compared with before. Memory is RSS and
RssAnon: the views read each guest's RAM through its memory file, whose pages
count in RSS but are the guest's, not the daemon's.

Usage: bench/bench_daemon.py [VMSCOPED_BINARY] [VMS]
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
import vmguest  # noqa: E402


def get(ctl, url):
    c = vmguest.UnixHTTP(ctl)
    t0 = time.perf_counter()
    c.request("GET", url)
    body = c.getresponse().read()
    c.close()
    return time.perf_counter() - t0, body


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def anon_mib(pid):
    return rss_mib(pid, "RssAnon")


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def states(ctl):
    return {v["name"]: v["state"] for v in json.loads(get(ctl, "/api/v1/vms")[1])}


def views(ctl):
    return {v["name"]: v["capabilities"]["views"]["state"]
            for v in json.loads(get(ctl, "/api/v1/vms")[1])}


def wait(pred, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not pred():
        time.sleep(0.5)
    return pred()


def cpu_over(pid, seconds):
    c0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_s(pid) - c0) / (time.monotonic() - t0)


def scrapes(ctl, n=50):
    base, scrape = [], []
    for _ in range(n):
        base.append(get(ctl, "/nowhere")[0])
        scrape.append(get(ctl, "/metrics")[0])
        time.sleep(0.05)
    return statistics.median(base), statistics.median(scrape), sorted(scrape)[int(n * 0.99) - 1]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "daemon",
                                                                  "vmscoped")
    nvms = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    with ExitStack() as stack:
        d = stack.enter_context(tempfile.TemporaryDirectory(prefix="vmscoped-bench-"))
        qdir, ctl = os.path.join(d, "qmp"), os.path.join(d, "ctl.sock")
        os.mkdir(qdir)
        t_boot = time.monotonic()
        # All at once, from this thread: a guest's QEMU dies with the thread that started
        # it (PDEATHSIG).
        guests = [vmguest.Guest(workload="busy" if i % 4 == 3 else "ticker", name="vm%02d" % i,
                                ram_mib=80, disk=False) for i in range(nvms)]
        # In waves of four: 32 boots at once beside the busy guests' spinners starve
        # some guest's timer check (8254 through the IO-APIC) for good.
        for wave in range(0, nvms, 4):
            for g in guests[wave:wave + 4]:
                stack.callback(g.stop)
                g.launch()
            for g in guests[wave:wave + 4]:
                g.wait_ready(timeout=300)
        t_boot = time.monotonic() - t_boot
        conf = os.path.join(d, "vmscoped.conf")

        def config(views):
            with open(conf, "w") as f:
                f.write("[daemon]\nqmp-dir = %s\nlisten = unix:%s\ninterval = 1\n" % (qdir, ctl))
                if views:
                    f.write("[defaults]\nviews = processes modules sockets\n"
                            "view-interval = 5\n")
        config(False)
        proc = subprocess.Popen([binary, "--config", conf], stderr=subprocess.DEVNULL)
        try:
            wait(lambda: os.path.exists(ctl))
            time.sleep(2)
            cpu0, rss0, fd0 = cpu_over(proc.pid, 10), rss_mib(proc.pid), fds(proc.pid)
            anon0 = anon_mib(proc.pid)
            for g in guests:
                os.symlink(g.qmp_path, os.path.join(qdir, g.name + ".qmp"))
            all_up = wait(lambda: list(states(ctl).values()).count("up") == nvms)
            time.sleep(3)
            cpu1, rss1, anon1 = cpu_over(proc.pid, 20), rss_mib(proc.pid), anon_mib(proc.pid)
            config(True)
            proc.send_signal(signal.SIGHUP)
            views_on = wait(lambda: list(views(ctl).values()).count("on") == nvms)
            time.sleep(6)  # every VM's views read once more, diffed
            cpu2, rss2, anon2 = cpu_over(proc.pid, 30), rss_mib(proc.pid), anon_mib(proc.pid)
            size = len(get(ctl, "/metrics")[1])
            b1, s1, p1 = scrapes(ctl)
            os.kill(guests[-1].pid, signal.SIGSTOP)
            time.sleep(3)
            b2, s2, p2 = scrapes(ctl)
            os.kill(guests[-1].pid, signal.SIGCONT)
            link = os.path.join(qdir, guests[0].name + ".qmp")
            wait(lambda: states(ctl).get(guests[-1].name) == "up", 30)
            rss_c0, fd_c0, anon_c0 = rss_mib(proc.pid), fds(proc.pid), anon_mib(proc.pid)
            for _ in range(100):
                os.unlink(link)
                wait(lambda: guests[0].name not in states(ctl), 10)
                os.symlink(guests[0].qmp_path, link)
                wait(lambda: states(ctl).get(guests[0].name) == "up", 10)
            time.sleep(2)
            rss_c1, fd_c1, anon_c1 = rss_mib(proc.pid), fds(proc.pid), anon_mib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    print("%d guests (80 MiB, %d busy) booted in %.0f s; all up under the daemon: %s; "
          "views on in all: %s" % (nvms, nvms // 4, t_boot, all_up, views_on))
    print("daemon, no VM (baseline): CPU %.2f %% of a core, RSS %.1f MiB (anon %.1f), %d fds"
          % (cpu0 * 100, rss0, anon0, fd0))
    for label, cpu, rss, anon in (("1 Hz metrics", cpu1, rss1, anon1),
                                  ("1 Hz metrics + views every 5 s", cpu2, rss2, anon2)):
        per_cpu, per_rss, per_anon = (cpu - cpu0) / nvms, (rss - rss0) / nvms, \
            (anon - anon0) / nvms
        print("daemon, %d VMs, %s: CPU %.2f %% of a core (%.1fx baseline), RSS %.1f MiB, "
              "anon %.1f MiB" % (nvms, label, cpu * 100, cpu / cpu0 if cpu0 else 0, rss, anon))
        print("  per VM: CPU %.3f %% of a core, RSS %.3f MiB, anon %.3f MiB; for 500 VMs: "
              "%.1f %% of a core, anon %.0f MiB" % (per_cpu * 100, per_rss, per_anon,
                                                   500 * per_cpu * 100, anon0 + 500 * per_anon))
    print("scrape of %d bytes: median %.2f ms (%.1fx the 404 baseline %.2f ms), p99 %.2f ms"
          % (size, s1 * 1000, s1 / b1, b1 * 1000, p1 * 1000))
    print("one VM hung (SIGSTOP): median %.2f ms (%.1fx baseline %.2f ms), p99 %.2f ms"
          % (s2 * 1000, s2 / b2, b2 * 1000, p2 * 1000))
    print("100 attach/detach cycles of one VM: RSS %.1f -> %.1f MiB, anon %.1f -> %.1f MiB, "
          "fds %d -> %d" % (rss_c0, rss_c1, anon_c0, anon_c1, fd_c0, fd_c1))


if __name__ == "__main__":
    main()
