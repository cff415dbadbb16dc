#!/usr/bin/env python3
"""The Prometheus exporter, scraped by a real Prometheus (Debian's package).
Three targets: a running guest, a guest whose QEMU is frozen (SIGSTOP: its QMP
socket accepts and never answers) and a socket nobody serves. Every scrape
must answer at once; the frozen and the dead VM show as vmscope_up 0; the
figures equal what the guest and the host say of themselves."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from harness import VMSCOPE, Tap, vmguest, track


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read().decode()
        return body, r.headers.get("Content-Type"), time.monotonic() - start


def parse(text):
    """{(name, frozenset(labels)): value} from a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, rest = series.partition("{")
        labels = frozenset(tuple(kv.split("=", 1)) for kv in
                           rest.rstrip("}").replace('"', "").split(",") if kv)
        out[(name, labels)] = float(value)
    return out


def value(samples, name, **labels):
    want = frozenset((k, v) for k, v in labels.items())
    for (n, l), v in samples.items():
        if n == name and want <= l:
            return v
    return None


def promql(port, query):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": query}))
    body, _, _ = http_get(url)
    return {r["metric"].get("vm", r["metric"].get("job")): float(r["value"][1])
            for r in json.loads(body)["data"]["result"]}


def start_prometheus(d, target_port):
    port = free_port()
    config = os.path.join(d, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: vmscope\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % target_port)
    proc = track(subprocess.Popen(
        ["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(d, "tsdb"),
         "--web.listen-address=127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(d, "prometheus.log"), "w")))
    return proc, port


def wait_for(fn, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = fn()
            if got:
                return got
        except OSError:
            pass
        time.sleep(0.5)
    return fn()


def check_hang(t, g, url):
    """A VM that was up and then hangs (its QEMU frozen mid-run): scrapes still answer
    at once, it goes to vmscope_up 0 with its last good sample's time standing still,
    and it comes back when QEMU does."""
    stamp = lambda: value(parse(http_get(url)[0]), "vmscope_last_sample_timestamp_seconds",
                          vm="alive")
    before = stamp()
    os.kill(g.pid, signal.SIGSTOP)
    try:
        frozen_at = time.time()
        down = wait_for(lambda: value(parse(http_get(url)[0]), "vmscope_up", vm="alive") == 0,
                        15)
        took = time.time() - frozen_at
        times = [http_get(url)[2] for _ in range(5)]
        held = stamp()
        time.sleep(2)
        t.ok(down and max(times) < 0.5 and held is not None and held >= before and
             held <= frozen_at + 1.5 and stamp() == held,
             "a VM frozen mid-run: vmscope_up 0 after %.1f s, scrapes at once (slowest %.3f s), "
             "its last sample's timestamp stands still" % (took, max(times)),
             (before, held, frozen_at, times))
    finally:
        os.kill(g.pid, signal.SIGCONT)
    back = wait_for(lambda: value(parse(http_get(url)[0]), "vmscope_up", vm="alive") == 1, 30)
    t.ok(back and stamp() > held, "and vmscope_up 1 again once QEMU runs, with fresh samples")


def check_exporter(t):
    with vmguest.Guest(workload="metrics", name="alive", control=True) as g, \
            vmguest.Guest(workload="idle", name="frozen") as frozen, \
            tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        port = free_port()
        dead = "qmp:" + os.path.join(d, "nobody.sock")
        os.kill(frozen.pid, signal.SIGSTOP)
        ex = track(subprocess.Popen(
            [VMSCOPE, "exporter", "--listen", "127.0.0.1:%d" % port, "--interval", "1",
             "--timeout", "1", "qmp:" + g.qmp_path, "qmp:" + frozen.qmp_path, dead],
            stderr=subprocess.PIPE, text=True))
        t.ok("serving 3 VMs" in ex.stderr.readline(), "the exporter starts on 3 targets")
        url = "http://127.0.0.1:%d/metrics" % port
        wait_for(lambda: value(parse(http_get(url)[0]), "vmscope_up", vm="alive") == 1, 20)
        times, last = [], None
        for _ in range(5):
            body, ctype, took = http_get(url)
            times.append(took)
            last = parse(body)
            time.sleep(0.3)
        t.ok(max(times) < 0.5, "scrapes answer at once with a frozen VM among the targets "
             "(slowest %.3f s of 5)" % max(times))
        t.eq(ctype, "text/plain; version=0.0.4; charset=utf-8", "the exposition's content type")
        t.eq((value(last, "vmscope_up", vm="alive"), value(last, "vmscope_up",
                                                           vm="qmp:" + frozen.qmp_path),
              value(last, "vmscope_up", vm=dead)), (1, 0, 0),
             "vmscope_up: 1 for the running VM, 0 for the frozen and the dead one")
        lint = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        t.ok(lint.returncode == 0, "promtool finds nothing to say of the exposition", lint.stdout)

        # Paused, the figures hold still: compare them with the guest's and the host's own.
        run = len(g._read(g.truth_path))
        g.send("snap")
        g.wait_for("DONE snap", 60, after=run)
        g.qmp("stop")
        time.sleep(2.5)
        samples = parse(http_get(url)[0])
        truth = g.truth()
        mem_total = int(truth["meminfo"].split("MemTotal:")[1].split()[0]) * 1024
        t.eq(value(samples, "vmscope_guest_memory_total_bytes", vm="alive"), mem_total,
             "vmscope_guest_memory_total_bytes is the guest's MemTotal")
        stats = [s["stats"] for s in g.qmp("query-blockstats")
                 if s["qdev"].startswith("/machine/peripheral/vda/")][0]
        t.eq(value(samples, "vmscope_block_write_bytes_total", vm="alive", device="vda"),
             stats["wr_bytes"], "vmscope_block_write_bytes_total is QEMU's own wr_bytes")
        tid = g.qmp("query-cpus-fast")[0]["thread-id"]
        with open("/proc/%d/task/%d/schedstat" % (g.pid, tid)) as f:
            run_ns = int(f.read().split()[0])
        got = value(samples, "vmscope_vcpu_seconds_total", vm="alive", vcpu="0")
        t.ok(got is not None and 0 <= run_ns / 1e9 - got < 0.05,
             "vmscope_vcpu_seconds_total is the host's schedstat (%s s, host %.3f s)"
             % (got, run_ns / 1e9))
        g.qmp("cont")

        prom, prom_port = start_prometheus(d, port)
        ups = wait_for(lambda: len(promql(prom_port, "vmscope_up")) == 3 and
                       promql(prom_port, "vmscope_up"), 60)
        t.eq(ups, {"alive": 1, "qmp:" + frozen.qmp_path: 0, dead: 0},
             "Prometheus scraped vmscope_up for the three VMs", ups)
        t.eq(promql(prom_port, 'up{job="vmscope"}'), {"vmscope": 1},
             "Prometheus's own up: the scrape works though a VM is frozen")
        dur = promql(prom_port, 'scrape_duration_seconds{job="vmscope"}')
        t.ok(dur and dur["vmscope"] < 0.5, "Prometheus measured the scrape at %s s" % dur)
        got = promql(prom_port, 'vmscope_guest_memory_total_bytes')
        t.eq(got, {"alive": mem_total}, "Prometheus holds the guest's MemTotal for the running "
             "VM only")
        rate = wait_for(lambda: promql(prom_port,
                                       'rate(vmscope_vcpu_seconds_total{vm="alive"}[5s])'), 30)
        t.ok(rate and 0 < rate["alive"] <= 1.05,
             "rate(vmscope_vcpu_seconds_total) is a share of one vCPU: %s" % rate)
        prom.send_signal(signal.SIGTERM)
        prom.wait(timeout=30)
        check_hang(t, g, url)
        ex.send_signal(signal.SIGINT)
        t.eq(ex.wait(timeout=30), 0, "the exporter stops cleanly on SIGINT, frozen VM and all")
        os.kill(frozen.pid, signal.SIGCONT)


def check_estimates(t):
    """With the guest read only every 4th turn, the exporter estimates its CPU use at
    every turn from host vCPU time, by a model refitted at each introspection. After
    40 s of a varying load: its estimates matched the introspections that followed
    them, and they follow a CPU burst and the quiet after it."""
    with vmguest.Guest(workload="metrics", name="estimated", control=True) as g:
        port = free_port()
        ex = track(subprocess.Popen(
            [VMSCOPE, "exporter", "--listen", "127.0.0.1:%d" % port, "--interval", "0.5",
             "--guest-every", "4", "qmp:" + g.qmp_path], stderr=subprocess.PIPE, text=True))
        ex.stderr.readline()
        url = "http://127.0.0.1:%d/metrics" % port
        stamps = set()
        run = len(g._read(g.truth_path))
        g.send("vary")
        deadline = time.monotonic() + 120
        while "DONE vary" not in g._read(g.truth_path)[run:] and time.monotonic() < deadline:
            stamps.add(value(parse(http_get(url)[0]), "vmscope_guest_sample_timestamp_seconds",
                             vm="estimated"))
            time.sleep(0.25)
        samples = parse(http_get(url)[0])
        fit = value(samples, "vmscope_guest_estimate_fit_percent", vm="estimated",
                    series="guest_cpu_busy")
        t.ok(fit is not None and fit >= 80, "after 40 s of varying load, the CPU estimates "
             "matched the introspections that followed them: fit %s %%" % fit)
        t.ok(len(stamps) < 60, "the guest was read only every 4th turn: %d distinct guest "
             "sample times over ~80 turns" % len(stamps))
        est = []
        run = len(g._read(g.truth_path))
        g.send("burn")
        while "DONE burn" not in g._read(g.truth_path)[run:]:
            est.append(value(parse(http_get(url)[0]), "vmscope_guest_estimate", vm="estimated",
                             series="guest_cpu_busy"))
            time.sleep(0.2)
        t.ok(est and max(e for e in est if e is not None) > 0.7,
             "during a 2 s CPU burst the estimate rises: %s" % est)
        time.sleep(1.5)
        est = []
        for _ in range(5):
            est.append(value(parse(http_get(url)[0]), "vmscope_guest_estimate", vm="estimated",
                             series="guest_cpu_busy"))
            time.sleep(0.25)
        t.ok(min(e for e in est if e is not None) < 0.3, "and falls when the guest is idle "
             "again: %s" % est)
        ex.send_signal(signal.SIGINT)
        t.eq(ex.wait(timeout=30), 0, "the exporter with estimates stops cleanly")


def check_bad_listen(t):
    r = subprocess.run([VMSCOPE, "exporter", "--listen", "nowhere", "qmp:/x"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    t.one_line_error(r, "--listen without a port: one-line error", "HOST:PORT")


def main():
    t = Tap()
    t.run("exporter", check_exporter)
    t.run("estimates", check_estimates)
    t.run("bad listen", check_bad_listen)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
