#!/usr/bin/env python3
"""vmscope info against real QEMU guests, checked against what the guest says
of itself on its ground-truth port and what QEMU was told on its command line."""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading

from harness import Tap, vmscope, vmguest


def check_live(t, shm):
    kind = "shared-memory RAM" if shm else "/proc/PID/mem RAM"
    with vmguest.Guest(workload="idle", name="info-test", vcpus=2, ram_mib=320, shm=shm) as g:
        truth = g.truth()["version"].strip()
        r = vmscope("info", "qmp:" + g.qmp_path, "--json")
        t.eq(r.returncode, 0, "%s: info --json exits 0" % kind)
        info = json.loads(r.stdout)
        t.eq(info["kernel_banner"], truth, "%s: banner equals the guest's /proc/version" % kind)
        t.eq(info["os"], "linux", "%s: os" % kind)
        t.eq(info["kernel_release"], truth.split()[2], "%s: release" % kind)
        t.eq(info["name"], "info-test", "%s: name" % kind)
        t.eq(info["state"], "running", "%s: state" % kind)
        t.eq(info["vcpus"], 2, "%s: vcpus as given to -smp" % kind)
        t.eq(info["ram_bytes"], 320 << 20, "%s: ram_bytes as given to -m" % kind)
        t.eq(info["qemu_pid"], g.pid, "%s: QEMU's pid" % kind)

        r = vmscope("info", "qmp:" + g.qmp_path)
        t.ok(r.returncode == 0 and ("banner:   " + truth + "\n") in r.stdout,
             "%s: text output carries the banner" % kind, r.stdout + r.stderr)

        g.qmp("stop")
        r = vmscope("info", "--json", "qmp:" + g.qmp_path)
        info = json.loads(r.stdout)
        t.eq((info["state"], info["kernel_banner"]), ("paused", truth),
             "%s: a paused VM reports paused and the same banner" % kind)
        g.qmp("cont")
        t.eq(g.qmp("query-status")["status"], "running", "%s: the VM runs on afterwards" % kind)


def check_second_kernel(t):
    """The same answer on another Debian kernel: nothing is tuned to one build."""
    kernel = vmguest.pinned_kernel("VMSCOPE_KERNEL_ALT")
    with vmguest.Guest(workload="idle", kernel=kernel) as g:
        truth = g.truth()["version"].strip()
        r = vmscope("info", "qmp:" + g.qmp_path, "--json")
        info = json.loads(r.stdout)
        t.eq(info["kernel_banner"], truth, "kernel %s: banner equals /proc/version" % kernel)
        t.eq(info["kernel_release"], kernel, "kernel %s: release" % kernel)


def check_planted_banners(t):
    """Thousands of fake banners and fake vmcoreinfo notes in guest memory
    (any process can leave them in free pages or its page cache): vmscope
    keeps only the note the kernel's own vmcoreinfo_data points to, and reads
    the banner where the kernel's own symbol says."""
    with vmguest.Guest(workload="decoy", ram_mib=256) as g:
        truth = g.truth()
        version = truth["version"].strip()
        release = version.split()[2]
        env = {"VMSCOPE_KERNEL_CACHE": ""}
        r = vmscope("info", "qmp:" + g.qmp_path, "--json", env=env)
        t.eq(json.loads(r.stdout)["kernel_banner"], version,
             "4000 planted fake banners, 2000 fake notes: info still reports the kernel's own")
        r = vmscope("kernel", "qmp:" + g.qmp_path, "--json", env=env)
        t.eq((r.returncode, json.loads(r.stdout or "{}").get("release")), (0, release),
             "2000 fake vmcoreinfo notes: discovery finds the real kernel", r.stderr)
        g.qmp("stop")
        r = vmscope("ps", "qmp:" + g.qmp_path, "--json", env=env)
        pids = {p["pid"] for p in json.loads(r.stdout or '{"items": []}')["items"]}
        want = {int(line.split()[0]) for line in truth["ps"].splitlines()[1:] if line.split()}
        t.ok(r.returncode == 0 and want - pids <= {max(want)},
             "2000 fake vmcoreinfo notes: ps lists the guest's processes",
             "rc=%d missing=%r stderr=%r" % (r.returncode, sorted(want - pids), r.stderr))
        g.qmp("cont")


def check_raw_dump(t):
    """A physical-memory image saved by QEMU itself (HMP pmemsave) reads the same."""
    with vmguest.Guest(workload="idle", ram_mib=128) as g, \
            tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        truth = g.truth()["version"].strip()
        path = os.path.join(d, "ram.raw")
        g.qmp("stop")
        g.qmp("pmemsave", val=0, size=128 << 20, filename=path)
        r = vmscope("info", "raw:" + path, "--json")
        t.eq((r.returncode, r.stderr), (0, ""), "raw image saved by QEMU: info exits 0")
        info = json.loads(r.stdout)
        t.eq(info["kernel_banner"], truth, "raw image saved by QEMU: same banner")
        t.eq((info["state"], info["ram_bytes"], info["vcpus"]), ("image", 128 << 20, None),
             "raw image: state, size, no vCPUs")


def serve(sock, reply):
    """Accept connections on sock; send reply (or nothing) and keep them open."""
    conns = []
    while True:
        try:
            c, _ = sock.accept()
        except OSError:
            break
        conns.append(c)
        if reply:
            c.sendall(reply)


def check_bad_targets(t):
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        missing = os.path.join(d, "missing.sock")
        t.one_line_error(vmscope("info", "qmp:" + missing), "missing socket: one-line error",
                       "No such file or directory")

        stale = os.path.join(d, "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)
        s.close()
        t.one_line_error(vmscope("info", "qmp:" + stale), "socket nobody listens on: one-line error",
                       "Connection refused")

        for label, reply, cause in (("silent", None, "no QMP greeting"),
                                    ("ssh-like", b"SSH-2.0-OpenSSH_9.2\r\n", "does not speak QMP"),
                                    ("http-like", b"HTTP/1.1 400 Bad Request\r\n\r\n", "does not speak QMP")):
            path = os.path.join(d, label + ".sock")
            srv = socket.socket(socket.AF_UNIX)
            srv.bind(path)
            srv.listen(4)
            threading.Thread(target=serve, args=(srv, reply), daemon=True).start()
            try:
                r = vmscope("info", "qmp:" + path)
                t.one_line_error(r, "%s peer: one-line error, no hang" % label, cause)
            except subprocess.TimeoutExpired:
                t.ok(False, "%s peer: one-line error, no hang" % label, "vmscope hung")
            finally:
                srv.close()

        t.one_line_error(vmscope("info", "nonsense"), "target without a type: one-line error",
                       "bad target")
        t.one_line_error(vmscope("info", "vnc:1"), "unknown target type: one-line error",
                       "unknown target type")
        t.one_line_error(vmscope("info", "raw:" + missing), "missing image: one-line error",
                       "No such file or directory")
    r = vmscope("info")
    t.ok(r.returncode == 2 and r.stderr.startswith("usage: vmscope info"), "no target: usage",
         r.stderr)
    r = vmscope("bogus")
    t.ok(r.returncode == 2 and "unknown command" in r.stderr, "unknown command: one-line error",
         r.stderr)


def check_unreadable_ram(t):
    """QMP reachable but RAM not: as an unprivileged user, neither the RAM file
    (mode 0600, root's) nor root's QEMU /proc/PID/mem may be read."""
    with vmguest.Guest(workload="idle", ram_mib=128) as g:
        os.chmod(g.shm_path, 0o600)
        os.chmod(g.rundir, 0o755)
        os.chmod(g.qmp_path, 0o777)
        r = vmscope("info", "qmp:" + g.qmp_path, user="65534")
        t.one_line_error(r, "unreadable RAM: one-line error naming both ways in",
                       "cannot read guest RAM: %s: Permission denied; /proc/%d/mem: Permission denied"
                       % (g.shm_path, g.pid))
        t.eq(g.qmp("query-status")["status"], "running", "unreadable RAM: the VM runs on")


def main():
    t = Tap()
    t.run("live guest, shared-memory RAM", check_live, True)
    t.run("live guest, /proc/PID/mem RAM", check_live, False)
    t.run("second kernel", check_second_kernel)
    t.run("planted banners", check_planted_banners)
    t.run("raw image", check_raw_dump)
    t.run("bad targets", check_bad_targets)
    t.run("unreadable RAM", check_unreadable_ram)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
