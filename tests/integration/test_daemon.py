#!/usr/bin/env python3
"""vmscoped, the daemon, against real guests: VMs found in a directory of QMP
sockets as they appear and dropped as they go, each one's figures served on
/metrics and its state on /api/v1/vms through a control socket only its
owner may use; a VM whose QEMU dies is down with the reason while the others
carry on. Ground truth: each guest's QEMU pid as the harness started it."""
import html.parser
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

from harness import ROOT, VMSCOPE, Tap, vmguest, track
import test_fswatch
from test_redis import free_port
import test_trace

VMSCOPED = os.environ.get("VMSCOPED_BIN", os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "build", "daemon", "vmscoped"))


def get(ctl, url):
    c = vmguest.UnixHTTP(ctl)
    try:
        c.request("GET", url)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def vms(ctl):
    return {v["name"]: v for v in json.loads(get(ctl, "/api/v1/vms")[1])}


def wait_for(what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.2)
    return what()


def info_pids(metrics):
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r'^vmscope_vm_info\{host="[^"]+",vm="([^"]+)",qemu_pid="(\d+)"', metrics, re.M)}


def check_daemon(t):
    with tempfile.TemporaryDirectory(prefix="vmscoped-test-") as d, \
            vmguest.Guest(name="alpha") as a, vmguest.Guest(name="beta") as b:
        qdir = os.path.join(d, "qmp")
        os.mkdir(qdir)
        ctl = os.path.join(d, "ctl.sock")
        os.symlink(a.qmp_path, os.path.join(qdir, "alpha.qmp"))
        open(os.path.join(qdir, "notes.txt"), "w").close()  # not a socket: no VM
        proc = track(subprocess.Popen([VMSCOPED, "--qmp-dir", qdir, "--listen", "unix:" + ctl,
                                       "--interval", "0.3"], stderr=subprocess.PIPE,
                                      text=True))
        try:
            up = wait_for(lambda: os.path.exists(ctl) and
                          vms(ctl).get("alpha", {}).get("state") == "up")
            t.ok(up and set(vms(ctl)) == {"alpha"},
                 "the VM whose socket is in the directory is attached and up; the other file "
                 "is no VM", vms(ctl) if os.path.exists(ctl) else "no control socket")
            t.eq(stat.S_IMODE(os.stat(ctl).st_mode) & 0o077, 0,
                 "the control socket is its owner's only")
            os.chmod(d, 0o755)  # the directory open to all: only the socket's mode guards it
            other = subprocess.run(
                ["/usr/bin/python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); "
                 "s.connect(sys.argv[1])", ctl], capture_output=True, text=True,
                preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)), timeout=30)
            t.ok(other.returncode != 0 and "Permission denied" in other.stderr,
                 "another user (nobody) cannot connect to it", other.stderr[-300:])

            os.symlink(b.qmp_path, os.path.join(qdir, "beta.qmp"))
            t.ok(wait_for(lambda: vms(ctl).get("beta", {}).get("state") == "up", 15),
                 "a socket added while it runs: that VM is attached", vms(ctl))
            status, metrics = get(ctl, "/metrics")
            t.ok(status == 200 and info_pids(metrics) == {"alpha": a.proc.pid,
                                                         "beta": b.proc.pid} and
                 re.search(r'^vmscope_up\{host="[^"]+",vm="alpha"\} 1$', metrics, re.M) and
                 re.search(r'^vmscope_up\{host="[^"]+",vm="beta"\} 1$', metrics, re.M) and
                 re.search(r'^vmscope_qemu_user_seconds_total\{host="[^"]+",vm="beta"\} [0-9.e+]+$',
                           metrics, re.M),
                 "/metrics: both VMs up, each with its own QEMU's pid and CPU time",
                 metrics[:1500])

            os.unlink(os.path.join(qdir, "alpha.qmp"))
            t.ok(wait_for(lambda: "alpha" not in vms(ctl), 15) and "beta" in vms(ctl),
                 "its socket gone from the directory: that VM is dropped, the other stays",
                 vms(ctl))

            b.proc.kill()
            b.proc.wait()
            down = wait_for(lambda: vms(ctl).get("beta", {}).get("state") == "down", 15)
            beta = vms(ctl).get("beta", {})
            t.ok(down and beta.get("reason"), "a VM whose QEMU died is down, with the reason",
                 beta)
            t.ok(re.search(r'^vmscope_up\{host="[^"]+",vm="beta"\} 0$', get(ctl, "/metrics")[1], re.M),
                 "/metrics: the dead VM's vmscope_up is 0")
            status, body = get(ctl, "/api/v1/vms/beta/ps")
            t.ok(status == 503 and "VM beta is down" in json.loads(body)["error"],
                 "a view of the dead VM: 503, with the reason", (status, body))
            t.eq(get(ctl, "/nowhere")[0], 404, "an unknown path: 404")
            second = subprocess.run([VMSCOPED, "--qmp-dir", qdir, "--listen", "unix:" + ctl],
                                    capture_output=True, text=True, timeout=30)
            t.ok(second.returncode == 2 and "something answers there already" in
                 second.stderr and get(ctl, "/api/v1/vms")[0] == 200,
                 "a second vmscoped on the same socket refuses to start; the first goes on",
                 second.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        t.ok(proc.returncode == 0 and not os.path.exists(ctl),
             "SIGTERM: vmscoped exits 0 and removes its control socket", err[-2000:])


def logged(log_dir):
    """Every event in the daemon's log, read back with vmscope log query."""
    r = subprocess.run([VMSCOPE, "log", "query", "--json", log_dir], capture_output=True,
                       text=True, timeout=120)
    return [json.loads(l) for l in r.stdout.splitlines()] if r.returncode == 0 else []


def capabilities(ctl, name):
    return {c: s["state"] for c, s in vms(ctl).get(name, {}).get("capabilities", {}).items()}


def check_capabilities(t):
    """Per VM, what the config file asks: [defaults] polls views into change events,
    [vm alpha] adds a trace, [vm b*] turns views off and watches a disk, [vm listed] is a
    VM the file lists itself, with a disk that does not exist. Events land in the log
    under the daemon's names for the VMs; SIGHUP turns alpha's capabilities off while the
    others run on. Ground truth: the guests' own logs of what they did."""
    # A third monitor of alpha's QEMU, for the VM the file lists (made before d exists).
    listed = os.path.join(tempfile.gettempdir(), "vmscoped-listed-%d.qmp" % os.getpid())
    with tempfile.TemporaryDirectory(prefix="vmscoped-test-") as d, \
            vmguest.Guest(name="ga", workload="tracer", control=True,
                          extra_args=["-qmp", "unix:%s,server=on,wait=off" % listed]) as a, \
            vmguest.Guest(name="gb", workload="fsops", control=True) as b:
        qdir, ctl, conf = (os.path.join(d, x) for x in ("qmp", "ctl.sock", "vmscoped.conf"))
        log_dir = os.path.join(d, "log")
        os.mkdir(qdir)
        os.symlink(a.qmp_path, os.path.join(qdir, "alpha.qmp"))
        os.symlink(b.qmp_path, os.path.join(qdir, "beta.qmp"))

        def config(alpha):
            with open(conf, "w") as f:
                f.write("[daemon]\nqmp-dir = %s\nlisten = unix:%s\nlog-dir = %s\n"
                        "[defaults]\nviews = processes modules sockets\nview-interval = 0.5\n"
                        "[vm alpha]\n%s\n[vm b*]\nviews = none\nfswatch = disk0\n"
                        "[vm listed]\ntarget = qmp:%s\nviews = none\nfswatch = nosuchnode\n"
                        % (qdir, ctl, log_dir, alpha, listed))
        config("trace = exec module_load module_unload\nviews = processes sockets")
        proc = track(subprocess.Popen([VMSCOPED, "--config", conf], stderr=subprocess.PIPE,
                                      text=True))
        try:
            want = {"alpha": {"views": "on", "trace": "on", "fswatch": "off"},
                    "beta": {"views": "off", "trace": "off", "fswatch": "on"}}
            t.ok(wait_for(lambda: os.path.exists(ctl) and all(
                capabilities(ctl, n) == w for n, w in want.items()), 120),
                "each VM runs what its sections ask: alpha views and trace, beta fswatch",
                vms(ctl) if os.path.exists(ctl) else "no control socket")
            listed_vm = wait_for(lambda: vms(ctl).get("listed", {}).get(
                "capabilities", {}).get("fswatch", {}).get("state") == "failed" and
                vms(ctl)["listed"])
            t.ok(listed_vm and listed_vm["state"] == "up" and listed_vm["source"] == "config"
                 and "nosuchnode" in listed_vm["capabilities"]["fswatch"]["reason"],
                 "a VM the file lists is attached; its disk that does not exist fails with "
                 "the reason, its metrics go on", listed_vm or vms(ctl))

            stream = track(subprocess.Popen(
                [VMSCOPE, "remote", "unix:" + ctl, "events", "--vm", "alpha", "--type",
                 "exec,process_start"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True))
            time.sleep(1)  # connected: the stream starts with the next event
            lines = test_trace.run_round(a, "round")
            ops = test_fswatch.run_round(b, "basic")
            spawned = [int(l.split()[1]) for l in test_trace.run_round(a, "lifetimes")
                       if l.startswith("SPAWN ") and float(l.split()[2]) >= 1]
            time.sleep(3)  # the last poll, the last commit's inference, the log's sync
            events = logged(log_dir)
            of = {n: [e for e in events if e["vm"] == n] for n in ("alpha", "beta", "ga", "gb")}
            execs = [e for e in of["alpha"] if e["source"] == "trace" and e["type"] == "exec"
                     and e["argv"] == "/bin/true"]
            t.eq(len(execs), sum(1 for l in lines if l == "EXEC /bin/true"),
                 "alpha's trace: an exec event for each /bin/true the guest ran, in the log")
            # (A poll twice a second may miss the module's moment away: traced only.)
            mods = [(e["type"], e["name"]) for e in of["alpha"] if e["source"] == "trace"
                    and e["type"].startswith("module_")]
            t.eq(mods, [("module_unload", "virtio_net"), ("module_load", "virtio_net")],
                 "alpha's trace: virtio_net unloaded, then loaded")
            seen = {(e["type"], e.get("pid")) for e in of["alpha"] if e["source"] == "poll"}
            missed = [p for p in spawned if not {("process_start", p), ("process_exit", p)}
                      <= seen]
            t.ok(len(spawned) == 10 and not missed, "alpha's views: every process that lived "
                 "1 s or more started and ended", missed)
            test_fswatch.score(t, ops, [e for e in of["beta"] if e["source"] == "disk"],
                               "vmscoped, beta")
            t.ok(of["alpha"] and of["beta"] and not of["ga"] and not of["gb"] and
                 not [e for e in of["beta"] if e["source"] != "disk"],
                 "events carry the daemon's names for the VMs (not QEMU's -name); beta, "
                 "its views off, gave file events only")
            stream.terminate()
            streamed = [json.loads(l) for l in stream.communicate(timeout=30)[0].splitlines()]
            want = [(e["time_ns"], e["type"]) for e in of["alpha"]
                    if e["type"] in ("exec", "process_start")]
            t.ok(want and [(e["time_ns"], e["type"]) for e in streamed] == want,
                 "vmscope remote events --vm alpha --type exec,process_start: the live "
                 "stream gave exactly the log's such events of alpha, in order (%d)"
                 % len(want), (len(streamed), len(want)))
            check_remote(t, ctl, a)
            status, metrics = get(ctl, "/metrics")
            counted = {m.group(1, 2): int(m.group(3)) for m in re.finditer(
                r'^vmscoped_events_total\{host="[^"]+",vm="([^"]+)",capability="([^"]+)"\} (\d+)$',
                metrics, re.M)}
            t.ok(counted.get(("alpha", "trace"), 0) >= len(execs) and
                 counted.get(("alpha", "views"), 0) >= 20 and
                 counted.get(("beta", "fswatch"), 0) >= len(ops) and
                 re.search(r'^vmscoped_capability_up\{host="[^"]+",vm="listed",capability="fswatch"\} 0$',
                           metrics, re.M) and
                 re.search(r'^vmscoped_log_events_total\{host="[^"]+",state="durable"\} %d$' % len(events),
                           metrics, re.M),
                 "/metrics: events by VM and capability, the failed one down, every logged "
                 "event durable", "\n".join(l for l in metrics.split("\n")
                                            if l.startswith("vmscoped_")))

            def gdbstub(g):
                return [l for l in g.hmp("info chardev").splitlines() if l.startswith("gdb:")]
            tracing = gdbstub(a)
            before = vms(ctl)["beta"]["capabilities"]["fswatch"]["events"]
            config("views = none")
            proc.send_signal(signal.SIGHUP)
            t.ok(wait_for(lambda: capabilities(ctl, "alpha") == {
                "views": "off", "trace": "off", "fswatch": "off"}, 30),
                "SIGHUP: alpha's views and trace stop", vms(ctl)["alpha"])
            left = gdbstub(a)
            samples = vms(ctl)["alpha"]["samples"]
            test_fswatch.run_round(b, "small")
            time.sleep(3)
            t.ok(tracing and not left and vms(ctl)["alpha"]["samples"] > samples and
                 vms(ctl)["alpha"]["state"] == "up",
                 "alpha's gdbstub, on while traced, is off again; its metrics go on",
                 (tracing, left))
            t.ok(vms(ctl)["beta"]["capabilities"]["fswatch"]["events"] > before and
                 capabilities(ctl, "beta")["fswatch"] == "on",
                 "beta's fswatch, unchanged by the reload, ran on through it")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            try:
                os.unlink(listed)
            except FileNotFoundError:
                pass
        t.ok(proc.returncode == 0, "SIGTERM: vmscoped stops every capability and exits 0",
             err[-2000:])
        t.eq(b.qmp("query-block-jobs"), [], "beta: no block job left behind")


def remote(ctl, *args):
    return subprocess.run([VMSCOPE, "remote", "unix:" + ctl] + list(args), capture_output=True,
                          text=True, timeout=60)


def sse(ctl, query, last_id, count):
    """The first count server-sent events after last_id, as (id, type, data)."""
    c = vmguest.UnixHTTP(ctl, timeout=20)
    try:
        c.request("GET", "/api/v1/events" + query, headers={"Last-Event-ID": str(last_id)})
        r = c.getresponse()
        got, event = [], {}
        while len(got) < count:
            line = r.fp.readline().decode().rstrip("\n")
            if not line and event:
                got.append((int(event["id"]), event["event"], json.loads(event["data"])))
                event = {}
            elif line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                event[key] = value
        return r.status, got
    finally:
        c.close()


def check_remote(t, ctl, g):
    """Views on demand through the daemon, as vmscope remote prints them, against the guest's
    own words; the event stream resumed after an id; refusals."""
    truth = g._read(g.truth_path)
    shell = int(re.search(r"^SHELL (\d+)$", truth, re.M).group(1))
    r = remote(ctl, "ps", "alpha")
    items = json.loads(r.stdout)["items"] if r.returncode == 0 else []
    t.ok([p for p in items if p["pid"] == shell and "/init" in p["cmdline"]],
         "remote ps alpha: the guest's workload shell (its init), with the pid it gave "
         "itself", r.stderr or [p for p in items if p["pid"] == shell])
    r = remote(ctl, "sysinfo", "alpha")
    version = g.truth().get("version", "")
    t.ok(r.returncode == 0 and json.loads(r.stdout)["release"] in version,
         "remote sysinfo alpha: the release the guest's /proc/version names", r.stdout[:300])
    r = remote(ctl, "lsmod", "alpha")
    t.ok(r.returncode == 0 and "virtio_net" in {m["name"] for m in json.loads(r.stdout)["items"]},
         "remote lsmod alpha: virtio_net, as the guest loaded it", r.stderr)
    r = remote(ctl, "vms")
    t.ok(r.returncode == 0 and {"alpha", "beta", "listed"} <= {v["name"] for v in
                                                              json.loads(r.stdout)},
         "remote vms: the daemon's VMs", r.stdout[:500])
    status, got = sse(ctl, "?vm=alpha&type=exec", 0, 3)
    t.ok(status == 200 and len(got) == 3 and all(i > 0 and e == "exec" and d["vm"] == "alpha"
                                                 for i, e, d in got) and
         [i for i, _, _ in got] == sorted(i for i, _, _ in got),
         "the stream after Last-Event-ID 0: alpha's exec events held since, ids rising",
         got[:1])
    status2, again = sse(ctl, "?vm=alpha&type=exec", got[0][0], 2)
    t.eq([i for i, _, _ in again], [i for i, _, _ in got[1:]],
         "resumed after an id: the events after it, none twice")
    for args, label, needle in [
            (("ps", "nosuch"), "an unknown VM", "no VM called nosuch"),
            (("ps", "../x"), "a name that is no VM name", "is no VM name"),
            (("pstree", "alpha"), "a view the daemon does not serve", "usage"),
            (("events", "--vm", "bad name"), "a filter the stream refuses", "HTTP 400")]:
        r = remote(ctl, *args)
        t.ok(r.returncode != 0 and needle in r.stderr and len(r.stderr.strip().split("\n"))
             == 1, "remote %s: refused in one line" % label, r.stderr)
    r = subprocess.run([VMSCOPE, "remote", "unix:/nonexistent/ctl.sock", "vms"],
                       capture_output=True, text=True, timeout=60)
    t.ok(r.returncode == 1 and "remote unix:/nonexistent/ctl.sock:" in r.stderr,
         "remote to no daemon: the reason, in one line", r.stderr)


def notified(sock, want, timeout=20):
    """The sd_notify messages received until one holds want (or the time is up)."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if want in got[-1]:
            break
    return got


def check_systemd(t):
    """Type=notify as systemd sees it: READY, RELOADING then READY on SIGHUP, STOPPING; a
    reload that moves to another directory drops its VMs and takes the new one's, a bad file
    changes nothing; the unit file passes systemd-analyze verify."""
    with tempfile.TemporaryDirectory(prefix="vmscoped-test-") as d, \
            vmguest.Guest(name="gamma") as g1, vmguest.Guest(name="delta") as g2:
        dirs = [os.path.join(d, "one"), os.path.join(d, "two")]
        for x, g, name in zip(dirs, (g1, g2), ("gamma", "delta")):
            os.mkdir(x)
            os.symlink(g.qmp_path, os.path.join(x, name + ".qmp"))
        ctl, conf = os.path.join(d, "ctl.sock"), os.path.join(d, "vmscoped.conf")

        def config(qdir, extra=""):
            with open(conf, "w") as f:
                f.write("[daemon]\nqmp-dir = %s\nlisten = unix:%s\ninterval = 0.3\n%s"
                        % (qdir, ctl, extra))
        config(dirs[0])
        note = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        note.bind(os.path.join(d, "notify.sock"))
        proc = track(subprocess.Popen([VMSCOPED, "--config", conf], stderr=subprocess.PIPE,
                                      text=True, env=dict(os.environ,
                                                          NOTIFY_SOCKET=note.getsockname())))
        try:
            t.ok("READY=1" in "".join(notified(note, "READY=1")), "sd_notify: READY=1 once "
                 "it answers")
            t.ok(wait_for(lambda: vms(ctl).get("gamma", {}).get("state") == "up"),
                 "the config file's directory: its VM up", vms(ctl))
            config(dirs[1])
            proc.send_signal(signal.SIGHUP)
            got = "|".join(notified(note, "READY=1"))
            t.ok("RELOADING=1" in got and got.index("RELOADING=1") < got.rindex("READY=1"),
                 "SIGHUP: RELOADING=1, then READY=1", got)
            t.ok(wait_for(lambda: set(vms(ctl)) == {"delta"} and
                          vms(ctl)["delta"]["state"] == "up", 15),
                 "the reloaded file names another directory: its VM taken, the old one's "
                 "dropped", vms(ctl))
            samples = vms(ctl)["delta"]["samples"]
            config(dirs[1], "colour = blue\n")
            proc.send_signal(signal.SIGHUP)
            notified(note, "READY=1")
            time.sleep(1)
            t.ok(set(vms(ctl)) == {"delta"} and vms(ctl)["delta"]["samples"] > samples,
                 "a bad file on SIGHUP: refused, the running VM goes on being sampled",
                 vms(ctl))
        finally:
            proc.send_signal(signal.SIGTERM)
            got = "|".join(notified(note, "STOPPING=1", 15))
            _, err = proc.communicate(timeout=30)
            note.close()
        t.ok("STOPPING=1" in got and proc.returncode == 0, "SIGTERM: STOPPING=1, exit 0",
             got)
        t.ok("reload refused" in err and "unknown key colour" in err,
             "the refused reload says why on stderr (the journal)", err[-1500:])

        unit = os.path.join(d, "vmscoped.service")
        with open(os.path.join(os.path.dirname(VMSCOPED), "vmscoped.service")) as f:
            text = f.read()
        with open(unit, "w") as f:  # the built binary, where systemd-analyze can find it
            f.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + os.path.abspath(VMSCOPED), text,
                           flags=re.M))
        r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                           timeout=60)
        t.ok(r.returncode == 0 and "Type=notify" in text and "NoNewPrivileges=yes" in text,
             "the unit file (Type=notify, hardened) passes systemd-analyze verify",
             r.stdout + r.stderr)


def check_refusals(t):
    with tempfile.TemporaryDirectory(prefix="vmscoped-test-") as d:
        def run(*args):
            return subprocess.run([VMSCOPED] + list(args), capture_output=True, text=True,
                                  timeout=30)

        def one_line(r, label, needle):
            lines = r.stderr.strip().split("\n")
            t.ok(r.returncode == 2 and len(lines) == 1 and needle in lines[0],
                 label + ": a one-line error naming the cause", r.stderr)

        one_line(run("--qmp-dir", d, "--listen", "0.0.0.0:9999"),
                 "a listener on a non-loopback address without TLS", "not a loopback address")
        one_line(run("--listen", "unix:" + os.path.join(d, "c.sock")),
                 "no source of VMs", "--qmp-dir")
        one_line(run("--qmp-dir", os.path.join(d, "none"), "--listen",
                     "unix:" + os.path.join(d, "c.sock")), "a missing directory",
                 "not a directory")
        conf = os.path.join(d, "vmscoped.conf")
        with open(conf, "w") as f:
            f.write("[daemon]\nqmp-dir = %s\nlisten = unix:%s/c.sock\ninterval = 2\n" % (d, d))
        r = run("--config", conf, "--check-config")
        t.ok(r.returncode == 0 and "interval 2 s" in r.stdout,
             "--check-config: a valid file is said to be valid, its settings read",
             r.stdout + r.stderr)
        r = run("--config", conf, "--interval", "0.5", "--check-config")
        t.ok(r.returncode == 0 and "interval 0.5 s" in r.stdout, "a flag overrides the file",
             r.stdout)
        with open(conf, "a") as f:
            f.write("intervall = 3\n")
        one_line(run("--config", conf, "--check-config"), "--check-config: a misspelt key",
                 "line 5: unknown key intervall")
        base = "[daemon]\nqmp-dir = %s\nlisten = unix:%s/c.sock\n" % (d, d)
        for text, label, needle in [
                ("[defaults]\nviews = processes threads\n", "a view that does not exist",
                 "line 5: views = processes threads: processes, modules, sockets"),
                ("[vm web-*]\ntrace = exec fork exitt\n", "a probe that does not exist",
                 "line 5: trace = exec fork exitt: default, or probes"),
                ("[vm web-*]\ntarget = qmp:/run/web.qmp\n", "a target in a glob's section",
                 "line 5: target: only in a [vm NAME] section whose NAME is a VM's"),
                ("[vm web]\ntarget = /run/web.qmp\n", "a target without its type",
                 "qmp:SOCKET or libvirt:DOMAIN"),
                ("[defaults]\nfswatch = a b c d e\n", "more disks than a VM may watch",
                 "up to 4 block node names"),
                ("[defaults]\nmemory = 1M\n", "a memory budget too small",
                 "memory = 1M: a size from 4M to 4G"),
                ("[vm web]\nlog = yes\n", "a log without log-dir",
                 "[vm web]: log = yes, but [daemon] has no log-dir"),
                ("[daemon]\nlog-dir = var/log\n", "a relative log-dir",
                 "log-dir = var/log: an absolute path"),
                ("[vms web]\nviews = none\n", "an unknown section",
                 "unknown section [vms web]")]:
            with open(conf, "w") as f:
                f.write(base + text)
            one_line(run("--config", conf, "--check-config"), "--check-config: " + label,
                     needle)
        with open(conf, "w") as f:
            f.write(base + "log-dir = %s/log\n[defaults]\nviews = processes, sockets\n"
                    "[vm web]\ntarget = libvirt:web\ntrace = default\n"
                    "fswatch = disk0 disk1\nfswatch-path = /etc/*\nfswatch-path = /srv/*\n"
                    "memory = 64M\n" % d)
        r = run("--config", conf, "--check-config")
        t.ok(r.returncode == 0 and "1 [vm] sections" in r.stdout and "log %s/log" % d in
             r.stdout, "--check-config: a file with every kind of section is valid",
             r.stdout + r.stderr)


def raw_request(port, cafile, data, timeout=20):
    """Bytes sent as they are over TLS; the status line of the answer, or how it ended."""
    import ssl
    ctx = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s, \
                ctx.wrap_socket(s, server_hostname="127.0.0.1") as tls:
            tls.sendall(data)
            reply = b""
            while b"\r\n" not in reply:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply.split(b"\r\n")[0].decode(errors="replace") or "closed"
    except (OSError, ssl.SSLError) as e:
        return "closed (%s)" % type(e).__name__


def check_security(t):
    """Beyond loopback only with TLS and a bearer token: refused without either; a request
    without the token, or with another, is refused; malformed requests and huge headers get
    errors, and the daemon goes on answering."""
    with tempfile.TemporaryDirectory(prefix="vmscoped-test-") as d:
        cert, key, token = (os.path.join(d, x) for x in ("cert.pem", "key.pem", "token"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "1", "-subj", "/CN=vmscoped",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       capture_output=True, timeout=60)
        with open(token, "w") as f:
            f.write("s3cret-token-of-the-test-0123456789\n")
        os.chmod(token, 0o600)
        port = free_port()
        conf = os.path.join(d, "vmscoped.conf")

        def config(extra):
            with open(conf, "w") as f:
                f.write("[daemon]\nqmp-dir = %s\nlisten = 0.0.0.0:%d\n%s" % (d, port, extra))

        def refused(extra, label, needle):
            config(extra)
            r = subprocess.run([VMSCOPED, "--config", conf], capture_output=True, text=True,
                               timeout=30)
            lines = r.stderr.strip().split("\n")
            t.ok(r.returncode == 2 and len(lines) == 1 and needle in lines[0],
                 label + ": refused to start, in one line", r.stderr)

        refused("tls-cert = %s\ntls-key = %s\n" % (cert, key),
                "all addresses with TLS but no token", "needs TLS and a token")
        refused("token-file = %s\n" % token, "all addresses with a token but no TLS",
                "needs TLS and a token")
        os.chmod(token, 0o644)
        refused("tls-cert = %s\ntls-key = %s\ntoken-file = %s\n" % (cert, key, token),
                "a token file others can read", "readable by others (chmod 600 it)")
        os.chmod(token, 0o600)
        refused("tls-cert = %s\ntls-key = %s\ntoken-file = %s\n" % (cert, cert, token),
                "a key that is no key", "GnuTLS failed to setup x509 certificate/key")
        config("tls-cert = %s\ntls-key = %s\ntoken-file = %s\n" % (cert, key, token))
        proc = track(subprocess.Popen([VMSCOPED, "--config", conf], stderr=subprocess.PIPE,
                                      text=True))
        address = "https://127.0.0.1:%d" % port

        def remote_tls(*args):
            return subprocess.run([VMSCOPE, "remote", "--cacert", cert] + list(args),
                                  capture_output=True, text=True, timeout=60)
        try:
            ok = wait_for(lambda: remote_tls("--token-file", token, address, "vms")
                          .returncode == 0, 20)
            r = remote_tls("--token-file", token, address, "vms")
            t.ok(ok and json.loads(r.stdout) == [],
                 "all addresses, with TLS and the token: vmscope remote --token-file gets "
                 "the (empty) VM list over https", r.stdout + r.stderr)
            r = remote_tls(address, "metrics")
            t.ok(r.returncode == 1 and "HTTP 401" in r.stderr and "bearer token" in r.stderr,
                 "no token: 401, and what is needed", r.stderr)
            other = os.path.join(d, "other")
            with open(other, "w") as f:
                f.write("s3cret-token-of-the-test-0123456788\n")
            r = remote_tls("--token-file", other, address, "metrics")
            t.ok(r.returncode == 1 and "HTTP 401" in r.stderr, "another token: 401", r.stderr)
            r = subprocess.run([VMSCOPE, "remote", "--token-file", token, "127.0.0.1:%d" % port,
                                "vms"], capture_output=True, text=True, timeout=60)
            t.ok(r.returncode == 1 and r.stdout == "", "plain HTTP to the TLS port: nothing "
                 "served", r.stderr)
            auth = b"Authorization: Bearer s3cret-token-of-the-test-0123456789\r\n"
            for label, data, want in [
                    ("garbage instead of a request", b"GARBAGE\r\n\r\n", "4"),
                    ("a request line without a version", b"GET /api/v1/vms\r\n\r\n", "4"),
                    ("a header of 1 MiB", b"GET /api/v1/vms HTTP/1.1\r\nHost: x\r\n" + auth +
                     b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", "4"),
                    ("10000 headers", b"GET /api/v1/vms HTTP/1.1\r\nHost: x\r\n" + auth +
                     b"".join(b"X-%d: y\r\n" % i for i in range(10000)) + b"\r\n", "4"),
                    ("a URL of 200 KiB", b"GET /api/v1/vms/" + b"a" * 200000 +
                     b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n", "4"),
                    ("a view of a name with a NUL", b"GET /api/v1/vms/a%00b/ps HTTP/1.1\r\n"
                     b"Host: x\r\n" + auth + b"\r\n", "404"),
                    ("a stream with a bad Last-Event-ID", b"GET /api/v1/events HTTP/1.1\r\n"
                     b"Host: x\r\n" + auth + b"Last-Event-ID: -1x\r\n\r\n", "400")]:
                status = raw_request(port, cert, data)
                t.ok(status.startswith("HTTP/1.1 " + want) or
                     (want == "4" and status.startswith("closed")),
                     "%s: an error, never a crash (%s)" % (label, status))
            r = remote_tls("--token-file", token, address, "vms")
            t.ok(r.returncode == 0 and proc.poll() is None,
                 "after all that, it answers as before", r.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        t.eq(proc.returncode, 0, "and stops cleanly", err[-1000:])


class Dom(html.parser.HTMLParser):
    """The elements of a page as (tag, attributes, text inside), and every tag seen."""

    def __init__(self, text):
        super().__init__()
        self.stack, self.elements, self.tags = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("meta", "link", "input", "br", "img"):
            self.elements.append((tag, dict(attrs), ""))
            return
        self.stack.append([tag, dict(attrs), ""])

    def handle_endtag(self, tag):
        while self.stack:
            e = self.stack.pop()
            self.elements.append(tuple(e))
            if self.stack:
                self.stack[-1][2] += e[2]
            if e[0] == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2] += data

    def find(self, tag, attr):
        return [e for e in self.elements if e[0] == tag and attr in e[1]]


def chromium(url, d, *args):
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--user-data-dir=" + os.path.join(d, "chromium"),
                           "--virtual-time-budget=10000"] + list(args) + [url],
                          capture_output=True, text=True, timeout=180)


def check_web(t):
    """The daemon's page in a real headless browser (Debian's chromium): the VM list, a
    VM's plots and processes, the live events; a process whose command line is markup is
    shown as text. A screenshot is kept among the test artifacts."""
    with tempfile.TemporaryDirectory(prefix="vmscoped-test-") as d, \
            vmguest.Guest(name="ga", workload="tracer", control=True) as g:
        qdir = os.path.join(d, "qmp")
        os.mkdir(qdir)
        os.symlink(g.qmp_path, os.path.join(qdir, "alpha.qmp"))
        port = free_port()
        conf = os.path.join(d, "vmscoped.conf")
        with open(conf, "w") as f:
            f.write("[daemon]\nqmp-dir = %s\nlisten = 127.0.0.1:%d\ninterval = 0.5\n"
                    "[defaults]\ntrace = exec\n" % (qdir, port))
        proc = track(subprocess.Popen([VMSCOPED, "--config", conf], stderr=subprocess.PIPE,
                                      text=True))
        url = "http://127.0.0.1:%d/#vm=alpha" % port
        try:
            test_daemon_ready = wait_for(lambda: '"trace":{"state":"on"' in
                                         (http_get(port, "/api/v1/vms") or ""), 90)
            t.ok(test_daemon_ready, "the daemon traces the guest")
            hostile = [int(l.split()[1]) for l in test_trace.run_round(g, "hostile")
                       if l.startswith("HOSTILE ")]
            lines = test_trace.run_round(g, "round")
            time.sleep(HISTORY_WAIT)  # two points of history, a plot's line
            r = chromium(url, d, "--dump-dom")
            dom = Dom(r.stdout)
            body = dom.find("body", "data-ready")
            t.ok(r.returncode == 0 and body and "pwned" not in r.stdout.split("</title>")[0],
                 "chromium loads the page; its script ran, and the title is its own",
                 r.stderr[-500:])
            vms_rows = {e[1]["data-vm"]: e[2] for e in dom.find("tr", "data-vm")}
            t.ok(set(vms_rows) == {"alpha"} and "up" in vms_rows["alpha"],
                 "the VM table: alpha, up", vms_rows)
            procs = {int(e[1]["data-pid"]): e[2] for e in dom.find("tr", "data-pid")}
            t.ok(1 in procs and "/init" in procs[1] and hostile and hostile[0] in procs,
                 "its processes: the guest's init and the process it just started",
                 sorted(procs))
            t.ok(hostile and '<img src=x onerror=document.title="pwned">' in
                 procs.get(hostile[0], "") and "img" not in dom.tags,
                 "a command line that is markup is shown as text: no element made of it",
                 procs.get(hostile[0] if hostile else 0))
            t.ok(len(hostile) == 2 and "\ufffd\ufffd" in procs.get(hostile[1], ""),
                 "a command line that is not UTF-8: listed, its bytes as U+FFFD, the view "
                 "whole", procs.get(hostile[1] if len(hostile) > 1 else 0))
            execs = [e for e in dom.find("li", "data-type") if e[1]["data-type"] == "exec"
                     and '"argv":"/bin/true"' in e[2]]
            t.eq(len(execs), lines.count("EXEC /bin/true"),
                 "the live events: an exec for each /bin/true the guest ran")
            canvases = [e for e in dom.tags if e == "canvas"]
            t.ok(len(canvases) >= 4, "both plots drawn (dygraphs' canvases)", len(canvases))
            shot = os.path.join(ARTIFACTS, "vmscoped-web.png")
            os.makedirs(ARTIFACTS, exist_ok=True)
            r = chromium(url, d, "--window-size=1280,1600", "--screenshot=" + shot)
            with open(shot, "rb") as f:
                head = f.read(8)
            t.ok(r.returncode == 0 and head == b"\x89PNG\r\n\x1a\n" and
                 os.path.getsize(shot) > 20000,
                 "a screenshot of it kept: %s" % os.path.relpath(shot, ROOT), r.stderr[-300:])
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        t.eq(proc.returncode, 0, "the daemon stops cleanly", err[-1000:])


HISTORY_WAIT = 11
ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(VMSCOPE)), "..", "..", "meson-logs",
                         "artifacts")


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.read().decode()
    except OSError:
        return None


def check_own_socket(t):
    """Its control socket in the directory it watches: not taken for a VM."""
    with tempfile.TemporaryDirectory(prefix="vmscoped-test-") as d:
        ctl = os.path.join(d, "ctl.sock")
        proc = track(subprocess.Popen([VMSCOPED, "--qmp-dir", d, "--listen", "unix:" + ctl],
                                      stderr=subprocess.PIPE, text=True))
        try:
            wait_for(lambda: os.path.exists(ctl), 20)
            time.sleep(1.5)
            t.eq(vms(ctl), {}, "its own control socket in its QMP directory is no VM")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)


def check_man(t):
    """vmscoped(8) and vmscoped.conf(5), as built: each renders without a warning,
    and names every flag the daemon takes and every key its parser knows."""
    built = os.path.dirname(os.path.abspath(VMSCOPED))
    pages = {}
    for page in ("vmscoped.8", "vmscoped.conf.5"):
        r = subprocess.run(["man", "--warnings", "-l", os.path.join(built, page)],
                           capture_output=True, text=True, env=dict(os.environ, MANWIDTH="80"))
        pages[page] = re.sub(r"\s+", " ", r.stdout.replace("\u2010\n", "").replace("-\n", "-"))
        t.ok(r.returncode == 0 and not r.stderr and "NAME" in r.stdout,
             "man %s renders, without warnings" % page, r.stderr[-500:])
    source = os.path.join(ROOT, "daemon")
    flags = re.findall(r'\{ "([a-z-]+)", (?:required|no)_argument',
                       open(os.path.join(source, "vmscoped.c")).read())
    config_c = open(os.path.join(source, "config.c")).read()
    keys = set(re.findall(r'strcmp\(key, "([a-z-]+)"\)|^\t(?:[DV]KEY\(|\{ )"([a-z-]+)"',
                          config_c, re.M))
    keys = {k for pair in keys for k in pair if k}
    # Each described where it is defined: a flag opens a paragraph of SOURCES or
    # OPTIONS; a key, of KEYS (the synopsis and the example do not count).
    man8 = pages["vmscoped.8"]
    described = man8[man8.index("SOURCES OF VMS"):man8.index("CONTROL API")]
    conf = pages["vmscoped.conf.5"]
    key_part = conf[conf.index(" KEYS "):conf.index(" EXAMPLE ")]
    missing = [f for f in flags if not re.search(r"(^| )--%s( |$)" % f, described)]
    t.ok(flags and not missing, "vmscoped(8) describes every flag (%s)" % ", ".join(flags),
         missing)
    missing = [k for k in sorted(keys) if " %s = " % k not in key_part]
    t.ok(keys and not missing, "vmscoped.conf(5) describes every key (%s)" %
         ", ".join(sorted(keys)), missing)


def main():
    t = Tap()
    t.run("man pages", check_man)
    t.run("vmscoped", check_daemon)
    t.run("vmscoped capabilities", check_capabilities)
    t.run("vmscoped under systemd", check_systemd)
    t.run("vmscoped refusals", check_refusals)
    t.run("vmscoped's own socket", check_own_socket)
    t.run("vmscoped security", check_security)
    t.run("vmscoped web page", check_web)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
