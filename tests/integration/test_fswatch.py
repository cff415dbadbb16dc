#!/usr/bin/env python3
"""File events inferred from a live guest's ext4 writes (vmscope fswatch),
against the guest's own log of the file operations it performed
("OP <action> <path> [<new path>]" on the ground-truth port). Every action
kind, nested directories, an htree directory, a 4 MiB file, a file of 400
extents (a two-level extent tree), renames across directories, a burst of
2000 files created and deleted (streamed into a real redis-server and read
back with XRANGE), --path filtering, --hash, files made before vmscope
attached, clean detach; the basic round again on the second pinned kernel, and on
a GPT partition beside another ext4 (the partition chosen, named in every event),
and on both ext4 filesystems of an MBR disk (a primary and a logical partition)
at once."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from harness import VMSCOPE, Tap, lvm_on_images, vmscope, vmguest, track
from test_redis import Redis, entries, free_port

ACTIONS = ["create", "mkdir", "symlink", "link", "rename", "delete", "rmdir", "chmod", "chown",
           "truncate"]


def truth_ops(g, since=0):
    ops = []
    for line in g._read(g.truth_path).split("\n")[since:]:
        m = re.match(r"^OP (\S+) (\S+)(?: (\S+))?$", line)
        if m:
            ops.append(m.groups())
    return ops


def start_fswatch(g, *extra):
    return start_fswatch_args(g, "--mount", "/data", *extra)


def start_fswatch_args(g, *extra):
    fw = subprocess.Popen([VMSCOPE, "fswatch", "qmp:" + g.qmp_path, "--disk", "disk0"] +
                          list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    track(fw)
    line = fw.stderr.readline()
    if "watching" not in line:
        fw.kill()
        raise RuntimeError("fswatch did not start: " + line + fw.stderr.read())
    return fw, line


def run_round(g, name, timeout=600):
    text = g._read(g.truth_path)
    before = len(text.split("\n")) - 1
    g.send(name)
    g.wait_for("DONE %s" % name, timeout, after=len(text))
    return truth_ops(g, before)


def stop_fswatch(fw, settle=2.0):
    # The last sync's commit is on disk when DONE is logged; give inference a moment.
    time.sleep(settle)
    fw.send_signal(signal.SIGINT)
    out, err = fw.communicate(timeout=120)
    return [json.loads(l) for l in out.splitlines()], err, fw.returncode


def key(action, path, new=None):
    """(action, path, old path): renames keyed by the new path, like the events."""
    return (action, new, path) if action == "rename" else (action, path, None)


def score(t, ops, events, label):
    """Precision and recall per action, all but writes; returns the figures."""
    truth = {key(*op) for op in ops if op[0] != "write"}
    seen = {(e["action"], e["path"], e.get("old_path")) for e in events if e["action"] != "write"}
    figures = {}
    for action in ACTIONS:
        want = {k for k in truth if k[0] == action}
        got = {k for k in seen if k[0] == action}
        if not want and not got:
            continue
        hit = len(want & got)
        figures[action] = (hit / len(got) if got else 1.0, hit / len(want) if want else 1.0,
                           len(want))
        t.ok(want == got, "%s: %s events match the guest's log, precision %.3f recall %.3f "
             "(%d operations)" % (label, action, figures[action][0], figures[action][1],
                                  len(want)),
             "missing %s\ninvented %s" % (sorted(want - got)[:10], sorted(got - want)[:10]))
    return figures


def covered(events, path):
    """Bytes of a file covered by its write events, as a set of 1 KiB blocks."""
    blocks = set()
    for e in events:
        if e["action"] == "write" and e["path"] == path:
            blocks.update(range(e["offset"] // 1024, (e["offset"] + e["length"] + 1023) // 1024))
    return blocks


def dirty_bitmaps(g):
    return [b for n in g.qmp("query-named-block-nodes") for b in n.get("dirty-bitmaps", [])]


def mode_args(mode):
    """ "bitmap@1000": a mode and its poll interval in milliseconds."""
    name, _, interval = mode.partition("@")
    return ["--mode", name] + (["--interval", interval] if interval else [])


def mode_label(mode):
    name, _, interval = mode.partition("@")
    return "" if mode == "blocking" else name + (" %s ms" % interval if interval else "") + ": "


def check_basic(t, mode="blocking"):
    """The fidelity suite in one capture mode; labels name the mode but for blocking."""
    label = mode_label(mode)
    with vmguest.Guest(workload="fsops", name="fsops", control=True) as g, \
            tempfile.TemporaryDirectory(prefix="vmscope-test-") as logdir:
        t = Labelled(t, label)
        run_round(g, "small")  # before vmscope looks: its changes sit in the journal
        fw, banner = start_fswatch(g, *mode_args(mode), "--hash", "--log", logdir)
        t.ok(re.search(r"watching \d+ files in \d+ directories on disk0 \(ext4, events from "
                       r"journal commits\)", banner), "fswatch says what it watches", banner)
        if mode.startswith("bitmap"):
            t.ok(g.qmp("query-block-jobs") == [] and
                 any(b["name"].startswith("vmscope-dirty-") for b in dirty_bitmaps(g)),
                 "while capturing: a dirty bitmap on the disk node, no mirror job",
                 (g.qmp("query-block-jobs"), dirty_bitmaps(g)))
        ops = run_round(g, "basic")
        events, err, rc = stop_fswatch(fw)
        t.eq(rc, 0, "fswatch exits 0 after SIGINT")
        if mode.startswith("bitmap"):
            t.ok(re.search(r"; [1-9]\d* bitmap polls", err), "the summary counts the polls", err)
        t.ok(re.search(r"\b0 not queued\).* 0 writes not queued for inference, 0 never "
                       r"mapped to a file, 0 waiting for a commit, 0 damaged structures, 0 "
                       r"blocks or inodes failing their checksum, 0 transactions missed", err),
             "summary: nothing dropped, nothing left unmapped, every checksum of the guest's "
             "journal and inodes right, no transaction missed", err)
        score(t, ops, events, "basic")
        r = vmscope("log", "query", logdir, "--json")
        t.ok(r.returncode == 0 and [json.loads(l) for l in r.stdout.splitlines()] == events and
             "; log: %d events durable" % len(events) in err,
             "fswatch --log: the log holds exactly the %d events the sink got" % len(events),
             r.stderr)

        written = {op[1] for op in ops if op[0] == "write"}
        got = {e["path"] for e in events if e["action"] == "write"}
        truncated = {op[1] for op in ops if op[0] == "truncate"}
        t.ok(written <= got, "every file the guest wrote has write events (%d files)"
             % len(written), "missing %s" % sorted(written - got))
        t.ok(got <= written | truncated, "write events only for files written or truncated",
             "invented %s" % sorted(got - written - truncated))
        t.eq(len(covered(events, "/data/w/a/b/big")), 4096,
             "the 4 MiB file: write events cover every one of its 4096 KiB")
        frag = covered(events, "/data/w/a/frag")
        t.ok(frag == set(range(0, 800, 2)), "the 400-extent file (two-level extent tree): "
             "write events at exactly the 400 blocks written, at their file offsets",
             "missing %s, extra %s\n%s" % (sorted(set(range(0, 800, 2)) - frag),
                                           sorted(frag - set(range(0, 800, 2))), err))
        by = {}
        for e in events:
            by.setdefault((e["action"], e["path"]), e)
        chmod = by.get(("chmod", "/data/w/a/f1"), {})
        chown = by.get(("chown", "/data/w/a/f1"), {})
        t.ok(chmod.get("mode") == "0600" and chmod.get("file_type") == "regular",
             "chmod carries the new mode", chmod)
        t.ok(chown.get("uid") == 1000 and chown.get("gid") == 1000, "chown carries uid and gid",
             chown)
        sym = by.get(("symlink", "/data/w/sym"), {})
        t.eq(sym.get("target"), "a/b/big", "symlink carries its target")
        create = by.get(("create", "/data/w/a/f1"), {})
        t.eq(create.get("sha256"), hashlib.sha256(b"hello\n").hexdigest(),
             "--hash: SHA-256 of the new file's content")
        trunc = by.get(("truncate", "/data/w/a/b/big"), {})
        t.eq(trunc.get("size"), 1000, "truncate carries the new size")
        t.ok(all(e["vm"] == "fsops" and e["source"] == "disk" and e["disk"] == "disk0" and
                 e["type"] == e["action"] and isinstance(e["mtime"], int) and
                 isinstance(e["inode"], int) for e in events),
             "every event names the VM, source, disk, action, inode and times")

        fw, _ = start_fswatch(g, "--mode", mode, "--path", "*.txt")
        ops = run_round(g, "small2")
        events, err, rc = stop_fswatch(fw)
        paths = {(e["action"], e["path"]) for e in events}
        t.eq(paths, {("chmod", "/data/s/keep.txt")}, "--path '*.txt': only the watched file's "
             "events; files made before vmscope attached (known from the journal) have paths")
        t.ok(re.search(r"\(\d*[1-9]\d* outside --path", err), "the summary counts what "
             "--path left out", err)

        t.eq(g.qmp("query-block-jobs"), [], "after fswatch: no block job is left")
        t.eq(g.qmp("query-block-exports"), [], "after fswatch: no export is left")
        t.eq(dirty_bitmaps(g), [], "after fswatch: no dirty bitmap is left")
        t.eq(g.qmp("query-status")["status"], "running", "after fswatch: the VM runs")
        r = vmscope("fswatch", "qmp:" + g.qmp_path, "--disk", "nosuchdisk", "--duration", "1")
        t.one_line_error(r, "fswatch of an unknown disk: one-line error", "nosuch")


class Labelled:
    """A Tap whose check descriptions start with label (score() labels its own)."""

    def __init__(self, t, label):
        self.t, self.label = t, label

    def ok(self, cond, desc, *rest):
        return self.t.ok(cond, self.label + desc, *rest)

    def eq(self, got, want, desc, *rest):
        return self.t.eq(got, want, self.label + desc, *rest)

    def one_line_error(self, r, desc, *rest):
        return self.t.one_line_error(r, self.label + desc, *rest)


def check_final_poll(t):
    """Bitmap mode, polls a minute apart: what the guest wrote reaches vmscope in the
    poll its detach makes."""
    with vmguest.Guest(workload="fsops", name="final", control=True) as g:
        fw, _ = start_fswatch(g, "--mode", "bitmap", "--interval", "60000")
        ops = run_round(g, "small")
        events, err, rc = stop_fswatch(fw, settle=0.5)
        t.ok(rc == 0 and re.search(r"; 1 bitmap polls", err),
             "bitmap 60 s: fswatch exits 0 after one poll, the detach's", err)
        score(t, ops, events, "bitmap 60 s, the detach's poll")
        t.eq({e["path"] for e in events if e["action"] == "write"},
             {"/data/s/keep.txt", "/data/s/skip.bin"},
             "bitmap 60 s: both files' writes, from the detach's poll")
        t.eq(dirty_bitmaps(g), [], "bitmap 60 s: no dirty bitmap is left")


def check_back_pressure(t):
    """A consumer that stops reading: inference waits for the ring, the 1 MiB spool fills,
    and the bitmap capture waits for room (the guest never does); nothing is lost."""
    with vmguest.Guest(workload="fsops", name="pressure", control=True) as g:
        fw, _ = start_fswatch(g, "--mode", "bitmap", "--spool", "1")
        # 12000 events, stdout unread: past the 8192-slot ring and the pipe
        ops = run_round(g, "burst") + run_round(g, "burst")
        # Ctrl-C with the backlog still there: the detach's last poll waits for room
        # while the consumer drains (a detach on the draining thread would deadlock).
        events, err, rc = stop_fswatch(fw, settle=0)
        t.eq(rc, 0, "back-pressure: fswatch exits 0")
        m = re.search(r"spool peak (\d+) of (\d+) bytes, the capture waited ([\d.]+) s", err)
        t.ok(m and int(m.group(2)) == 1 << 20 and 0 < int(m.group(1)) <= 1 << 20 and
             float(m.group(3)) > 0, "back-pressure: the 1 MiB spool filled and the capture "
             "waited for inference, both reported", err)
        # Data written and freed while the poll waited is seen once or not at all (the
        # documented loss of a longer interval); what was captured is never dropped.
        t.ok(re.search(r"\b0 not queued\).* 0 writes not queued for inference, 0 never "
                       r"mapped to a file", err),
             "back-pressure: nothing dropped, nothing left unmapped", err)
        figures = score(t, ops, events, "back-pressure")
        t.eq(sum(1 for e in events if e["action"] == "create"), 4000,
             "back-pressure: all 4000 creates of the two bursts, none lost", figures)


def check_other_kernel(t):
    """The basic round on the second pinned kernel: jbd2 and ext4 of another release."""
    kernel = vmguest.pinned_kernel("VMSCOPE_KERNEL_ALT")
    with vmguest.Guest(workload="fsops", name="fsops-alt", kernel=kernel, control=True) as g:
        fw, _ = start_fswatch(g)
        ops = run_round(g, "basic")
        events, err, rc = stop_fswatch(fw)
        t.eq(rc, 0, "%s: fswatch exits 0" % kernel)
        score(t, ops, events, kernel)
        t.eq(covered(events, "/data/w/a/frag"), set(range(0, 800, 2)),
             "%s: the 400-extent file's writes at their file offsets" % kernel)


def check_burst(t, mode="blocking"):
    """2000 files created, written and deleted, streamed through Redis."""
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d, \
            vmguest.Guest(workload="fsops", name="burst", control=True) as g:
        t = Labelled(t, mode_label(mode))
        redis = Redis(free_port(), d)
        try:
            redis.start()
            fw, _ = start_fswatch(g, *mode_args(mode),
                                  "--sink", "redis://127.0.0.1:%d/files:{vm}" % redis.port)
            ops = run_round(g, "burst")
            _, err, rc = stop_fswatch(fw)
            got = entries(redis.xrange("files:burst"))
            events = [dict(e, offset=int(e.get("offset", 0)), length=int(e.get("length", 0)))
                      for e in got]
            t.eq(rc, 0, "fswatch into Redis exits 0")
            figures = score(t, ops, events, "burst")
            t.ok(figures.get("create", (0, 0, 0))[2] == 2000 and
                 figures.get("delete", (0, 0, 0))[2] == 2000, "the burst: 2000 creates, 2000 "
                 "deletes", figures)
            writes = {e["path"] for e in events if e["action"] == "write"}
            t.eq(len(writes), 2000, "a write event for each of the 2000 small files")
            t.ok(re.search(r"sink: \d+ sent, 0 undelivered, 0 dropped", err),
                 "the Redis sink delivered everything", err)
        finally:
            redis.stop()


def check_partition(t):
    """The data disk's filesystem as partition 1 of a GPT disk, beside another
    ext4 in partition 2: the guest mounts /dev/vda1; fswatch must be told which
    to watch, and then sees the basic round as on a whole disk, each event
    naming its partition."""
    image = vmguest.build(None)
    src = os.path.join(image, "data.img")
    sectors = os.path.getsize(src) // 512
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        disk = os.path.join(d, "gpt.img")
        with open(disk, "wb") as f:
            f.truncate((2048 + sectors + 32768 + 2048) * 512)
        subprocess.run(["sfdisk", "-q", disk], check=True, text=True,
                       input="label: gpt\nstart=2048, size=%d, name=data\nsize=32768, "
                             "name=other\n" % sectors)
        subprocess.run(["dd", "if=" + src, "of=" + disk, "bs=1M", "seek=1", "conv=notrunc",
                        "status=none"], check=True)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "other", "-E",
                        "offset=%d" % ((2048 + sectors) * 512), disk, "16M"], check=True)
        args = ["-blockdev", "driver=file,filename=%s,node-name=disk0-file" % disk,
                "-blockdev", "driver=raw,file=disk0-file,node-name=disk0",
                "-device", "virtio-blk-pci,drive=disk0,id=vda"]
        with vmguest.Guest(workload="fsops", name="fsops-gpt", control=True, disk=False,
                           extra_args=args, append="vmscope.data=/dev/vda1") as g:
            r = vmscope("fswatch", "qmp:" + g.qmp_path, "--disk", "disk0", "--mount", "/data",
                        "--duration", "1")
            t.one_line_error(r, "fswatch --mount on a disk with two ext4 partitions: told to "
                             "choose one", "--mount maps one, so choose it with --partition N")
            r = vmscope("fswatch", "qmp:" + g.qmp_path, "--disk", "disk0", "--partition", "9",
                        "--duration", "1")
            t.one_line_error(r, "fswatch --partition 9: no such partition",
                             "disk disk0 has no partition 9")
            fw, _ = start_fswatch(g, "--partition", "1")
            ops = run_round(g, "basic")
            events, err, rc = stop_fswatch(fw)
            t.ok(rc == 0 and events and all(e.get("partition") == 1 for e in events),
                 "GPT partition 1: fswatch exits 0, every event names partition 1", err)
            score(t, ops, events, "GPT partition 1")


def strip(ops, prefix):
    return [tuple(p[len(prefix):] if p and p.startswith(prefix + "/") else p for p in op)
            for op in ops]


def check_two_filesystems(t):
    """An MBR disk: the data filesystem in primary partition 1 (the guest's
    /data), another ext4 in logical partition 5 (its /data2). fswatch watches
    both at once; each event names its partition, and with no --mount each
    filesystem's paths start where the guest's own mount table (read from
    its RAM) says it is mounted; --mount / keeps them from the root."""
    image = vmguest.build(None)
    src = os.path.join(image, "data.img")
    sectors = os.path.getsize(src) // 512
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        disk = os.path.join(d, "mbr.img")
        ext = 2048 + sectors
        with open(disk, "wb") as f:
            f.truncate((ext + 2048 + 32768 + 2048) * 512)
        subprocess.run(["sfdisk", "-q", disk], check=True, text=True,
                       input="label: dos\nstart=2048, size=%d, type=83\nstart=%d, size=%d, "
                             "type=5\nstart=%d, size=32768, type=83\n"
                             % (sectors, ext, 2048 + 32768, ext + 2048))
        subprocess.run(["dd", "if=" + src, "of=" + disk, "bs=1M", "seek=1", "conv=notrunc",
                        "status=none"], check=True)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "second", "-E",
                        "offset=%d" % ((ext + 2048) * 512), disk, "16M"], check=True)
        args = ["-blockdev", "driver=file,filename=%s,node-name=disk0-file" % disk,
                "-blockdev", "driver=raw,file=disk0-file,node-name=disk0",
                "-device", "virtio-blk-pci,drive=disk0,id=vda"]
        with vmguest.Guest(workload="fsops", name="fsops-mbr", control=True, disk=False,
                           extra_args=args,
                           append="vmscope.data=/dev/vda1 vmscope.data2=/dev/vda5") as g:
            fw = subprocess.Popen([VMSCOPE, "fswatch", "qmp:" + g.qmp_path, "--disk", "disk0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            track(fw)
            banner = fw.stderr.readline()
            first = run_round(g, "small")
            second = run_round(g, "second")
            events, err, rc = stop_fswatch(fw)
            t.ok(rc == 0 and "watching" in banner and
                 "disk0 partition 1 at /data (the guest's mount table)" in banner and
                 "disk0 partition 5 at /data2 (the guest's mount table)" in banner,
                 "MBR disk: fswatch watches both filesystems, each at the mount point the "
                 "guest's mount table gives", banner + err)
            by = {n: [e for e in events if e.get("partition") == n] for n in (1, 5)}
            t.eq(len(by[1]) + len(by[5]), len(events), "MBR disk: every event names partition "
                 "1 or 5")
            score(t, first, by[1], "MBR primary partition 1")
            score(t, second, by[5], "MBR logical partition 5")
            fw, banner = start_fswatch_args(g, "--partition", "1", "--mount", "/")
            again = run_round(g, "small2")
            events, err, rc = stop_fswatch(fw)
            t.ok(rc == 0 and "disk0 partition 1, paths from its root" in banner,
                 "MBR disk: --mount / keeps partition 1's paths from its root", banner + err)
            score(t, strip(again, "/data"), events, "MBR primary partition 1, --mount /")


def check_lvm(t):
    """A GPT disk whose partition 1 is an LVM2 physical volume made by lvm2's
    tools: the data filesystem in volume data, another ext4 in volume spare.
    The guest mounts the volume's extents at their offset (its kernel has no
    LVM tools to map them); fswatch reads the PV's metadata, watches the
    volume asked for, and every event names it."""
    image = vmguest.build(None)
    src = os.path.join(image, "data.img")
    size = os.path.getsize(src)
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        pv, disk = os.path.join(d, "pv.img"), os.path.join(d, "gpt.img")
        with open(pv, "wb") as f:
            f.truncate(size + (8 << 20))
        lvs, pvs = lvm_on_images(
            "lvm pvcreate -q $pv1; lvm vgcreate -q -s 1M $vg $pv1; "
            "lvm lvcreate --driverloaded n --activate n --zero n -q -L %dB -n data $vg; "
            "lvm lvcreate --driverloaded n --activate n --zero n -q -L 4M -n spare $vg"
            % size, pv)
        vg = lvs[0]["vg_name"]
        at = {l["lv_name"]: int(pvs[0]["pe_start"]) +
              int(l["seg_pe_ranges"].split(":")[1].split("-")[0]) * (1 << 20) for l in lvs}
        subprocess.run(["dd", "if=" + src, "of=" + pv, "bs=1M", "seek=%d" % (at["data"] >> 20),
                        "conv=notrunc", "status=none"], check=True)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "spare", "-E",
                        "offset=%d" % at["spare"], pv, "4M"], check=True)
        with open(disk, "wb") as f:
            f.truncate(os.path.getsize(pv) + (2 << 20))
        subprocess.run(["sfdisk", "-q", disk], check=True, text=True,
                       input="label: gpt\nstart=2048, size=%d, type=V\n"
                             % (os.path.getsize(pv) // 512))
        subprocess.run(["dd", "if=" + pv, "of=" + disk, "bs=1M", "seek=1", "conv=notrunc",
                        "status=none"], check=True)
        args = ["-blockdev", "driver=file,filename=%s,node-name=disk0-file" % disk,
                "-blockdev", "driver=raw,file=disk0-file,node-name=disk0",
                "-device", "virtio-blk-pci,drive=disk0,id=vda"]
        with vmguest.Guest(workload="fsops", name="fsops-lvm", control=True, disk=False,
                           extra_args=args, append="vmscope.data=/dev/vda1@%d" % at["data"]) as g:
            r = vmscope("fswatch", "qmp:" + g.qmp_path, "--disk", "disk0", "--mount", "/data",
                        "--duration", "1")
            t.one_line_error(r, "fswatch --mount on a PV with two ext4 volumes: told to choose "
                             "one", "choose it with --partition N or --volume VG/LV")
            r = vmscope("fswatch", "qmp:" + g.qmp_path, "--disk", "disk0", "--volume",
                        vg + "/nope", "--duration", "1")
            t.one_line_error(r, "fswatch --volume VG/nope: no such volume",
                             "disk disk0 has no LVM volume %s/nope" % vg)
            fw, banner = start_fswatch_args(g, "--volume", vg + "/data")
            t.ok("volume %s/data at /data (the guest's mount table)" % vg in banner,
                 "LVM volume data: its mount point found by UUID (the guest mounts it through "
                 "a loop device)", banner)
            ops = run_round(g, "basic")
            events, err, rc = stop_fswatch(fw)
            t.ok(rc == 0 and events and
                 all(e.get("volume") == vg + "/data" and e.get("partition") == 1
                     for e in events),
                 "LVM volume data: fswatch exits 0, every event names the volume and its PV's "
                 "partition", err)
            score(t, ops, events, "LVM linear volume")


def main():
    t = Tap()
    t.run("fswatch basic", check_basic)
    t.run("fswatch burst", check_burst)
    t.run("fswatch basic, background capture", lambda t: check_basic(t, "background"))
    t.run("fswatch burst, background capture", lambda t: check_burst(t, "background"))
    t.run("fswatch basic, bitmap capture", lambda t: check_basic(t, "bitmap"))
    t.run("fswatch burst, bitmap capture every second",
          lambda t: check_burst(t, "bitmap@1000"))
    t.run("fswatch bitmap capture: the detach's poll", check_final_poll)
    t.run("fswatch back-pressure", check_back_pressure)
    t.run("fswatch on the other kernel", check_other_kernel)
    t.run("fswatch on a GPT partition", check_partition)
    t.run("fswatch on two filesystems of an MBR disk", check_two_filesystems)
    t.run("fswatch on an LVM volume", check_lvm)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
