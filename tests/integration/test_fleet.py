#!/usr/bin/env python3
"""Beyond one host, on existing engines: two vmscoped daemons (two "hosts", h1 and h2),
each tracing a guest of its own, publish their events to a 3-node NATS cluster with
JetStream (one stream, 3 replicas) while one node is killed mid-stream, and h2 into Redis
as well through a Redis restart; one real Prometheus scrapes both daemons. Ground truth:
each guest's log of the execs it made; each event must be in the stream exactly once, as
many as the daemon says JetStream acknowledged, nothing dropped."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from harness import Tap, vmguest, track
import test_daemon
import test_trace
from test_redis import Redis, entries, free_port

NATS_FETCH = os.environ.get("NATS_FETCH_BIN", os.path.join(
    os.path.dirname(test_daemon.VMSCOPED), "..", "tests", "integration", "nats_fetch"))


class NatsCluster:
    """Three nats-server nodes with JetStream on loopback ports, stopped by pid."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.nodes = []
        for i in range(3):
            self.nodes.append({"name": "n%d" % (i + 1), "port": free_port(),
                               "cluster": free_port(), "http": free_port(), "proc": None})

    def urls(self, alive_only=False):
        return ",".join("nats://127.0.0.1:%d" % n["port"] for n in self.nodes
                        if not alive_only or (n["proc"] and n["proc"].poll() is None))

    def start(self):
        for n in self.nodes:
            routes = ", ".join("nats-route://127.0.0.1:%d" % m["cluster"] for m in self.nodes
                               if m is not n)
            store = os.path.join(self.workdir, n["name"])
            conf = os.path.join(self.workdir, n["name"] + ".conf")
            with open(conf, "w") as f:
                f.write("server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"
                        "jetstream { store_dir: \"%s\" }\n"
                        "cluster { name: vmscope\n listen: 127.0.0.1:%d\n routes: [%s] }\n"
                        % (n["name"], n["port"], n["http"], store, n["cluster"], routes))
            n["proc"] = track(subprocess.Popen(
                ["nats-server", "-c", conf], stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(self.workdir, n["name"] + ".log"), "w")))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(self.jetstream_ready(n) for n in self.nodes):
                return
            time.sleep(0.3)
        raise RuntimeError("the NATS cluster did not elect a JetStream leader")

    def jetstream_ready(self, n):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/jsz" % n["http"], timeout=2) as r:
                return json.loads(r.read()).get("meta_cluster", {}).get("leader")
        except OSError:
            return None

    def clients(self, n):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/connz" % n["http"], timeout=2) as r:
                return json.loads(r.read()).get("num_connections", 0)
        except OSError:
            return 0

    def kill(self, i):
        p = self.nodes[i]["proc"]
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self):
        for n in self.nodes:
            p = n["proc"]
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def figures(metrics):
    """vmscoped_forward_events_total and _buffered, by sink and state."""
    got = {}
    for m in re.finditer(r'^vmscoped_forward_events_total\{host="[^"]+",sink="(\w+)",'
                         r'state="(\w+)"\} (\d+)$', metrics, re.M):
        got[(m.group(1), m.group(2))] = int(m.group(3))
    for m in re.finditer(r'^vmscoped_forward_buffered\{host="[^"]+",sink="(\w+)"\} (\d+)$',
                         metrics, re.M):
        got[(m.group(1), "buffered")] = int(m.group(2))
    m = re.search(r'^vmscoped_events_published_total\{host="[^"]+"\} (\d+)$', metrics, re.M)
    got["published"] = int(m.group(1)) if m else -1
    return got


def metrics_of(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            return r.read().decode()
    except OSError:  # not listening yet
        return ""


def start_prometheus(d, ports):
    config = os.path.join(d, "prometheus.yml")
    port = free_port()
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vmscoped\n"
                "    static_configs:\n      - targets: [%s]\n"
                % ", ".join("'127.0.0.1:%d'" % p for p in ports))
    proc = track(subprocess.Popen(
        ["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(d, "tsdb"),
         "--web.listen-address=127.0.0.1:%d" % port],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "prometheus.log"), "w")))
    return proc, port


def check_fleet(t):
    with tempfile.TemporaryDirectory(prefix="vmscoped-fleet-") as d, \
            vmguest.Guest(name="g1", workload="tracer", control=True) as g1, \
            vmguest.Guest(name="g2", workload="tracer", control=True) as g2:
        cluster = NatsCluster(d)
        redis = Redis(free_port(), d)
        daemons, prom = [], None
        try:
            cluster.start()
            redis.start()
            for host, g in (("h1", g1), ("h2", g2)):
                qdir = os.path.join(d, host)
                os.mkdir(qdir)
                os.symlink(g.qmp_path, os.path.join(qdir, "web.qmp"))  # "web" on both hosts
                port = free_port()
                conf = os.path.join(d, host + ".conf")
                with open(conf, "w") as f:
                    f.write("[daemon]\nqmp-dir = %s\nlisten = 127.0.0.1:%d\nhost = %s\n"
                            "nats = %s\nnats-replicas = 3\n%s[defaults]\ntrace = exec\n"
                            % (qdir, port, host, cluster.urls(),
                               "redis = redis://127.0.0.1:%d/vmscope-{vm}\n" % redis.port
                               if host == "h2" else ""))
                daemons.append({"host": host, "guest": g, "port": port, "proc": track(
                    subprocess.Popen([test_daemon.VMSCOPED, "--config", conf],
                                     stderr=open(os.path.join(d, host + ".err"), "w")))})
            ok = test_daemon.wait_for(lambda: all(
                '{host="%s",vm="web",capability="trace"} 1' % x["host"] in metrics_of(x["port"])
                for x in daemons), 120)
            t.ok(ok, "two daemons, h1 and h2, each tracing its guest \"web\"")
            prom, prom_port = start_prometheus(d, [x["port"] for x in daemons])

            execs = {"h1": 0, "h2": 0}

            def rounds(n):
                for x in daemons:
                    for _ in range(n):
                        lines = test_trace.run_round(x["guest"], "round")
                        execs[x["host"]] += lines.count("EXEC /bin/true")
            rounds(1)
            # The node a daemon publishes through, gone mid-stream: the stream keeps a
            # quorum of two, the daemon's connection moves to another node.
            busiest = max(range(3), key=lambda i: cluster.clients(cluster.nodes[i]))
            held = cluster.clients(cluster.nodes[busiest])
            cluster.kill(busiest)
            redis.stop()  # and Redis away for a round
            rounds(1)
            redis.start()
            rounds(1)
            for g in (g1, g2):  # no event after this: the counts below are final
                g.qmp("stop")

            def settled():
                figs = [figures(metrics_of(x["port"])) for x in daemons]
                return all(f.get(("nats", "buffered")) == 0 and f["published"] ==
                           f.get(("nats", "written")) == f.get(("nats", "acknowledged"))
                           for f in figs) and \
                    figures(metrics_of(daemons[1]["port"])).get(("redis", "buffered")) == 0 \
                    and figs
            figs = test_daemon.wait_for(settled, 90)
            t.ok(figs and held >= 1, "both daemons: every event written acknowledged by "
                 "JetStream, nothing waiting, though the node %d of them published through "
                 "was killed" % held, [figures(metrics_of(x["port"])) for x in daemons])
            figs = figs or [figures(metrics_of(x["port"])) for x in daemons]

            r = subprocess.run([NATS_FETCH, cluster.urls(alive_only=True), "VMSCOPE",
                                "checker"], capture_output=True, text=True, timeout=120)
            msgs = [json.loads(l) for l in r.stdout.splitlines()]
            t.ok(r.returncode == 0 and msgs, "a durable consumer reads the stream from the "
                 "two nodes left", r.stderr[-500:])
            for x, f in zip(daemons, figs):
                host = x["host"]
                mine = [m for m in msgs if m["subject"].startswith("vmscope.%s." % host)]
                ids = [m["msg_id"] for m in mine]
                t.ok(len(ids) == len(set(ids)) == f.get(("nats", "acknowledged")) > 0 and
                     not f.get(("nats", "dropped")) and not f.get(("nats", "missed")),
                     "%s: each acknowledged event in the stream exactly once (%d), none "
                     "dropped or missed" % (host, len(ids)), (len(ids), len(set(ids)), f))
                true_execs = [m for m in mine if m["subject"] == "vmscope.%s.web.exec" % host
                              and m["data"].get("argv") == "/bin/true" and
                              m["data"].get("vm") == "web"]
                t.eq(len(true_execs), execs[host], "%s: an exec message on vmscope.%s.web.exec "
                     "for each /bin/true its guest ran, the node killed or not" % (host, host))
            again = subprocess.run([NATS_FETCH, cluster.urls(alive_only=True), "VMSCOPE",
                                    "checker"], capture_output=True, text=True, timeout=120)
            t.ok(r.returncode == 0 and again.returncode == 0 and not again.stdout,
                 "the durable consumer, run again, has nothing left: it resumes where it "
                 "acked", again.stdout[:300])
            stream = entries(redis.xrange("vmscope-web"))
            t.ok(len(stream) == figs[1].get(("redis", "acknowledged")) ==
                 figs[1].get(("redis", "written")) and not figs[1].get(("redis", "dropped")),
                 "h2 into Redis as well: every event, through a Redis restart (%d)"
                 % len(stream), (len(stream), figs[1]))

            def query(expr):
                url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (
                    prom_port, urllib.parse.quote(expr))
                try:
                    with urllib.request.urlopen(url, timeout=10) as resp:
                        return json.loads(resp.read())["data"]["result"]
                except OSError:
                    return []
            up = test_daemon.wait_for(lambda: {r["metric"].get("host") for r in query(
                'vmscope_up{vm="web"} == 1')} == {"h1", "h2"}, 60)
            t.ok(up, "a real Prometheus scrapes both daemons: vmscope_up of \"web\" on h1 and "
                 "on h2, told apart by the host label", query("vmscope_up"))
            acked = {r["metric"]["host"]: float(r["value"][1]) for r in query(
                'vmscoped_forward_events_total{sink="nats",state="acknowledged"}')}
            t.ok(acked.get("h1", 0) > 0 and acked.get("h2", 0) > 0,
                 "and each one's JetStream acknowledgements", acked)
        finally:
            for x in daemons:
                x["proc"].send_signal(signal.SIGTERM)
            for x in daemons:
                try:
                    x["proc"].wait(timeout=60)
                except subprocess.TimeoutExpired:
                    x["proc"].kill()
                    x["proc"].wait()
            if prom:
                prom.terminate()
                prom.wait(timeout=30)
            cluster.stop()
            redis.stop()
            errs = [open(os.path.join(d, x["host"] + ".err")).read()[-800:] for x in daemons]
        t.ok(daemons and all(x["proc"].returncode == 0 for x in daemons),
             "both daemons stop cleanly", errs)


def main():
    t = Tap()
    t.run("vmscoped fleet: NATS JetStream, Redis, Prometheus", check_fleet)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
