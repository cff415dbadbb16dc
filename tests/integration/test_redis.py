#!/usr/bin/env python3
"""Captured disk writes streamed into a real redis-server (started and stopped
by this test, by its pid), read back with XRANGE; then an outage: Redis is
stopped while the guest writes and started again, and nothing is lost."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness import VMSCOPE, Tap, vmguest
from test_capture import pattern_offsets, start_capture, wait_for_writes, wrote


class Redis:
    def __init__(self, port, workdir):
        self.port, self.workdir, self.proc = port, workdir, None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", self.workdir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def xrange(self, stream):
        out = subprocess.run(["redis-cli", "-p", str(self.port), "--raw", "XRANGE", stream, "-",
                              "+"], stdout=subprocess.PIPE, text=True, check=True).stdout
        return out.splitlines()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def entries(lines):
    """redis-cli --raw XRANGE: an id line, then field and value lines, per entry."""
    found, current = [], None
    for line in lines:
        if re.match(r"^\d+-\d+$", line):
            current = {}
            found.append(current)
            key = None
        elif current is not None:
            if key is None:
                key = line
            else:
                current[key], key = line, None
    return found


def check_redis(t):
    with tempfile.TemporaryDirectory(prefix="vmscope-test-") as d, \
            vmguest.Guest(workload="writer", name="redis-vm") as g:
        redis = Redis(free_port(), d)
        try:
            redis.start()
            stream = "vmscope:{vm}"
            cap = start_capture(g, "--sink", "redis://127.0.0.1:%d/%s" % (redis.port, stream))
            first = len(wrote(g)) + 1
            wait_for_writes(g, first + 2)
            redis.stop()                    # the outage
            during = len(wrote(g))
            wait_for_writes(g, during + 2)
            redis.start()
            wait_for_writes(g, during + 4)
            time.sleep(1.5)                 # a reconnection is tried once a second
            cap.send_signal(signal.SIGINT)
            out, err = cap.communicate(timeout=60)
            got = entries(redis.xrange("vmscope:redis-vm"))
            offsets = pattern_offsets(os.path.join(g.rundir, "data.img"))
            writes = {(int(e["offset"]), int(e["length"])) for e in got
                      if e.get("type") == "disk_write"}
            expected = range(first, during + 4)
            missing = [i for i in expected if (offsets.get(i), 4096) not in writes]
            t.eq(cap.returncode, 0, "capture into Redis exits 0")
            t.ok(not missing, "every write before, during and after a Redis outage is in the "
                 "stream (%d writes)" % len(expected), "missing %s\n%s" % (missing, err))
            t.ok(all(e.get("vm") == "redis-vm" and e.get("source") == "disk" for e in got),
                 "stream entries carry the VM and the source; one stream per VM")
            t.ok(re.search(r"sink: \d+ sent, 0 undelivered, 0 dropped, [2-9]\d* connections",
                           err), "the summary counts a reconnection and no loss", err)
        finally:
            redis.stop()
    r = subprocess.run([VMSCOPE, "capture", "qmp:/nonexistent", "--disk", "d", "--sink",
                        "redis://nohostport"], stderr=subprocess.PIPE, text=True)
    t.ok(r.returncode == 1 and "bad sink" in r.stderr, "a malformed Redis URL: one-line error",
         r.stderr)


def main():
    t = Tap()
    t.run("redis", check_redis)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
