#!/usr/bin/env python3
"""Many light guests under one vmscoped: 32 guests of 80 MiB (one busy, the others
starting a process every 3 s) booted eight at a time, all found in one QMP directory, sampled
at 1 Hz with their views polled into events. Every VM's metrics name its own QEMU and
every VM's events hold the processes it says it started; VMs killed, restarted, added
and hung while it runs; 100 attach/detach cycles leave the daemon's descriptors where
they were and its memory about so. Ground truth: the harness's QEMU pids and each
guest's log of its processes."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from harness import VMSCOPE, Tap, vmguest, track
import test_daemon
from test_daemon import VMSCOPED, get, vms, wait_for, info_pids

N = int(os.environ.get("VMSCOPE_SCALE_GUESTS", "32"))
# 64 MiB is too little for Debian's cloud kernel: its decompressed image and the
# initramfs do not fit, and QEMU exits before the kernel prints a line. 80 boots.
GUEST_MIB = 80
CYCLES = 100


def boot(names, workload_of):
    guests = [vmguest.Guest(name=n, workload=workload_of(i), ram_mib=GUEST_MIB, disk=False)
              for i, n in enumerate(names)]
    try:
        # Eight at a time: the two cores stay busy, and no guest starves in its boot
        # (32 at once beside spinners can hang one at its timer check).
        for wave in range(0, len(guests), 8):
            for g in guests[wave:wave + 8]:
                g.launch()
            for g in guests[wave:wave + 8]:
                g.wait_ready(timeout=300)
    except BaseException:
        for g in guests:
            g.stop()
        raise
    return guests


def ticks(g):
    return {int(m.group(1)) for m in re.finditer(r"^TICK (\d+)$", g._read(g.truth_path), re.M)}


def daemon_figures(pid):
    """Its private memory (RssAnon: not the guests' RAM it maps and reads) and its fds,
    the fewest of five looks (a rescan of the directory holds one for a moment)."""
    fds = []
    for _ in range(5):
        fds.append(len(os.listdir("/proc/%d/fd" % pid)))
        time.sleep(0.3)
    with open("/proc/%d/status" % pid) as f:
        anon = int(re.search(r"^RssAnon:\s+(\d+) kB", f.read(), re.M).group(1))
    return anon, min(fds)


def fd_links(pid):
    out = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            out.append("%s:%s" % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
        except OSError:
            pass
    return out


def link(qdir, name, target):
    path = os.path.join(qdir, name + ".qmp")
    tmp = path + ".new"
    os.symlink(target, tmp)
    os.replace(tmp, path)  # a rename: the name now means the new socket


def check_scale(t):
    names = ["vm%02d" % i for i in range(N)]
    with tempfile.TemporaryDirectory(prefix="vmscoped-scale-") as d:
        started = time.monotonic()
        guests = boot(names, lambda i: "busy" if i == 0 else "ticker")
        extra = []
        proc = None
        env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
                   ":quarantine_size_mb=0")  # freed memory goes back, as without ASAN
        try:
            t.ok(True, "%d guests of %d MiB booted, eight at a time, in %.0f s" %
                 (N, GUEST_MIB, time.monotonic() - started))
            qdir, ctl, log_dir = (os.path.join(d, x) for x in ("qmp", "ctl.sock", "log"))
            os.mkdir(qdir)
            for n, g in zip(names, guests):
                link(qdir, n, g.qmp_path)
            conf = os.path.join(d, "vmscoped.conf")
            with open(conf, "w") as f:
                f.write("[daemon]\nqmp-dir = %s\nlisten = unix:%s\ninterval = 1\n"
                        "log-dir = %s\n[defaults]\nviews = processes modules sockets\n"
                        "view-interval = 2\n" % (qdir, ctl, log_dir))
            proc = track(subprocess.Popen([VMSCOPED, "--config", conf], stderr=subprocess.PIPE,
                                          text=True, env=env))
            up = wait_for(lambda: os.path.exists(ctl) and len(vms(ctl)) == N and all(
                v["state"] == "up" and v["capabilities"]["views"]["state"] == "on"
                for v in vms(ctl).values()), 300)
            t.ok(up, "all %d VMs attached, sampled and polled" % N,
                 {n: (v["state"], v["reason"]) for n, v in vms(ctl).items()
                  if v["state"] != "up"} if os.path.exists(ctl) else "no socket")
            pids = info_pids(get(ctl, "/metrics")[1])
            t.eq(pids, {n: g.pid for n, g in zip(names, guests)},
                 "/metrics: every VM's info names its own QEMU")
            time.sleep(8)  # a few ticks in each guest, polled
            events = test_daemon.logged(log_dir)
            started_pids = {}
            for e in events:
                if e["type"] == "process_start":
                    started_pids.setdefault(e["vm"], set()).add(e["pid"])
            missing = [n for n, g in zip(names[1:], guests[1:])
                       if not ticks(g) & started_pids.get(n, set())]
            t.ok(not missing, "every ticking VM's events hold processes its guest says it "
                 "started (%d events)" % len(events), missing)

            # Two killed: down with why, the others up.
            for g in guests[1:3]:
                g.proc.kill()
                g.proc.wait()
            down = wait_for(lambda: all(vms(ctl)[n]["state"] == "down" and vms(ctl)[n]["reason"]
                                        for n in names[1:3]), 30)
            others = [n for n in names[3:] if vms(ctl)[n]["state"] != "up"]
            t.ok(down and not others, "two QEMUs killed: those VMs down with the reason, the "
                 "others up", others or [vms(ctl)[n] for n in names[1:3]])
            # Restarted (new QEMUs, the same names) and two more added.
            for g in guests[1:3]:
                g.stop()
            extra = boot(["vm%02d" % i for i in (1, 2, N, N + 1)], lambda i: "ticker")
            for n, g in zip(["vm01", "vm02", names[-1][:2] + "%02d" % N,
                             names[-1][:2] + "%02d" % (N + 1)], extra):
                link(qdir, n, g.qmp_path)
            want = {"vm01": extra[0].pid, "vm02": extra[1].pid, "vm%02d" % N: extra[2].pid,
                    "vm%02d" % (N + 1): extra[3].pid}
            back = wait_for(lambda: all(info_pids(get(ctl, "/metrics")[1]).get(n) == p and
                                        vms(ctl)[n]["state"] == "up" for n, p in want.items()),
                            60)
            t.ok(back and len(vms(ctl)) == N + 2, "restarted VMs are back with their new "
                 "QEMUs, added ones attached: %d VMs" % len(vms(ctl)),
                 {n: vms(ctl).get(n, {}).get("state") for n in want})

            # One hung (its QEMU stopped): scrapes go on, it goes down, and comes back.
            hung = guests[3]
            hung.proc.send_signal(signal.SIGSTOP)
            try:
                scrapes = [get(ctl, "/metrics")[0] for _ in range(5)]
                gone = wait_for(lambda: vms(ctl)["vm03"]["state"] == "down", 30)
                t.ok(scrapes == [200] * 5 and gone and "no answer in time" in
                     vms(ctl)["vm03"]["reason"],
                     "a hung QEMU: every scrape answered meanwhile; it is down (its QMP timed "
                     "out)", vms(ctl)["vm03"])
            finally:
                hung.proc.send_signal(signal.SIGCONT)
            t.ok(wait_for(lambda: vms(ctl)["vm03"]["state"] == "up", 30),
                 "resumed, it is up again", vms(ctl)["vm03"])

        finally:
            if proc:
                proc.send_signal(signal.SIGTERM)
                try:
                    _, err = proc.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate()
            if proc and proc.poll() is not None:
                check_cycles(t, d, guests[4], env)
            for g in guests + extra:
                g.stop()
        t.ok(proc and proc.returncode == 0, "the daemon stops cleanly with every VM attached",
             err[-1500:] if proc else "")


def check_cycles(t, d, g, env):
    """100 attach/detach cycles under a daemon of their own, with nothing else to do (no
    events filling its buffers meanwhile): its descriptors and private memory after the
    last cycle as after the tenth."""
    qdir, ctl = os.path.join(d, "cycles"), os.path.join(d, "cycles.sock")
    os.mkdir(qdir)
    proc = track(subprocess.Popen([VMSCOPED, "--qmp-dir", qdir, "--listen", "unix:" + ctl],
                                  stderr=subprocess.PIPE, text=True, env=env))
    try:
        wait_for(lambda: os.path.exists(ctl), 20)
        figures = []
        for i in range(CYCLES):
            link(qdir, "cycle", g.harness_qmp_path)
            ok = wait_for(lambda: vms(ctl).get("cycle", {}).get("state") == "up", 30)
            os.unlink(os.path.join(qdir, "cycle.qmp"))
            ok = ok and wait_for(lambda: "cycle" not in vms(ctl), 30)
            if not ok:
                break
            if i in (9, CYCLES - 1):
                time.sleep(1)
                figures.append(daemon_figures(proc.pid))
                if i == 9:
                    links0 = fd_links(proc.pid)
        t.ok(len(figures) == 2, "%d cycles: the VM attached and dropped each time" % CYCLES)
        if len(figures) == 2:
            (anon0, fds0), (anon1, fds1) = figures
            # A connection of the API the test just closed may take its thread a moment
            # to let go of; a leaked descriptor never comes back.
            settled = wait_for(lambda: daemon_figures(proc.pid)[1] == fds0, 15)
            t.ok(settled, "the daemon's descriptors after cycle %d as after cycle 10 (%d)"
                 % (CYCLES, fds0), (fds0, fds1, fd_links(proc.pid), links0))
            # Under AddressSanitizer each thread that ever ran leaves ~14 KiB of its
            # bookkeeping (a worker is a thread); without it, +20 KiB over 90 cycles. A
            # leak of a VM's ring or handle would be megabytes; LeakSanitizer checks the
            # rest when the daemon exits.
            t.ok(anon1 - anon0 <= 2048, "its private memory after cycle %d within 2 MiB of "
                 "that after cycle 10 (%+d KiB; %d KiB in all)" % (CYCLES, anon1 - anon0, anon1),
                 (anon0, anon1))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    t.eq(proc.returncode, 0, "that daemon stops cleanly", err[-1000:])


def main():
    t = Tap()
    t.run("vmscoped with %d guests" % N, check_scale)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
