#!/usr/bin/env python3
"""vmscope disks on a live guest with three disks: its usual whole-disk
ext4, a GPT disk (two ext4 partitions and swap, named) and an MBR disk
(a primary partition and an ext4 in a logical one). The tables and
filesystems are made on the host by sfdisk and mke2fs; what vmscope reads
through QEMU must be what sfdisk --json and blkid (util-linux, the
reference readers) say of the same images. Then a GPT whose primary header
is damaged (the backup serves), one with both copies damaged (one line
saying why; the other disks still listed), and a looping logical chain
(partial, said so)."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from harness import Tap, flip_bits, vmscope, vmguest

MIB = 1 << 20
GPT = ("label: gpt\nstart=2048, size=40960, name=root, type=L\n"
       "start=43008, size=20480, name=\"data disk\", type=L\nsize=8192, type=S\n")
MBR = ("label: dos\nstart=2048, size=20480, type=83\nstart=22528, size=61440, type=5\n"
       "start=24576, size=30720, type=83\n")


def sh(*args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw).stdout


def number(path, node):
    """sfdisk's node name for a partition of path ("IMAGE3", "IMAGEp3") to its number."""
    return int(node[len(path):].lstrip("p"))


def make(path, script, filesystems, mib=64):
    with open(path, "wb") as f:
        f.truncate(mib * MIB)
    sh("sfdisk", "-q", path, input=script)
    parts = {number(path, p["node"]): p
             for p in json.loads(sh("sfdisk", "--json", path))["partitiontable"]["partitions"]}
    for n, label in filesystems:
        p = parts[n]
        sh("mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-E",
           "offset=%d" % (p["start"] * 512), path, "%dk" % (p["size"] // 2))
    return parts


def blkid(path, offset):
    """What util-linux's blkid says is at offset of the image: TYPE, LABEL, UUID."""
    r = subprocess.run(["blkid", "-p", "-o", "export", "-O", str(offset), path],
                       stdout=subprocess.PIPE, text=True)
    return dict(l.split("=", 1) for l in r.stdout.split("\n") if "=" in l)


def truth(path):
    table = json.loads(sh("sfdisk", "--json", path))["partitiontable"]
    out = []
    for p in table["partitions"]:
        if table["label"] == "dos" and p["type"] in ("5", "f", "85"):
            continue
        fs = blkid(path, p["start"] * 512)
        out.append({"number": number(path, p["node"]),
                    "offset": p["start"] * 512, "size": p["size"] * 512,
                    "name": p.get("name", ""),
                    "fs": (fs.get("TYPE"), fs.get("LABEL", ""), fs.get("UUID", ""))})
    return table["label"], out


def ours(disk):
    return [{"number": p["number"], "offset": p["offset"], "size": p["size"], "name": p["name"],
             "fs": ((p["filesystem"] or {}).get("type"), (p["filesystem"] or {}).get("label", ""),
                    (p["filesystem"] or {}).get("uuid", ""))}
            for p in disk["partitions"]]


def disk_args(path, node, dev):
    return ["-blockdev", "driver=file,filename=%s,node-name=%s-file" % (path, node),
            "-blockdev", "driver=raw,file=%s-file,node-name=%s" % (node, node),
            "-device", "virtio-blk-pci,drive=%s,id=%s" % (node, dev)]


def check(t, d):
    gpt, mbr = os.path.join(d, "gpt.img"), os.path.join(d, "mbr.img")
    make(gpt, GPT, [(1, "root"), (2, "data")])
    make(mbr, MBR, [(1, "primary"), (5, "logical")])
    extra = disk_args(gpt, "gptdisk", "vdb") + disk_args(mbr, "mbrdisk", "vdc")
    with vmguest.Guest(workload="idle", name="disks", extra_args=extra) as g:
        target = "qmp:" + g.qmp_path
        r = vmscope("disks", target, "--json")
        got = {x["node"]: x for x in json.loads(r.stdout)} if r.returncode == 0 else {}
        t.eq(sorted(got), ["disk0", "gptdisk", "mbrdisk"], "disks: the guest's three disks",
             r.stderr)
        whole = got.get("disk0", {})
        fs = blkid(os.path.join(g.rundir, "data.img"), 0)
        t.ok(whole.get("table") == "none" and whole.get("device") == "vda" and
             (whole.get("filesystem") or {}).get("type") == fs.get("TYPE") == "ext4" and
             whole["filesystem"]["uuid"] == fs.get("UUID") and
             whole["filesystem"]["label"] == fs.get("LABEL", ""),
             "disks: disk0 (vda) is a whole-disk ext4, the label and UUID blkid reads", whole)
        for node, path in (("gptdisk", gpt), ("mbrdisk", mbr)):
            label, want = truth(path)
            disk = got.get(node, {})
            t.eq((disk.get("table"), ours(disk) if disk else None),
                 ({"gpt": "gpt", "dos": "mbr"}[label], want),
                 "disks: %s: the %s table sfdisk wrote, each partition's filesystem as blkid "
                 "reads it" % (node, label))
        r = vmscope("disks", target)
        t.ok(r.returncode == 0 and "gptdisk (vdb): 64.0 MiB, gpt" in r.stdout and
             'ext4 label "logical"' in r.stdout, "disks: the text form names disks, tables "
             "and labels", r.stdout)

    flip_bits(gpt, 512 + 40)  # the primary GPT header: the backup serves
    with open(mbr, "r+b") as f:  # the logical chain's only EBR links back to itself
        f.seek(22528 * 512 + 446 + 16 + 4)
        f.write(struct.pack("<B3xII", 5, 0, 2048))
    with vmguest.Guest(workload="idle", name="disks2", extra_args=extra) as g:
        target = "qmp:" + g.qmp_path
        r = vmscope("disks", target, "--json")
        got = {x["node"]: x for x in json.loads(r.stdout)} if r.returncode == 0 else {}
        t.eq(ours(got.get("gptdisk", {"partitions": []})), truth(gpt)[1],
             "disks: a damaged primary GPT header: the backup's table, the same partitions")
        m = got.get("mbrdisk", {})
        t.ok(m.get("partial") is True and "loops" in (m.get("warning") or "") and
             [p["number"] for p in m.get("partitions", [])] == [1, 5],
             "disks: a looping logical chain: each partition once, marked partial", m)
    flip_bits(gpt, 1024 + 7)  # the primary's entries, and the backup header
    flip_bits(gpt, 64 * MIB - 512 + 40)
    with vmguest.Guest(workload="idle", name="disks3", extra_args=extra) as g:
        r = vmscope("disks", "qmp:" + g.qmp_path, "--json")
        listed = [x["node"] for x in json.loads(r.stdout or "[]")]
        t.ok(r.returncode == 1 and r.stderr.count("\n") == 1 and "gptdisk" in r.stderr and
             "GPT" in r.stderr and listed == ["disk0", "mbrdisk"],
             "disks: a GPT with both copies damaged: one line naming the disk and why, the "
             "others listed", r.stderr)


def main():
    t = Tap()
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        t.run("disks", check, d)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
