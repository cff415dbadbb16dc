// SPDX-License-Identifier: MIT
/*
 * vmscope replay DIR [--json] [--at ICOUNT VIEW]... [--until ICOUNT] [--no-check]
 *                   [--poll [--poll-every ICOUNTS]]:
 * replay a recording made by vmscope record under the same QEMU build (any
 * other is refused), with a view taken at each --at instruction count (the
 * VM held there; the view runs as `vmscope VIEW` on a monitor of its own),
 * and every checkpoint of the recording checked on the way: the first that
 * differs ends the replay with what differs (exit status 1). --poll diffs
 * the process, module and socket views at each checkpoint, and with
 * --poll-every also every ICOUNTS instructions between them: in a replay a
 * stop costs the guest nothing, so the grid can be as fine as patience
 * allows. Tracing is refused (rr_no_trace says why).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "rr.h"

#define MAX_AT 64
#define STALL_MIN_S 30 /* see stalled() */

/* At one count: checkpoint, then view, then the end. */
enum target_kind { T_CHECK, T_VIEW, T_UNTIL };

struct target {
	uint64_t icount;
	enum target_kind kind;
	size_t index; /* checkpoint or view */
	const char *view;
};

struct replay {
	struct rr_run run;
	json_t *rec;
	struct vms_rr_checkpoint *cps;
	size_t nr_cps, checked;
	struct target targets[MAX_AT + 1 + 4096];
	size_t nr_targets, next;
	uint64_t end_icount;
	uint64_t poll_every, next_poll; /* --poll-every: the grid, and its next point */
	double stall_s; /* no progress for this long: stalled */
	int divergent;
};

static const char *const views[] = { "ps", "pstree", "lsmod", "sockets", "lsof", "mounts",
				     "dmesg", "sysinfo" };

static int known_view(const char *v)
{
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
		if (!strcmp(views[i], v))
			return 1;
	return 0;
}

static int by_icount(const void *a, const void *b)
{
	const struct target *x = a, *y = b;

	if (x->icount != y->icount)
		return x->icount < y->icount ? -1 : 1;
	return (int)x->kind - (int)y->kind; /* a checkpoint before a view at the same count */
}

/* The recording's checkpoints, checked unless --no-check. */
static int load(struct replay *r, const char *dir, int check)
{
	char path[4200];
	json_error_t je;
	json_t *cps;

	snprintf(path, sizeof(path), "%s/recording.json", dir);
	r->rec = json_load_file(path, 0, &je);
	if (!r->rec)
		return cli_fail("%s: not a recording (%s)", path, je.text);
	if (json_integer_value(json_object_get(r->rec, "format")) != 1 ||
	    strcmp(json_string_value(json_object_get(r->rec, "state")) ?: "", "complete"))
		return cli_fail("%s: not a complete recording of format 1", path);
	r->end_icount = (uint64_t)json_integer_value(json_object_get(r->rec, "end_icount"));
	r->stall_s = json_real_value(json_object_get(r->rec, "wall_seconds"));
	if (r->stall_s < STALL_MIN_S)
		r->stall_s = STALL_MIN_S;
	cps = json_object_get(r->rec, "checkpoints");
	r->nr_cps = check ? json_array_size(cps) : 0;
	if (r->nr_cps > 4096)
		r->nr_cps = 4096;
	r->cps = calloc(r->nr_cps + 1, sizeof(*r->cps));
	if (!r->cps)
		return cli_fail("out of memory");
	for (size_t i = 0; i < r->nr_cps; i++) {
		if (rr_checkpoint_from_json(json_array_get(cps, i), &r->cps[i]))
			return cli_fail("%s: checkpoint %zu is malformed", path, i);
		r->targets[r->nr_targets++] = (struct target){ r->cps[i].icount, T_CHECK, i, NULL };
	}
	return 0;
}

/* The same QEMU build, or nothing: a replay log is tied to the binary that wrote it. */
static int same_qemu(const struct replay *r, char *const *argv)
{
	json_t *q = json_object_get(r->rec, "qemu");
	const char *want = json_string_value(json_object_get(q, "sha256")) ?: "";
	char path[4096], sha[65] = "", version[256];

	if (rr_find_program(argv[0], path, sizeof(path)))
		return cli_fail("%s: no such program here", argv[0]);
	if (vms_rr_file_sha256(path, sha))
		return cli_fail("cannot read %s", path);
	if (!strcmp(sha, want))
		return 0;
	rr_qemu_version(path, version, sizeof(version));
	return cli_fail("recorded with %s (%.12s), but %s is %s (%.12s): QEMU replays only what "
			"its own build recorded",
			json_string_value(json_object_get(q, "version")) ?: "another QEMU", want,
			path, version, sha);
}

static int view_at(struct replay *r, const struct target *t)
{
	char self[4200], target[4200];
	char *argv[] = { self, (char *)t->view, target, r->run.json ? "--json" : NULL, NULL };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int pipefd[2], status;
	pid_t pid;

	snprintf(target, sizeof(target), "qmp:%s", r->run.cmd.view_qmp_path);
	if (n < 0)
		return cli_fail("cannot find vmscope itself");
	self[n] = '\0';
	fflush(stdout);
	if (!r->run.json)
		printf("== at instruction %" PRIu64 ": vmscope %s\n", t->icount, t->view);
	fflush(stdout);
	if (pipe(pipefd))
		return cli_fail("cannot run %s: %s", t->view, strerror(errno));
	pid = fork();
	if (pid == 0) {
		if (r->run.json)
			dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(self, argv);
		_exit(127);
	}
	close(pipefd[1]);
	if (r->run.json) {
		json_error_t je;
		FILE *in = fdopen(pipefd[0], "r");
		json_t *res = in ? json_loadf(in, 0, &je) : NULL;
		json_t *line = json_pack("{s:I,s:s,s:o?}", "icount", (json_int_t)t->icount, "view",
					 t->view, "result", res);

		if (line) {
			json_dumpf(line, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			putchar('\n');
		}
		json_decref(line);
		if (in)
			fclose(in);
		else
			close(pipefd[0]);
	} else {
		close(pipefd[0]);
	}
	fflush(stdout);
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return cli_fail("vmscope %s at instruction %" PRIu64 " failed", t->view, t->icount);
	return 0;
}

static int check_at(struct replay *r, const struct target *t)
{
	struct vms_rr_checkpoint now, *then = &r->cps[t->index];
	char diff[1024];

	if (rr_checkpoint(&r->run, &now, 1))
		return cli_fail("checkpoint %zu: cannot read the guest: %s", t->index,
				vms_last_error(r->run.vm));
	if (now.hash == then->hash) {
		r->checked++;
		vms_rr_checkpoint_release(&now);
		return r->run.poll ? rr_poll_at(&r->run, t->icount) : 0;
	}
	vms_rr_checkpoint_diff(then, &now, diff, sizeof(diff));
	vms_rr_checkpoint_release(&now);
	r->divergent = 1;
	return cli_fail("the replay diverges at checkpoint %zu of %zu (instruction %" PRIu64
			"): %s", t->index, r->nr_cps, t->icount, diff);
}

static int stopped(struct replay *r)
{
	struct vms_vm_info info;

	return !vms_vm_query_info(r->run.vm, &info) && strcmp(info.state, "running");
}

/* Break at the next target or grid point, if any. */
static int next_break(struct replay *r)
{
	uint64_t at = r->next < r->nr_targets ? r->targets[r->next].icount : UINT64_MAX;

	if (r->poll_every && r->next_poll < at && (!r->end_icount || r->next_poll <= r->end_icount))
		at = r->next_poll;
	if (at != UINT64_MAX && vms_rr_break(r->run.vm, at))
		return cli_fail("%s", vms_last_error(r->run.vm));
	return 0;
}

/*
 * A point of the --poll-every grid reached: diff the views (unless a
 * checkpoint here just did). Before the guest's kernel is up there is
 * nothing to diff, and the poller starts at the first point where it is.
 */
static int poll_grid(struct replay *r, uint64_t icount, int polled)
{
	int err = 0;

	if (!r->poll_every || icount < r->next_poll)
		return 0;
	r->next_poll = (icount / r->poll_every + 1) * r->poll_every;
	if (!polled) {
		int started = r->run.poller != NULL;

		err = rr_poll_at(&r->run, icount);
		if (err && !started)
			err = 0;
	}
	return err ? cli_fail("--poll-every at instruction %" PRIu64 ": %s", icount,
			      vms_last_error(r->run.vm))
		   : 0;
}

/* At a stop: every target reached, then the next break, then on. 1: the replay is over. */
static int at_stop(struct replay *r)
{
	char mode[16];
	uint64_t icount;

	int polled = 0;

	if (vms_rr_query(r->run.vm, mode, &icount))
		return -1;
	while (r->next < r->nr_targets && r->targets[r->next].icount <= icount) {
		const struct target *t = &r->targets[r->next++];
		int err = t->kind == T_CHECK ? check_at(r, t) : t->kind == T_VIEW ? view_at(r, t) : 0;

		if (err || t->kind == T_UNTIL)
			return err ? -1 : 1;
		polled |= t->kind == T_CHECK && r->run.poll;
	}
	if (poll_grid(r, icount, polled))
		return -1;
	/* Past the recording's end (it ended with a quit, not an exit): done. */
	if (r->next == r->nr_targets && r->end_icount && icount >= r->end_icount)
		return 1;
	if (next_break(r))
		return -1;
	return vms_rr_continue(r->run.vm) ? -1 : 0;
}

/*
 * A replay that no longer matches its log (a changed disk, say) does not
 * always reach the next checkpoint to be found out: QEMU can wait forever
 * for an event the guest no longer causes. An instruction count that stands
 * still while the VM runs is that, if it stands still longer than the whole
 * recording took (an idle guest's count stands still for seconds in a
 * replay too).
 */

static int stalled(struct replay *r, double *since, uint64_t *last)
{
	char mode[16];
	uint64_t icount;
	const struct target *t = r->next < r->nr_targets ? &r->targets[r->next] : NULL;

	/* A QEMU that no longer answers (hung in its gdbstub, say) makes no progress either. */
	if (vms_rr_query(r->run.vm, mode, &icount))
		icount = *last;
	if (icount != *last) {
		*last = icount;
		*since = rr_now_s();
		return 0;
	}
	if (rr_now_s() - *since < r->stall_s)
		return 0;
	r->divergent = 1;
	if (t && t->kind == T_CHECK)
		return cli_fail("the replay diverges at checkpoint %zu of %zu (instruction %" PRIu64
				"): it stalled %.0f s at instruction %" PRIu64 ", short of it: the "
				"guest no longer does what was recorded (a changed disk or input?)",
				t->index, r->nr_cps, t->icount, r->stall_s, icount);
	return cli_fail("the replay stalled %.0f s at instruction %" PRIu64 ": the guest no longer "
			"does what was recorded (a changed disk or input?)", r->stall_s, icount);
}

static int replay_loop(struct replay *r)
{
	double since = rr_now_s(), next_look = 0;
	uint64_t last = 0;

	while (!rr_exited(&r->run) && !cli_stopping()) {
		int end;

		usleep(10000);
		if (rr_now_s() >= next_look) {
			next_look = rr_now_s() + 1;
			if (stalled(r, &since, &last))
				return 1;
		}
		if (rr_exited(&r->run) || !stopped(r))
			continue;
		end = at_stop(r);
		if (end)
			return end < 0;
	}
	return 0;
}

static int parse_at(struct replay *r, int argc, char **argv)
{
	uint64_t icount;
	size_t views_at = 0;

	if (optind >= argc)
		return cli_fail("--at needs an instruction count and a view");
	if (cli_parse_u64(optarg, "--at", &icount))
		return 1;
	if (!known_view(argv[optind]))
		return cli_fail("--at %s %s: not a view (ps, pstree, lsmod, sockets, lsof, mounts, "
				"dmesg, sysinfo)", optarg, argv[optind]);
	for (size_t i = 0; i < r->nr_targets; i++)
		views_at += r->targets[i].kind == T_VIEW;
	if (views_at == MAX_AT)
		return cli_fail("at most %d --at views", MAX_AT);
	r->targets[r->nr_targets++] = (struct target){ icount, T_VIEW, views_at, argv[optind] };
	optind++;
	return 0;
}

static int run_replay(int argc, char **argv)
{
	static const struct option options[] = {
		{ "trace", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "at", required_argument, NULL, 'a' },
		{ "until", required_argument, NULL, 'u' },
		{ "no-check", no_argument, NULL, 'n' },
		{ "poll", no_argument, NULL, 'p' },
		{ "poll-every", required_argument, NULL, 'g' },
		{ 0 },
	};
	struct replay *r = calloc(1, sizeof(*r));
	uint64_t until = 0;
	int opt, status = 1, check = 1;
	char log[4200], zst[4200];
	const char *dir;
	json_t *cmd;

	if (!r)
		return cli_fail("out of memory");
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'e') {
			cli_fail("%s", rr_no_trace);
			goto out;
		}
		else if (opt == 'j')
			r->run.json = 1;
		else if (opt == 'a' && parse_at(r, argc, argv))
			goto out;
		else if (opt == 'u' && cli_parse_u64(optarg, "--until", &until))
			goto out;
		else if (opt == 'n')
			check = 0;
		else if (opt == 'p')
			r->run.poll = 1;
		else if (opt == 'g' && cli_parse_u64(optarg, "--poll-every", &r->poll_every))
			goto out;
		else if (opt == 'g' && !r->poll_every) {
			cli_fail("--poll-every: a number of instructions above 0");
			goto out;
		} else if (opt != 'e' && opt != 'a' && opt != 'u' && opt != 'g') {
			status = cli_usage(&cmd_replay);
			goto out;
		}
	}
	if (optind != argc - 1) {
		status = cli_usage(&cmd_replay);
		goto out;
	}
	dir = argv[optind];
	/* The --at views are in targets already; the checkpoints join them. */
	if (load(r, dir, check))
		goto out;
	for (size_t i = 0; i < r->nr_targets; i++)
		if (r->targets[i].kind == T_VIEW && r->end_icount &&
		    r->targets[i].icount > r->end_icount) {
			cli_fail("--at %" PRIu64 ": past the recording's end (instruction %" PRIu64 ")",
				 r->targets[i].icount, r->end_icount);
			goto out;
		}
	if (until)
		r->targets[r->nr_targets++] = (struct target){ until, T_UNTIL, 0, NULL };
	qsort(r->targets, r->nr_targets, sizeof(*r->targets), by_icount);
	{
		size_t n;
		char **qemu;

		cmd = json_object_get(r->rec, "command");
		n = json_array_size(cmd);
		qemu = calloc(n + 1, sizeof(*qemu));
		for (size_t i = 0; qemu && i < n; i++)
			qemu[i] = (char *)json_string_value(json_array_get(cmd, i));
		if (!qemu || !n || same_qemu(r, qemu) ||
		    rr_check_boot_files(json_object_get(r->rec, "boot_files"))) {
			free(qemu);
			goto out;
		}
		snprintf(zst, sizeof(zst), "%s/replay.bin.zst", dir);
		snprintf(log, sizeof(log), "%s/replay.bin", dir);
		if (vms_rr_decompress(zst, log)) {
			free(qemu);
			cli_fail("%s: cannot decompress the replay log", zst);
			goto out;
		}
		{
			char err[512];

			if (vms_rr_command(dir, VMS_RR_REPLAY, qemu, n, &r->run.cmd, err,
					   sizeof(err))) {
				free(qemu);
				cli_fail("cannot replay: %s", err);
				goto out_log;
			}
		}
		free(qemu);
	}
	if (r->poll_every)
		r->run.poll = 1;
	r->next_poll = r->poll_every;
	if (r->run.poll && !check && !r->poll_every) {
		cli_fail("--poll diffs the views at the checkpoints: not with --no-check (or give "
			 "--poll-every)");
		goto out_log;
	}
	if (r->run.poll && r->run.json && vms_sink_jsonl_new(stdout, &r->run.sink)) {
		cli_fail("out of memory");
		goto out_log;
	}
	snprintf(zst, sizeof(zst), "%s/replay-qemu.log", dir);
	cli_stop_on_signals();
	{
		double t0 = rr_now_s();

		if (rr_spawn(&r->run, zst) || rr_attach(&r->run))
			goto out_log;
		if (next_break(r) || vms_rr_continue(r->run.vm)) {
			cli_fail("%s", vms_last_error(r->run.vm));
			goto out_log;
		}
		status = replay_loop(r);
		fprintf(stderr, "vmscope: replayed %.1f s (recorded in %.1f s); %zu of %zu "
			"checkpoints matched%s\n", rr_now_s() - t0,
			json_real_value(json_object_get(r->rec, "wall_seconds")), r->checked,
			r->nr_cps, r->divergent ? ", then it diverged" : "");
	}
out_log:
	rr_close(&r->run);
	unlink(log);
out:
	for (size_t i = 0; i < r->nr_cps; i++)
		vms_rr_checkpoint_release(&r->cps[i]);
	free(r->cps);
	json_decref(r->rec);
	free(r);
	return status;
}

const struct cli_command cmd_replay = {
	.name = "replay",
	.usage = "DIR [--json] [--at ICOUNT VIEW]... [--until ICOUNT] [--no-check] [--poll "
		 "[--poll-every ICOUNTS]]",
	.summary = "replay a recording, checked at its checkpoints, views at any instruction",
	.run = run_replay,
};
