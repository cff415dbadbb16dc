// SPDX-License-Identifier: MIT
/*
 * A breakpoint tracing session. QEMU's gdbstub is switched on in the running
 * VM over HMP ("gdbserver unix:..."), and vmscope connects to it: the VM
 * stops, breakpoints go in at the resolved functions, the VM continues. At
 * each hit the VM is stopped; the registers are read, the probe decodes,
 * and the VM continues. Stopping interrupts the VM, removes every
 * breakpoint, detaches (QEMU resumes the VM) and switches the gdbstub off.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>
#include <vmscope/trace.h>

#include "access/gdb.h"
#include "access/qmp.h"
#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"
#include "trace/probe.h"

#define STOP_WAIT_MS 5000

struct probe_state {
	uint64_t addr;
	unsigned int skip; /* bytes of a first instruction without effect, or 0 */
	int set;
	char why[128];
};

struct vms_trace {
	struct vms_vm *vm;
	struct linux_kernel *k;
	struct vms_ring *ring;
	struct gdb_conn *g;
	char dir[64], socket[96], vm_name[VMS_NAME_MAX];
	int server_on, running;
	int guardian_fd; /* write end: a byte says "clean stop" */
	pid_t guardian;
	unsigned int wanted;
	struct probe_state probes[VMS_PROBE__COUNT];
	struct vms_trace_stats st;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int hmp(struct vms_trace *t, const char *command)
{
	char *out = NULL;
	int err = qmp_hmp(t->vm->qmp, command, &out);

	if (err)
		return vm_error(t->vm, err, "%s", qmp_error(t->vm->qmp));
	free(out);
	return 0;
}

/*
 * The length of a function's first instruction when executing it changes
 * nothing we must reproduce: endbr64 (TCG enforces no indirect-branch
 * tracking), the 5-byte NOP ftrace patches in, short NOPs; else 0.
 */
static unsigned int no_effect_len(const uint8_t *b)
{
	static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };
	static const uint8_t nop5[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

	if (!memcmp(b, endbr64, sizeof(endbr64)))
		return 4;
	if (!memcmp(b, nop5, sizeof(nop5)))
		return 5;
	if (b[0] == 0x66 && b[1] == 0x90)
		return 2;
	return b[0] == 0x90 ? 1 : 0;
}

static void resolve(struct vms_trace *t)
{
	for (int p = 0; p < VMS_PROBE__COUNT; p++) {
		struct probe_state *s = &t->probes[p];

		if (!(t->wanted & (1u << p)))
			continue;
		for (const char *const *fn = probe_defs[p].functions; *fn && !s->addr; fn++)
			s->addr = kallsyms_lookup(&t->k->ksyms, *fn);
		if (!s->addr) {
			snprintf(s->why, sizeof(s->why), "the guest kernel has no %s",
				 probe_defs[p].functions[0]);
		} else {
			uint8_t code[8];

			s->skip = kread(t->k, s->addr, code, sizeof(code)) ? 0 : no_effect_len(code);
		}
	}
}

static int attach(struct vms_trace *t)
{
	char command[160];
	int err;

	snprintf(command, sizeof(command), "gdbserver unix:%s,server=on,wait=off", t->socket);
	err = hmp(t, command);
	if (err)
		return err;
	t->server_on = 1;
	err = gdb_connect(t->socket, &t->g);
	if (err)
		return vm_error(t->vm, err, "cannot talk to QEMU's gdbstub at %s: %s", t->socket,
				strerror(-err));
	for (int p = 0; p < VMS_PROBE__COUNT; p++) {
		struct probe_state *s = &t->probes[p];

		if (!s->addr)
			continue;
		if (gdb_breakpoint(t->g, 0, s->addr, 1)) {
			snprintf(s->why, sizeof(s->why), "QEMU refused a breakpoint at %s",
				 probe_defs[p].functions[0]);
			continue;
		}
		s->set = 1;
		t->st.probes_set++;
	}
	err = gdb_continue(t->g);
	if (err)
		return vm_error(t->vm, err, "cannot resume the VM through the gdbstub");
	t->running = 1;
	return 0;
}

/*
 * Breakpoints outlive their debugger in QEMU: were vmscope killed, the next
 * hit would stop the VM for good. So a small child process waits on a pipe
 * from the moment the breakpoints go in; if the pipe closes without the
 * "clean stop" byte, vmscope died: the child connects to the gdbstub (still
 * listening), removes every breakpoint and detaches, and the VM runs on.
 */
static void guard(struct vms_trace *t, int fd)
{
	struct gdb_conn *g;
	ssize_t n;
	char c;

	/* Hold nothing of the parent's: its gdbstub and QMP connections must close with it. */
	close_range(3, (unsigned int)fd - 1, 0);
	close_range((unsigned int)fd + 1, ~0u, 0);
	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 || gdb_connect(t->socket, &g))
		_exit(0);
	/* Forked before the breakpoints went in: remove every one that may have. */
	for (int p = 0; p < VMS_PROBE__COUNT; p++)
		if (t->probes[p].addr)
			gdb_breakpoint(g, 0, t->probes[p].addr, 0);
	gdb_detach(g);
	unlink(t->socket);
	rmdir(t->dir);
	_exit(0);
}

static int start_guardian(struct vms_trace *t)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	t->guardian = fork();
	if (t->guardian < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (!t->guardian) {
		close(fds[1]);
		guard(t, fds[0]);
	}
	close(fds[0]);
	t->guardian_fd = fds[1];
	return 0;
}

static void stop_guardian(struct vms_trace *t)
{
	if (t->guardian <= 0)
		return;
	if (write(t->guardian_fd, "x", 1) != 1)
		kill(t->guardian, SIGKILL);
	close(t->guardian_fd);
	waitpid(t->guardian, NULL, 0);
	t->guardian = 0;
}

int vms_trace_start(struct vms_vm *vm, unsigned int probes, struct vms_ring *ring,
		    struct vms_trace **ret)
{
	struct vms_vm_info info;
	struct vms_trace *t;
	int err;

	if (!vm->qmp)
		return vm_error(vm, -EOPNOTSUPP, "tracing needs a live VM (qmp:)");
	t = calloc(1, sizeof(*t));
	if (!t)
		return vm_error(vm, -ENOMEM, "out of memory");
	t->vm = vm;
	t->ring = ring;
	t->wanted = probes & ((1u << VMS_PROBE__COUNT) - 1);
	if (!vms_vm_query_info(vm, &info))
		snprintf(t->vm_name, sizeof(t->vm_name), "%s", info.name);
	err = linux_kernel_get(vm, &t->k);
	if (err)
		goto fail;
	resolve(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/vmscope-gdb-%d-XXXXXX", (int)getpid());
	if (!mkdtemp(t->dir)) {
		err = vm_error(vm, -errno, "cannot make a directory for the gdbstub socket");
		goto fail;
	}
	snprintf(t->socket, sizeof(t->socket), "%s/gdb.sock", t->dir);
	err = start_guardian(t);
	if (err) {
		err = vm_error(vm, err, "cannot start the process that guards the breakpoints");
		goto fail;
	}
	err = attach(t);
	if (err)
		goto fail;
	for (int p = 0; p < VMS_PROBE__COUNT; p++)
		if ((t->wanted & (1u << p)) && !t->probes[p].set)
			t->st.probes_unavailable++;
	*ret = t;
	return 0;
fail: {
	char why[VMS_ERROR_MAX];

	snprintf(why, sizeof(why), "%s", vm->error);
	vms_trace_stop(t);
	return vm_error(vm, err, "%s", why);
}
}

const char *vms_trace_probe_status(const struct vms_trace *t, enum vms_probe probe)
{
	if ((unsigned int)probe >= VMS_PROBE__COUNT || !(t->wanted & (1u << probe)) ||
	    t->probes[probe].set)
		return NULL;
	return t->probes[probe].why[0] ? t->probes[probe].why : "not set";
}

/*
 * Resuming at a breakpoint would hit it again. gdb takes it out, single-
 * steps and puts it back; but under TCG every breakpoint inserted or
 * removed, and every single step, flushes all translated code, and the
 * guest crawls for a while after each event. Most kernel functions begin
 * with an instruction that does nothing (endbr64, the NOP that ftrace left
 * in place of its call): then the vCPU simply resumes after it, and the
 * breakpoint is never touched. Other prologues take the slow way.
 */
static int step_over(struct vms_trace *t, struct probe_state *s)
{
	int err;

	if (s->skip && !gdb_write_reg(t->g, GDB_REG_RIP, s->addr + s->skip))
		return gdb_continue(t->g);
	t->st.single_steps++;
	err = gdb_breakpoint(t->g, 0, s->addr, 0);
	err = err ?: gdb_step(t->g, STOP_WAIT_MS);
	err = err ?: gdb_breakpoint(t->g, 0, s->addr, 1);
	return err ?: gdb_continue(t->g);
}

/* One stop: which probe, decode, queue the event; then past the breakpoint. */
static int handle_stop(struct vms_trace *t)
{
	struct probe_ctx c = { t->vm, t->k, NULL, NULL };
	struct gdb_regs regs;
	int p;

	/* The guest ran since the last look: page tables may have changed. */
	vms_vm_flush_caches(t->vm);
	if (gdb_read_regs(t->g, &regs))
		return -EPIPE;
	for (p = 0; p < VMS_PROBE__COUNT; p++)
		if (t->probes[p].set && t->probes[p].addr == regs.rip)
			break;
	if (p == VMS_PROBE__COUNT)
		return gdb_continue(t->g); /* not ours (a spurious stop): just go on */
	t->st.hits++;
	c.regs = &regs;
	c.ev = vms_ring_reserve(t->ring);
	if (!c.ev) {
		t->st.dropped++;
	} else {
		vms_event_init(c.ev, t->vm_name, VMS_SOURCE_TRACE, probe_defs[p].name);
		if (probe_defs[p].decode(&c))
			t->st.errors++; /* what was read is kept */
		vms_ring_commit(t->ring);
		t->st.events++;
	}
	return step_over(t, &t->probes[p]);
}

int vms_trace_run(struct vms_trace *t, int timeout_ms, unsigned int max_events)
{
	long long deadline = monotonic_ms() + timeout_ms;
	uint64_t before = t->st.events;
	unsigned int done = 0;

	while (t->running && done < max_events) {
		long long left = deadline - monotonic_ms();
		double t0;
		int sig, r = gdb_wait_stop(t->g, left > 0 ? (int)left : 0, &sig);

		if (r == 0)
			break;
		if (r < 0) {
			t->running = 0;
			return vm_error(t->vm, r, "the gdbstub connection broke: %s", strerror(-r));
		}
		t0 = now_s();
		done++;
		if (handle_stop(t)) {
			t->running = 0;
			return vm_error(t->vm, -EPIPE, "cannot resume the VM through the gdbstub");
		}
		t->st.stopped_s += now_s() - t0;
	}
	return (int)(t->st.events - before);
}

void vms_trace_get_stats(const struct vms_trace *t, struct vms_trace_stats *ret)
{
	*ret = t->st;
}

/* Stop the VM if it runs (a hit may arrive first: it is handled as usual). */
static int halt(struct vms_trace *t)
{
	int sig, r;

	if (!t->running)
		return 0;
	if (gdb_interrupt(t->g))
		return -EPIPE;
	r = gdb_wait_stop(t->g, STOP_WAIT_MS, &sig);
	t->running = 0;
	return r == 1 ? 0 : -ETIMEDOUT;
}

int vms_trace_stop(struct vms_trace *t)
{
	int err = 0;

	if (!t)
		return 0;
	if (t->g) {
		err = halt(t);
		for (int p = 0; p < VMS_PROBE__COUNT; p++)
			if (t->probes[p].set && gdb_breakpoint(t->g, 0, t->probes[p].addr, 0) && !err)
				err = -EIO;
		/* Detaching resumes the VM, also after the errors above. */
		if (gdb_detach(t->g) && !err)
			err = -EPIPE;
	}
	stop_guardian(t);
	if (t->server_on && hmp(t, "gdbserver none") && !err)
		err = -EIO;
	if (err)
		vm_error(t->vm, err, "detaching from the gdbstub: %s", strerror(-err));
	unlink(t->socket);
	rmdir(t->dir);
	free(t);
	return err;
}
