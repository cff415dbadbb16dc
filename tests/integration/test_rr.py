#!/usr/bin/env python3
"""VM record/replay with vmscope attached. The rr guest forks and execs,
reads /dev/urandom, the clock and (at step 10) a file of its data disk,
logging every step on its ground-truth port, then powers off. Recorded
under `vmscope record --poll` and replayed with `vmscope replay --poll`:
the guest's output is byte-identical, every checkpoint matches, the same
process events come at the same instruction counts,
views taken at two instruction counts agree with what the guest had logged
by then, a replay over a changed disk is reported divergent at the first
checkpoint after the guest read the change; and what cannot be recorded or
replayed is refused in one line."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import Tap, vmscope, vmguest

RECORD_TIMEOUT = 600


def qemu_command(rundir, image, disk):
    """The test guest's command line, with its disk and serial files in rundir."""
    return vmguest.standalone_command("rr", rundir, image, disk)


def put_input(disk, text):
    """rr-input on the data disk, written in place (its metadata unchanged) once it exists."""
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(text)
    try:
        out = subprocess.run(["debugfs", "-R", "bmap rr-input 0", disk], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout.strip()
        if not out.isdigit() or out == "0":
            subprocess.run(["debugfs", "-w", "-R", "write %s rr-input" % f.name, disk],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            return
        bs = int(re.search(r"Block size:\s+(\d+)", subprocess.run(
            ["dumpe2fs", "-h", disk], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True).stdout).group(1))
        with open(disk, "r+b") as d:
            d.seek(int(out) * bs)
            d.write(text.encode())
    finally:
        os.unlink(f.name)


def sleepers(truth):
    spawned = re.findall(r"^SPAWN (\d+)$", truth, re.M)
    killed = set(re.findall(r"^KILLED (\d+)$", truth, re.M))
    return {int(p) for p in spawned if p not in killed}


def replay(rec, *args):
    return vmscope("replay", rec, *args, timeout=RECORD_TIMEOUT)


def check_record(t, top, image):
    rundir = os.path.join(top, "run")
    os.mkdir(rundir)
    disk = os.path.join(rundir, "data.img")
    shutil.copyfile(os.path.join(image, "data.img"), disk)
    put_input(disk, "2\n")
    cmd, truth_path = qemu_command(rundir, image, disk)
    rec = os.path.join(top, "rec")
    r = vmscope("record", rec, "--checkpoint-every", "2", "--poll", "--json", "--", *cmd,
                timeout=RECORD_TIMEOUT)
    with open(truth_path, "rb") as f:
        recorded = f.read()
    with open(os.path.join(rec, "recording.json")) as f:
        meta = json.load(f)
    t.ok(r.returncode == 0 and b"=== END rr ===" in recorded and meta["state"] == "complete" and
         len(meta["checkpoints"]) >= 10 and meta["command"] == cmd and
         isinstance(meta.get("checkpoints_deferred"), int) and
         meta["qemu"]["version"].startswith("QEMU emulator version") and
         os.path.exists(os.path.join(rec, "replay.bin.zst")) and
         not os.path.exists(os.path.join(rec, "replay.bin")),
         "record: the guest ran to its power-off; the command line, QEMU build, %d "
         "checkpoints and the compressed replay log kept" % len(meta["checkpoints"]), r.stderr)
    events = [json.loads(l) for l in r.stdout.splitlines()]
    truth = recorded.decode()
    starts = {e["pid"] for e in events if e["type"] == "process_start" and e["comm"] == "sleep"}
    exits = {e["pid"] for e in events if e["type"] == "process_exit" and e["comm"] == "sleep"}
    spawned = {int(p) for p in re.findall(r"^SPAWN (\d+)$", truth, re.M)}
    killed = {int(p) for p in re.findall(r"^KILLED (\d+)$", truth, re.M)}
    t.ok(spawned and spawned <= starts and killed == spawned and killed <= exits and
         all("icount" in e for e in events),
         "record --poll: the guest's sleepers %s start and end between checkpoints, each event "
         "with its instruction count" % sorted(spawned), (sorted(starts), sorted(exits)))
    q = vmscope("log", "query", os.path.join(rec, "events"), "--json")
    t.ok(q.returncode == 0 and [json.loads(l) for l in q.stdout.splitlines()] == events,
         "record --poll: the same events in the recording's event log (DIR/events)")
    rec_events = events
    return rec, meta, recorded, truth_path, disk, rec_events


def untimed(events):
    return [{k: v for k, v in e.items() if k not in ("time", "time_ns")} for e in events]


def check_replay(t, rec, meta, recorded, truth_path, rec_events):
    r = replay(rec, "--poll", "--json")
    with open(truth_path, "rb") as f:
        replayed = f.read()
    n = len(meta["checkpoints"])
    t.ok(r.returncode == 0 and replayed == recorded,
         "replay: the guest's ground-truth output byte for byte (%d bytes: random bytes, "
         "clocks, pids)" % len(recorded), r.stderr)
    t.ok("%d of %d checkpoints matched" % (n, n) in r.stderr,
         "replay: all %d checkpoints match (processes, forks, context switches)" % n, r.stderr)
    events = [json.loads(l) for l in r.stdout.splitlines()]
    t.ok(rec_events and untimed(events) == untimed(rec_events),
         "replay --poll: the same %d process, module and socket events as while recording, at "
         "the same instruction counts" % len(rec_events), (len(events), len(rec_events)))

    killed_by = check_poll_grid(t, rec, meta, recorded, rec_events)
    cps = meta["checkpoints"]
    spawned = re.findall(r"^SPAWN (\d+)$", recorded.decode(), re.M)
    # Checkpoints while the guest's "sleep 1000"s live (by their pids, as it logged them).
    with_sleep = [c for c in cps if spawned and all(
        re.search(r"(^| )%s:\d+:sleep( |$)" % p, c["process_list"]) for p in spawned)]
    # After the kills: half way from the grid point that saw the last sleeper gone to
    # the end (the guest logs KILLED just after; icount time warps over its sleeps,
    # so the last checkpoint, taken by the wall clock, may come before the kills).
    after = {"icount": (killed_by + meta["end_icount"]) // 2} if killed_by else cps[-1]
    for label, cp in (("while the sleepers live", with_sleep[0] if with_sleep else None),
                      ("after they were killed", after)):
        if cp is None:
            t.ok(False, "--at: no checkpoint with the sleepers to look at")
            continue
        r = replay(rec, "--at", str(cp["icount"]), "ps", "--until", str(cp["icount"]),
                   "--json")
        with open(truth_path) as f:
            truth = f.read()
        lines = [json.loads(l) for l in r.stdout.splitlines()]
        got = {p["pid"] for p in lines[0]["result"]["items"] if p["cmdline"] == "sleep 1000"} \
            if lines and lines[0].get("view") == "ps" else None
        t.ok(r.returncode == 0 and got == sleepers(truth) and lines[0]["icount"] == cp["icount"]
             and (got if label.startswith("while") else not got),
             "replay --at %d ps (%s): the sleepers the guest had logged by then, %s"
             % (cp["icount"], label, sorted(sleepers(truth))), (got, r.stderr))
    return with_sleep


GRID = 20000000


def check_poll_grid(t, rec, meta, recorded, rec_events):
    """--poll-every: the views diffed every GRID instructions as well, in the same
    replay that checks the checkpoints: the guest's sleepers start (or exec) and
    end, at counts of the grid or of checkpoints, and more is seen than at the
    checkpoints alone."""
    r = replay(rec, "--poll-every", str(GRID), "--json")
    n = len(meta["checkpoints"])
    events = [json.loads(l) for l in r.stdout.splitlines()]
    spawned = {int(p) for p in re.findall(r"^SPAWN (\d+)$", recorded.decode(), re.M)}
    seen = {e["pid"] for e in events if e["type"] in ("process_start", "process_exec") and
            e.get("cmdline") == "sleep 1000"}
    ended = {e["pid"] for e in events if e["type"] == "process_exit"}
    at_checkpoints = {c["icount"] for c in meta["checkpoints"]}
    t.ok(r.returncode == 0 and "%d of %d checkpoints matched" % (n, n) in r.stderr and
         spawned and spawned <= seen and spawned <= ended and
         all(e["icount"] % GRID == 0 or e["icount"] in at_checkpoints for e in events) and
         len(events) > len(rec_events),
         "replay --poll-every %d: the sleepers %s start and end, every event at a grid or "
         "checkpoint count, %d events against %d at the checkpoints alone"
         % (GRID, sorted(spawned), len(events), len(rec_events)), (sorted(seen), r.stderr))
    exits = [e["icount"] for e in events if e["type"] == "process_exit" and e["pid"] in spawned]
    return max(exits) if exits else None


def check_divergence(t, rec, meta, disk, with_sleep):
    """The same replay over a disk whose rr-input says 3, not 2."""
    put_input(disk, "3\n")
    r = replay(rec)
    first = meta["checkpoints"].index(with_sleep[0]) if with_sleep else -1
    m = re.search(r"diverges at checkpoint (\d+) of (\d+) \(instruction (\d+)\): (.*)", r.stderr)
    t.ok(r.returncode == 1 and m and int(m.group(1)) == first and
         int(m.group(3)) == meta["checkpoints"][first]["icount"] and
         ("sleep" in m.group(4) or "stalled" in m.group(4)),
         "replay over a changed disk: divergent at checkpoint %d, the first after the guest "
         "read the change, saying what differs" % first, r.stderr)
    put_input(disk, "2\n")


def check_refusals(t, top, rec, image):
    with open(os.path.join(rec, "recording.json")) as f:
        end = json.load(f)["end_icount"]
    r = vmscope("replay", rec, "--at", str(end + 1000), "ps")
    t.one_line_error(r, "replay --at past the recording's end: refused", "past the recording's end")
    r = vmscope("replay", rec, "--trace", "exec")
    t.one_line_error(r, "replay --trace: refused, saying why", "record/replay do not work together")
    r = vmscope("record", os.path.join(top, "traced"), "--trace", "exec", "--",
                "qemu-system-x86_64")
    t.one_line_error(r, "record --trace: refused, saying why", "record/replay do not work together")
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-smp", "2", "-kernel",
           os.path.join(image, "vmlinuz")]
    r = vmscope("record", os.path.join(top, "smp"), "--", *cmd)
    t.one_line_error(r, "record -smp 2: refused", "one vCPU")
    r = vmscope("record", os.path.join(top, "kvm"), "--", "qemu-system-x86_64", "-enable-kvm")
    t.one_line_error(r, "record -enable-kvm: refused", "TCG only")
    r = vmscope("record", rec, "--", "qemu-system-x86_64")
    t.one_line_error(r, "record into a directory that is not empty: refused", "not empty")
    forged = os.path.join(top, "forged")
    os.mkdir(forged)
    shutil.copyfile(os.path.join(rec, "recording.json"), os.path.join(forged, "recording.json"))
    with open(os.path.join(forged, "recording.json")) as f:
        meta = json.load(f)
    meta["qemu"]["sha256"] = "0" * 64
    meta["qemu"]["version"] = "QEMU emulator version 9.9.9"
    with open(os.path.join(forged, "recording.json"), "w") as f:
        json.dump(meta, f)
    r = vmscope("replay", forged)
    t.one_line_error(r, "replay under another QEMU build: refused, naming both",
                     "recorded with QEMU emulator version 9.9.9")
    with open(os.path.join(rec, "recording.json")) as f:
        meta = json.load(f)
    boot = {b["option"]: b for b in meta.get("boot_files", [])}
    t.ok(set(boot) == {"-kernel", "-initrd"} and
         boot["-initrd"]["path"].endswith("initramfs.cpio.gz"),
         "the recording keeps the SHA-256 of the kernel and initrd it booted", boot)
    # The guest image is rebuilt whenever its recipe changes: a replay over it would diverge.
    changed = os.path.join(top, "initrd-changed")
    shutil.copyfile(boot["-initrd"]["path"], changed)
    with open(changed, "ab") as f:
        f.write(b"\0")
    boot["-initrd"]["path"] = changed
    with open(os.path.join(forged, "recording.json"), "w") as f:
        json.dump(meta, f)
    r = vmscope("replay", forged)
    t.one_line_error(r, "replay over a changed initrd: refused, naming it",
                     "-initrd %s changed since it was recorded" % changed)


def main():
    t = Tap()
    image = vmguest.build(None)
    with tempfile.TemporaryDirectory(prefix="vmscope-test-rr-") as top:
        rec, meta, recorded, truth_path, disk, rec_events = check_record(t, top, image)
        with_sleep = check_replay(t, rec, meta, recorded, truth_path, rec_events)
        check_divergence(t, rec, meta, disk, with_sleep)
        check_refusals(t, top, rec, image)
    sys.exit(t.done())


if __name__ == "__main__":
    main()
