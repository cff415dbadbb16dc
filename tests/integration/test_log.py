#!/usr/bin/env python3
"""The durable event log on a traced guest (workload tracer, fork/exec
rounds): what `trace --json --log DIR` printed live comes back byte for byte
from `log replay` and `log query`, filters give exactly the matching
subset, replay keeps the original spacing, a replay reaches a real
redis-server; then a writer killed with SIGKILL at random moments of a busy
trace, again and again: the log verifies, every event the writer said was
durable is there, in order, once; damage is found."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from harness import flip_bits, VMSCOPE, Tap, vmscope, vmguest, track
from test_redis import Redis, entries, free_port
from test_trace import kill_trace, run_round, start_trace, stop_trace


def rfc3339(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)


def lines_of(path):
    with open(path) as f:
        return f.read().splitlines()


def check_round_trip(t, g, d):
    tr = start_trace(g, "--events", "exec,fork,exit", "--log", d)
    run_round(g, "bench")
    run_round(g, "lifetimes")
    _, err, rc = stop_trace(tr)
    live = lines_of(tr.out_path)
    events = [json.loads(l) for l in live]
    t.ok(rc == 0 and len(events) > 300 and "vmscope: log: %d events durable" % len(events) in err,
         "trace --log: %d events traced, all of them durable when it ends" % len(events), err)

    r = vmscope("log", "replay", d, "--sink", "jsonl", "--as-fast-as-possible")
    t.ok(r.returncode == 0 and r.stdout.splitlines() == live,
         "log replay --sink jsonl: the very lines trace printed (every attribute, every "
         "timestamp)", r.stderr)

    r = vmscope("log", "stats", d, "--json")
    s = json.loads(r.stdout) if r.returncode == 0 else {}
    times = [e["time_ns"] for e in events]
    t.ok(s.get("events") == len(events) and s.get("types") == dict(Counter(
        e["type"] for e in events)) and s.get("vms") == {g.name: len(events)} and
         s.get("first_ns") == min(times) and s.get("last_ns") == max(times) and
         0 < s["stored_bytes"] < s["raw_bytes"] and s["damaged_frames"] == 0,
         "log stats: events by type and VM, time range, bytes stored below bytes of records", s)

    lo, hi = sorted(times)[len(times) // 3], sorted(times)[2 * len(times) // 3]
    want = [l for l, e in zip(live, events) if lo <= e["time_ns"] <= hi and
            e["type"] in ("exec", "exit")]
    r = vmscope("log", "query", d, "--since", rfc3339(lo), "--until", rfc3339(hi), "--type",
                "exec,exit", "--json")
    t.ok(r.returncode == 0 and want and r.stdout.splitlines() == want,
         "log query --since --until --type exec,exit: exactly the %d matching events" % len(want),
         r.stderr)
    r = vmscope("log", "query", d, "--vm", "no-such-vm", "--json")
    t.ok(r.returncode == 0 and r.stdout == "", "log query --vm: another VM's name matches nothing")
    r = vmscope("log", "query", d, "--type", "exec")
    t.ok(r.returncode == 0 and len(r.stdout.splitlines()) == sum(e["type"] == "exec"
                                                                 for e in events) and
         all(" %s exec " % g.name in l for l in r.stdout.splitlines()),
         "log query (text): a line per exec, with its time and VM", r.stdout[:300])
    r = vmscope("log", "verify", d)
    t.ok(r.returncode == 0 and r.stdout.endswith("0 problems\n"), "log verify: a clean log "
         "passes", r.stdout)
    return events, live


def check_timing(t, d, events, live):
    """--speed 1 spaces events as they happened; --speed 4 four times closer."""
    span = [e for e in events if e["type"] == "exec"][:40]
    lo, hi = span[0]["time_ns"], span[-1]["time_ns"]
    for speed in (1, 4):
        p = subprocess.Popen([VMSCOPE, "log", "replay", d, "--sink", "jsonl", "--speed",
                              str(speed), "--since", rfc3339(lo), "--until", rfc3339(hi)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        track(p)
        got = []
        for line in p.stdout:
            got.append((time.monotonic(), json.loads(line)["time_ns"]))
        p.wait()
        start_wall, start_ns = got[0]
        worst = max(abs((w - start_wall) - (ns - start_ns) / 1e9 / speed) for w, ns in got)
        t.ok(p.returncode == 0 and len(got) >= 40 and worst < 0.15,
             "log replay --speed %d: %d events over %.2f s of log time, each on time within "
             "%.3f s" % (speed, len(got), (hi - lo) / 1e9, worst))


def check_redis_replay(t, d, live):
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as rd:
        redis = Redis(free_port(), rd)
        try:
            redis.start()
            r = vmscope("log", "replay", d, "--sink", "redis://127.0.0.1:%d/replayed" %
                        redis.port, "--as-fast-as-possible")
            got = entries(redis.xrange("replayed"))
            first = json.loads(live[0])
            t.ok(r.returncode == 0 and len(got) == len(live) and
                 got[0]["type"] == first["type"] and int(got[0]["time_ns"]) == first["time_ns"],
                 "log replay --sink redis: all %d events in a real redis-server's stream, "
                 "first one intact" % len(live), r.stderr)
        finally:
            redis.stop()


class Rounds(threading.Thread):
    """Keeps the guest busy forking and execing until told to stop."""

    def __init__(self, g):
        super().__init__(daemon=True)
        self.g, self.stop, self.error = g, threading.Event(), None

    def run(self):
        try:
            while not self.stop.is_set():
                run_round(self.g, "bench")
        except Exception as e:  # the test reports it
            self.error = e


def log_lines(d):
    r = vmscope("log", "query", d, "--json")
    return r.stdout.splitlines() if r.returncode == 0 else None


def check_crashes(t, g, d, kills=6):
    rounds = Rounds(g)
    rounds.start()
    rng = random.Random(13)
    before, ok_all, detail = [], True, []
    try:
        for i in range(kills):
            out = os.path.join(g.rundir, "crash-%d.jsonl" % i)
            with open(out, "w") as f:
                tr = subprocess.Popen([VMSCOPE, "trace", "qmp:" + g.qmp_path, "--events",
                                       "exec,fork,exit", "--json", "--log", d, "--log-sync",
                                       "50", "--log-acks"], stdout=f, stderr=subprocess.PIPE,
                                      text=True)
            track(tr)
            line = tr.stderr.readline()
            while line and "tracing" not in line:
                line = tr.stderr.readline()
            time.sleep(rng.uniform(0.3, 2.5))
            kill_trace(tr)
            acks = [int(l.split()[1]) for l in tr.stderr.read().splitlines()
                    if l.startswith("log: ") and l.endswith(" events durable")]
            r = vmscope("log", "verify", d)
            logged = log_lines(d)
            mine = logged[len(before):] if logged is not None else []
            printed = lines_of(out)
            if printed and not printed[-1].endswith("}"):
                printed.pop()  # a line cut by the kill
            n = min(len(mine), len(printed))
            good = (r.returncode == 0 and logged is not None and logged[:len(before)] == before
                    and len(mine) >= (acks[-1] if acks else 0) and mine[:n] == printed[:n])
            detail.append("kill %d after %d durable: %d logged, %d printed, verify %d"
                          % (i, acks[-1] if acks else 0, len(mine), len(printed), r.returncode))
            ok_all &= good
            if not good:
                detail.append(r.stdout)
            before = logged or before
    finally:
        rounds.stop.set()
        rounds.join(timeout=120)
    t.ok(ok_all and rounds.error is None and len(before) > 0,
         "SIGKILL of the writer %d times during a busy trace: each time the log verifies, "
         "holds every event acknowledged durable, in order, as printed" % kills,
         "\n".join(detail) + ("\nrounds: %r" % rounds.error if rounds.error else ""))
    t.ok(len(set(before)) == len(before), "... and no event is there twice (%d in all)"
         % len(before))
    # A writer that ends cleanly cuts the last torn tail and seals everything.
    tr = start_trace(g, "--events", "exec", "--log", d, "--duration", "1")
    stop_trace(tr)
    r = vmscope("log", "verify", d)
    s = json.loads(vmscope("log", "stats", d, "--json").stdout)
    t.ok(r.returncode == 0 and "note:" not in r.stdout and s["segments"] == s["sealed"] and
         s["torn_bytes"] == 0 and log_lines(d)[:len(before)] == before,
         "the next writer cuts the torn tail and seals the segments; nothing before it lost",
         r.stdout)


def check_damage(t, d):
    seg = sorted(p for p in os.listdir(d) if p.endswith(".vlog"))[0]
    path = os.path.join(d, seg)
    total = len(log_lines(d))
    flip_bits(path, 40 + 64 + 20, 0x20)  # in the first frame's payload
    r = vmscope("log", "verify", d)
    t.ok(r.returncode == 1 and "damage: %s: bytes 40 to " % path in r.stdout and
         re.search(r"; [1-9]\d* problems?$", r.stdout.strip()),
         "log verify: a flipped bit in a sealed segment is damage, named by file and offset",
         r.stdout)
    r = vmscope("log", "query", d, "--json")
    t.ok(r.returncode == 0 and 0 < len(r.stdout.splitlines()) < total and
         "damaged frames skipped" in r.stderr,
         "log query: the damaged frame is skipped and said so, the rest is read", r.stderr)
    flip_bits(path, 40 + 64 + 20, 0x20)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 3)
    r = vmscope("log", "verify", d)
    t.ok(r.returncode == 1 and "index says" in r.stdout,
         "log verify: a sealed segment cut short is damage", r.stdout)
    r = vmscope("log", "verify", "/nonexistent/log")
    t.ok(r.returncode == 1 and r.stderr.count("\n") == 1 and "No such file" in r.stderr,
         "log verify of a missing directory: one line naming the cause", r.stderr)


def check_metrics_log(t, g, d):
    """record-metrics --out CSV --log DIR: each row's series are the events' values."""
    csv = os.path.join(g.rundir, "series.csv")
    r = vmscope("record-metrics", "qmp:" + g.qmp_path, "--out", csv, "--log", d,
                "--interval", "0.5", "--duration", "3")
    with open(csv) as f:
        head, *rows = [l.rstrip("\n").split(",") for l in f]
    q = vmscope("log", "query", d, "--json")
    events = [json.loads(l) for l in q.stdout.splitlines()]
    samples = {}
    for e in events:
        side = e["type"].split("_")[0]
        for k, v in e.items():
            if k not in ("time", "time_ns", "vm", "source", "type", "part"):
                samples.setdefault(e["time_ns"], {})["%s_%s" % (side, k)] = v
    got = [samples[k] for k in sorted(samples)]
    want = [{h: float(v) for h, v in zip(head[1:], row[1:]) if v != ""} for row in rows]
    close = len(got) == len(want) == 6 and all(
        g_.keys() == w.keys() and all(abs(g_[k] - w[k]) <= 1e-6 * max(1, abs(w[k])) for k in w)
        for g_, w in zip(got, want))
    t.ok(r.returncode == 0 and close and {e["type"] for e in events} ==
         {"host_metrics", "guest_metrics"} and all(e["source"] == "monitor" for e in events),
         "record-metrics --log: 6 samples' series as host_metrics and guest_metrics events, "
         "the values the CSV has", (r.stderr, len(got), len(want)))


def main():
    t = Tap()
    with tempfile.TemporaryDirectory(prefix="vmscope-test-log-") as top, \
            vmguest.Guest(workload="tracer", name="logged", control=True) as g:
        d = os.path.join(top, "log")
        events, live = check_round_trip(t, g, d)
        check_timing(t, d, events, live)
        check_redis_replay(t, d, live)
        check_metrics_log(t, g, os.path.join(top, "metrics"))
        crash = os.path.join(top, "crash")
        check_crashes(t, g, crash)
        check_damage(t, crash)
    sys.exit(t.done())


if __name__ == "__main__":
    main()
