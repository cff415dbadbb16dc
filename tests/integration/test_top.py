#!/usr/bin/env python3
"""vmscope top in a real terminal: tmux runs it in an 80x24 pane, the test reads
the screen (capture-pane) and presses keys (send-keys). Two guests, one busy
and one idle, and a socket nobody serves: all three are listed, the busy one
first by host CPU, the idle one first by name, and q quits."""
import os
import subprocess
import sys
import tempfile
import time

from harness import VMSCOPE, Tap, vmguest


class Tmux:
    """A private tmux server (its own socket), stopped through that socket."""

    def __init__(self, d):
        self.sock = os.path.join(d, "tmux.sock")

    def __call__(self, *args):
        return subprocess.run(["tmux", "-S", self.sock] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=30)

    def screen(self):
        return self("capture-pane", "-p", "-t", "top").stdout

    def wait_screen(self, want, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if want(text):
                return text
            time.sleep(0.3)
        return self.screen()

    def stop(self):
        self("kill-server")


def rows(screen):
    """VM names in screen order, below the header."""
    lines = screen.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("VM ")), len(lines))
    return [l.split()[0] for l in lines[start + 1:] if l.strip()]


def check_top(t):
    with vmguest.Guest(workload="busy", name="zbusy") as busy, \
            vmguest.Guest(workload="idle", name="idle") as idle, \
            tempfile.TemporaryDirectory(prefix="vmscope-test-") as d:
        tmux = Tmux(d)
        dead = "qmp:" + os.path.join(d, "nobody.sock")
        command = "%s top --interval 0.5 qmp:%s qmp:%s %s" % (VMSCOPE, busy.qmp_path,
                                                               idle.qmp_path, dead)
        try:
            r = tmux("new-session", "-d", "-s", "top", "-x", "80", "-y", "24", command)
            t.eq(r.returncode, 0, "tmux runs vmscope top in an 80x24 pane", r.stderr)
            screen = tmux.wait_screen(lambda s: "zbusy" in s and "idle " in s and
                                      "measuring" not in s and "not sampled" not in s)
            header = next((l for l in screen.splitlines() if l.startswith("VM ")), "")
            busy_cols = [l.split() for l in screen.splitlines() if l.startswith("zbusy")]
            # The pane cuts what is wider: the last column whole means the table fits.
            t.ok(header.rstrip().endswith("WRKiB/s") and busy_cols and len(busy_cols[0]) == 11,
                 "the table fits in 80 columns: the last column's header and every column of "
                 "a row are whole", screen)
            t.ok("HCPU%" in screen and "GCPU%" in screen and "by host CPU" in screen,
                 "the header and the sort key are shown", screen)
            names = rows(screen)
            t.ok(names[:2] == ["zbusy", "idle"] and len(names) == 3,
                 "by host CPU the busy VM comes first, then the idle one, then the dead one",
                 screen)
            busy_line = [l for l in screen.splitlines() if l.startswith("zbusy")][0]
            t.ok(float(busy_line.split()[2]) > 50, "the busy VM's vCPU is busy: %s"
                 % busy_line.split()[2], screen)
            t.ok(any(l.startswith("qmp:") and "--" in l for l in screen.splitlines()),
                 "the dead VM shows as down, with why", screen)
            tmux("send-keys", "-t", "top", "g")
            screen = tmux.wait_screen(lambda s: "by guest CPU" in s, 10)
            t.eq(rows(screen)[:2], ["zbusy", "idle"], "g sorts by guest CPU: the busy guest "
                 "first", screen)
            tmux("send-keys", "-t", "top", "n")
            screen = tmux.wait_screen(lambda s: "by name" in s, 10)
            t.eq(rows(screen)[0], "idle", "n sorts by name: idle first", screen)
            tmux("send-keys", "-t", "top", "q")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and tmux("has-session", "-t", "top").returncode == 0:
                time.sleep(0.2)
            t.ok(tmux("has-session", "-t", "top").returncode != 0, "q quits top")
        finally:
            tmux.stop()
        r = subprocess.run([VMSCOPE, "top", "--batch", "--iterations", "1", "--interval", "0.5",
                            "qmp:" + busy.qmp_path, "qmp:" + idle.qmp_path, dead],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        lines = [l for l in r.stdout.splitlines() if l]
        t.ok(r.returncode == 0 and len(lines) == 5 and max(map(len, lines)) < 80,
             "top --batch: the title, the header and the three VMs, no line over 79 "
             "columns (%d)" % max(map(len, lines or [""])), r.stdout + r.stderr)


def main():
    t = Tap()
    t.run("top", check_top)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
