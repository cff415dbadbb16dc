// SPDX-License-Identifier: MIT
/*
 * What `vmscope record` and `vmscope replay` share: running QEMU from a
 * rewritten command line (lib/replay/cmdline.c) and attaching to it, and
 * checkpoints taken with the VM held still.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <vmscope/mem.h>

#include "cli.h"
#include "rr.h"

double rr_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int rr_find_program(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL;

	if (strchr(name, '/'))
		return realpath(name, out) ? 0 : -errno;
	copy = strdup(path ? path : "/usr/bin:/bin");
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char cand[4200];

		snprintf(cand, sizeof(cand), "%s/%s", d, name);
		if (!access(cand, X_OK) && realpath(cand, out)) {
			free(copy);
			return 0;
		}
	}
	free(copy);
	(void)len;
	return -ENOENT;
}

/* "QEMU emulator version 7.2.x (Debian ...)": the first line of --version. */
void rr_qemu_version(const char *binary, char *out, size_t len)
{
	char cmd[4300];
	FILE *p;

	snprintf(out, len, "unknown");
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", binary);
	p = popen(cmd, "r");
	if (!p)
		return;
	if (fgets(out, (int)len, p))
		out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

int rr_spawn(struct rr_run *run, const char *log_path)
{
	pid_t parent = getpid();
	int out;

	/* Sockets a QEMU that was killed left behind would be taken for the new one's. */
	unlink(run->cmd.qmp_path);
	unlink(run->cmd.view_qmp_path);
	out = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return cli_fail("cannot write %s: %s", log_path, strerror(errno));
	run->pid = fork();
	if (run->pid == 0) {
		int in = open("/dev/null", O_RDONLY);

		/* QEMU goes with vmscope, however vmscope ends. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execvp(run->cmd.argv[0], run->cmd.argv);
		dprintf(2, "cannot run %s: %s\n", run->cmd.argv[0], strerror(errno));
		_exit(127);
	}
	close(out);
	if (run->pid < 0)
		return cli_fail("cannot run %s: %s", run->cmd.argv[0], strerror(errno));
	run->log_path = log_path;
	return 0;
}

/* The last line QEMU wrote: why it stopped, if it did. */
static void qemu_said(const char *log_path, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen(log_path, "r");

	snprintf(out, len, "no message");
	while (f && fgets(line, sizeof(line), f))
		if (line[0] != '\n')
			snprintf(out, len, "%.*s", (int)strcspn(line, "\n"), line);
	if (f)
		fclose(f);
}

int rr_exited(struct rr_run *run)
{
	int status;

	if (run->pid <= 0)
		return 1;
	if (waitpid(run->pid, &status, WNOHANG) == run->pid) {
		run->pid = 0;
		run->status = status;
		return 1;
	}
	return 0;
}

int rr_attach(struct rr_run *run)
{
	char target[4200], why[512];
	double end = rr_now_s() + 60;

	snprintf(target, sizeof(target), "qmp:%s", run->cmd.qmp_path);
	while (access(run->cmd.qmp_path, F_OK) || access(run->cmd.view_qmp_path, F_OK)) {
		if (rr_exited(run) || rr_now_s() > end) {
			qemu_said(run->log_path, why, sizeof(why));
			return cli_fail("QEMU did not start: %s", why);
		}
		usleep(20000);
	}
	run->vm = cli_attach(target);
	return run->vm ? 0 : 1;
}

void rr_stop_qemu(struct rr_run *run)
{
	double end = rr_now_s() + 30;

	if (run->pid <= 0)
		return;
	if (run->vm)
		vms_rr_quit(run->vm);
	while (!rr_exited(run) && rr_now_s() < end)
		usleep(20000);
	if (run->pid > 0) {
		kill(run->pid, SIGKILL);
		waitpid(run->pid, &run->status, 0);
		run->pid = 0;
	}
}

void rr_close(struct rr_run *run)
{
	rr_stop_qemu(run);
	vms_poll_free(run->poller);
	run->poller = NULL;
	vms_ring_free(run->ring);
	run->ring = NULL;
	vms_sink_free(run->sink);
	run->sink = NULL;
	vms_vm_free(run->vm);
	run->vm = NULL;
	unlink(run->cmd.qmp_path);
	unlink(run->cmd.view_qmp_path);
	vms_rr_command_release(&run->cmd);
}

int rr_checkpoint(struct rr_run *run, struct vms_rr_checkpoint *cp, int already_stopped)
{
	char mode[16];
	uint64_t icount;
	int err = already_stopped ? 0 : vms_vm_pause(run->vm);

	if (err)
		return err;
	vms_vm_flush_caches(run->vm);
	err = vms_rr_query(run->vm, mode, &icount);
	if (!err)
		err = vms_rr_checkpoint_take(run->vm, icount, cp);
	if (!already_stopped && vms_vm_resume(run->vm) && !err)
		err = -EIO;
	return err;
}

int rr_poll_at(struct rr_run *run, uint64_t icount)
{
	struct vms_event *copy;
	const struct vms_event *ev;
	int n;

	if (!run->ring && vms_ring_new(16384, &run->ring))
		return -ENOMEM;
	if (!run->poller)
		return vms_poll_start(run->vm, VMS_POLL_ALL, run->ring, &run->poller) ? -EIO : 0;
	n = vms_poll_once(run->poller);
	copy = malloc(sizeof(*copy));
	while (copy && (ev = vms_ring_peek(run->ring))) {
		vms_event_copy(copy, ev);
		vms_event_add_uint(copy, "icount", icount);
		if (run->sink)
			vms_sink_write(run->sink, copy);
		if (!run->json)
			cli_print_event(copy, 0);
		vms_ring_release(run->ring);
		run->events++;
	}
	free(copy);
	if (run->sink)
		vms_sink_flush(run->sink);
	fflush(stdout);
	return n < 0 ? n : 0;
}

json_t *rr_checkpoint_json(const struct vms_rr_checkpoint *cp)
{
	char hash[20];

	snprintf(hash, sizeof(hash), "%016" PRIx64, cp->hash);
	return json_pack("{s:I,s:s,s:I,s:I,s:I,s:s}", "icount", (json_int_t)cp->icount, "hash",
			 hash, "processes", (json_int_t)cp->processes, "forks",
			 (json_int_t)cp->forks, "context_switches", (json_int_t)cp->context_switches,
			 "process_list", cp->process_list);
}

int rr_checkpoint_from_json(const json_t *j, struct vms_rr_checkpoint *cp)
{
	const char *hash = json_string_value(json_object_get(j, "hash"));
	const char *list = json_string_value(json_object_get(j, "process_list"));

	memset(cp, 0, sizeof(*cp));
	if (!json_is_integer(json_object_get(j, "icount")) || !hash || !list)
		return -EINVAL;
	cp->icount = (uint64_t)json_integer_value(json_object_get(j, "icount"));
	cp->hash = strtoull(hash, NULL, 16);
	cp->processes = (uint64_t)json_integer_value(json_object_get(j, "processes"));
	cp->forks = (uint64_t)json_integer_value(json_object_get(j, "forks"));
	cp->context_switches = (uint64_t)json_integer_value(json_object_get(j, "context_switches"));
	cp->process_list = strdup(list);
	return cp->process_list ? 0 : -ENOMEM;
}

/*
 * docs/replay.md says what was tried (QEMU 7.2 and 10.0): a gdbstub hangs a
 * replay with a disk (the snapshot QEMU saves on connection never ends),
 * and a tracer that skips or steps over instructions differently from the
 * other run makes record and replay diverge. Checkpoints and views need no
 * gdbstub.
 */
const char rr_no_trace[] =
	"--trace: QEMU's gdbstub and its record/replay do not work together yet (a gdbstub "
	"hangs a replay with a disk; traced runs diverge: docs/replay.md); use --poll, "
	"replay --at ICOUNT VIEW, or trace the live VM";

static const char *const boot_options[] = { "-kernel", "-initrd", "-bios", "-dtb" };

static int boot_option(const char *arg)
{
	if (arg[0] == '-' && arg[1] == '-')
		arg++; /* QEMU takes --kernel too */
	for (size_t i = 0; i < sizeof(boot_options) / sizeof(boot_options[0]); i++)
		if (!strcmp(arg, boot_options[i]))
			return 1;
	return 0;
}

json_t *rr_boot_files(char *const *argv, size_t argc)
{
	json_t *files = json_array();

	for (size_t i = 1; files && i + 1 < argc; i++) {
		char sha[65];
		json_t *f;

		if (!boot_option(argv[i]))
			continue;
		/*
		 * Not a file here (QEMU looks `-bios NAME` up in its own data
		 * directories; a multiboot -initrd lists several): kept unhashed.
		 */
		f = json_pack("{s:s,s:s,s:s?}", "option", argv[i], "path", argv[i + 1], "sha256",
			      vms_rr_file_sha256(argv[i + 1], sha) ? NULL : sha);
		if (!f || json_array_append_new(files, f)) {
			cli_fail("%s %s: cannot keep it in recording.json", argv[i], argv[i + 1]);
			json_decref(files);
			return NULL;
		}
		i++;
	}
	return files;
}

int rr_check_boot_files(const json_t *files)
{
	size_t i;
	json_t *f;

	json_array_foreach(files, i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *want = json_string_value(json_object_get(f, "sha256"));
		const char *option = json_string_value(json_object_get(f, "option"));
		char sha[65] = "";

		if (!path || !option)
			return cli_fail("recording.json: boot file %zu is malformed", i);
		if (!want)
			continue; /* not a file when recorded: QEMU finds it, as then */
		if (vms_rr_file_sha256(path, sha))
			return cli_fail("%s %s: recorded, but unreadable now: the replay needs the very "
					"file", option, path);
		if (strcmp(sha, want))
			return cli_fail("%s %s changed since it was recorded (SHA-256 %.12s, now "
					"%.12s): the replay would diverge",
					option, path, want, sha);
	}
	return 0;
}
