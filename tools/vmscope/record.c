// SPDX-License-Identifier: MIT
/*
 * vmscope record DIR [--checkpoint-every S] -- QEMU...: run a VM under
 * QEMU's deterministic record mode (TCG, one vCPU), its disks behind
 * blkreplay and its NICs behind filter-replay, until it exits or
 * SIGINT/SIGTERM (then QEMU is quit cleanly). Checkpoints of the guest's
 * state are taken every S seconds for replays to be checked against; with
 * --poll, the process, module and socket views are diffed at each (events
 * also into DIR/events), as replay --poll does at the same counts. At the
 * end the replay log is compressed and DIR/recording.json written: the QEMU
 * build, both command lines, the checkpoints.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "rr.h"

#define RR_FORMAT 1

struct recording {
	char dir[4096];
	char qemu[4096], version[256], sha256[65];
	json_t *checkpoints, *boot_files;
	double started, wall_s;
	uint64_t end_icount;
	uint64_t deferred; /* checkpoint tries put off: a disk request was in flight */
};

static json_t *strings(char *const *argv, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(argv[i]));
	return a;
}

static int write_json(const char *dir, const char *name, json_t *j)
{
	char path[4200], tmp[4300];
	int err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	err = json_dump_file(j, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!err && rename(tmp, path))
		err = -1;
	return err ? cli_fail("cannot write %s", path) : 0;
}

static int describe(const struct recording *rec, char *const *argv, size_t argc,
		    const struct rr_run *run, const char *state, uint64_t log_bytes,
		    uint64_t stored_bytes)
{
	json_t *j = json_pack("{s:i,s:s,s:{s:s,s:s,s:s},s:o,s:O,s:o,s:o,s:I,s:I,s:f,s:I,s:I,s:s}",
			      "format", RR_FORMAT, "state", state, "qemu", "path", rec->qemu,
			      "version", rec->version, "sha256", rec->sha256, "command",
			      strings(argv, argc), "boot_files", rec->boot_files, "record_command",
			      strings(run->cmd.argv, run->cmd.argc), "checkpoints",
			      json_incref(rec->checkpoints), "checkpoints_deferred",
			      (json_int_t)rec->deferred, "end_icount",
			      (json_int_t)rec->end_icount, "wall_seconds", rec->wall_s,
			      "replay_log_bytes", (json_int_t)log_bytes, "replay_log_stored_bytes",
			      (json_int_t)stored_bytes, "replay_log", "replay.bin.zst");
	int err = j ? write_json(rec->dir, "recording.json", j) : cli_fail("out of memory");

	json_decref(j);
	return err;
}

/* --poll's events: into DIR/events (a durable log), and stdout for --json. */
static int open_events(struct rr_run *run, const char *dir)
{
	struct cli_log log = { 0 };
	struct vms_sink *logs, *out;
	char events[4200];

	snprintf(events, sizeof(events), "%s/events", dir);
	log.dir = events;
	if (cli_log_open(&log, &logs))
		return 1;
	if (!run->json) {
		run->sink = logs;
		return 0;
	}
	if (vms_sink_jsonl_new(stdout, &out) || vms_sink_tee_new(out, logs, &run->sink)) {
		vms_sink_free(logs);
		return cli_fail("out of memory");
	}
	return 0;
}

/*
 * Stopped with no guest block request in flight, checked before the stop
 * and again after it (one may have started in between): QEMU 7.2 logs a
 * completion that comes while a recording is stopped where its replay
 * cannot follow (vms_rr_io_in_flight). 0, or -EBUSY: try again shortly.
 */
static int quiet_pause(struct rr_run *run)
{
	unsigned int n = 0;

	if (!vms_rr_io_in_flight(run->vm, &n) && n)
		return -EBUSY;
	if (vms_vm_pause(run->vm))
		return -EIO;
	if (vms_rr_io_in_flight(run->vm, &n) || !n)
		return 0;
	vms_vm_resume(run->vm);
	return -EBUSY;
}

/* Until QEMU exits or we are told to stop: a checkpoint every `every` s. */
static void record_loop(struct rr_run *run, struct recording *rec, double every)
{
	double next_cp = rr_now_s() + every, next_count = 0;

	while (!rr_exited(run) && !cli_stopping()) {
		char mode[16];

		/* The instruction count so far: where a replay of a VM that exits ends. */
		if (rr_now_s() >= next_count) {
			next_count = rr_now_s() + 0.25;
			vms_rr_query(run->vm, mode, &rec->end_icount);
		}
		usleep(20000);
		if (rr_now_s() >= next_cp && !rr_exited(run)) {
			struct vms_rr_checkpoint cp;
			int err = quiet_pause(run);

			if (err == -EBUSY) {
				rec->deferred++;
				continue;
			}
			next_cp = rr_now_s() + every;
			if (err)
				continue;
			/* Before the guest's kernel is up there is nothing to check. */
			if (!rr_checkpoint(run, &cp, 1)) {
				json_array_append_new(rec->checkpoints, rr_checkpoint_json(&cp));
				if (run->poll)
					rr_poll_at(run, cp.icount);
				vms_rr_checkpoint_release(&cp);
			}
			vms_vm_resume(run->vm);
		}
	}
}

static int finish(struct rr_run *run, struct recording *rec, char *const *argv, size_t argc)
{
	char mode[16], zst[4300];
	uint64_t raw = 0;
	struct stat st;
	int status = 0;

	if (run->pid > 0 && run->vm && !rr_exited(run))
		vms_rr_query(run->vm, mode, &rec->end_icount);
	rr_stop_qemu(run);
	rec->wall_s = rr_now_s() - rec->started;
	if (!stat(run->cmd.replay_log, &st))
		raw = (uint64_t)st.st_size;
	if (vms_rr_compress(run->cmd.replay_log))
		status = cli_fail("cannot compress %s", run->cmd.replay_log);
	snprintf(zst, sizeof(zst), "%s.zst", run->cmd.replay_log);
	if (stat(zst, &st))
		st.st_size = 0;
	if (describe(rec, argv, argc, run, "complete", raw, (uint64_t)st.st_size))
		status = 1;
	fprintf(stderr, "vmscope: recorded %.1f s, %" PRIu64 " instructions, %zu checkpoints (%" PRIu64
		" tries put off while a disk request was in flight); replay log %" PRIu64 " bytes, %"
		PRIu64 " compressed\n", rec->wall_s, rec->end_icount, json_array_size(rec->checkpoints),
		rec->deferred, raw, (uint64_t)st.st_size);
	return status;
}

static int prepare(struct recording *rec, const char *dir, char *const *argv, size_t argc,
		   struct rr_run *run)
{
	char err[512];

	if (mkdir(dir, 0755) && (errno != EEXIST || rmdir(dir) || mkdir(dir, 0755)))
		return cli_fail("%s: %s (record into a new or empty directory)", dir,
				errno == ENOTEMPTY || errno == EEXIST ? "not empty" : strerror(errno));
	snprintf(rec->dir, sizeof(rec->dir), "%s", dir);
	if (rr_find_program(argv[0], rec->qemu, sizeof(rec->qemu)))
		return cli_fail("%s: no such program", argv[0]);
	if (vms_rr_file_sha256(rec->qemu, rec->sha256))
		return cli_fail("cannot read %s", rec->qemu);
	rr_qemu_version(rec->qemu, rec->version, sizeof(rec->version));
	rec->boot_files = rr_boot_files(argv, argc);
	if (!rec->boot_files)
		return 1;
	if (vms_rr_command(dir, VMS_RR_RECORD, argv, argc, &run->cmd, err, sizeof(err)))
		return cli_fail("cannot record this VM: %s", err);
	rec->checkpoints = json_array();
	return 0;
}

static int run_record(int argc, char **argv)
{
	static const struct option options[] = {
		{ "trace", required_argument, NULL, 'e' },
		{ "checkpoint-every", required_argument, NULL, 'c' },
		{ "poll", no_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct recording rec = { 0 };
	struct rr_run run = { 0 };
	char qemu_log[4200];
	double every = 1;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'e')
			return cli_fail("%s", rr_no_trace);
		else if (opt == 'c' && cli_parse_seconds(optarg, "--checkpoint-every", &every))
			return 1;
		else if (opt == 'p')
			run.poll = 1;
		else if (opt == 'j')
			run.json = 1;
		else if (opt != 'e' && opt != 'c')
			return cli_usage(&cmd_record);
	}
	if (optind + 2 > argc || !strcmp(argv[optind], "--"))
		return cli_usage(&cmd_record);
	{
		const char *dir = argv[optind++];
		char *const *qemu;
		size_t n;

		if (optind < argc && !strcmp(argv[optind], "--"))
			optind++;
		qemu = argv + optind;
		n = (size_t)(argc - optind);
		if (!n)
			return cli_usage(&cmd_record);
		if (prepare(&rec, dir, qemu, n, &run)) {
			json_decref(rec.checkpoints);
			json_decref(rec.boot_files);
			vms_rr_command_release(&run.cmd);
			return 1;
		}
		snprintf(qemu_log, sizeof(qemu_log), "%s/qemu.log", dir);
		cli_stop_on_signals();
		rec.started = rr_now_s();
		status = describe(&rec, qemu, n, &run, "recording", 0, 0);
		if (!status && run.poll)
			status = open_events(&run, dir);
		if (!status)
			status = rr_spawn(&run, qemu_log);
		if (!status)
			status = rr_attach(&run);
		if (!status && vms_rr_continue(run.vm))
			status = cli_fail("%s", vms_last_error(run.vm));
		if (!status) {
			fprintf(stderr, "vmscope: recording into %s; stop with Ctrl-C\n", dir);
			record_loop(&run, &rec, every);
			status = finish(&run, &rec, qemu, n);
		}
	}
	rr_close(&run);
	json_decref(rec.checkpoints);
	json_decref(rec.boot_files);
	return status;
}

const struct cli_command cmd_record = {
	.name = "record",
	.usage = "DIR [--checkpoint-every S] [--poll [--json]] -- QEMU-COMMAND-LINE...",
	.summary = "run a VM under QEMU's deterministic record mode, for vmscope replay",
	.run = run_record,
};
