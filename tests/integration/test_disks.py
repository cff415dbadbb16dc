#!/usr/bin/env python3
"""vmscope disks on a live guest with four disks: its usual whole-disk
ext4, a GPT disk (two ext4 partitions and swap, named), an MBR disk (a
primary partition and an ext4 in a logical one) and an LVM disk (an MBR
partition that is an LVM2 physical volume, its volumes made by lvm2's own
tools: one of two segments holding ext4, one without a filesystem). The
tables and filesystems are made on the host by sfdisk, lvm2 and mke2fs;
what vmscope reads through QEMU must be what sfdisk --json, lvs and blkid
(the reference readers) say of the same images. Then a GPT whose primary header
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

from harness import Tap, flip_bits, lvm_on_images, vmscope, vmguest

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


# The PV's volumes: home extended after scratch, so in two segments.
LVM = ("lvm pvcreate -q $pv1; lvm vgcreate -q -s 1M $vg $pv1; "
       "mk() { lvm lvcreate --driverloaded n --activate n --zero n -q \"$@\"; }; "
       "mk -L 8M -n home $vg; mk -L 4M -n scratch $vg; "
       "lvm lvextend --driverloaded n -q -L +8M $vg/home")


def make_lvm(path, d):
    """An MBR disk whose partition 1 (type 8e) is a PV; ext4 labelled "home" in
    its volume home. Returns lvm2's account of it: {lv: (uuid, size, [(lv
    offset, disk offset, length)])}, and its VG's name."""
    parts = make(path, "label: dos\nstart=2048, size=61440, type=8e\n", [])
    start = parts[1]["start"] * 512
    pv = os.path.join(d, "pv.img")
    with open(pv, "wb") as f:
        f.truncate(parts[1]["size"] * 512)
    segs, pvs = lvm_on_images(LVM, pv)
    pe_start = int(pvs[0]["pe_start"])
    vols = {}
    for s in segs:
        first = int(s["seg_pe_ranges"].split(":")[1].split("-")[0])
        v = vols.setdefault(s["lv_name"], (s["lv_uuid"], int(s["lv_size"]), []))
        v[2].append((int(s["seg_start"]), start + pe_start + first * MIB, int(s["seg_size"])))
    home = os.path.join(d, "home.img")
    sh("mke2fs", "-q", "-F", "-t", "ext4", "-L", "home", home, "%dk" % (vols["home"][1] >> 10))
    with open(home, "rb") as src, open(pv, "r+b") as dst:
        for lv_off, disk_off, n in vols["home"][2]:
            src.seek(lv_off)
            dst.seek(disk_off - start)
            dst.write(src.read(n))
    sh("dd", "if=" + pv, "of=" + path, "bs=1M", "seek=%d" % (start // MIB), "conv=notrunc",
       "status=none")
    return vols, segs[0]["vg_name"], blkid(home, 0)


def disk_args(path, node, dev):
    return ["-blockdev", "driver=file,filename=%s,node-name=%s-file" % (path, node),
            "-blockdev", "driver=raw,file=%s-file,node-name=%s" % (node, node),
            "-device", "virtio-blk-pci,drive=%s,id=%s" % (node, dev)]


def check(t, d):
    gpt, mbr = os.path.join(d, "gpt.img"), os.path.join(d, "mbr.img")
    make(gpt, GPT, [(1, "root"), (2, "data")])
    make(mbr, MBR, [(1, "primary"), (5, "logical")])
    lvm = os.path.join(d, "lvm.img")
    lvs, vg, home_fs = make_lvm(lvm, d)
    extra = disk_args(gpt, "gptdisk", "vdb") + disk_args(mbr, "mbrdisk", "vdc")
    with vmguest.Guest(workload="idle", name="disks", extra_args=extra +
                       disk_args(lvm, "lvmdisk", "vdd")) as g:
        target = "qmp:" + g.qmp_path
        r = vmscope("disks", target, "--json")
        got = {x["node"]: x for x in json.loads(r.stdout)} if r.returncode == 0 else {}
        t.eq(sorted(got), ["disk0", "gptdisk", "lvmdisk", "mbrdisk"],
             "disks: the guest's four disks", r.stderr)
        vols = {v["lv"]: v for v in got.get("lvmdisk", {}).get("volumes", [])}
        t.eq({n: (v["uuid"], v["size"], v["partition"], v["vg"],
                  [(g["lv_offset"], g["disk_offset"], g["length"]) for g in v["segments"]])
              for n, v in vols.items()},
             {n: (u, size, 1, vg, segs) for n, (u, size, segs) in lvs.items()},
             "disks: lvmdisk partition 1: the volumes lvs lists, with their UUIDs, sizes and "
             "segments (where on the disk each lies)")
        h = (vols.get("home") or {}).get("filesystem") or {}
        t.ok(h.get("type") == home_fs.get("TYPE") == "ext4" and h.get("label") == "home" and
             h.get("uuid") == home_fs.get("UUID") and (vols["scratch"]["filesystem"] is None),
             "disks: the ext4 in volume home, read through its two segments, as blkid reads it; "
             "none in scratch", vols)
        r2 = vmscope("disks", target)
        t.ok(r2.returncode == 0 and "%s/home" % vg in r2.stdout, "disks: the text form lists "
             "the LVM volumes", r2.stdout)
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
