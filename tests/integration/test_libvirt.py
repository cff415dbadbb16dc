#!/usr/bin/env python3
"""libvirt-managed VMs under a real libvirtd: `vmscope ps libvirt:NAME` both
ways into QMP (libvirt's monitor passthrough, and a second monitor the
domain's XML declares), compared with the guest's own /proc; the QEMU pid
against libvirt's pid file; how each way taints the domain; tracing through
the passthrough while virsh suspends, resumes and destroys the domain; and
bad input."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from harness import VMSCOPE, Tap, vmscope, vmguest, track
import test_daemon
import test_linux
import test_trace
import vmlibvirt
from vmlibvirt import virsh


def taints(g):
    return set(re.findall(r"is tainted: (\S+)", g.qemu_log()))


def check_views(t, g, way):
    target = "libvirt:" + g.domain
    virsh("suspend", g.domain)
    try:
        test_linux.check_ps(t, g, target, "libvirt (%s)" % way)
        test_linux.check_lsmod(t, g, target, "libvirt (%s)" % way)
    finally:
        virsh("resume", g.domain)
    info = test_linux.run_json("info", target, "--json")
    t.eq((info["name"], info["qemu_pid"]), (g.domain, g.pid),
         "%s: info names the domain and the QEMU of libvirt's pid file" % way)


def check_both_ways(t):
    second = vmlibvirt.LibvirtGuest(workload="views", name="second", second_monitor=True)
    plain = vmlibvirt.LibvirtGuest(workload="views", name="plain", disk=True)
    with second, plain:
        check_views(t, second, "second monitor")
        t.eq(taints(second), {"custom-argv"},
             "second monitor: the domain is tainted only by its own <qemu:commandline>",
             second.qemu_log()[-1500:])
        t.eq(taints(plain), set(), "passthrough: nothing taints the domain before vmscope")
        check_views(t, plain, "passthrough")
        t.eq(taints(plain), {"custom-monitor"},
             "passthrough: libvirt marks the domain custom-monitor", plain.qemu_log()[-1500:])

        # Each way forced, and refused where it cannot be.
        r = vmscope("--libvirt-monitor", "passthrough", "ps", "libvirt:" + second.domain)
        t.ok(r.returncode == 0 and len(r.stdout.splitlines()) > 10 and
             "custom-monitor" in taints(second),
             "--libvirt-monitor passthrough on a domain with a second monitor: it is used "
             "(the domain now tainted custom-monitor)", r.stderr)
        r = vmscope("--libvirt-monitor", "second", "ps", "libvirt:" + plain.domain)
        t.eq((r.returncode, r.stderr),
             (1, 'vmscope: libvirt domain "%s" declares no second QMP monitor '
              '(<qemu:commandline> with -qmp unix:PATH,server=on,wait=off)\n' % plain.domain),
             "--libvirt-monitor second on a domain without one: refused, saying why")
        nowhere = "qemu:///system?socket=/nonexistent/libvirt-sock"
        r = vmscope("ps", "libvirt:" + plain.domain,
                    env=dict(os.environ, LIBVIRT_DEFAULT_URI=nowhere))
        t.ok(r.returncode == 1 and nowhere in r.stderr, "$LIBVIRT_DEFAULT_URI is the URI used",
             r.stderr)
        r = vmscope("--connect", "qemu:///system", "ps", "libvirt:" + plain.domain,
                    env=dict(os.environ, LIBVIRT_DEFAULT_URI=nowhere))
        t.ok(r.returncode == 0 and r.stdout.count("\n") > 10,
             "--connect URI goes before $LIBVIRT_DEFAULT_URI", r.stderr)
        # A dump libvirt did not start kills libvirtd 9.0 (both ways in): never sent.
        r = vmscope("--libvirt-monitor", "passthrough", "regs", "libvirt:" + plain.domain)
        t.ok(r.returncode == 0 and "rip" in r.stdout.lower() and
             virsh("version", check=False).returncode == 0,
             "regs through the passthrough: the registers, and libvirtd still up", r.stderr)
        dump = os.path.join(plain.rundir, "core")
        r = vmscope("--libvirt-monitor", "passthrough", "dump", "libvirt:" + plain.domain, dump)
        refused = ("vmscope: dump-guest-memory is not sent to a libvirt domain's QEMU: "
                   "libvirtd 9.0 dies of a dump it did not start; use virsh dump --memory-only "
                   "(docs/libvirt.md)\n")
        t.ok((r.returncode, r.stderr) == (1, refused) and
             virsh("version", check=False).returncode == 0,
             "dump through the passthrough: refused with the reason, libvirtd still up", r.stderr)
        r = vmscope("dump", "libvirt:" + second.domain, dump)
        t.ok((r.returncode, r.stderr) == (1, refused) and
             virsh("version", check=False).returncode == 0,
             "dump through the second monitor: refused too, libvirtd still up", r.stderr)
        t.eq(plain.state(), "running", "libvirt still manages the domain after vmscope left")


def start_trace(g, *extra):
    return test_trace.start_trace(g, *extra, target="libvirt:" + g.domain,
                                  options=("--libvirt-monitor", "passthrough"))


def gdbstub_left(g):
    out = virsh("qemu-monitor-command", "--hmp", g.domain, "info chardev").stdout
    return [l for l in out.splitlines() if l.startswith("gdb:")]


def check_trace(t):
    with vmlibvirt.LibvirtGuest(workload="tracer", name="tracer", control=True) as g:
        truth = g._read(g.truth_path)
        true_exe = re.search(r"^TRUE_EXE (\S+)$", truth, re.M).group(1)
        shell = int(re.search(r"^SHELL (\d+)$", truth, re.M).group(1))

        def execs(events):
            return [e for e in events if e["type"] == "exec" and e["ppid"] == shell and
                    e.get("filename") == true_exe and e.get("argv") == "/bin/true"]
        tr = start_trace(g, "--events", "exec,fork,exit")
        lines = test_trace.run_round(g, "round")
        want = len([l for l in lines if l.startswith("EXEC ")])
        # libvirt goes on managing the domain under the trace.
        # Suspended between events (a suspend that lands while the VM is stopped at a
        # probe is lost: docs/libvirt.md).
        rc = virsh("suspend", g.domain, check=False).returncode
        time.sleep(1.5)  # the trace sees the pause as a stop, and must not resume it
        t.eq([rc, g.state()], [0, "paused"], "virsh suspend while traced: it stays paused")
        t.eq([virsh("resume", g.domain, check=False).returncode, g.state()], [0, "running"],
             "virsh resume while traced")
        lines += test_trace.run_round(g, "round")
        want = len([l for l in lines if l.startswith("EXEC ")])
        events, err, rc = test_trace.stop_trace(tr)
        got = execs(events)
        t.ok(rc == 0 and want > 0 and len(got) == want,
             "trace through the passthrough: every exec of two rounds, either side of a "
             "suspend (%d)" % want, "rc %d, %d of %d\n%s" % (rc, len(got), want, err))
        t.eq(gdbstub_left(g), [], "a clean stop switches the gdbstub off")

        # Suspended and resumed with no hit between, then stopped: clean.
        tr = start_trace(g, "--events", "exec")
        virsh("suspend", g.domain)
        time.sleep(0.5)
        virsh("resume", g.domain)
        time.sleep(0.5)
        _, err, rc = test_trace.stop_trace(tr)
        t.ok(rc == 0 and g.state() == "running" and "detaching" not in err,
             "suspended and resumed with no event between, then stopped: clean, running", err)

        # Stopped while suspended: detaching must not resume it.
        tr = start_trace(g, "--events", "exec")
        virsh("suspend", g.domain)
        time.sleep(0.5)
        _, err, rc = test_trace.stop_trace(tr)
        t.eq([rc, g.state()], [0, "paused"], "a trace stopped while the domain is suspended "
             "leaves it suspended", err)
        virsh("resume", g.domain)

        # Killed: the VM runs on; the gdbstub it left is reclaimed by the next trace.
        tr = start_trace(g, "--events", "exec")
        t.ok(test_trace.kill_trace(tr), "trace killed: its guard removes the breakpoints")
        t.ok(gdbstub_left(g), "...and, through the passthrough, leaves the gdbstub on")
        t.eq(g.state(), "running", "trace killed: the domain runs on")
        tr = start_trace(g, "--events", "exec")
        lines = test_trace.run_round(g, "round")
        events, err, rc = test_trace.stop_trace(tr)
        want = len([l for l in lines if l.startswith("EXEC ")])
        got = execs(events)
        t.ok(rc == 0 and want > 0 and len(got) == want and not gdbstub_left(g),
             "the next trace reclaims a dead trace's gdbstub "
             "and sees every exec (%d)" % want, err)

        # Destroyed under a trace: it ends, saying so, and leaves nothing running.
        tr = start_trace(g, "--events", "exec")
        virsh("destroy", g.domain)
        g.created = False
        try:
            rc = tr.wait(timeout=60)
        except subprocess.TimeoutExpired:
            tr.kill()
            rc = None
        err = tr.stderr.read()
        t.ok(rc not in (None, 0) and "vmscope: " in err,
             "virsh destroy under a trace: it ends with the cause", "rc %r: %s" % (rc, err))


def check_daemon(t, libvirtd):
    """vmscoped --libvirt: domains found by libvirt's lifecycle events as virsh
    starts and destroys them, monitored and traced (the log holds each exec the
    guest made), and found again after libvirtd restarts."""
    with tempfile.TemporaryDirectory(prefix="vmscoped-libvirt-") as d:
        ctl, conf = os.path.join(d, "ctl.sock"), os.path.join(d, "vmscoped.conf")
        with open(conf, "w") as f:
            f.write("[daemon]\nlog-dir = %s/log\n[defaults]\ntrace = exec\n" % d)
        proc = track(subprocess.Popen([test_daemon.VMSCOPED, "--config", conf, "--libvirt",
                                       vmlibvirt.URI, "--listen", "unix:" + ctl,
                                       "--interval", "0.5"],
                                      stderr=subprocess.PIPE, text=True))
        vms = lambda: test_daemon.vms(ctl) if os.path.exists(ctl) else {}  # noqa: E731
        traced = lambda name: test_daemon.capabilities(ctl, name).get("trace") == "on"  # noqa
        try:
            with vmlibvirt.LibvirtGuest(name="watched", workload="tracer", control=True) as g:
                v = test_daemon.wait_for(lambda: vms().get(g.domain, {}).get("state") == "up" and
                                         traced(g.domain) and vms()[g.domain], 90)
                t.ok(v and v["target"] == "libvirt:" + g.domain and v["source"] == vmlibvirt.URI,
                     "a domain virsh starts is found, monitored and traced", vms())
                metrics = test_daemon.get(ctl, "/metrics")[1]
                t.eq(test_daemon.info_pids(metrics).get(g.domain), g.pid,
                     "its metrics name the QEMU of libvirt's pid file")
                lines = test_trace.run_round(g, "round")
                time.sleep(2)
                execs = [e for e in test_daemon.logged(os.path.join(d, "log"))
                         if e["vm"] == g.domain and e["type"] == "exec" and
                         e["argv"] == "/bin/true"]
                t.eq(len(execs), lines.count("EXEC /bin/true"), "the daemon's trace of it "
                     "(through libvirt's passthrough): an exec in the log for each the guest "
                     "made")
                started = time.monotonic()
                libvirtd.restart_libvirtd()
                with vmlibvirt.LibvirtGuest(name="later", second_monitor=True) as h:
                    w = test_daemon.wait_for(lambda: vms().get(h.domain, {}).get("state") == "up"
                                             and traced(h.domain), 90)
                    t.ok(w and vms().get(g.domain, {}).get("state") == "up",
                         "after libvirtd restarts: the running domain stays up, and one started "
                         "then is found and traced (%.0f s)" % (time.monotonic() - started),
                         vms())
                    pids = test_daemon.info_pids(test_daemon.get(ctl, "/metrics")[1])
                    t.eq((pids.get(g.domain), pids.get(h.domain)), (g.pid, h.pid),
                         "both ways into QMP (passthrough, second monitor): each one's metrics "
                         "name its QEMU")
                gone = test_daemon.wait_for(lambda: h.domain not in vms())
                t.ok(gone and g.domain in vms(), "a domain virsh destroys is dropped, the "
                     "other stays", vms())
                virsh("suspend", g.domain)
                time.sleep(1.5)
                t.eq((g.state(), vms()[g.domain]["state"]), ("paused", "up"),
                     "virsh suspend under the daemon: paused, and still monitored")
                virsh("resume", g.domain)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        t.eq(proc.returncode, 0, "vmscoped stops cleanly", err[-2000:])


def qmp_json(g, command):
    out = virsh("qemu-monitor-command", g.domain, json.dumps({"execute": command})).stdout
    return json.loads(out)["return"]


def check_fswatch(t):
    """File events from a libvirt domain's disk (through the passthrough), and
    what libvirt can still do meanwhile: found by trying (docs/libvirt.md)."""
    with vmlibvirt.LibvirtGuest(workload="writer", name="fs", disk=True) as g:
        target = "libvirt:" + g.domain
        r = vmscope("disks", target)
        node = r.stdout.split()[0] if r.returncode == 0 and r.stdout else ""
        t.ok(node.startswith("libvirt-") and 'ext4 label "vmscope-data"' in r.stdout,
             "disks: libvirt's disk node and the ext4 on it", r.stdout + r.stderr)
        for mode in ("blocking", "bitmap"):
            fw = track(subprocess.Popen([VMSCOPE, "fswatch", target, "--disk", node, "--mode",
                                         mode, "--duration", "12"], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
            # The writes that count are those after the watch began (its capture is in
            # place when it says "watching"); one just before is the state it started from.
            first = fw.stderr.readline()
            before = len(g._read(g.truth_path))
            out, err = fw.communicate(timeout=120)
            r = subprocess.CompletedProcess(fw.args, fw.returncode, out, first + err)
            wrote = sorted(int(l.split()[1]) for l in
                           g._read(g.truth_path)[before:].splitlines() if l.startswith("WROTE "))
            events = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
            got = {int(e["offset"]) // 4096 for e in events if e.get("type") == "write" and
                   e.get("path", "").endswith("/written")}
            # Each write is to new blocks: its event waits for the commit that allocates
            # them (ext4 commits every 5 s), so the last writes may still be pending.
            want = set(wrote[:-6])
            t.ok(r.returncode == 0 and len(want) >= 3 and want <= got and
                 got <= set(range(max(wrote) + 1)),
                 "fswatch --mode %s on a libvirt domain: a write event at the offset of each "
                 "write the guest made (%d of %d; the rest await a commit)" %
                 (mode, len(want & got), len(wrote)),
                 "want %s, got %s\n%s" % (sorted(want), sorted(got), r.stderr[-800:]))
            left = (qmp_json(g, "query-block-jobs"), qmp_json(g, "query-block-exports"),
                    [b for d in qmp_json(g, "query-named-block-nodes")
                     for b in d.get("dirty-bitmaps", [])])
            t.eq(left, ([], [], []), "fswatch --mode %s: no job, export or bitmap left" % mode)

        # libvirt meanwhile: a mirror (blocking) makes QEMU refuse libvirt's snapshot,
        # cleanly; under a bitmap the snapshot goes ahead and ends the watch, saying why.
        fs = subprocess.Popen([VMSCOPE, "fswatch", target, "--disk", node, "--mode", "blocking",
                               "--duration", "8"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        track(fs)
        time.sleep(3)
        overlay = os.path.join(g.rundir, "overlay.qcow2")
        snap = ["snapshot-create-as", g.domain, "s1", "--disk-only", "--no-metadata",
                "--diskspec", "vda,snapshot=external,file=" + overlay]
        r = virsh(*snap, check=False)
        t.ok(r.returncode == 1 and "in use by block job" in r.stderr and
             virsh("suspend", g.domain, check=False).returncode == 0 and
             virsh("resume", g.domain, check=False).returncode == 0,
             "blocking: libvirt's snapshot is refused while vmscope mirrors; suspend and "
             "resume work", r.stderr)
        fs.communicate(timeout=60)
        fs = subprocess.Popen([VMSCOPE, "fswatch", target, "--disk", node, "--mode", "bitmap",
                               "--duration", "60"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        track(fs)
        time.sleep(3)
        r = virsh(*snap, check=False)
        try:
            _, err = fs.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            fs.kill()
            _, err = fs.communicate()
        t.ok(r.returncode == 0 and fs.returncode == 1 and "changed the block graph" in err,
             "bitmap: libvirt's snapshot goes ahead and ends the watch, saying why",
             r.stderr + err[-500:])


def check_refusals(t):
    r = vmscope("ps", "libvirt:no-such-domain")
    t.eq((r.returncode, r.stderr),
         (1, 'vmscope: libvirt at qemu:///system has no domain "no-such-domain"\n'),
         "an unknown domain: one line naming it")
    r = vmscope("--connect", "qemu+ssh://elsewhere/system", "ps", "libvirt:x")
    t.eq((r.returncode, r.stderr),
         (1, "vmscope: qemu+ssh://elsewhere/system names another host: vmscope reads guest "
          "RAM on the VM's own host\n"), "a remote URI: refused, saying why")
    r = vmscope("--connect", "qemu:///system?socket=/nonexistent/sock", "ps", "libvirt:x")
    t.ok(r.returncode == 1 and r.stderr.startswith("vmscope: cannot connect to libvirt at ")
         and r.stderr.count("\n") == 1, "no libvirtd at the URI: one line", r.stderr)
    r = vmscope("--libvirt-monitor", "sideways", "ps", "libvirt:x")
    t.eq((r.returncode, r.stderr),
         (2, 'vmscope: --libvirt-monitor: "sideways" is not auto, passthrough or second\n'),
         "a bad --libvirt-monitor")


def main():
    t = Tap()
    with vmlibvirt.Libvirtd() as libvirtd:
        t.run("both ways", check_both_ways)
        t.run("daemon", check_daemon, libvirtd)
        t.run("trace", check_trace)
        t.run("fswatch", check_fswatch)
        t.run("refusals", check_refusals)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
