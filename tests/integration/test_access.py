#!/usr/bin/env python3
"""The access layer against real guests, with QEMU itself as the ground truth:
HMP gva2gpa and info mem for translations, pmemsave and memsave for bytes, and
the VM paused so that live reads, dumps and QEMU agree on one instant.

Guest A: 256 MiB, 2 vCPUs, qemu64 CPU: 4-level paging, 4 KiB and 2 MiB pages,
         RAM read through the shared-memory file.
Guest B: 6 GiB, -cpu max: 5-level paging, 1 GiB pages, RAM above 4 GiB,
         read through /proc/PID/mem.
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time

from harness import Tap, vmscope, vmguest

SAMPLES = 1500  # translated addresses per guest, besides the unmapped ones


def run(*args, **kw):
    r = vmscope(*args, **kw)
    if r.returncode != 0:
        raise RuntimeError("vmscope %s failed: %s" % (" ".join(args), r.stderr))
    return r


def raw_read(target, kind, addr, length, *extra):
    r = subprocess.run([os.environ.get("VMSCOPE_BIN", "vmscope"), "read", target, kind,
                        hex(addr), str(length), "--raw"] + list(extra),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if r.returncode:
        raise RuntimeError(r.stderr.decode())
    return r.stdout


def mappings(target):
    return json.loads(run("maps", target, "--json").stdout)


def sample_addresses(maps, rng):
    """Addresses inside mappings, every page size represented, plus addresses
    in the holes between mappings and a few non-canonical ones."""
    by_size = {}
    for m in maps:
        by_size.setdefault(m["page_bytes"], []).append(m)
    picked = []
    for size, ms in by_size.items():
        for _ in range(SAMPLES // len(by_size)):
            m = rng.choice(ms)
            start, end = int(m["va"], 16), int(m["end"], 16)
            picked.append(rng.randrange(start, end))
    holes = []
    for a, b in zip(maps, maps[1:]):
        if int(b["va"], 16) > int(a["end"], 16):
            holes.append((int(a["end"], 16), int(b["va"], 16)))
    for _ in range(300):
        lo, hi = rng.choice(holes)
        picked.append(rng.randrange(lo, hi))
    picked += [0x0000800000000000, 0x00ff000000000000, 0x8000000000001000]
    return picked, by_size


def check_translation(t, g, target, label):
    rng = random.Random(1234)
    maps = mappings(target)
    addrs, by_size = sample_addresses(maps, rng)
    r = run("translate", target, "-", input="\n".join(hex(a) for a in addrs))
    ours = {}
    for line in r.stdout.splitlines():
        va, rest = line.split(" ", 1)
        ours[int(va, 16)] = None if rest.startswith("-") else int(rest.split()[0], 16)
    wrong, mapped = [], 0
    with g.session() as q:
        for va in addrs:
            answer = q.hmp("gva2gpa 0x%x" % va).strip()
            truth = None if "Unmapped" in answer else int(answer.split("gpa: ")[1], 16)
            mapped += truth is not None
            if ours.get(va, "missing") != truth:
                wrong.append("0x%x: vmscope %s, QEMU %s" % (va, ours.get(va), answer))
    sizes = ", ".join("%d x %s" % (len(v), {4096: "4K", 2 << 20: "2M", 1 << 30: "1G"}[k])
                      for k, v in sorted(by_size.items()))
    t.ok(not wrong, "%s: %d addresses (%d mapped; ranges: %s) translate as QEMU's gva2gpa"
         % (label, len(addrs), mapped, sizes), "\n".join(wrong[:20]))
    return maps, by_size


def coalesce_like_info_mem(maps):
    """QEMU's info mem: neighbouring pages with the same user/write bits form one range."""
    out = []
    for m in maps:
        start, end = int(m["va"], 16), int(m["end"], 16)
        prot = ("u" if m["user"] else "-") + "r" + ("w" if m["writable"] else "-")
        if out and out[-1][1] == start and out[-1][2] == prot:
            out[-1][1] = end
        else:
            out.append([start, end, prot])
    return [tuple(x) for x in out]


def check_maps_vs_info_mem(t, g, maps, label):
    truth = []
    for line in g.hmp("info mem").splitlines():
        rng, _, prot = line.split()
        a, b = rng.split("-")
        truth.append((int(a, 16), int(b, 16), prot))
    ours = coalesce_like_info_mem(maps)
    diff = sorted(set(ours) ^ set(truth))[:10]
    t.ok(ours == truth, "%s: maps equals QEMU's info mem (%d ranges)" % (label, len(truth)),
         "\n".join("%x-%x %s" % d for d in diff))


def check_bytes(t, g, target, maps, label, rng):
    """Physical bytes against pmemsave, virtual bytes (across page borders) against memsave."""
    ram = g.ram_mib << 20
    low = min(ram, 2 << 30)  # q35 puts RAM beyond 2 GiB above 4 GiB
    phys = [(0, 4096), (0x9f000, 8192), (low // 2 - 100, 300), (low - 4096, 4096)]
    if ram > low:
        high_end = (1 << 32) + ram - low
        phys += [(1 << 32, 65536), ((1 << 32) + (1 << 30) - 100, 200), (high_end - 4096, 4096)]
    bad = []
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        path = os.path.join(d, "truth")
        for addr, length in phys:
            g.qmp("pmemsave", val=addr, size=length, filename=path)
            if raw_read(target, "--phys", addr, length) != open(path, "rb").read():
                bad.append("phys 0x%x+%d" % (addr, length))
        # Pages of RAM only: ioremap'ed device memory is mapped too, but is no RAM.
        small = [m for m in maps if m["page_bytes"] == 4096 and int(m["gpa"], 16) < low - 8192]
        for m in rng.sample(small, min(40, len(small))):
            va = int(m["va"], 16) + 4096 - 100  # straddles into the next page if mapped
            length = 200 if int(m["end"], 16) >= va + 200 else 100
            # QMP memsave's val is a signed integer: kernel addresses need HMP.
            g.hmp('memsave 0x%x %d "%s"' % (va, length, path))
            if raw_read(target, "--virt", va, length) != open(path, "rb").read():
                bad.append("virt 0x%x+%d" % (va, length))
    t.ok(not bad, "%s: %d physical ranges equal pmemsave's, 40 virtual ranges equal memsave's"
         % (label, len(phys)), "\n".join(bad))


def regs_without_halt(target):
    regs = json.loads(run("regs", target, "--json").stdout)
    for r in regs:
        r.pop("halted")
    return regs


def check_dump(t, g, target, maps, rng):
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        core = os.path.join(d, "vm.core")
        run("dump", target, core)
        t.eq(g.qmp("query-status")["status"], "paused", "dump of a paused VM leaves it paused")
        live_regs = regs_without_halt(target)
        dump_regs = regs_without_halt("dump:" + core)
        t.eq(dump_regs, live_regs, "registers from the dump equal the live ones "
             "(RIP, RSP, CR0/3/4, EFER, GS base, kernel GS base, ...)")
        t.ok(all(r["kernel_gs_base"] is not None and r["efer"] is not None for r in live_regs),
             "kernel GS base and EFER known for every vCPU", live_regs)
        ram = g.ram_mib << 20
        live = raw_read(target, "--phys", 0, ram)
        t.ok(live == raw_read("dump:" + core, "--phys", 0, ram),
             "all %d MiB of RAM read the same live and from the dump" % g.ram_mib)
        same = True
        for m in rng.sample([m for m in maps if int(m["gpa"], 16) < ram - 4096], 50):
            va = int(m["va"], 16)
            same &= raw_read(target, "--virt", va, 4096) == raw_read("dump:" + core, "--virt", va, 4096)
        t.ok(same, "50 virtual pages read the same live and from the dump")

        plain = os.path.join(d, "qemu.core")
        g.qmp("dump-guest-memory", paging=False, protocol="file:" + plain)
        qemu_regs = regs_without_halt("dump:" + plain)
        t.ok(all(q["efer_derived"] and int(q["efer"], 16) == int(l["efer"], 16) & 0x500
                 and q["kernel_gs_base"] == l["kernel_gs_base"] and q["cr3"] == l["cr3"]
                 for q, l in zip(qemu_regs, live_regs)),
             "a dump QEMU wrote alone: EFER's long-mode bits derived, the rest as live",
             json.dumps(qemu_regs[0]))

        with open(core, "rb") as f:
            head = f.read(1 << 20)
        short = os.path.join(d, "short.core")
        open(short, "wb").write(head)
        r = vmscope("info", "dump:" + short)
        t.one_line_error(r, "truncated dump: one-line error", "outside the file")
        r = vmscope("regs", "dump:/etc/hostname")
        t.one_line_error(r, "not a dump: one-line error", "not an ELF file")
        r = vmscope("dump", "dump:" + core, os.path.join(d, "again.core"))
        t.one_line_error(r, "dump of a dump: refused", "only a live VM")


def check_host_memory_untouched(t, g, target):
    """Reading all of guest RAM must not make the host allocate the pages the
    guest never used (tmpfs allocates any page faulted through a mapping)."""
    before = os.stat(g.shm_path).st_blocks
    raw_read(target, "--phys", 0, g.ram_mib << 20)
    run("info", target)
    after = os.stat(g.shm_path).st_blocks
    t.eq(after, before, "reading all RAM and scanning it allocates no host memory "
         "(RAM file: %d of %d MiB in use)" % (before * 512 >> 20, g.ram_mib))


def check_guest_a(t):
    label = "4-level"
    with vmguest.Guest(workload="busy", name="access-a", vcpus=2) as g:
        target = "qmp:" + g.qmp_path
        # Without --cr3, CR3 comes from the live registers: no dump (which stops the VM).
        for args in (("translate", target, "0xffffffff81000000"), ("maps", target),
                     ("read", target, "--virt", "0xffffffff81000000", "16")):
            vmscope(*args)
        t.eq(g.qmp("query-dump")["status"], "none", "read --virt, translate and maps without "
             "--cr3: CR3 from the live registers, the VM never stopped for a dump")
        time.sleep(0.3)
        g.qmp("stop")
        check_host_memory_untouched(t, g, target)
        regs = json.loads(run("regs", target, "--json").stdout)
        t.eq(int(regs[0]["cr4"], 16) & 0x1000, 0, "%s: CR4.LA57 clear" % label)
        maps, by_size = check_translation(t, g, target, label)
        t.ok(any(m["user"] for m in maps), "%s: user mappings present (CPL %d)"
             % (label, regs[0]["cpl"]))
        check_maps_vs_info_mem(t, g, maps, label)
        rng = random.Random(99)
        check_bytes(t, g, target, maps, label, rng)
        check_dump(t, g, target, maps, rng)
        g.qmp("cont")
        with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
            run("dump", target, os.path.join(d, "running.core"))
        t.eq(g.qmp("query-status")["status"], "running", "dump of a running VM leaves it running")
        check_errors(t, target)


def check_guest_b(t):
    label = "5-level, >4 GiB"
    # 4 GiB above 4 GiB: several 1 GiB direct-map pages survive whatever the
    # kernel splits (TCG allocates guest RAM lazily, so this costs little).
    with vmguest.Guest(workload="busy", name="access-b", ram_mib=6144, shm=False,
                       extra_args=["-cpu", "max"]) as g:
        target = "qmp:" + g.qmp_path
        time.sleep(0.3)
        g.qmp("stop")
        regs = json.loads(run("regs", target, "--json").stdout)
        t.eq(int(regs[0]["cr4"], 16) & 0x1000, 0x1000, "%s: CR4.LA57 set" % label)
        maps, by_size = check_translation(t, g, target, label)
        big = lambda ms: (any(m["page_bytes"] == 1 << 30 for m in ms) and
                          any(int(m["gpa"], 16) >= 1 << 32 for m in ms))
        for _ in range(5):
            if big(maps):
                break
            # Stopped while the kernel was splitting its direct map: look again.
            g.qmp("cont")
            time.sleep(0.5)
            g.qmp("stop")
            maps = mappings(target)
        t.ok(big(maps), "%s: 1 GiB pages and mappings of RAM above 4 GiB seen" % label,
             "page sizes %s, highest gpa %s" % (sorted({m["page_bytes"] for m in maps}),
                                               max((m["gpa"] for m in maps), default=None)))
        check_bytes(t, g, target, maps, label, random.Random(7))
        g.qmp("cont")


def check_errors(t, target):
    r = vmscope("read", target, "--phys", "0xfffffffff000", "16")
    t.one_line_error(r, "read outside RAM: one-line error", "is not RAM")
    r = vmscope("read", target, "--virt", "0x10", "16")
    t.one_line_error(r, "read of an unmapped address: error", "not mapped")
    r = vmscope("read", target, "--virt", "0x10", "16", "--levels", "3")
    t.one_line_error(r, "bad --levels: one-line error", "4 or 5")
    r = vmscope("read", target, "--phys", "zero", "16")
    t.one_line_error(r, "bad address: one-line error", "bad address")
    r = vmscope("read", target, "--virt", "0x10", "16", "--vcpu", "7")
    t.one_line_error(r, "no such vCPU: one-line error", "no vCPU 7")


def check_raw_without_registers(t):
    with tempfile.NamedTemporaryFile(prefix="vmscope-test-") as f:
        f.write(b"\0" * 8192)
        f.flush()
        r = vmscope("regs", "raw:" + f.name)
        t.one_line_error(r, "regs of a raw image: error", "no vCPU state")
        r = vmscope("read", "raw:" + f.name, "--virt", "0x1000", "8")
        t.one_line_error(r, "virtual read of a raw image "
             "without --cr3: error", "give --cr3")


def main():
    t = Tap()
    t.run("guest A", check_guest_a)
    t.run("guest B", check_guest_b)
    t.run("raw", check_raw_without_registers)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
