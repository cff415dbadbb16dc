#!/usr/bin/env python3
"""Guest disk write throughput with vmscope attached versus without, in one
run on one guest (workload ddbench: 1 MiB and 4 KiB direct writes, timed
inside the guest), per capture mode. CYCLES times over: ROUNDS rounds without
vmscope; then for each mode (blocking: write-blocking mirror; background: the
guest never waits; bitmap: a dirty bitmap polled every 100 ms, and every
second as bitmap@1000) ROUNDS of the floor (for a mirror, mirrored to QEMU's
own qemu-nbd serving a null device: what that mirror costs with the leanest
target QEMU ships; for the bitmap, the bitmap alone, never read), ROUNDS
with `vmscope capture` (events to /dev/null), ROUNDS with
`vmscope fswatch` (the ext4 engine on every write); interleaving spreads the
machine's drift over all conditions. Figures: the median over all rounds of
each condition, and its ratio to none.

Then, on a second guest (workload fsops, round "latency"), the delay from
commit to event per mode: 40 files each made and synced, the guest saying so
on its control port the moment sync returns; the delay is the fswatch
event's time minus the time that line reached the host (negative: the event
was out before the guest's sync returned). p50 and p99.

Usage: bench/bench_capture.py [VMSCOPE_BINARY] [ROUNDS] [CYCLES]
"""
import json
import threading
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


MODES = ("blocking", "background", "bitmap", "bitmap@1000")
COPY_MODE = {"blocking": "write-blocking", "background": "background"}


def mode_args(mode):
    """ "bitmap@1000": the bitmap mode, polled every 1000 ms."""
    name, _, interval = mode.partition("@")
    return ["--mode", name] + (["--interval", interval] if interval else [])


def attached(binary, g, tool, n, mode):
    """n rounds with tool attached in a capture mode: (samples, its summary line)."""
    ready = {"capture": "capturing", "fswatch": "watching"}[tool]
    proc = subprocess.Popen([binary, tool, "qmp:" + g.qmp_path, "--disk", "disk0"] +
                            mode_args(mode),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # the mirror is in place
    if ready not in line:
        raise SystemExit("%s did not start: %s" % (tool, line))
    samples = collect(g, n)
    proc.send_signal(signal.SIGINT)
    return samples, proc.communicate(timeout=120)[1].strip()


def reference(g, n, workdir, mode):
    """The floor of a mode: n rounds mirrored to QEMU's own NBD server (qemu-nbd over a
    null device), the same mirror with the leanest target QEMU itself ships; for the
    bitmap, the dirty bitmap alone, never read."""
    if mode.startswith("bitmap"):
        g.qmp("block-dirty-bitmap-add", node="disk0", name="ref-bitmap", granularity=4096)
        try:
            return collect(g, n)
        finally:
            g.qmp("block-dirty-bitmap-remove", node="disk0", name="ref-bitmap")
    sock = os.path.join(workdir, "ref.sock")
    size = [x for x in g.qmp("query-named-block-nodes")
            if x["node-name"] == "disk0"][0]["image"]["virtual-size"]
    srv = subprocess.Popen(["qemu-nbd", "--socket=" + sock, "--persistent",
                            "--image-opts", "driver=null-co,size=%d" % size],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            if time.monotonic() > deadline:
                raise SystemExit("qemu-nbd did not start")
            time.sleep(0.05)
        g.qmp("blockdev-add", driver="nbd", **{"node-name": "ref-nbd"},
              server={"type": "unix", "path": sock})
        g.qmp("blockdev-mirror", **{"job-id": "ref-mirror", "device": "disk0",
                                    "target": "ref-nbd", "sync": "none",
                                    "copy-mode": COPY_MODE[mode]})
        while not [j for j in g.qmp("query-block-jobs") if j.get("ready")]:
            time.sleep(0.05)
        samples = collect(g, n)
        g.qmp("block-job-cancel", device="ref-mirror")
        while g.qmp("query-block-jobs"):
            time.sleep(0.05)
        g.qmp("blockdev-del", **{"node-name": "ref-nbd"})
        return samples
    finally:
        srv.terminate()
        srv.wait()


def delays(binary, mode):
    """Commit-to-event delays (ms) of the latency round, fswatch in mode."""
    synced = {}
    with vmguest.Guest(workload="fsops", name="latency", control=True) as g:
        proc = subprocess.Popen([binary, "fswatch", "qmp:" + g.qmp_path, "--disk", "disk0"] +
                                mode_args(mode), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        line = proc.stderr.readline()
        if "watching" not in line:
            proc.kill()
            raise SystemExit("fswatch did not start: " + line)
        g.send("latency")
        sock = g._control_sock

        def listen():
            buf = b""
            while len(synced) < 40:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                now = time.time_ns()
                buf += chunk
                while b"\n" in buf:
                    l, buf = buf.split(b"\n", 1)
                    l = l.decode(errors="replace").strip()
                    if l.startswith("SYNCED "):
                        synced[l.split()[1]] = now
        reader = threading.Thread(target=listen, daemon=True)
        reader.start()
        reader.join(300)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    made = {}
    for l in out.splitlines():
        e = json.loads(l)
        if e["action"] == "create" and e["path"] in synced:
            made.setdefault(e["path"], e["time_ns"])
    return sorted((made[p] - synced[p]) / 1e6 for p in made), len(synced)


def pct(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-bench", "tools",
                                                                  "vmscope", "vmscope")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    cycles = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    conditions = ["%s %s" % (tool, mode) for mode in MODES
                  for tool in ("floor", "capture", "fswatch")]
    runs = {c: [] for c in ["none"] + conditions}
    summaries = {}
    with vmguest.Guest(workload="ddbench", name="ddbench") as g:
        for _ in range(cycles):
            runs["none"] += collect(g, n)
            for mode in MODES:
                runs["floor " + mode] += reference(g, n, g.rundir, mode)
                for tool in ("capture", "fswatch"):
                    samples, summaries[tool + " " + mode] = attached(binary, g, tool, n, mode)
                    runs[tool + " " + mode] += samples
    print("guest: 256 MiB, TCG, virtio-blk, raw image; %d cycles of %d rounds per condition, "
          "medians" % (cycles, n))
    print("MB/s, and in brackets the ratio to none; floor: for a mirror, the same mirror to "
          "QEMU's own NBD server on a null device, the floor for any target in that mode; "
          "for the bitmap, the bitmap alone")
    for kind, label in (("seq", "1 MiB direct, sequential"), ("4k", "4 KiB direct")):
        base = rate(runs["none"], kind)
        print("%s: none %.2f" % (label, base))
        for c in conditions:
            print("  %-20s %9.2f (%.2f)" % (c, rate(runs[c], kind), rate(runs[c], kind) / base))
    for c in sorted(summaries):
        print("%s (last cycle): %s" % (c, summaries[c]))
    print("commit to event, ms (40 files, each synced; negative: before sync returned):")
    for mode in MODES:
        d, seen = delays(binary, mode)
        print("  %-12s p50 %7.1f  p99 %7.1f  (%d of %d files seen)"
              % (mode, pct(d, 0.5), pct(d, 0.99), len(d), seen))


if __name__ == "__main__":
    main()
