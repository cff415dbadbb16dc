"""Shared by the integration tests: TAP output, the vmscope binary, the guests.

Each test script is a list of checks against a real guest; every check prints
one TAP line, so the test command counts checks, not scripts.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import sys
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "guest"))
import vmguest  # noqa: E402,F401  (re-exported for the tests)

VMSCOPE = os.environ.get("VMSCOPE_BIN", os.path.join(ROOT, "build", "tools", "vmscope", "vmscope"))
# A command that must not hang gets this long before the check fails.
HANG_LIMIT_S = 60


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=""):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name), flush=True)
        if not cond:
            self.failed += 1
            for line in str(diag).splitlines():
                print("# " + line, flush=True)
        return cond

    def eq(self, got, want, name, diag=""):
        return self.ok(got == want, name, "got:  %r\nwant: %r\n%s" % (got, want, diag))

    def one_line_error(self, r, name, cause):
        """vmscope failed with exit 1 and one line on stderr that names the cause."""
        lines = r.stderr.strip().split("\n")
        return self.ok(r.returncode == 1 and r.stdout == "" and len(lines) == 1 and
                       lines[0].startswith("vmscope: ") and cause in lines[0],
                       name, "rc=%d stdout=%r stderr=%r" % (r.returncode, r.stdout, r.stderr))

    def run(self, name, fn, *args):
        """Run a group of checks; an exception in it is one failed check. Whatever
        vmscope process the group started and left running is stopped after it."""
        try:
            fn(self, *args)
        except Exception:
            self.ok(False, name + " (raised)", traceback.format_exc())
        finally:
            stop_tracked()

    def done(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


# Long-running vmscope processes a test started (capture, fswatch, trace), by pid.
TRACKED = []


def track(proc):
    """Remember a started process so that it is stopped even if its test fails."""
    TRACKED.append(proc)
    return proc


def stop_tracked():
    while TRACKED:
        proc = TRACKED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def vmscope(*args, timeout=HANG_LIMIT_S, user=None, input=None, env=None):
    """Run vmscope; returns CompletedProcess (text). A hang raises TimeoutExpired.

    With user (a numeric uid), vmscope runs unprivileged from a copy that user
    can reach, wherever the build tree lies."""
    if not user:
        return subprocess.run([VMSCOPE] + list(args), stdout=subprocess.PIPE, input=input,
                              stderr=subprocess.PIPE, text=True, timeout=timeout,
                              env=dict(os.environ, **(env or {})))
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        os.chmod(d, 0o755)
        shutil.copy(VMSCOPE, d)
        libs = subprocess.run(["ldd", VMSCOPE], stdout=subprocess.PIPE, text=True).stdout
        for m in re.finditer(r"(libvmscope\S*) => (\S+)", libs):
            shutil.copy(m.group(2), os.path.join(d, m.group(1)))
        cmd = ["setpriv", "--reuid=" + user, "--regid=" + user, "--clear-groups", "--",
               "env", "LD_LIBRARY_PATH=" + d, os.path.join(d, os.path.basename(VMSCOPE))]
        return subprocess.run(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)


def flip_bits(path, offset, mask=0x01):
    """Damage a file in place: one byte at offset XORed with mask."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def lvm_on_images(script, *images):
    """lvm2's own tools run on image files (tests/lvm-on-images): script runs
    with $vg (a name unique to the run), $pv1, $pv2, ... and `lvm`. Returns
    lvm2's report of the result: (its LV segments, its PVs), sizes in bytes,
    the PVs named PV1, PV2, ..."""
    with tempfile.TemporaryDirectory(prefix="vmscope-lvm-") as d:
        report = os.path.join(d, "report.json")
        subprocess.run([os.path.join(ROOT, "tests", "lvm-on-images"), report, script, *images],
                       check=True)
        with open(report) as f:
            text = f.read()
    dec, docs, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        doc, end = dec.raw_decode(text[at:].lstrip())
        at += len(text[at:]) - len(text[at:].lstrip()) + end
        docs.append(doc)
    return docs[0]["report"][0]["lv"], docs[1]["report"][0]["pv"]
