"""Test guests managed by a real libvirtd (Debian's libvirt-daemon-system).

There is no systemd here, so ``Libvirtd`` starts ``virtlogd -d`` and
``libvirtd -d`` itself when none runs, and stops exactly those by pid. A
``LibvirtGuest`` is a transient TCG domain (``virsh create``): its kernel,
initramfs and serial files live in a directory under /var/lib/libvirt/images
that libvirt's QEMU user owns, and ``virsh destroy`` removes it for good. The
ground truth is the same second serial port as ``vmguest.Guest``'s.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmguest  # noqa: E402

IMAGES = "/var/lib/libvirt/images"
PREFIX = "vmscope-"
URI = "qemu:///system"
DAEMONS = (("virtlogd", "/run/virtlogd.pid"), ("libvirtd", "/run/libvirtd.pid"))


def virsh(*args, check=True, timeout=60):
    r = subprocess.run(["virsh", "-c", URI] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and r.returncode:
        raise vmguest.GuestError("virsh %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class Libvirtd:
    """virtlogd and libvirtd, started unless already running; stopped by pid.

    They run under a small reaper process (this file, --reaper): libvirtd
    daemonizes QEMU, so every QEMU it starts, and libvirtd itself, end up
    children of whichever ancestor reaps orphans. Where pid 1 does not reap
    (this machine's does not), libvirtd waits forever for its capability
    probe's QEMU to die; the reaper is a child subreaper and reaps them."""

    def __init__(self):
        self.reaper = None

    def __enter__(self):
        pids = [_read_pid(pidfile) for _, pidfile in DAEMONS]
        if all(pid and vmguest._pid_alive(pid) for pid in pids):
            return self  # the host's own: used, never stopped
        self.reaper = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--reaper"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                       preexec_fn=vmguest._die_with_parent)
        try:
            self._command("start")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _command(self, line):
        self.reaper.stdin.write(line + "\n")
        self.reaper.stdin.flush()
        answer = self.reaper.stdout.readline().strip()
        if answer != "ok":
            raise vmguest.GuestError("libvirt reaper: %s: %s" % (line, answer or "died"))

    @staticmethod
    def _wait_ready():
        deadline = time.monotonic() + 30
        while virsh("version", check=False).returncode:
            if time.monotonic() > deadline:
                raise vmguest.GuestError("libvirtd does not answer: %s" %
                                         virsh("version", check=False).stderr)
            time.sleep(0.2)

    def stop(self):
        if self.reaper is None:
            return
        try:
            self.reaper.stdin.close()  # EOF: it stops both daemons by pid, then exits
            self.reaper.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.reaper.kill()
            self.reaper.wait()
        self.reaper = None

    def restart_libvirtd(self):
        """Stop the libvirtd we started and start a new one (its domains run on)."""
        if self.reaper is None:
            raise vmguest.GuestError("this libvirtd is not ours to restart")
        self._command("restart")
        self._wait_ready()


def _wait_pidfile(pidfile):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pid = _read_pid(pidfile)
        if pid and vmguest._pid_alive(pid):
            return pid
        time.sleep(0.05)
    raise vmguest.GuestError("no live pid in %s" % pidfile)


def _stop_pid(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while vmguest._pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if vmguest._pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def _reaper():
    """Run as a child subreaper: start the daemons, reap every orphan below."""
    import ctypes
    import threading
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    started = {}
    done = threading.Event()

    def start(name, pidfile):
        subprocess.run([name, "-d"], check=True, timeout=30, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, cwd="/")
        started[name] = _wait_pidfile(pidfile)

    def serve():
        for line in sys.stdin:
            try:
                if line.strip() == "start":
                    for name, pidfile in DAEMONS:
                        start(name, pidfile)
                elif line.strip() == "restart":
                    _stop_pid(started.pop("libvirtd"))
                    start(*DAEMONS[1])
                print("ok", flush=True)
            except Exception as e:  # noqa: BLE001  (told to the harness)
                print("error: %s" % e, flush=True)
        for name, _ in reversed(DAEMONS):
            if name in started:
                _stop_pid(started.pop(name))
        done.set()

    threading.Thread(target=serve, daemon=True).start()
    while not done.is_set():
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.05)


def reap_stale():
    """Destroy domains and remove directories of test runs that no longer run."""
    for name in vmguest.stale_names(IMAGES, PREFIX):
        virsh("destroy", name, check=False)
        shutil.rmtree(os.path.join(IMAGES, name), ignore_errors=True)


class LibvirtGuest(vmguest.Guest):
    """A transient libvirt domain named PREFIX<pid>-<name>. second_monitor adds
    a QMP monitor of vmscope's own through <qemu:commandline>."""

    def __init__(self, workload="idle", name="test", second_monitor=False, control=False,
                 ram_mib=256, kernel=None, disk=False):
        super().__init__(workload=workload, name=name, ram_mib=ram_mib, kernel=kernel,
                         control=control, shm=False, disk=disk)
        self.domain = "%s%d-%s" % (PREFIX, os.getpid(), name)
        self.second_monitor = second_monitor
        self.created = False
        self.qemu_pid = None

    def start(self):
        reap_stale()
        image = vmguest.build(self.kernel)
        self.rundir = os.path.join(IMAGES, self.domain)
        os.makedirs(self.rundir)
        try:
            self._prepare(image)
            virsh("create", os.path.join(self.rundir, "domain.xml"))
            self.created = True
            self.qemu_pid = self.pid
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def _prepare(self, image):
        for f in ("vmlinuz", "initramfs.cpio.gz") + (("data.img",) if self.disk else ()):
            shutil.copyfile(os.path.join(image, f), os.path.join(self.rundir, f))
        self.qmp_path = os.path.join(self.rundir, "qmp.sock")
        self.console_path = os.path.join(self.rundir, "console.log")
        self.truth_path = os.path.join(self.rundir, "truth.log")
        self.control_path = os.path.join(self.rundir, "control.sock")
        # QEMU runs as libvirt-qemu: it makes its sockets here and reads the kernel.
        shutil.chown(self.rundir, "libvirt-qemu", "kvm")
        for f in os.listdir(self.rundir):
            os.chmod(os.path.join(self.rundir, f), 0o644)
        with open(os.path.join(self.rundir, "domain.xml"), "w") as f:
            f.write(self.xml())

    def xml(self):
        d = self.rundir
        serials = ["<serial type='file'><source path='%s'/><target port='%d'/></serial>"
                   % (escape(p), i) for i, p in enumerate((self.console_path, self.truth_path))]
        if self.control:
            serials.append("<serial type='unix'><source mode='bind' path='%s'/>"
                           "<target port='2'/></serial>" % escape(self.control_path))
        if self.disk:
            serials.append("<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                           "<source file='%s/data.img'/><target dev='vda' bus='virtio'/></disk>"
                           % escape(d))
        qemu = ""
        if self.second_monitor:
            qemu = ("<qemu:commandline><qemu:arg value='-qmp'/>"
                    "<qemu:arg value='unix:%s,server=on,wait=off'/></qemu:commandline>"
                    % escape(self.qmp_path))
        return """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>%s/vmlinuz</kernel>
    <initrd>%s/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 loglevel=4 panic=-1 vmscope.workload=%s</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>%s<memballoon model='none'/></devices>
  %s
</domain>
""" % (self.domain, self.ram_mib, escape(d), escape(d), self.workload, "".join(serials), qemu)

    def _exited(self):
        if virsh("domstate", self.domain, check=False).stdout.strip() in ("running", "paused"):
            return None
        return "the domain is gone: " + self.qemu_log().strip()[-2000:]

    def wait_ready(self, timeout=vmguest.BOOT_TIMEOUT_S):
        self.wait_for("=== READY ===", timeout)

    def qemu_log(self):
        return self._read("/var/log/libvirt/qemu/%s.log" % self.domain)

    @property
    def pid(self):
        return _read_pid("/run/libvirt/qemu/%s.pid" % self.domain)

    def state(self):
        return virsh("domstate", self.domain, check=False).stdout.strip()

    def stop(self):
        if self._control_sock is not None:
            self._control_sock.close()
            self._control_sock = None
        if self.created:
            virsh("destroy", self.domain, check=False)
            self.created = False
        # A libvirtd that died leaves its QEMU running: killed by pid, if still this one's.
        if self.qemu_pid and vmguest._pid_alive(self.qemu_pid) and self._is_ours(self.qemu_pid):
            os.kill(self.qemu_pid, signal.SIGKILL)
        self.qemu_pid = None
        if self.rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.rundir = None

    def _is_ours(self, pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return ("guest=%s," % self.domain).encode() in f.read()
        except OSError:
            return False

    def qmp(self, command, **arguments):
        raise NotImplementedError("a libvirt guest is asked through virsh")


if __name__ == "__main__" and sys.argv[1:] == ["--reaper"]:
    _reaper()
