#!/usr/bin/env python3
"""The guest launcher cleans up after itself however it ends: QEMU stopped by
pid, its run directory (QMP socket) and /dev/shm RAM file removed."""
import glob
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import ROOT, Tap, vmguest

LAUNCH = os.path.join(ROOT, "guest", "launch")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(") ")[1][0] != "Z"


def wait_gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def start_launcher(envfile):
    """Start guest/launch running a command that records where the guest lives."""
    cmd = [LAUNCH, "--workload", "idle", "--",
           "sh", "-c", 'echo "$VMSCOPE_QEMU_PID $VMSCOPE_QMP $$" > %s; exec sleep 300' % envfile]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + vmguest.BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if os.path.exists(envfile) and os.path.getsize(envfile):
            pid, qmp, cmd_pid = open(envfile).read().split()
            proc.cmd_pid = int(cmd_pid)  # the command (sleep, after its exec), by pid
            return proc, int(pid), os.path.dirname(qmp)
        if proc.poll() is not None:
            raise RuntimeError("launcher exited: " + proc.stderr.read().decode())
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("guest did not come up")


def shm_files(launcher_pid):
    return glob.glob("/dev/shm/%s%d-*" % (vmguest.SHM_PREFIX, launcher_pid))


def check_signal(t, sig, name):
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        proc, qemu_pid, rundir = start_launcher(os.path.join(d, "env"))
        t.ok(alive(qemu_pid) and os.path.isdir(rundir) and shm_files(proc.pid),
             "%s: guest is up with its socket and RAM file" % name)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        t.ok(wait_gone(qemu_pid), "%s: QEMU is stopped" % name)
        t.ok(not os.path.exists(rundir), "%s: run directory and QMP socket removed" % name, rundir)
        t.eq(shm_files(proc.pid), [], "%s: RAM file removed" % name)


def check_command_failure(t):
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        envfile = os.path.join(d, "env")
        r = subprocess.run([LAUNCH, "--workload", "idle", "--", "sh", "-c",
                            'echo "$VMSCOPE_QEMU_PID $VMSCOPE_QMP" > %s; exit 3' % envfile],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        pid, qmp = open(envfile).read().split()
        t.eq(r.returncode, 3, "failing command: its exit status is passed on")
        t.ok(wait_gone(int(pid)) and not os.path.exists(os.path.dirname(qmp)),
             "failing command: QEMU stopped, files removed")


def check_killed_launcher(t):
    """SIGKILL leaves no chance to clean up: QEMU dies with its parent
    (PR_SET_PDEATHSIG) and the next guest start removes the leftovers."""
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        proc, qemu_pid, rundir = start_launcher(os.path.join(d, "env"))
        proc.kill()
        proc.wait()
        t.ok(wait_gone(qemu_pid), "SIGKILL: QEMU dies with the launcher")
        # The command outlives a SIGKILLed launcher; stop it by its pid, never by name.
        try:
            os.kill(proc.cmd_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        with vmguest.Guest(workload="idle", ram_mib=128):
            pass
        t.ok(not os.path.exists(rundir) and not shm_files(proc.pid),
             "SIGKILL: the next start removes the leftovers", rundir)


def main():
    t = Tap()
    t.run("SIGTERM", check_signal, signal.SIGTERM, "SIGTERM")
    t.run("SIGINT", check_signal, signal.SIGINT, "SIGINT")
    t.run("failing command", check_command_failure)
    t.run("SIGKILL", check_killed_launcher)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
