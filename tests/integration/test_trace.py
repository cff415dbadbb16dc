#!/usr/bin/env python3
"""vmscope trace against the guest's own account of what it did. The
tracer guest's shell logs every exec, subshell exit code, module unload and
load and TCP connect it performs; with breakpoints, the events must match
that log exactly (nothing lost, nothing invented, fields right). Then
polling, whose recall depends on how long a process lives; clean detach
(the VM runs on, the gdbstub is off); bad input."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from harness import VMSCOPE, Tap, vmscope, vmguest, track


def truth_lines(g, since=0):
    return g._read(g.truth_path).split("\n")[since:]


def run_round(g, name, timeout=300):
    text = g._read(g.truth_path)
    before = len(text.split("\n"))
    g.send(name)
    g.wait_for("DONE %s" % name, timeout, after=len(text))
    return truth_lines(g, before - 1)


def start_trace(g, *extra, target=None, options=()):
    """vmscope [options] trace TARGET (qmp: of g unless given) --json extra..."""
    # Events go to a file: a breakpoint waits for its event to be written, so
    # an undrained pipe would hold the guest (by design: nothing is dropped).
    out = open(os.path.join(g.rundir, "trace.jsonl"), "w")
    tr = subprocess.Popen([VMSCOPE] + list(options) +
                          ["trace", target or "qmp:" + g.qmp_path, "--json"] + list(extra),
                          stdout=out, stderr=subprocess.PIPE, text=True)
    track(tr)
    tr.out_path = out.name
    out.close()
    tr.preamble = []
    line = tr.stderr.readline()
    while line.startswith("vmscope: ") and ("unavailable" in line or "through" in line or
                                            "at breakpoints" in line):
        tr.preamble.append(line.strip())
        line = tr.stderr.readline()
    if "tracing" not in line and "polling" not in line:
        tr.kill()
        raise RuntimeError("trace did not start: " + line + tr.stderr.read())
    return tr


def stop_trace(tr):
    tr.send_signal(signal.SIGINT)
    _, err = tr.communicate(timeout=120)
    with open(tr.out_path) as f:
        return [json.loads(l) for l in f], err, tr.returncode


def kill_trace(tr, timeout=30):
    """SIGKILL vmscope, then wait for its guard process to clean up after it
    (its last act removes the gdbstub socket's directory): True when it did."""
    tr.kill()
    tr.wait()
    prefix = "vmscope-gdb-%d-" % tr.pid
    deadline = time.monotonic() + timeout
    while [p for p in os.listdir("/tmp") if p.startswith(prefix)]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


O_ACCMODE, O_WRONLY, O_CREAT, O_TRUNC = 0o3, 0o1, 0o100, 0o1000


def check_long_exec(t, g, label, breakpoints):
    """An exec with more arguments than an event keeps: argc is the real count,
    argv the arguments that fit (whole ones), and argv_truncated says so."""
    tr = start_trace(g, "--events", "exec", *(["--breakpoints"] if breakpoints else []))
    lines = run_round(g, "longexec")
    events, err, rc = stop_trace(tr)
    want = [int(l.split()[1]) for l in lines if l.startswith("LONG_EXEC ")]
    full = "/bin/true " + " ".join("argument-number-%d" % i for i in range(1, 301))
    longs = [e for e in events if e["type"] == "exec" and e.get("argv", "").startswith("/bin/true a")]
    t.ok(want == [301] and len(longs) == 1 and longs[0]["argc"] == 301 and
         longs[0]["argv_truncated"] is True and full.startswith(longs[0]["argv"] + " ") and
         len(longs[0]["argv"]) < 4096,
         "%s: an exec of 301 arguments (6 KiB): argc 301, argv cut at a whole argument, "
         "argv_truncated" % label, (want, longs))
    short = [e for e in events if e["type"] == "exec" and e not in longs]
    t.ok(all(e.get("argv_truncated") is False for e in short),
         "%s: ... and execs that fit are not marked" % label, short)


def check_open(t, g, label, shell):
    """open (off by default): the shell's own opens of its files, with flags."""
    tr = start_trace(g, "--events", "open")
    lines = run_round(g, "opens")
    events, err, rc = stop_trace(tr)
    want = sorted((l.split()[1], l.split()[0]) for l in lines if l.startswith("OPEN_"))
    got = sorted((e["path"], "OPEN_WRITE" if e["flags"] & O_ACCMODE == O_WRONLY else
                  "OPEN_READ" if e["flags"] & O_ACCMODE == 0 else "other")
                 for e in events if e["type"] == "open" and e["pid"] == shell and
                 e.get("path", "").startswith("/tmp/open-"))
    t.ok(rc == 0 and len(want) == 6 and got == want,
         "%s: open: the shell's 3 writes and 3 reads of its files, each once, with the "
         "access mode" % label, "got %r\nwant %r\n%s" % (got, want, err))
    writes = [e for e in events if e["type"] == "open" and e.get("path", "").startswith(
        "/tmp/open-") and e["flags"] & O_ACCMODE == O_WRONLY]
    t.ok(writes and all(e["flags"] & (O_CREAT | O_TRUNC) == O_CREAT | O_TRUNC and
                        e["dfd"] == -100 for e in writes),
         "%s: open: '>' opens with O_CREAT|O_TRUNC, relative to the cwd (AT_FDCWD)" % label,
         writes[:2])


def round_finishes(g, name):
    """The round's ground-truth lines if it finishes within a minute and the
    VM still runs after it; None if it hangs (say, held at a breakpoint)."""
    try:
        lines = run_round(g, name, timeout=60)
    except vmguest.GuestError:
        return None
    return lines if g.qmp("query-status")["status"] == "running" else None


def check_breakpoints(t, kernel=None, breakpoints=False, vcpus=1):
    """exec, fork and exit through the process-events connector (default) or
    at breakpoints on their functions (--breakpoints); the rest at breakpoints."""
    label = (kernel or "6.1") + (" --breakpoints" if breakpoints else "") + (
        " (%d vCPUs)" % vcpus if vcpus > 1 else "")
    with vmguest.Guest(workload="tracer", name="tracer", kernel=kernel, control=True,
                       vcpus=vcpus) as g:
        truth = g._read(g.truth_path)
        shell = int(re.search(r"^SHELL (\d+)$", truth, re.M).group(1))
        true_exe = re.search(r"^TRUE_EXE (\S+)$", truth, re.M).group(1)
        tr = start_trace(g, "--events", "exec,fork,exit,module_load,module_unload,connect,accept",
                         *(["--breakpoints"] if breakpoints else []))
        t.eq([l for l in tr.preamble if "connector" in l],
             [] if breakpoints else
             ["vmscope: through the process-events connector: exec, fork, exit"],
             "%s: exec, fork, exit %s" % (label, "at breakpoints" if breakpoints else
                                          "through the process-events connector"), tr.preamble)
        lines = run_round(g, "round")
        events, err, rc = stop_trace(tr)
        t.eq(rc, 0, "%s: trace exits 0 after SIGINT" % label)
        t.ok(re.search(r"\d+ events from \d+ stops \(7 probes set, 0 unavailable\), "
                       r"0 not queued, 0 partly decoded, 0 single-stepped, 0 returns not "
                       r"watched", err), "%s: summary: every probe "
             "set, nothing dropped, half-decoded or single-stepped" % label, err)

        execs = [l.split()[1] for l in lines if l.startswith("EXEC ")]
        codes = sorted(int(l.split()[1]) for l in lines if l.startswith("SUBSHELL "))
        forks = [e for e in events if e["type"] == "fork" and e["pid"] == shell]
        children = {e["child_pid"] for e in forks}
        # At the call, the filename as passed; through the connector, after the exec
        # succeeded, the file it runs (busybox: /bin/true is a link to it).
        filename = "/bin/true" if breakpoints else true_exe
        got_execs = [e for e in events if e["type"] == "exec" and e["pid"] in children and
                     e.get("filename") == filename and e.get("argv", "").startswith("/bin/true")]
        exits = [e for e in events if e["type"] == "exit" and e["pid"] in children]
        others = [l for l in lines if l.startswith("OTHER ")]
        # Each exec, subshell and other command is one fork of the shell.
        t.eq(len(forks), len(execs) + len(codes) + len(others),
             "%s: fork: one event per child the shell made (%d)" % (label, len(forks)))
        t.eq(len(got_execs), len(execs), "%s: exec: every /bin/true exec, no more (%d), "
             "filename %s" % (label, len(execs), filename))
        t.ok(all(e.get("argv") == "/bin/true" and e.get("argc") == 1 and e["ppid"] == shell
                 for e in got_execs), "%s: exec carries filename, argv, argc and the parent"
             % label, got_execs[:2])
        t.eq(sorted(e["exit_code"] for e in exits if e["comm"] == "init"), codes,
             "%s: exit: the subshells' exit codes, each once (%d)" % (label, len(codes)))
        t.eq(sorted(e["exit_code"] for e in exits if e["comm"] == "true"), [0] * len(execs),
             "%s: exit: every /bin/true exits 0, each once" % label)
        t.ok(all(not e["thread"] for e in exits + forks), "%s: no thread events from the "
             "shell's single-threaded children" % label)
        unload = [e for e in events if e["type"] == "module_unload"]
        load = [e for e in events if e["type"] == "module_load"]
        t.ok([e["name"] for e in unload] == ["virtio_net"] and
             [e["name"] for e in load] == ["virtio_net"] and load[0]["size"] > 0 and
             int(load[0]["base"]) >= 0xffffffff00000000 and load[0]["comm"] == "insmod",
             "%s: module_unload and module_load of virtio_net, with base, size and the "
             "loading process" % label, unload + load)
        conns = [e for e in events if e["type"] == "connect"]
        t.ok(len(conns) == 1 and conns[0].get("daddr") == "127.0.0.1" and
             conns[0].get("dport") == 7000 and conns[0]["comm"] == "nc",
             "%s: connect: the one TCP connect, to 127.0.0.1:7000, by nc" % label, conns)
        listener = [int(l.split()[1]) for l in lines if l.startswith("ACCEPT ")]
        accepts = [e for e in events if e["type"] == "accept"]
        # nc listens dual-stack: an IPv4 peer shows as an IPv4-mapped IPv6 address.
        loopback = ("127.0.0.1", "::ffff:127.0.0.1")
        t.ok(len(accepts) == 1 and [accepts[0]["pid"]] == listener and
             accepts[0].get("local_address") in loopback and
             accepts[0].get("local_port") == 7000 and
             accepts[0].get("remote_address") in loopback and
             0 < accepts[0].get("remote_port", 0) != 7000 and accepts[0]["comm"] == "nc",
             "%s: accept: the listener's one accepted connection, 127.0.0.1:7000 from "
             "127.0.0.1, decoded at inet_csk_accept's return" % label, accepts)
        if not breakpoints:
            check_open(t, g, label, shell)
        if kernel is None:
            check_long_exec(t, g, label, breakpoints)
        t.eq(g.qmp("query-status")["status"], "running",
             "%s: after detach the VM runs" % label)
        t.ok(not [p for p in os.listdir("/tmp") if p.startswith("vmscope-gdb-%d-" % tr.pid)],
             "%s: the gdbstub socket is gone" % label)
        if kernel is None and not breakpoints:
            # Breakpoints outlive a killed debugger in QEMU: vmscope's guard removes them.
            tr = start_trace(g)
            cleaned = kill_trace(tr)
            t.ok(cleaned and round_finishes(g, "bench"),
                 "vmscope killed with SIGKILL while tracing: the guest keeps running its "
                 "fork/exec loop (no breakpoint or watchpoint is left behind)")
            # A return breakpoint, set while a listener blocks in accept, goes too.
            tr = start_trace(g, "--events", "accept")
            run_round(g, "listen")
            cleaned = kill_trace(tr)
            lines = round_finishes(g, "connect")
            t.ok(cleaned and lines and any(l.startswith("ACCEPT ") for l in lines),
                 "vmscope killed while a listener waits in accept: the accept returns past "
                 "the return breakpoint's address and the guest runs on")
            tr = start_trace(g, "--events", "exec")
            lines = run_round(g, "bench")
            events, err, rc = stop_trace(tr)
            t.ok(rc == 0 and len([e for e in events if e["type"] == "exec"]) ==
                 len([l for l in lines if l.startswith("EXEC ")]),
                 "after a killed vmscope's guard has cleaned up, a new session traces again",
                 err)
            # Someone else's gdbstub session: refused in one line, and left alone.
            other = os.path.join(g.rundir, "other-gdb.sock")
            g.hmp("gdbserver unix:%s,server=on,wait=off" % other)
            r = vmscope("trace", "qmp:" + g.qmp_path, "--duration", "1")
            t.one_line_error(r, "the gdbstub already taken: one-line error", "gdbstub is taken")
            t.ok(os.path.exists(other), "... and the other session's gdbstub is left on")
            g.hmp("gdbserver none")
            r = vmscope("trace", "qmp:" + g.qmp_path, "--events", "exec,bogus")
            t.one_line_error(r, "an unknown event name: one-line error", "bogus")
            r = vmscope("trace", "qmp:" + g.qmp_path, "--poll", "0")
            t.one_line_error(r, "a bad poll rate: one-line error", "--poll")


def check_gdb_client(t):
    """The gdbstub client itself, step by step (tests/integration/gdb_client.c)."""
    client = os.environ.get("GDB_CLIENT_BIN", os.path.join(os.path.dirname(VMSCOPE), "..", "..",
                                                           "tests", "integration", "gdb_client"))
    with vmguest.Guest(workload="tracer", name="gdbclient", control=True, vcpus=2) as g:
        proc = subprocess.Popen([client, g.qmp_path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        facts = {}
        for line in proc.stdout:
            words = line.split()
            facts[words[0]] = words[1:]
            if words[0] == "armed":
                g.send("bench")  # execs, to hit the breakpoints
        err = proc.stderr.read()
        proc.wait(timeout=120)
        t.eq(proc.returncode, 0, "gdb client: attached, gdbstub on", err)
        t.eq(facts.get("regs"), ["rip_kernel", "1", "cr3_set", "1"],
             "gdb client: registers of the stopped vCPU (rip in the kernel, CR3 set)")
        t.eq(facts.get("vcpus"), ["2", "distinct_gs_base", "1"],
             "gdb client: both vCPUs listed, their registers read in one go (each its own "
             "per-CPU area)")
        t.eq(facts.get("memory"), ["equal", "1", "banner", "1"],
             "gdb client: memory read through the gdbstub equals vmscope's direct read "
             "(linux_banner)")
        t.eq(facts.get("hw_hit"), ["1", "signal", "5"], "gdb client: a hardware breakpoint "
             "stops the VM at __x64_sys_execve (SIGTRAP)", facts)
        t.eq(facts.get("step"), ["moved", "1"], "gdb client: one single step moves rip "
             "past the first instruction", facts)
        t.eq(facts.get("sw_hit"), ["1", "signal", "5"], "gdb client: a software breakpoint "
             "stops there too", facts)
        t.eq(facts.get("write_rip"), ["1"], "gdb client: rip written past the function's "
             "first instruction (no effect) and read back", facts)
        t.ok(facts.get("hw_set") == facts.get("hw_removed") == facts.get("sw_set") ==
             facts.get("sw_removed") == ["1"], "gdb client: breakpoints set and removed", facts)
        t.eq(facts.get("interrupt"), ["1"], "gdb client: a running VM stops on interrupt")
        t.eq(facts.get("detached"), ["1"], "gdb client: clean detach")
        g.wait_for("DONE bench", 120)
        t.eq(g.qmp("query-status")["status"], "running",
             "gdb client: after detach the VM runs and finishes its round")


def check_polling(t):
    """Recall as a function of lifetime, at 10 polls a second."""
    with vmguest.Guest(workload="tracer", name="poller", control=True) as g:
        tr = start_trace(g, "--poll", "10")
        lines = run_round(g, "lifetimes", timeout=600)
        time.sleep(0.5)
        events, err, rc = stop_trace(tr)
        t.eq(rc, 0, "polling: trace exits 0")
        spawned = [(int(l.split()[1]), l.split()[2]) for l in lines if l.startswith("SPAWN ")]
        started = {e["pid"] for e in events if e["type"] == "process_start"}
        ended = {e["pid"] for e in events if e["type"] == "process_exit"}
        recall = {}
        for pid, life in spawned:
            seen = pid in started and pid in ended
            recall.setdefault(life, []).append(seen)
        figures = ", ".join("%s s: %.1f" % (life, sum(v) / len(v)) for life, v in
                            sorted(recall.items(), key=lambda x: float(x[0])))
        t.ok(all(recall.get("2", [False])) and all(recall.get("1", [False])),
             "polling at 10 Hz sees every process living 1 s or more start and end "
             "(recall by lifetime: %s)" % figures)
        # A poll may catch a child between fork and exec (still "init", the shell), or
        # in the exec of busybox's /proc/self/exe ("exe") before its argv is in place.
        starts = [e for e in events if e["type"] == "process_start" and e["pid"] in
                  dict(spawned)]
        bad = [e for e in starts if e["ppid"] != 1 or not (
            e["comm"] in ("sleep", "init", "exe") or e.get("cmdline", "").startswith("sleep"))]
        t.ok(starts and not bad, "process_start carries the parent and the command", bad[:3])
        t.eq(g.qmp("query-status")["status"], "running", "polling: the VM runs")


def main():
    t = Tap()
    t.run("trace with breakpoints", check_breakpoints)
    t.run("trace with breakpoints only", check_breakpoints, None, True)
    # The running task is per vCPU (its per-CPU area): the other kernel on two.
    t.run("trace with breakpoints, other kernel", check_breakpoints,
          vmguest.pinned_kernel("VMSCOPE_KERNEL_ALT"), False, 2)
    # The oldest and newest kernel lines: both ways of tracing exec, fork and exit.
    for which in ("VMSCOPE_KERNEL_OLD", "VMSCOPE_KERNEL_NEW"):
        for breakpoints in (False, True):
            t.run("trace on " + which, check_breakpoints, vmguest.pinned_kernel(which),
                  breakpoints, 1)
    t.run("trace by polling", check_polling)
    t.run("gdbstub client", check_gdb_client)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
