"""Start, watch and always clean up a vmscope test or demo guest.

The tests and the demo share this launcher. A guest is a QEMU process with:
  - QMP on a unix socket (``guest.qmp_path``, for vmscope) and a second one
    for the harness (``guest.qmp()``, ``guest.session()``),
  - guest RAM in a shared-memory file under /dev/shm (unless ``shm=False``),
  - the ext4 data disk as virtio-blk with node name ``disk0``,
  - the console on the first serial port (``guest.console_path``),
  - the guest's own view of itself (ground truth) on the second serial port,
    parsed into sections by ``guest.truth()``.

Cleanup is not left to chance: QEMU gets PR_SET_PDEATHSIG so it dies with the
process that started it, ``stop()`` kills it by pid and removes its socket,
run directory and /dev/shm file, and leftovers of launchers that died are
removed the next time a guest starts.
"""

import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_PREFIX = "vmscope-guest-"
SHM_PREFIX = "vmscope-ram-"
BOOT_TIMEOUT_S = float(os.environ.get("VMSCOPE_BOOT_TIMEOUT", "120"))


class GuestError(Exception):
    pass


def pinned_kernel(which="VMSCOPE_KERNEL"):
    """A kernel pinned in guest/kernel.env (VMSCOPE_KERNEL, _ALT, _OLD or _NEW)."""
    return subprocess.run(["bash", "-c", '. "$1"; echo "${!2}"', "-",
                           os.path.join(HERE, "kernel.env"), which],
                          check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def kernel_lines():
    """Every kernel line the fidelity tests cover, oldest first."""
    return [pinned_kernel(w) for w in ("VMSCOPE_KERNEL_OLD", "VMSCOPE_KERNEL",
                                       "VMSCOPE_KERNEL_ALT", "VMSCOPE_KERNEL_NEW")]


def kernel_flavours():
    """The pinned 6.1 build's other flavours (generic, rt)."""
    return pinned_kernel("VMSCOPE_KERNEL_FLAVOURS").split()


def build(kernel=None):
    """Build (or find in the cache) the guest with this kernel; return its directory."""
    env = dict(os.environ)
    if kernel:
        env["VMSCOPE_KERNEL"] = kernel
    out = subprocess.run([os.path.join(HERE, "build")], check=True, env=env,
                         stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_names(base, prefix):
    """The entries of base named prefix<pid>-... whose pid no longer runs."""
    try:
        names = os.listdir(base)
    except OSError:
        return []
    return [n for n in names if (m := re.match(re.escape(prefix) + r"(\d+)-", n))
            and not _pid_alive(int(m.group(1)))]


def reap_stale():
    """Remove run directories and RAM files of launchers that no longer run."""
    tmp = tempfile.gettempdir()
    for base, prefix in ((tmp, RUN_PREFIX), ("/dev/shm", SHM_PREFIX)):
        for name in stale_names(base, prefix):
            path = os.path.join(base, name)
            if os.path.isdir(path):
                _kill_pidfile(os.path.join(path, "qemu.pid"))
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def _kill_pidfile(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Guest:
    """One running guest. Use as a context manager, or call start()/stop()."""

    def __init__(self, workload="idle", name="vmscope-test", ram_mib=256,
                 vcpus=1, accel="tcg", shm=True, disk=True, kernel=None, extra_args=(),
                 control=False, append=""):
        self.workload = workload
        self.append = append
        self.name = name
        self.ram_mib = ram_mib
        self.vcpus = vcpus
        self.accel = accel
        self.shm = shm
        self.disk = disk
        self.kernel = kernel
        self.extra_args = list(extra_args)
        self.control = control
        self._control_sock = None
        self.proc = None
        self.rundir = None
        self.shm_path = None

    # -- life cycle -------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.launch()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def launch(self):
        """QEMU started, not waited for: many guests boot at once, then wait_ready() each."""
        reap_stale()
        image = build(self.kernel)
        self.rundir = tempfile.mkdtemp(prefix="%s%d-" % (RUN_PREFIX, os.getpid()))
        self.qmp_path = os.path.join(self.rundir, "qmp.sock")
        # The harness's own monitor, so that its questions never wait for vmscope's.
        self.harness_qmp_path = os.path.join(self.rundir, "harness-qmp.sock")
        self.console_path = os.path.join(self.rundir, "console.log")
        self.truth_path = os.path.join(self.rundir, "truth.log")
        self.pid_path = os.path.join(self.rundir, "qemu.pid")
        try:
            self._spawn(image)
        except BaseException:
            self.stop()
            raise

    def _command(self, image):
        cmd = ["qemu-system-x86_64", "-name", self.name,
               "-machine", "q35", "-accel", self.accel,
               "-smp", str(self.vcpus), "-m", "%dM" % self.ram_mib,
               "-nodefaults", "-no-user-config", "-display", "none",
               "-no-reboot", "-pidfile", self.pid_path,
               "-kernel", os.path.join(image, "vmlinuz"),
               "-initrd", os.path.join(image, "initramfs.cpio.gz"),
               "-append", "console=ttyS0 loglevel=4 panic=-1 "
                          "vmscope.workload=%s %s" % (self.workload, self.append),
               "-chardev", "file,id=console,path=%s" % self.console_path,
               "-serial", "chardev:console",
               "-chardev", "file,id=truth,path=%s" % self.truth_path,
               "-serial", "chardev:truth",
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
               "-qmp", "unix:%s,server=on,wait=off" % self.harness_qmp_path]
        if self.control:
            # A third serial port (ttyS2) the workload reads commands from.
            self.control_path = os.path.join(self.rundir, "control.sock")
            cmd += ["-chardev", "socket,id=control,path=%s,server=on,wait=off"
                    % self.control_path, "-serial", "chardev:control"]
        if self.accel == "kvm":
            cmd += ["-cpu", "max"]
        if self.shm:
            self.shm_path = "/dev/shm/%s%d-%s" % (SHM_PREFIX, os.getpid(),
                                                  os.path.basename(self.rundir))
            cmd += ["-object", "memory-backend-file,id=ram,size=%dM,mem-path=%s,share=on"
                    % (self.ram_mib, self.shm_path),
                    "-machine", "memory-backend=ram"]
        if self.disk:
            disk = os.path.join(self.rundir, "data.img")
            shutil.copyfile(os.path.join(image, "data.img"), disk)
            cmd += ["-blockdev", "driver=file,filename=%s,node-name=disk0-file" % disk,
                    "-blockdev", "driver=raw,file=disk0-file,node-name=disk0",
                    "-device", "virtio-blk-pci,drive=disk0,id=vda"]
        return cmd + self.extra_args

    def _spawn(self, image):
        log = open(os.path.join(self.rundir, "qemu.log"), "wb")
        self.proc = subprocess.Popen(self._command(image), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        log.close()

    def send(self, line):
        """Send one line to the workload on its control port (Guest(control=True))."""
        if self._control_sock is None:
            self._control_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._control_sock.connect(self.control_path)
        self._control_sock.sendall(line.encode() + b"\n")

    def stop(self):
        """Kill QEMU by pid and remove everything it used. Safe to call twice."""
        if self._control_sock is not None:
            self._control_sock.close()
            self._control_sock = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.shm_path:
            try:
                os.unlink(self.shm_path)
            except FileNotFoundError:
                pass
        if self.rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.rundir = None

    @property
    def pid(self):
        return self.proc.pid

    # -- what the guest says of itself ----------------------------------

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    def console(self):
        return self._read(self.console_path)

    def qemu_log(self):
        return self._read(os.path.join(self.rundir, "qemu.log"))

    def truth(self):
        """The ground-truth port as {section name: text}, complete sections only."""
        sections, current, lines = {}, None, []
        for line in self._read(self.truth_path).split("\n"):
            m = re.match(r"=== (BEGIN|END) (\S+) ===$", line)
            if m and m.group(1) == "BEGIN":
                current, lines = m.group(2), []
            elif m and current == m.group(2):
                sections[current] = "\n".join(lines) + ("\n" if lines else "")
                current = None
            elif current is not None:
                lines.append(line)
        return sections

    def wait_for(self, marker, timeout=BOOT_TIMEOUT_S, after=0):
        """Wait until marker is in the ground truth, past its first after characters
        (a round run twice must not be taken as done by the first run's marker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self._read(self.truth_path)
            if "=== ERROR" in text:
                raise GuestError("guest reported: " + text[text.index("=== ERROR"):].split("\n")[0])
            if marker in text[after:]:
                return
            why = self._exited()
            if why:
                raise GuestError(why)
            time.sleep(0.02)
        raise GuestError("no %r from the guest within %.0f s; console tail:\n%s"
                         % (marker, timeout, self.console()[-2000:]))

    def _exited(self):
        """Why the guest is no more, or None while it runs."""
        if self.proc.poll() is None:
            return None
        return "QEMU exited with %d: %s" % (self.proc.returncode, self.qemu_log().strip()[-2000:])

    def wait_ready(self, timeout=BOOT_TIMEOUT_S):
        self.wait_for("=== READY ===", timeout)
        with open(self.pid_path) as f:
            pid = int(f.read())
        if pid != self.proc.pid:
            raise GuestError("pidfile names %d, started %d" % (pid, self.proc.pid))

    # -- a small QMP client for the harness's own questions ---------------

    def qmp(self, command, **arguments):
        """Run one QMP command on a fresh connection; return its 'return' value."""
        with QMPSession(self.harness_qmp_path) as q:
            return q.qmp(command, **arguments)

    def hmp(self, command_line):
        return self.qmp("human-monitor-command", **{"command-line": command_line})

    def session(self):
        """A QMP connection kept open for many commands (use as a context manager)."""
        return QMPSession(self.harness_qmp_path)


class QMPSession:
    """The harness's own QMP client: ground truth comes from QEMU through it."""

    def __init__(self, path, timeout=60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rw")
        json.loads(self.file.readline())
        self.qmp("qmp_capabilities")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
        self.sock.close()
        return False

    def qmp(self, command, **arguments):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply or "error" in reply:
                break
        if "error" in reply:
            raise GuestError("QMP %s: %s" % (command, reply["error"]))
        return reply["return"]

    def hmp(self, command_line):
        return self.qmp("human-monitor-command", **{"command-line": command_line})


def standalone_command(workload, rundir, image=None, disk=None, name=None):
    """The QEMU command line of a guest that vmscope itself starts (vmscope
    record): its serial files in rundir, disk (a copy of the image's data disk
    made by the caller) as node disk0, no QMP monitor (vmscope adds its own).
    Returns (argv, truth_path)."""
    image = image or build(None)
    g = Guest(workload=workload, name=name or workload, shm=False, disk=False,
              extra_args=["-blockdev", "driver=file,filename=%s,node-name=disk0-file" % disk,
                          "-blockdev", "driver=raw,file=disk0-file,node-name=disk0",
                          "-device", "virtio-blk-pci,drive=disk0,id=vda"] if disk else [])
    g.rundir = rundir
    g.qmp_path = g.harness_qmp_path = os.path.join(rundir, "unused.sock")
    g.console_path = os.path.join(rundir, "console.log")
    g.truth_path = os.path.join(rundir, "truth.log")
    g.pid_path = os.path.join(rundir, "qemu.pid")
    out, skip = [], False
    for a in g._command(image):
        if skip:
            skip = False
        elif a == "-qmp":
            skip = True
        else:
            out.append(a)
    return out, g.truth_path


if __name__ == "__main__":
    # vmguest.py command WORKLOAD RUNDIR: such a command line, one argument a line,
    # with a copy of the data disk in RUNDIR (scripts/demo records one).
    if len(sys.argv) == 4 and sys.argv[1] == "command":
        _image = build(None)
        _disk = os.path.join(sys.argv[3], "data.img")
        shutil.copyfile(os.path.join(_image, "data.img"), _disk)
        print("\n".join(standalone_command(sys.argv[2], sys.argv[3], _image, _disk)[0]))
    else:
        sys.exit("usage: vmguest.py command WORKLOAD RUNDIR")


class UnixHTTP(http.client.HTTPConnection):
    """HTTP over a unix socket (vmscoped's control socket), for tests and benchmarks."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)
