#!/usr/bin/env python3
"""The Linux driver's views against the guest's own answer at the same
instant, on four Debian kernel lines (5.10, 6.1, 6.12, 7.x): nothing may be
tuned to one build. The guest (workload "views") starts long-lived processes, writes its
/proc to the ground-truth port and goes quiet; the test then pauses it and
asks vmscope. Processes created after the truth collector started (its pid
and above) are left out on both sides."""
import ipaddress
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from harness import Tap, vmscope, vmguest

USER_HZ = 100


def parse_procs(text):
    procs = {}
    for line in text.splitlines():
        kind, rest = line.split(" ", 1)
        if kind == "STAT":
            pid = int(rest.split(" ", 1)[0])
            comm = rest[rest.index("(") + 1:rest.rindex(")")]
            f = rest[rest.rindex(")") + 2:].split()
            procs[pid] = {"pid": pid, "comm": comm, "state": f[0], "ppid": int(f[1]),
                          "threads": int(f[17]), "start_ticks": int(f[19])}
        elif kind == "ID":
            pid, key, value = rest.split()
            procs[int(pid)][key[:-1].lower()] = int(value)
        elif kind == "CMD":
            pid, _, cmd = rest.partition(" ")
            procs[int(pid)]["cmdline"] = cmd.rstrip(" ")
    return procs


def same_name(ours, guest):
    """A workqueue worker's name ends in the work it did last ("-events"),
    which may change between the truth and the pause; the worker is the same."""
    if ours == guest:
        return True
    worker = re.compile(r"(kworker/[0-9u]+:[0-9]+H?)[+-]")
    a, b = worker.match(ours), worker.match(guest)
    return bool(a and b and a.group(1) == b.group(1))


def precision_recall(ours, truth):
    hit = len(ours & truth)
    return (hit / len(ours) if ours else 1.0), (hit / len(truth) if truth else 1.0)


def run_json(*args):
    r = vmscope(*args)
    if r.returncode:
        raise RuntimeError("vmscope %s: %s" % (" ".join(args), r.stderr))
    out = json.loads(r.stdout)
    if isinstance(out, dict) and "items" in out:
        # A list view: on a healthy guest it is never partial.
        if out["truncated"] or out["warning"] is not None or r.stderr:
            raise RuntimeError("vmscope %s: partial: %s" % (" ".join(args), r.stderr))
        return out["items"]
    return out


def partial_json(r):
    """A list view's items, and whether its JSON and stderr agree that it is
    partial and why: (items, truncated, warning == the stderr line)."""
    out = json.loads(r.stdout)
    line = "vmscope: warning: partial result: %s\n" % out["warning"]
    return out["items"], out["truncated"], out["warning"] is not None and r.stderr == line


def check_ps(t, g, target, label):
    truth_all = parse_procs(g.truth()["procs"])
    collector = int(g.truth()["collector"].strip())
    truth = {p: v for p, v in truth_all.items() if p < collector}
    ours = {p["pid"]: p for p in run_json("ps", target, "--json") if p["pid"] < collector}
    precision, recall = precision_recall(set(ours), set(truth))
    # Kernel threads come and go on their own (idle workers retire): one that
    # ended between the truth and the pause is no miss. User processes are static.
    gone = [truth[p] for p in set(truth) - set(ours)]
    t.ok(precision == 1.0 and all(p["ppid"] == 2 for p in gone),
         "%s ps: precision %.3f, recall %.3f over %d processes" % (label, precision, recall,
                                                                   len(truth)),
         "only vmscope: %s\nonly guest: %s" % (sorted(set(ours) - set(truth)), gone))
    fields = {"ppid": "ppid", "uid": "uid", "gid": "gid", "threads": "threads"}
    wrong = []
    for pid, want in truth.items():
        got = ours.get(pid)
        if not got:
            continue
        for ours_key, truth_key in fields.items():
            if got[ours_key] != want[truth_key]:
                wrong.append("%d %s: vmscope %r, guest %r" % (pid, ours_key, got[ours_key],
                                                              want[truth_key]))
        if not same_name(got["comm"], want["comm"]):
            wrong.append("%d comm: vmscope %r, guest %r" % (pid, got["comm"], want["comm"]))
        if got["start_time_ns"] // (10**9 // USER_HZ) != want["start_ticks"]:
            wrong.append("%d start: vmscope %d ns, guest %d ticks" % (pid, got["start_time_ns"],
                                                                    want["start_ticks"]))
        want_cmd = None if not want["cmdline"] and got["kernel_thread"] else want["cmdline"]
        if not got["kernel_thread"] and got["cmdline"] != want_cmd:
            wrong.append("%d cmdline: vmscope %r, guest %r" % (pid, got["cmdline"], want_cmd))
        if got["kernel_thread"] != (want["cmdline"] == "" and pid != 1 and want["ppid"] in (0, 2)):
            wrong.append("%d kernel_thread: %r" % (pid, got["kernel_thread"]))
        # A state can change between the truth and the pause only through running.
        if got["state"] != want["state"] and "R" not in (got["state"], want["state"]):
            wrong.append("%d state: vmscope %s, guest %s" % (pid, got["state"], want["state"]))
    t.ok(not wrong, "%s ps: pid, ppid, comm, uid, gid, threads, start time, state and command "
         "line of each process equal the guest's /proc" % label, "\n".join(wrong[:30]))
    special = [p for p in ours.values() if p["cmdline"] and "a file" in p["cmdline"]]
    t.ok(len(special) == 1 and special[0]["cmdline"] == "tail -f /tmp/a file with spaces",
         "%s ps: a command line whose argument holds spaces" % label, special)
    stopped = [p for p in ours.values() if p["state"] == "T"]
    t.ok(len(stopped) == 1, "%s ps: the stopped process shows state T" % label, stopped)

    # Threads against the guest's /proc/PID/task, the tree against its parents.
    tasks = {tuple(int(x) for x in l.split()[1:3]) for l in g.truth()["tasks"].splitlines()
             if l.startswith("TASK ")}
    want = {(tgid, tid) for tgid, tid in tasks if tgid < collector and tgid in ours}
    got = {(p["pid"], p["tid"]) for p in run_json("ps", target, "--threads", "--json")
           if p["pid"] < collector and p["pid"] in truth}
    t.eq(got, want, "%s ps --threads: the threads of each process, as /proc/PID/task lists "
         "them (%d)" % (label, len(want)))
    parents, depth_pid = {}, []
    for line in vmscope("pstree", target).stdout.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        pid = int(line.split()[0])
        del depth_pid[depth:]
        parents[pid] = depth_pid[-1] if depth_pid else 0
        depth_pid.append(pid)
    want_tree = {p: v["ppid"] for p, v in truth.items() if p in ours}
    t.eq({p: v for p, v in parents.items() if p in want_tree}, want_tree,
         "%s pstree: every process once, under the parent /proc/PID/stat names" % label)


def parse_modules(text):
    mods = {}
    for line in text.splitlines():
        f = line.split()
        mods[f[0]] = {"size": int(f[1]), "refcount": int(f[2]), "state": f[4],
                      "base": hex(int(f[5], 16))}
    return mods


def check_lsmod(t, g, target, label):
    truth = parse_modules(g.truth()["modules"])
    ours = {m["name"]: m for m in run_json("lsmod", target, "--json")}
    precision, recall = precision_recall(set(ours), set(truth))
    t.ok(precision == 1.0 and recall == 1.0,
         "%s lsmod: precision %.3f, recall %.3f over %d modules" % (label, precision, recall,
                                                                   len(truth)),
         "vmscope %s\nguest %s" % (sorted(ours), sorted(truth)))
    wrong = ["%s: vmscope %r, guest %r" % (n, {k: ours[n][k] for k in truth[n]}, truth[n])
             for n in truth if n in ours and {k: ours[n][k] for k in truth[n]} != truth[n]]
    t.ok(not wrong, "%s lsmod: size, refcount, state and base equal /proc/modules" % label,
         "\n".join(wrong))


def meminfo_kb(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def check_sysinfo(t, g, target, label):
    truth = g.truth()
    ours = run_json("sysinfo", target, "--json")
    stat = dict(l.split(" ", 1) for l in truth["stat"].splitlines())
    load = truth["loadavg"].split()
    uptime = float(truth["uptime"].split()[0])
    mem = truth["meminfo"]
    t.eq(ours["release"], truth["release"].strip(), "%s sysinfo: release" % label)
    t.eq(ours["mem_total_bytes"] // 1024, meminfo_kb(mem, "MemTotal"), "%s sysinfo: MemTotal"
         % label)
    for key, name in (("mem_free_bytes", "MemFree"), ("mem_available_bytes", "MemAvailable")):
        want = meminfo_kb(mem, name)
        got = ours[key] // 1024
        t.ok(abs(got - want) <= max(2048, want // 50), "%s sysinfo: %s %d kB, guest %d kB"
             % (label, name, got, want))
    # /proc/uptime truncates to centiseconds: ours may read up to one below it.
    t.ok(uptime - 0.01 <= ours["uptime_s"] <= uptime + 30, "%s sysinfo: uptime %.3f s, not "
         "before the guest's %.2f s" % (label, ours["uptime_s"], uptime))
    t.ok(all(abs(ours["load"][i] - float(load[i])) <= 0.1 for i in range(3)),
         "%s sysinfo: load %s, guest %s" % (label, ours["load"], load[:3]))
    t.ok(abs(ours["tasks"] - int(load[3].split("/")[1])) <= 5, "%s sysinfo: %d tasks, guest %s"
         % (label, ours["tasks"], load[3]))
    forks, ctxt = int(stat["processes"]), int(stat["ctxt"])
    t.ok(forks <= ours["forks"] <= forks + 10, "%s sysinfo: forks %d, guest %d before"
         % (label, ours["forks"], forks))
    t.ok(ctxt <= ours["context_switches"] <= ctxt + 100000, "%s sysinfo: context switches %d, "
         "guest %d before" % (label, ours["context_switches"], ctxt))


def file_offset(core, gpa):
    """Where guest-physical gpa lies in an ELF core (its PT_LOAD segments)."""
    with open(core, "rb") as f:
        head = f.read(64)
        phoff, = struct.unpack_from("<Q", head, 32)
        phnum, = struct.unpack_from("<H", head, 56)
        f.seek(phoff)
        for _ in range(phnum):
            p_type, _, p_offset, _, p_paddr, p_filesz, _, _ = struct.unpack("<IIQQQQQQ",
                                                                            f.read(56))
            if p_type == 1 and p_paddr <= gpa < p_paddr + p_filesz:
                return p_offset + gpa - p_paddr
    raise ValueError("0x%x not in the core" % gpa)


def poke(core, va, value):
    """Overwrite 8 bytes of guest memory at kernel address va inside a dump."""
    r = vmscope("translate", "dump:" + core, hex(va))
    gpa = int(r.stdout.split()[1], 16)
    with open(core, "r+b") as f:
        f.seek(file_offset(core, gpa))
        f.write(struct.pack("<Q", value))


def list_offset(target, owner, first_entry):
    """The offset of the list_head in owner whose next points at first_entry's same member."""
    raw = subprocess.run([os.environ["VMSCOPE_BIN"], "read", target, "--virt", hex(owner),
                          "4096", "--raw"], stdout=subprocess.PIPE, check=True).stdout
    for off in range(0, 4096, 8):
        if struct.unpack_from("<Q", raw, off)[0] - off == first_entry:
            return off
    raise ValueError("no list offset found")


def check_hostile(t, g, target):
    """A guest can corrupt its own lists. In a dump of it, make the task list
    loop without coming back to its head, and point a link at nothing: ps must
    end at once, list every task it could read (each once) and say on one
    warning line that the list is partial; other views must still work."""
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        core = os.path.join(d, "vm.core")
        r = vmscope("dump", target, core)
        if r.returncode:
            raise RuntimeError(r.stderr)
        procs = run_json("ps", "dump:" + core, "--json")
        init_task = int(run_json("kernel", "dump:" + core, "--symbol", "init_task",
                                 "--json")["addresses"]["init_task"], 16)
        tasks = [int(p["task"], 16) for p in procs]
        off = list_offset("dump:" + core, init_task, tasks[0])
        for label, value in (("loops back into itself", tasks[1] + off),
                             ("points nowhere", 0xdead000000000100)):
            bad = os.path.join(d, "bad.core")
            shutil.copyfile(core, bad)
            poke(bad, tasks[-1] + off, value)
            r = vmscope("ps", "dump:" + bad, "--json")
            items, truncated, same = partial_json(r) if r.returncode == 0 else ([], 0, 0)
            got = [p["pid"] for p in items]
            warnings = r.stderr.strip().split("\n")
            t.eq((got, len(warnings)), ([p["pid"] for p in procs], 1),
                 "task list that %s: ps lists every task once, with one warning" % label,
                 r.stderr)
            t.ok(truncated and same, "task list that %s: the JSON says truncated, with the "
                 "warning's words" % label, r.stdout[-300:])
            t.ok(warnings[0].startswith("vmscope: warning: partial result: the task list"),
                 "task list that %s: ... which says the list is partial" % label, r.stderr)
            r = vmscope("lsmod", "dump:" + bad)
            t.ok(r.returncode == 0 and "virtio" in r.stdout,
                 "task list that %s: lsmod still works" % label, r.stderr)
            os.unlink(bad)
        # The same for the module list, whose head is the bare list_head "modules".
        mods = [m["name"] for m in run_json("lsmod", "dump:" + core, "--json")]
        head = int(run_json("kernel", "dump:" + core, "--symbol", "modules",
                            "--json")["addresses"]["modules"], 16)
        nodes, node = [], read_u64("dump:" + core, head)
        while node != head and len(nodes) < 1000:
            nodes.append(node)
            node = read_u64("dump:" + core, node)
        for label, value in (("loops back into itself", nodes[1]),
                             ("points nowhere", 0xdead000000000100)):
            bad = os.path.join(d, "bad.core")
            shutil.copyfile(core, bad)
            poke(bad, nodes[-1], value)
            r = vmscope("lsmod", "dump:" + bad, "--json")
            items, truncated, same = partial_json(r) if r.returncode == 0 else ([], 0, 0)
            got = [m["name"] for m in items]
            t.ok(truncated and same, "module list that %s: the JSON says truncated, with the "
                 "warning's words" % label, r.stdout[-300:])
            t.eq((got, r.stderr.count("\n")), (mods, 1), "module list that %s: lsmod lists "
                 "every module once, with one warning" % label, r.stderr)
            t.ok(r.stderr.startswith("vmscope: warning: partial result: the module list"),
                 "module list that %s: ... which says the list is partial" % label, r.stderr)
            os.unlink(bad)


def check_hidden(t, g, target, label):
    """A rootkit's hiding, done by hand: in a dump, unlink a process from the
    task list. ps no longer shows it; ps --cross-check finds it in memory (and
    on a clean guest raises no alarm)."""
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        core = os.path.join(d, "vm.core")
        r = vmscope("dump", target, core)
        if r.returncode:
            raise RuntimeError(r.stderr)
        clean = run_json("ps", "dump:" + core, "--cross-check", "--json")
        t.eq([c["pid"] for c in clean if c["hidden"] or "memory" not in c["sources"] or
              "pid-idr" not in c["sources"]], [],
             "%s cross-check on a clean guest: every process in the task list, the pid IDR "
             "and memory" % label, clean)
        procs = run_json("ps", "dump:" + core, "--json")
        init_task = int(run_json("kernel", "dump:" + core, "--symbol", "init_task",
                                 "--json")["addresses"]["init_task"], 16)
        off = list_offset("dump:" + core, init_task, int(procs[0]["task"], 16))
        victim = [p for p in procs if not p["kernel_thread"] and p["pid"] > 1][-2]
        node = int(victim["task"], 16) + off
        after, before = read_u64("dump:" + core, node), read_u64("dump:" + core, node + 8)
        bad = os.path.join(d, "hidden.core")
        shutil.copyfile(core, bad)
        poke(bad, before, after)      # before->next = after
        poke(bad, after + 8, before)  # after->prev = before
        listed = [p["pid"] for p in run_json("ps", "dump:" + bad, "--json")]
        t.ok(victim["pid"] not in listed and len(listed) == len(procs) - 1,
             "%s: a process unlinked from the task list is gone from ps" % label, listed)
        found = run_json("ps", "dump:" + bad, "--cross-check", "--json")
        hidden = [(c["pid"], c["comm"], sorted(c["sources"])) for c in found if c["hidden"]]
        t.eq(hidden, [(victim["pid"], victim["comm"], ["memory", "pid-idr"])],
             "%s: ps --cross-check reports it hidden, found by the pid IDR and the memory scan"
             % label, found)


def read_u64(target, va):
    raw = subprocess.run([os.environ["VMSCOPE_BIN"], "read", target, "--virt", hex(va), "8",
                          "--raw"], stdout=subprocess.PIPE, check=True).stdout
    return struct.unpack("<Q", raw)[0]


FAKE_NOTE = ("OSRELEASE=9.9.9-planted\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff81000000\n"
             "SYMBOL(init_top_pgt)=ffffffff8260a000\nNUMBER(phys_base)=1048576\n"
             "SYMBOL(kallsyms_names)=ffffffff82000000\nSYMBOL(kallsyms_num_syms)=ffffffff82000000\n"
             "SYMBOL(kallsyms_token_table)=ffffffff82100000\n"
             "SYMBOL(kallsyms_token_index)=ffffffff82200000\n"
             "SYMBOL(kallsyms_offsets)=ffffffff82300000\n"
             "SYMBOL(kallsyms_relative_base)=ffffffff82400000\nKERNELOFFSET=0\n\0").encode()


def rewrite_ram(core, out, edit):
    """Copy the dump core to out, letting edit(bytearray, gpa_of) change its RAM."""
    data = bytearray(open(core, "rb").read())
    edit(data, lambda gpa: file_offset(core, gpa))
    with open(out, "wb") as f:
        f.write(data)


def wipe_notes(data, _gpa_of):
    at = data.find(b"OSRELEASE=")
    while at >= 0:
        data[at:at + 10] = b"XXXXXXXXXX"
        at = data.find(b"OSRELEASE=", at + 1)


def plant_notes(data, gpa_of):
    """Fake notes in 64 pages below 1 MiB: below the real note, wherever that is."""
    for page in range(0x10, 0x50):
        at = gpa_of(page << 12)
        data[at:at + len(FAKE_NOTE)] = FAKE_NOTE


def lookalike_tokens():
    """A kallsyms token table and index that look whole: 256 tokens, the digits
    as tokens 0x30..0x39, the index of their offsets just after."""
    table, index = b"", []
    for i in range(256):
        index.append(len(table))
        table += (chr(i) if 0x20 < i < 0x7f else "~%02x" % i).encode() + b"\0"
    table += b"\0" * (len(table) & 1)
    return table + struct.pack("<256H", *index)


def plant_tables(data, gpa_of):
    """No vmcoreinfo, and 40 look-alike token tables below the kernel (more than
    a search of all RAM tries): a process can leave such pages anywhere."""
    wipe_notes(data, gpa_of)
    fake = lookalike_tokens()
    for page in range(0x50, 0x78):
        at = gpa_of(page << 12)
        data[at:at + len(fake)] = fake


def check_discovery(t, g, target, label):
    """Discovery without vmcoreinfo (structural kallsyms search, KASLR from the
    page tables) and with fake notes below the real one gives the same kernel,
    symbols and views as the live fast path."""
    symbols = ["--symbol", "_text", "--symbol", "init_task", "--symbol", "linux_banner",
               "--symbol", "init_top_pgt"]
    env = {"VMSCOPE_KERNEL_CACHE": ""}
    live = json.loads(vmscope("kernel", target, "--json", *symbols, env=env).stdout)
    live_ps = vmscope("ps", target, "--json", env=env).stdout
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        core = os.path.join(d, "vm.core")
        r = vmscope("dump", target, core)
        if r.returncode:
            raise RuntimeError(r.stderr)
        for what, edit in (("no vmcoreinfo", wipe_notes), ("64 fake notes below", plant_notes),
                           ("no vmcoreinfo, 40 look-alike tables below", plant_tables)):
            bad = os.path.join(d, "edited.core")
            rewrite_ram(core, bad, edit)
            r = vmscope("kernel", "dump:" + bad, "--json", *symbols, env=env)
            got = json.loads(r.stdout) if r.returncode == 0 else r.stderr
            t.eq(got, live, "%s %s: the same kernel, KASLR offset, page tables and symbols"
                 % (label, what))
            r = vmscope("ps", "dump:" + bad, "--json", env=env)
            t.eq(r.stdout, live_ps, "%s %s: the same processes" % (label, what), r.stderr)
            os.unlink(bad)


PFN = 0x000ffffffffff000
IMAGE = 0xffffffff80000000


def walk(data, gpa_of, root, va):
    """va through 4-level page tables at root inside a dump's RAM, or None."""
    table = root
    for shift in (39, 30, 21, 12):
        entry, = struct.unpack_from("<Q", data, gpa_of(table + ((va >> shift) & 511) * 8))
        if not entry & 1:
            return None
        if shift in (30, 21) and entry & 0x80:
            return (entry & PFN & ~((1 << shift) - 1)) + (va & ((1 << shift) - 1))
        table = entry & PFN
    return table + (va & 0xfff)


def cloned_image(cr3):
    """An edit that makes the KPTI user half of cr3 map the whole kernel image,
    as Linux does when it maps the image global (pti=auto on a CPU without
    PCID): the kernel half's page-middle entries copied into the user half's."""
    def edit(data, gpa_of):
        def pmd_table(root):
            pud, = struct.unpack_from("<Q", data, gpa_of((root & PFN) + 511 * 8))
            pmd, = struct.unpack_from("<Q", data, gpa_of((pud & PFN) + 510 * 8))
            return gpa_of(pmd & PFN)
        user, kernel = pmd_table(cr3), pmd_table(cr3 & ~0x1000)
        data[user:user + 4096] = data[kernel:kernel + 4096]
    return edit


def check_kpti(t, kernel):
    """Discovery with vCPU 0 in user mode under KPTI, CR3 the user half of its
    pair: the kernel half is found and searched, look-alike tables or not,
    whether the user half maps only the entry code (pti=on, or PCID: most real
    CPUs) or the whole kernel image (made by editing the dump: pti=auto on a
    CPU without PCID, which TCG's Meltdown-free CPUs never choose)."""
    env = {"VMSCOPE_KERNEL_CACHE": ""}
    symbols = ["--symbol", "_text", "--symbol", "linux_banner", "--symbol", "init_task",
               "--symbol", "__entry_text_start", "--symbol", "__entry_text_end"]
    with vmguest.Guest(workload="busy", kernel=kernel, name="kpti", append="pti=on",
                       disk=False) as g, tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        target, core = "qmp:" + g.qmp_path, os.path.join(d, "vm.core")
        for _ in range(20):  # the spinner is in user mode nearly always
            g.qmp("stop")
            regs = json.loads(vmscope("regs", target, "--json").stdout)[0]
            if regs["cpl"] == 3:
                break
            g.qmp("cont")
        cr3 = int(regs["cr3"], 16)
        t.ok(regs["cpl"] == 3 and cr3 & 0x1000, "kpti: vCPU 0 in user mode, CR3 %#x the "
             "user half of its pair" % cr3)
        live = json.loads(vmscope("kernel", target, "--json", *symbols, env=env).stdout)
        live_ps = vmscope("ps", target, "--json", env=env).stdout
        sym = {k: int(v, 16) for k, v in live["addresses"].items()}
        if vmscope("dump", target, core).returncode:
            raise RuntimeError("dump failed")
        g.qmp("cont")
        cloned = cloned_image(cr3)

        def both(data, gpa_of):
            cloned(data, gpa_of)
            plant_tables(data, gpa_of)
        for what, edit in (("entry code only", plant_tables), ("whole image", both)):
            bad = os.path.join(d, "edited.core")
            rewrite_ram(core, bad, edit)
            data = open(bad, "rb").read()
            gpa_of = lambda gpa: file_offset(bad, gpa)
            user = [walk(data, gpa_of, cr3 & PFN, sym[s]) for s in ("__entry_text_start",
                                                                     "linux_banner")]
            want = [True, what == "whole image"]
            t.eq([u is not None for u in user], want, "kpti %s: the user half maps the "
                 "entry code, and the kernel's rodata %s" % (what, "too" if want[1] else "not"))
            del data
            r = vmscope("kernel", "dump:" + bad, "--json", *symbols, env=env)
            got = json.loads(r.stdout) if r.returncode == 0 else r.stderr
            t.eq(got, live, "kpti %s, no vmcoreinfo, 40 look-alike tables: the same kernel "
                 "and symbols" % what)
            r = vmscope("ps", "dump:" + bad, "--json", env=env)
            t.eq(r.stdout, live_ps, "kpti %s: the same processes" % what, r.stderr)
            os.unlink(bad)


def peek(core, va, n):
    """n bytes of a dump at kernel address va (the image is physically contiguous)."""
    r = vmscope("translate", "dump:" + core, hex(va))
    with open(core, "rb") as f:
        f.seek(file_offset(core, int(r.stdout.split()[1], 16)))
        return f.read(n)


def rename_symbols(core, names):
    """Give the kallsyms entries of names other names, as a kernel built without
    them would have: one token byte of each is changed, lengths kept."""
    # kallsyms leaves its own tables out; vmcoreinfo (6.0 on) says where they are.
    with open(core, "rb") as f:
        ram = f.read()
    at = {m.group(1).decode(): int(m.group(2), 16) for m in
          re.finditer(rb"SYMBOL\((kallsyms_\w+)\)=([0-9a-f]+)\n", ram)}
    del ram
    count, = struct.unpack("<I", peek(core, at["kallsyms_num_syms"], 4))
    index = struct.unpack("<256H", peek(core, at["kallsyms_token_index"], 512))
    table = peek(core, at["kallsyms_token_table"], index[255] + 64)
    tokens = [table[i:table.index(b"\0", i)] for i in index]
    blob = peek(core, at["kallsyms_names"], 4 << 20)
    pos, renamed = 0, []
    for _ in range(count):
        size, head = blob[pos], 1
        if size & 0x80:
            size, head = (size & 0x7f) | (blob[pos + 1] << 7), 2
        body = blob[pos + head:pos + head + size]
        if b"".join(tokens[b] for b in body)[1:].decode() in names:
            other = next(i for i in range(256) if tokens[i] != tokens[body[-1]])
            poke_bytes(core, at["kallsyms_names"] + pos + head + size - 1, bytes([other]))
            renamed.append(pos)
        pos += head + size
    return len(renamed)


def poke_bytes(core, va, data):
    r = vmscope("translate", "dump:" + core, hex(va))
    with open(core, "r+b") as f:
        f.seek(file_offset(core, int(r.stdout.split()[1], 16)))
        f.write(data)


BTF_TRAILER = {1: 4, 3: 12, 4: 12, 5: 12, 6: 8, 13: 8, 14: 4, 15: 12, 17: 4, 19: 12}
BTF_PER_MEMBER = {4, 5, 6, 13, 15, 19}


def btf_struct(blob, name):
    """Where struct name's record lies in a raw BTF blob, and its members'
    (name, offset of the member record)."""
    hdr_len, type_off, type_len, str_off = struct.unpack_from("<IIII", blob, 4)[:4]
    types, strings = hdr_len + type_off, hdr_len + str_off
    at = types
    while at < types + type_len:
        name_off, info = struct.unpack_from("<II", blob, at)
        kind, vlen = (info >> 24) & 0x1f, info & 0xffff
        extra = BTF_TRAILER.get(kind, 0) * (vlen if kind in BTF_PER_MEMBER else 1)
        got = blob[strings + name_off:blob.index(b"\0", strings + name_off)].decode()
        if kind == 4 and got == name:
            members = []
            for i in range(vlen):
                m = at + 12 + 12 * i
                moff, = struct.unpack_from("<I", blob, m)
                members.append((blob[strings + moff:blob.index(b"\0", strings + moff)]
                                .decode(), m))
            return at, dict(members)
        at += 12 + extra
    raise ValueError("no struct %s in the BTF" % name)


def check_forged_btf(t, g, target):
    """The kernel's BTF is guest data too. Forged so that struct sock_common claims
    64 KiB and skc_family sits at its end (in the struct as the BTF says, far
    beyond the bytes the sockets view copies), the view refuses in one line and
    the others still work; before, it read past its stack buffer."""
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        core = os.path.join(d, "vm.core")
        r = vmscope("dump", target, core)
        if r.returncode:
            raise RuntimeError(r.stderr)
        at = run_json("kernel", "dump:" + core, "--json", "--symbol", "__start_BTF",
                      "--symbol", "__stop_BTF")["addresses"]
        start, stop = int(at["__start_BTF"], 16), int(at["__stop_BTF"], 16)
        blob = peek(core, start, stop - start)
        rec, members = btf_struct(blob, "sock_common")
        size = 0x10000
        poke_bytes(core, start + rec + 8, struct.pack("<I", size))
        poke_bytes(core, start + members["skc_family"] + 8, struct.pack("<I", (size - 2) * 8))
        env = {"VMSCOPE_KERNEL_CACHE": ""}
        r = vmscope("sockets", "dump:" + core, env=env)
        t.ok(r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1 and
             "sock_common's addresses beyond 256 bytes" in r.stderr,
             "BTF forged to put skc_family 64 KiB in: sockets refuses in one line", r.stderr)
        r = vmscope("ps", "dump:" + core, env=env)
        t.ok(r.returncode == 0 and "init" in r.stdout, "and ps works on the same dump",
             r.stderr)


def check_no_btf(t, g, target):
    """A kernel without BTF (built without it, or before 5.2: no __start_BTF) and a
    kernel whose BTF is garbage are refused, each in one line that says why, also
    when a cache entry for the same banner exists."""
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        core = os.path.join(d, "vm.core")
        r = vmscope("dump", target, core)
        if r.returncode:
            raise RuntimeError(r.stderr)
        at = run_json("kernel", "dump:" + core, "--json", "--symbol", "__start_BTF")
        for what, want, edit in (
                ("no BTF", "carries no BTF: vmscope needs Linux 5.2 or later built with "
                 "CONFIG_DEBUG_INFO_BTF",
                 lambda bad: rename_symbols(bad, ("__start_BTF", "__stop_BTF")) == 2),
                ("garbled BTF", "the guest's BTF is unreadable or malformed",
                 lambda bad: poke_bytes(bad, int(at["addresses"]["__start_BTF"], 16),
                                        b"\0" * 4096) or True)):
            bad = os.path.join(d, "bad.core")
            shutil.copyfile(core, bad)
            t.ok(edit(bad), "%s: the dump is edited" % what)
            for cache in ("", None):
                r = vmscope("ps", "dump:" + bad, env={"VMSCOPE_KERNEL_CACHE": cache}
                            if cache is not None else None)
                t.ok(r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1 and
                     want in r.stderr, "%s%s: ps refuses it in one line saying why" %
                     (what, " (cache off)" if cache == "" else " (cache on)"), r.stderr)
            os.unlink(bad)


def check_dmesg(t, g, target, label):
    """Every line the guest's dmesg printed is in ours; ours may only add newer records."""
    truth = [re.sub(r"^<\d+>", "", l) for l in g.truth()["dmesg"].splitlines() if l.strip()]
    r = vmscope("dmesg", target)
    ours = r.stdout.splitlines()
    missing = [l for l in truth if l not in set(ours)]
    last = max(float(l[1:l.index("]")]) for l in truth)
    extra = [l for l in ours if l not in set(truth) and float(l[1:l.index("]")]) <= last]
    precision = 1 - len(extra) / max(1, len(ours))
    recall = 1 - len(missing) / max(1, len(truth))
    t.ok(not missing and not extra, "%s dmesg: precision %.3f, recall %.3f over %d lines"
         % (label, precision, recall, len(truth)),
         "missing: %s\nextra: %s" % (missing[:5], extra[:5]))
    recs = run_json("dmesg", target, "--json")
    t.ok(all(b["seq"] == a["seq"] + 1 for a, b in zip(recs, recs[1:])) and
         recs[0]["text"].startswith("Linux version"),
         "%s dmesg --json: consecutive sequence numbers from the banner on" % label)


def check_mounts(t, g, target, label):
    truth = []
    for line in g.truth()["mounts"].splitlines():
        dev, point, fstype, opts = line.split()[:4]
        truth.append((dev, point, fstype, opts.split(",")[0]))
    got = run_json("mounts", target, "--json")
    ours = [(m["device"], m["mountpoint"], m["fstype"], "ro" if m["read_only"] else "rw")
            for m in got]
    precision, recall = precision_recall(set(ours), set(truth))
    t.ok(ours == truth, "%s mounts: precision %.3f, recall %.3f over %d mounts, same order"
         % (label, precision, recall, len(truth)), "vmscope %s\nguest %s" % (ours, truth))
    # The data disk's UUID as the host's blkid reads it from the image; /proc has none.
    disk = os.path.join(g.rundir, "data.img")
    want = subprocess.run(["blkid", "-p", "-o", "value", "-s", "UUID", disk],
                          stdout=subprocess.PIPE, text=True).stdout.strip()
    uuids = {m["mountpoint"]: m["uuid"] for m in got}
    t.ok(want and uuids.get("/data") == want and uuids.get("/proc") == "",
         "%s mounts: /data's filesystem UUID (super_block.s_uuid) is the one blkid reads on "
         "its disk; /proc has none" % label, (want, uuids))


def check_lsof(t, g, target, label):
    """Descriptors of every process that predates the truth, but init's: pid 1
    is the shell writing the truth, with its output redirected meanwhile."""
    collector = int(g.truth()["collector"].strip())
    truth = set()
    for line in g.truth()["fds"].splitlines():
        _, pid, fd, path = line.split(" ", 3)
        if 1 < int(pid) < collector:
            truth.add((int(pid), int(fd), path))
    ours = {(f["pid"], f["fd"], f["path"]) for f in run_json("lsof", target, "--json")
            if 1 < f["pid"] < collector}
    precision, recall = precision_recall(ours, truth)
    t.ok(ours == truth, "%s lsof: precision %.3f, recall %.3f over %d descriptors (files across "
         "mounts, pipes, sockets)" % (label, precision, recall, len(truth)),
         "only vmscope: %s\nonly guest: %s" % (sorted(ours - truth)[:10], sorted(truth - ours)[:10]))
    kinds = {p.split(":")[0] for _, _, p in ours}
    t.ok({"pipe", "socket"} <= kinds and ("/data/docs/numbers.txt" in {p for _, _, p in ours}),
         "%s lsof: pipes, sockets and a file on the ext4 mount seen" % label, kinds)
    one = run_json("lsof", target, "--pid", "1", "--json")
    t.ok(one and all(f["pid"] == 1 for f in one), "%s lsof --pid 1: only pid 1's files" % label)


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
              11: "CLOSING", 12: "NEW_SYN_RECV"}


def proc_net_address(text):
    """/proc/net prints addresses as 32-bit words in host (little-endian) order."""
    hexaddr, port = text.split(":")
    raw = b"".join(bytes.fromhex(hexaddr[i:i + 8])[::-1] for i in range(0, len(hexaddr), 8))
    return str(ipaddress.ip_address(raw)), int(port, 16)


def parse_net(text):
    socks, table = set(), None
    for line in text.splitlines():
        f = line.split()
        if f[0] == "TABLE":
            table = f[1]
        elif f[0].endswith(":") and f[0][:-1].isdigit():
            local, remote = proc_net_address(f[1]), proc_net_address(f[2])
            socks.add((table, local[0], local[1], remote[0], remote[1],
                       TCP_STATES[int(f[3], 16)], int(f[9])))
    return socks


def check_sockets(t, g, target, label):
    truth = parse_net(g.truth()["net"])
    listed = run_json("sockets", target, "--json")
    canon = lambda a: str(ipaddress.ip_address(a))  # one spelling for ::ffff:127.0.0.1
    ours = {(s["protocol"], canon(s["local_address"]), s["local_port"],
             canon(s["remote_address"]), s["remote_port"], s["state"], s["inode"])
            for s in listed}
    precision, recall = precision_recall(ours, truth)
    t.ok(ours == truth, "%s sockets: precision %.3f, recall %.3f over %d sockets (tcp listen and "
         "established, IPv4 and IPv6, udp)" % (label, precision, recall, len(truth)),
         "only vmscope: %s\nonly guest: %s" % (ours - truth, truth - ours))
    # Owners against the guest's own descriptors: the pids with an fd on the socket's inode.
    holders = {}
    for line in g.truth()["fds"].splitlines():
        f = line.split(" ", 3)
        if len(f) == 4 and f[3].startswith("socket:["):
            holders.setdefault(int(f[3][8:-1]), set()).add(int(f[1]))
    bad = [(s["protocol"], s["local_port"], s["pid"], sorted(holders.get(s["inode"], [])))
           for s in listed if s["inode"] in holders and s["pid"] not in holders[s["inode"]]]
    t.ok(not bad and all(s["inode"] not in holders or s["pid"] > 0 for s in listed),
         "%s sockets: each socket's owner holds a descriptor on it in the guest's /proc" % label,
         bad)
    procs = {p["pid"]: p["cmdline"] for p in run_json("ps", target, "--json")}
    owners = {(s["protocol"], s["local_port"] if s["state"] != "ESTABLISHED" or
               s["local_port"] in (7070, 8080) else "client"): procs.get(s["pid"])
              for s in listed}
    want = {("tcp6", 8080): "httpd -p 8080 -h /tmp", ("tcp6", 7070): "nc -l -p 7070",
            ("tcp", "client"): "nc 127.0.0.1 7070"}
    t.ok(all(owners.get(k) == v for k, v in want.items()) and
         any(k[0] == "udp" and v and v.startswith("syslogd") for k, v in owners.items()),
         "%s sockets: each socket's owning process" % label, owners)


def check_cache(t, g, target, label):
    """A second attach to the same build finds the kernel through the per-build
    cache, without scanning RAM, and sees exactly what a scan sees; a damaged
    cache file is ignored."""
    symbols = ["--symbol", "init_task", "--symbol", "linux_banner", "--symbol", "modules",
               "--symbol", "runqueues"]
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        env = {"VMSCOPE_KERNEL_CACHE": d}
        first = json.loads(vmscope("kernel", target, "--json", *symbols, env=env).stdout)
        second = json.loads(vmscope("kernel", target, "--json", *symbols, env=env).stdout)
        t.eq((first.pop("discovery"), second.pop("discovery")), ("scan", "cache"),
             "%s cache: a first attach scans, the second uses the per-build cache" % label)
        t.eq(second, first, "%s cache: the same kernel, KASLR offset, page tables and symbol "
             "addresses either way" % label)
        t.eq(vmscope("ps", target, "--json", env=env).stdout,
             vmscope("ps", target, "--json", env={"VMSCOPE_KERNEL_CACHE": ""}).stdout,
             "%s cache: ps through the cache equals ps without one" % label)
        name = os.listdir(d)[0]
        with open(os.path.join(d, name), "rb") as f:
            entry = f.read()
        if OTHER_BUILD:
            # Another build's symbols and BTF under this build's banner and placement, with a
            # valid checksum: what a guest running its own kernel behind a stock banner leaves.
            with open(os.path.join(d, name), "wb") as f:
                f.write(poisoned(entry, OTHER_BUILD[0]))
            r = vmscope("kernel", target, "--json", *symbols, env=env)
            got = json.loads(r.stdout) if r.returncode == 0 else {"discovery": r.stderr}
            t.eq(got.pop("discovery"), "scan", "%s cache: an entry poisoned with %s's symbols "
                 "and BTF is not used" % (label, OTHER_BUILD[1]))
            t.eq(got, first, "%s cache: ... and the kernel is found as without a cache" % label)
        OTHER_BUILD[:] = [entry, label]
        with open(os.path.join(d, name), "wb") as f:
            f.write(entry[:len(entry) // 2] + b"\xff" * 64 + entry[len(entry) // 2 + 64:])
        third = json.loads(vmscope("kernel", target, "--json", *symbols, env=env).stdout)
        t.eq(third.pop("discovery"), "scan", "%s cache: a damaged cache file is ignored" % label)


# The previous kernel line's cache entry and its name, for the poisoning check.
OTHER_BUILD = []
# struct cache_header (lib/os/linux/cache.c): counts at 12..24, checksum at 40, then the
# tables' place and hash up to 112.
COUNTS, CHECKSUM, TABLES = slice(12, 24), slice(40, 48), slice(48, 112)


def cache_header_len(entry):
    nr_syms, names, btf = struct.unpack_from("<III", entry, 12)
    return len(entry) - (nr_syms * 16 + names + btf)


def poisoned(victim, other):
    """victim's header (banner, placement) over other's body, counts, checksum and tables."""
    header = bytearray(victim[:cache_header_len(victim)])
    for part in (COUNTS, CHECKSUM, TABLES):
        header[part] = other[part]
    return bytes(header) + other[cache_header_len(other):]


def check_kernel(t, kernel):
    label = kernel
    with vmguest.Guest(workload="views", kernel=kernel, name="views") as g:
        target = "qmp:" + g.qmp_path
        g.qmp("stop")
        check_ps(t, g, target, label)
        check_lsmod(t, g, target, label)
        check_sysinfo(t, g, target, label)
        check_dmesg(t, g, target, label)
        check_mounts(t, g, target, label)
        check_lsof(t, g, target, label)
        check_sockets(t, g, target, label)
        check_cache(t, g, target, label)
        check_discovery(t, g, target, label)
        check_hidden(t, g, target, label)
        if kernel == vmguest.pinned_kernel():
            check_hostile(t, g, target)
            check_no_btf(t, g, target)
            check_forged_btf(t, g, target)
        g.qmp("cont")


def main():
    t = Tap()
    for kernel in vmguest.kernel_lines() + vmguest.kernel_flavours():
        t.run(kernel, check_kernel, kernel)
    t.run("kpti", check_kpti, vmguest.pinned_kernel())
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
