#!/usr/bin/env python3
"""Disk-write capture on a live guest, through QEMU's active mirror to
vmscope's NBD server. Ground truth: the guest logs each 4 KiB direct write of
a numbered pattern; where each pattern landed is read back from the disk image
itself. The guest must never notice: it keeps writing during capture, after a
clean detach, and after vmscope is killed with SIGKILL."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import VMSCOPE, Tap, vmscope, vmguest, track


def wrote(g):
    return [int(m) for m in re.findall(r"^WROTE (\d+)$", g._read(g.truth_path), re.M)]


def wait_for_writes(g, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = wrote(g)
        if len(done) >= count:
            return done
        time.sleep(0.1)
    raise RuntimeError("the guest stopped writing (%d writes)" % len(wrote(g)))


def pattern_offsets(image):
    data = open(image, "rb").read()
    return {int(m.group(1)): m.start() for m in re.finditer(rb"vmscope-pattern-(\d{6})", data)}


def start_capture(g, *extra):
    """Start vmscope capture and wait until it says the mirror is in place."""
    cap = subprocess.Popen([VMSCOPE, "capture", "qmp:" + g.qmp_path, "--disk", "disk0"] +
                           list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    track(cap)
    line = cap.stderr.readline()
    if "capturing writes" not in line:
        cap.kill()
        raise RuntimeError("capture did not start: " + line + cap.stderr.read())
    return cap


def check_capture(t):
    with vmguest.Guest(workload="writer", name="writer") as g, \
            tempfile.TemporaryDirectory(prefix="vmscope-test-") as logdir:
        wait_for_writes(g, 2)
        cap = start_capture(g, "--log", logdir)
        first = len(wrote(g)) + 1  # a write under way at the attach may be half seen
        wait_for_writes(g, first + 3)
        cap.send_signal(signal.SIGINT)
        out, err = cap.communicate(timeout=60)
        events = [json.loads(l) for l in out.splitlines()]
        t.eq(cap.returncode, 0, "capture exits 0 after SIGINT")
        t.ok(re.match(r"vmscope: captured \d+ writes .* 0 not queued; log: %d events durable, "
                      r"\d+ bytes stored" % len(events), err.strip()),
             "capture ends with a one-line summary, nothing dropped, every event logged", err)
        r = vmscope("log", "query", logdir, "--json")
        t.ok(r.returncode == 0 and [json.loads(l) for l in r.stdout.splitlines()] == events,
             "capture --log: the log holds exactly the events the sink got", r.stderr)
        offsets = pattern_offsets(os.path.join(g.rundir, "data.img"))
        writes = {(e["offset"], e["length"]) for e in events if e["type"] == "disk_write"}
        expected = range(first, first + 3)
        missing = [i for i in expected if (offsets.get(i), 4096) not in writes]
        t.ok(not missing and all(i in offsets for i in expected),
             "each 4 KiB direct write the guest made during capture was captured at the offset "
             "where its data landed (%d writes)" % len(expected),
             "missing %s; captured %s" % (missing, sorted(writes)[:20]))
        t.ok(all(e["vm"] == "writer" and e["source"] == "disk" and e["disk"] == "disk0"
                 for e in events), "events name the VM, the source and the disk")

        after = len(wrote(g))
        wait_for_writes(g, after + 2)
        t.eq(g.qmp("query-status")["status"], "running", "after detach: the VM runs")
        t.eq(g.qmp("query-block-jobs"), [], "after detach: no block job is left")
        nodes = [n["node-name"] for n in g.qmp("query-named-block-nodes")]
        t.ok(not any(n.startswith("vmscope-") for n in nodes),
             "after detach: the NBD node is removed", nodes)
        t.ok(not [p for p in os.listdir("/tmp") if p.startswith("vmscope-nbd-%d-" % cap.pid)],
             "after detach: the NBD socket directory is removed")

        cap = start_capture(g)
        cap.kill()
        cap.wait()
        # A killed vmscope cannot remove its socket directory: the test does.
        for p in os.listdir("/tmp"):
            if p.startswith("vmscope-nbd-%d-" % cap.pid):
                shutil.rmtree(os.path.join("/tmp", p), ignore_errors=True)
        before = len(wrote(g))
        wait_for_writes(g, before + 3, timeout=30)
        t.eq(g.qmp("query-status")["status"], "running",
             "vmscope killed with SIGKILL mid-capture: the guest keeps writing, the VM runs")

        r = vmscope("capture", "qmp:" + g.qmp_path, "--disk", "nosuchdisk", "--duration", "1")
        t.one_line_error(r, "capture of an unknown disk: one-line error", "no block node")


def dirty_bitmaps(g):
    return [b["name"] for n in g.qmp("query-named-block-nodes")
            for b in n.get("dirty-bitmaps", [])]


def check_capture_bitmap(t):
    """The dirty-bitmap mode: each write inside an extent of a poll; nothing left behind,
    even by a vmscope killed mid-capture (the next capture removes its bitmap)."""
    with vmguest.Guest(workload="writer", name="bitmap") as g:
        wait_for_writes(g, 2)
        cap = start_capture(g, "--mode", "bitmap", "--interval", "100")
        first = len(wrote(g)) + 1
        wait_for_writes(g, first + 3)
        t.ok(g.qmp("query-block-jobs") == [] and
             any(n.startswith("vmscope-dirty-%d-" % cap.pid) for n in dirty_bitmaps(g)),
             "bitmap: a dirty bitmap on the node while capturing, no mirror job",
             dirty_bitmaps(g))
        cap.send_signal(signal.SIGINT)
        out, err = cap.communicate(timeout=60)
        events = [json.loads(l) for l in out.splitlines()]
        t.ok(cap.returncode == 0 and re.search(r"0 not queued; [1-9]\d* polls, the longest", err),
             "bitmap: capture exits 0, counts its polls", err)
        offsets = pattern_offsets(os.path.join(g.rundir, "data.img"))
        extents = [(e["offset"], e["offset"] + e["length"]) for e in events
                   if e["type"] == "disk_write"]
        expected = range(first, first + 3)
        missing = [i for i in expected if i not in offsets or
                   not any(a <= offsets[i] and offsets[i] + 4096 <= b for a, b in extents)]
        t.ok(not missing, "bitmap: each 4 KiB direct write the guest made during capture is "
             "inside a dirty extent (%d writes)" % len(expected),
             "missing %s; extents %s" % (missing, extents[:20]))
        t.eq(dirty_bitmaps(g), [], "bitmap: after detach, no dirty bitmap is left")
        t.eq(g.qmp("query-block-exports"), [], "bitmap: after detach, no export is left")

        killed = start_capture(g, "--mode", "bitmap")
        killed.kill()
        killed.wait()
        for p in os.listdir("/tmp"):
            if p.startswith("vmscope-read-%d-" % killed.pid):
                shutil.rmtree(os.path.join("/tmp", p), ignore_errors=True)
        left = dirty_bitmaps(g)
        exports = [x["id"] for x in g.qmp("query-block-exports")]
        r = vmscope("capture", "qmp:" + g.qmp_path, "--disk", "disk0", "--mode", "bitmap",
                    "--duration", "1")
        t.ok(r.returncode == 0 and left and exports and dirty_bitmaps(g) == [] and
             g.qmp("query-block-exports") == [],
             "bitmap: a killed vmscope's bitmap, export and NBD server (QEMU runs one) are "
             "cleared by the next capture",
             (left, exports, dirty_bitmaps(g), r.stderr))
        t.eq(g.qmp("query-status")["status"], "running", "bitmap: the VM runs")

        # Its bitmap taken away under it: the polls fail, the capture ends with the cause.
        cap = start_capture(g, "--mode", "bitmap", "--interval", "50")
        deadline = time.monotonic() + 10
        while cap.poll() is None and time.monotonic() < deadline:
            for name in dirty_bitmaps(g):
                try:
                    g.qmp("block-dirty-bitmap-remove", node="disk0", name=name)
                except vmguest.GuestError:
                    pass  # exported at that instant; the next round takes it
            time.sleep(0.02)
        out, err = cap.communicate(timeout=30)
        t.ok(cap.returncode == 1 and "dirty bitmap on disk0" in err and
             "not found" in err.lower(),
             "bitmap: a capture whose bitmap is removed by someone else ends on its own, "
             "saying why", err)
        t.ok(dirty_bitmaps(g) == [] and g.qmp("query-block-exports") == [] and
             g.qmp("query-status")["status"] == "running",
             "bitmap: after that failure nothing is left behind and the VM runs",
             (dirty_bitmaps(g), g.qmp("query-block-exports")))
        r = vmscope("capture", "qmp:" + g.qmp_path, "--disk", "disk0", "--interval", "100",
                    "--duration", "1")
        t.one_line_error(r, "capture --interval without --mode bitmap: one-line error",
                         "--mode bitmap")

        # A snapshot puts an overlay over disk0: the guest's writes no longer pass
        # through the bitmap's node. The capture must end, saying so, not go silent.
        cap = start_capture(g, "--mode", "bitmap", "--interval", "50")
        time.sleep(1)
        overlay = os.path.join(g.rundir, "overlay.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                        os.path.join(g.rundir, "data.img"), "-F", "raw", overlay], check=True)
        g.qmp("blockdev-add", driver="qcow2", **{"node-name": "ov"},
              file={"driver": "file", "filename": overlay}, backing=None)
        g.qmp("blockdev-snapshot", node="disk0", overlay="ov")
        try:
            out, err = cap.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            cap.kill()
            out, err = cap.communicate()
        t.ok(cap.returncode == 1 and "now writes through node ov, not disk0" in err,
             "bitmap: a snapshot that moves the guest's writes off the node ends the capture, "
             "saying why", err[-600:])


def device_stats(g):
    """QEMU's own accounting of what the guest's disk device was asked to do."""
    for dev in g.qmp("query-blockstats"):
        if dev.get("qdev", "").startswith("/machine/peripheral/vda/"):
            return dev["stats"]
    raise RuntimeError("no blockstats for the guest's disk device")


def check_capture_exact(t):
    """Nothing missing and nothing extra: with the guest paused at both ends,
    the captured requests are exactly those QEMU counted on the guest's device
    in between (its writes and write-zeroes, their bytes, its trims)."""
    with vmguest.Guest(workload="writer", name="writer") as g:
        wait_for_writes(g, 2)
        g.qmp("stop")
        before = device_stats(g)
        cap = start_capture(g)
        g.qmp("cont")
        wait_for_writes(g, len(wrote(g)) + 5)
        g.qmp("stop")
        after = device_stats(g)
        time.sleep(0.5)  # the last request's event is on its way to stdout
        cap.send_signal(signal.SIGINT)
        out, err = cap.communicate(timeout=60)
        g.qmp("cont")
        events = [json.loads(l) for l in out.splitlines()]
        delta = {k: after[k] - before[k] for k in ("wr_operations", "wr_bytes",
                                                    "unmap_operations")}
        ours = {"wr_operations": sum(e["type"] in ("disk_write", "disk_zero") for e in events),
                "wr_bytes": sum(e["length"] for e in events
                                if e["type"] in ("disk_write", "disk_zero")),
                "unmap_operations": sum(e["type"] == "disk_trim" for e in events)}
        t.ok(delta["wr_operations"] >= 5, "the guest wrote during capture (%d requests)"
             % delta["wr_operations"])
        t.eq(ours, delta, "capture's requests are exactly the device's: %d writes and zeroes, "
             "%d bytes, %d trims" % (delta["wr_operations"], delta["wr_bytes"],
                                     delta["unmap_operations"]), err)
        t.eq([e for e in events if e["type"] not in ("disk_write", "disk_zero", "disk_trim")],
             [], "no other events (the mirror's own flushes are not the guest's)")


def check_disk_read(t):
    """Reading a disk through QEMU's own NBD export gives the bytes the guest
    sees: for a raw image, the image file itself (the guest is idle)."""
    with vmguest.Guest(workload="idle", name="reader") as g:
        image = os.path.join(g.rundir, "data.img")
        size = os.path.getsize(image)
        r = subprocess.run([VMSCOPE, "read", "qmp:" + g.qmp_path, "--disk", "disk0", "0",
                            str(size), "--raw"], stdout=subprocess.PIPE, timeout=120)
        t.ok(r.returncode == 0 and r.stdout == open(image, "rb").read(),
             "the whole %d MiB disk read through QEMU's export equals the image" % (size >> 20))
        t.eq(g.qmp("query-block-exports"), [], "after reading: the export is removed")
        r = subprocess.run([VMSCOPE, "read", "qmp:" + g.qmp_path, "--disk", "disk0", "1080",
                            "2", "--raw"], stdout=subprocess.PIPE, timeout=60)
        t.eq(r.stdout, b"\x53\xef", "a second read works (QEMU's NBD server was stopped): "
             "the ext4 magic")
        r = vmscope("read", "qmp:" + g.qmp_path, "--disk", "nosuch", "0", "16")
        t.one_line_error(r, "reading an unknown disk: one-line error", "nosuch")


def main():
    t = Tap()
    t.run("capture", check_capture)
    t.run("capture exact", check_capture_exact)
    t.run("capture bitmap", check_capture_bitmap)
    t.run("disk read", check_disk_read)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
