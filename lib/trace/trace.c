// SPDX-License-Identifier: MIT
/*
 * A tracing session through QEMU's gdbstub, switched on in the running VM
 * over HMP ("gdbserver unix:..."): the VM stops when vmscope connects; an
 * access watchpoint on the process-events connector's counter (exec, fork,
 * exit) and breakpoints at the resolved functions go in; the VM continues.
 * At each stop the registers are read, the probe decodes, and the VM
 * continues. Stopping interrupts the VM, removes every breakpoint and the
 * watchpoint, detaches (QEMU resumes the VM) and switches the gdbstub off.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>
#include <vmscope/trace.h>

#include "access/gdb.h"
#include "access/qmp.h"
#include "core/internal.h"
#include "core/sockio.h"
#include "core/util.h"
#include "os/linux/linux.h"
#include "trace/probe.h"

#define STOP_WAIT_MS 5000
#define GDB_SIGNAL_TRAP	    5	/* a probe's stop; any other is the VM's owner's or QEMU's */
#define OWNER_CHECK_MS	    200 /* while the owner keeps the VM stopped, how often to ask */
#define GDB_DIR_PREFIX	    "/tmp/vmscope-gdb-" /* then our pid: reclaim_stale_gdbstub() reads it */
#define RET_SITES    8	 /* distinct return addresses watched at once */
#define PENDING_MAX  256 /* calls awaiting their return (tasks blocked in accept) */
#define KERNEL_HALF  0xffff800000000000ull
#define MAX_ERRNO    4095
#define RESIDENCY_KEEP_MS 1000
#define QMP_EVENTS_EVERY_MS 100

struct probe_state {
	uint64_t addr;
	unsigned int skip; /* bytes of a first instruction without effect, or 0 */
	int set;	   /* working: by breakpoint, or through the connector */
	int via_cn;	   /* through the process-events connector's hook ... */
	uint64_t cn_start, cn_end; /* ... which spans these addresses */
	char why[128];
};

/* A breakpoint at an address functions return to, while calls are awaited there. */
struct ret_site {
	uint64_t addr;
	unsigned int waiting;
	int set;
};

/* A call whose return is awaited: the stack pointer once it has returned. */
struct pending {
	uint64_t rsp, site;
	int probe;
};

struct vms_trace {
	struct vms_vm *vm;
	struct linux_kernel *k;
	struct vms_ring *ring;
	struct gdb_conn *g;
	char dir[64], socket[96], vm_name[VMS_NAME_MAX];
	int server_on, running;
	int owner_paused; /* the VM's owner paused it (QMP stop, virsh suspend): not ours to resume
			   */
	long long owner_checked_ms;
	int stop_reply_once; /* QEMU 8.1 on: one stop reply per continue */
	int guardian_fd; /* write end: return breakpoints' addresses, then 0 for "clean stop" */
	pid_t guardian;
	unsigned int wanted, flags;
	uint64_t cn_addr; /* the connector's listener counter, watched when cn_set */
	int cn_set;
	/* The vCPUs; per vCPU its registers at this stop and at its last connector event. */
	long *threads;
	struct gdb_regs *vcpu_regs, *last_hook;
	int n_threads;
	struct probe_state probes[VMS_PROBE__COUNT];
	struct ret_site sites[RET_SITES];
	struct pending pending[PENDING_MAX];
	unsigned int n_pending;
	long long caches_flushed_ms, events_read_ms;
	struct vms_trace_stats st;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An HMP command; its text answer must begin with expect (NULL: anything). */
static int hmp(struct vms_trace *t, const char *command, const char *expect)
{
	char *out = NULL;
	int err = qmp_hmp(t->vm->qmp, command, &out);

	if (err)
		return vm_error(t->vm, err, "%s", qmp_error(t->vm->qmp));
	if (expect && strncmp(out, expect, strlen(expect))) {
		out[strcspn(out, "\r\n")] = 0;
		err = vm_error(t->vm, -EBUSY,
			       "QEMU's gdbstub is taken (another debugger, or one that left it "
			       "on; HMP \"gdbserver none\" frees it): QEMU said \"%s\"", out);
	}
	free(out);
	return err;
}

/*
 * The length of a function's first instruction when executing it changes
 * nothing we must reproduce, else 0: endbr64 (TCG enforces no indirect-
 * branch tracking), and NOPs of any length: the 5-byte one ftrace leaves in
 * place of its call, the 4-byte one Linux puts over endbr64 when the CPU
 * has no IBT, "66 90", "90". A NOP is "0f 1f /0" with any operand (never
 * accessed) behind optional 66 prefixes.
 */
static unsigned int no_effect_len(const uint8_t *b)
{
	static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };
	unsigned int i = 0, mod, rm, len;

	if (!memcmp(b, endbr64, sizeof(endbr64)))
		return 4;
	while (i < 4 && b[i] == 0x66)
		i++;
	if (b[i] == 0x90)
		return i + 1;
	if (b[i] != 0x0f || b[i + 1] != 0x1f || (b[i + 2] >> 3 & 7))
		return 0;
	i += 2;
	mod = b[i] >> 6;
	rm = b[i] & 7;
	len = i + 1;
	if (mod == 3)
		return len;
	if (rm == 4)
		len++; /* SIB */
	if (mod == 1)
		len += 1;
	else if (mod == 2 || (mod == 0 && rm == 5) || (mod == 0 && rm == 4 && (b[i + 1] & 7) == 5))
		len += 4;
	return len;
}

#define HOOK_MAX_BYTES 65536 /* a hook's span beyond this means the symbols are wrong */

/* Where the connector's hook for p lies, if the kernel has the connector. */
static void resolve_hook(struct vms_trace *t, int p)
{
	struct probe_state *s = &t->probes[p];

	if (!t->cn_addr || !probe_defs[p].connector)
		return;
	s->cn_start = kallsyms_lookup(&t->k->ksyms, probe_defs[p].connector);
	s->cn_end = s->cn_start ? kallsyms_end(&t->k->ksyms, s->cn_start) : 0;
	s->via_cn = s->cn_end > s->cn_start && s->cn_end - s->cn_start < HOOK_MAX_BYTES;
}

static void resolve(struct vms_trace *t)
{
	if (!(t->flags & VMS_TRACE_BREAKPOINTS))
		t->cn_addr = kallsyms_lookup(&t->k->ksyms, PROBE_CN_COUNTER);
	for (int p = 0; p < VMS_PROBE__COUNT; p++) {
		struct probe_state *s = &t->probes[p];

		if (!(t->wanted & (1u << p)))
			continue;
		resolve_hook(t, p);
		for (const char *const *fn = probe_defs[p].functions; *fn && !s->addr; fn++)
			s->addr = kallsyms_lookup(&t->k->ksyms, *fn);
		if (!s->addr) {
			snprintf(s->why, sizeof(s->why), "the guest kernel has no %s",
				 probe_defs[p].functions[0]);
		} else {
			uint8_t code[16];

			s->skip = kread(t->k, s->addr, code, sizeof(code)) ? 0 : no_effect_len(code);
		}
	}
}

/*
 * One access watchpoint on the connector's counter serves every probe with
 * a hook: a stop there costs QEMU far less than a breakpoint's, which under
 * TCG throws away all translated code (QEMU 7.2 on). Refused (say, no
 * hardware slot left under KVM), the probes fall back to breakpoints.
 */
static void watch_connector(struct vms_trace *t)
{
	int any = 0;

	for (int p = 0; p < VMS_PROBE__COUNT; p++)
		any |= t->probes[p].via_cn;
	if (any && !gdb_watchpoint(t->g, GDB_WATCH_ACCESS, t->cn_addr, 4, 1)) {
		t->cn_set = 1;
		return;
	}
	for (int p = 0; p < VMS_PROBE__COUNT; p++)
		t->probes[p].via_cn = 0;
}

static int list_vcpus(struct vms_trace *t)
{
	int n;

	t->threads = calloc(GDB_MAX_THREADS, sizeof(*t->threads));
	if (!t->threads)
		return -ENOMEM;
	n = gdb_threads(t->g, t->threads, GDB_MAX_THREADS);
	if (n < 0)
		return n;
	t->last_hook = calloc((size_t)n ?: 1, sizeof(*t->last_hook));
	t->vcpu_regs = calloc((size_t)n ?: 1, sizeof(*t->vcpu_regs));
	if (!t->last_hook || !t->vcpu_regs)
		return -ENOMEM;
	t->n_threads = n;
	return 0;
}

/* Whether the QEMU behind vm is version major.minor or newer (0 if it cannot say). */
static int qemu_at_least(struct vms_vm *vm, int major, int minor)
{
	json_t *version = NULL, *qemu;
	json_int_t have_major, have_minor;

	if (qmp_execute(vm->qmp, "query-version", NULL, &version))
		return 0;
	qemu = json_object_get(version, "qemu");
	have_major = json_integer_value(json_object_get(qemu, "major"));
	have_minor = json_integer_value(json_object_get(qemu, "minor"));
	json_decref(version);
	return have_major > major || (have_major == major && have_minor >= minor);
}

/*
 * A vmscope killed along with its guard, or whose guard could not reach the
 * monitor (libvirt's is not one to open in a forked child), leaves the
 * gdbstub on, listening at a socket that is gone, and QEMU would refuse
 * ours. Its chardev names the socket, and the socket its vmscope's pid.
 */
static void reclaim_stale_gdbstub(struct vms_trace *t)
{
	static const char prefix[] = "unix:" GDB_DIR_PREFIX;
	char *out = NULL, *line, *at;
	int pid;

	if (qmp_hmp(t->vm->qmp, "info chardev", &out))
		return;
	line = !strncmp(out, "gdb: ", 5) ? out : strstr(out, "\ngdb: ");
	if (line) {
		line[strcspn(line + 1, "\r\n") + 1] = '\0';
		at = strstr(line, prefix);
		if (at && sscanf(at + strlen(prefix), "%d-", &pid) == 1 && pid_is_gone(pid))
			hmp(t, "gdbserver none", NULL);
	}
	free(out);
}

static int attach(struct vms_trace *t)
{
	char command[160];
	int err;

	reclaim_stale_gdbstub(t);
	snprintf(command, sizeof(command), "gdbserver unix:%s,server=on,wait=off", t->socket);
	err = hmp(t, command, "Waiting for gdb connection");
	if (err)
		return err;
	t->server_on = 1;
	err = gdb_connect(t->socket, &t->g);
	if (err)
		return vm_error(t->vm, err, "cannot talk to QEMU's gdbstub at %s: %s", t->socket,
				strerror(-err));
	watch_connector(t);
	if (t->cn_set) {
		err = list_vcpus(t);
		if (err)
			return vm_error(t->vm, err, "cannot list the VM's vCPUs through the gdbstub");
	}
	for (int p = 0; p < VMS_PROBE__COUNT; p++) {
		struct probe_state *s = &t->probes[p];

		if (s->via_cn) {
			s->set = 1;
			t->st.probes_set++;
			continue;
		}
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

/* What vms_trace_stop() does last, over a monitor connection of our own. */
static void switch_gdbstub_off(const struct qmp *parent)
{
	char why[VMS_ERROR_MAX], *out = NULL;
	struct qmp *q;

	if (qmp_reopen(parent, STOP_WAIT_MS, &q, why, sizeof(why)))
		return;
	if (!qmp_hmp(q, "gdbserver none", &out))
		free(out);
	qmp_close(q);
}

/*
 * Breakpoints outlive their debugger in QEMU: were vmscope killed, the next
 * hit would stop the VM for good. So a small child process waits on a pipe
 * from the moment the breakpoints go in, told of each return breakpoint set
 * later (8-byte addresses; 0 says "clean stop"). If the pipe closes without
 * that, vmscope died: the child connects to the gdbstub (still listening),
 * removes every breakpoint it knows of and detaches, and the VM runs on;
 * then it switches the gdbstub off (QEMU keeps one, and would refuse the
 * next session's).
 */
static void guard(struct vms_trace *t, int fd)
{
	uint64_t extra[RET_SITES * 4], addr;
	unsigned int n_extra = 0;
	struct gdb_conn *g;

	/* Hold nothing of the parent's: its gdbstub and QMP connections must close with it. */
	close_range(3, (unsigned int)fd - 1, 0);
	close_range((unsigned int)fd + 1, ~0u, 0);
	while (sock_recv_all(fd, &addr, sizeof(addr)) == 0) {
		if (!addr)
			_exit(0);
		if (n_extra < ARRAY_SIZE(extra))
			extra[n_extra++] = addr;
	}
	if (gdb_connect(t->socket, &g))
		_exit(0);
	/* Forked before the breakpoints went in: remove every one that may have. */
	for (int p = 0; p < VMS_PROBE__COUNT; p++)
		if (t->probes[p].addr)
			gdb_breakpoint(g, 0, t->probes[p].addr, 0);
	for (unsigned int i = 0; i < n_extra; i++)
		gdb_breakpoint(g, 0, extra[i], 0);
	if (t->cn_addr)
		gdb_watchpoint(g, GDB_WATCH_ACCESS, t->cn_addr, 4, 0);
	gdb_detach(g);
	unlink(t->socket);
	rmdir(t->dir);
	if (qmp_is_socket(t->vm->qmp))
		switch_gdbstub_off(t->vm->qmp);
	_exit(0);
}

static void tell_guardian(struct vms_trace *t, uint64_t addr)
{
	if (t->guardian > 0 && write(t->guardian_fd, &addr, sizeof(addr)) != sizeof(addr))
		t->st.errors++;
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
	uint64_t clean = 0;

	if (t->guardian <= 0)
		return;
	if (write(t->guardian_fd, &clean, sizeof(clean)) != sizeof(clean))
		kill(t->guardian, SIGKILL);
	close(t->guardian_fd);
	waitpid(t->guardian, NULL, 0);
	t->guardian = 0;
}

int vms_trace_start(struct vms_vm *vm, unsigned int probes, unsigned int flags,
		    struct vms_ring *ring, struct vms_trace **ret)
{
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
	t->flags = flags;
	vms_vm_event_name(vm, t->vm_name, sizeof(t->vm_name));
	err = linux_kernel_get(vm, &t->k);
	if (err)
		goto fail;
	t->stop_reply_once = qemu_at_least(vm, 8, 1);
	resolve(t);
	snprintf(t->dir, sizeof(t->dir), GDB_DIR_PREFIX "%d-XXXXXX", (int)getpid());
	if (!mkdtemp(t->dir)) {
		err = vm_error(vm, -errno, "cannot make a directory for the gdbstub socket");
		goto fail;
	}
	snprintf(t->socket, sizeof(t->socket), "%s/gdb.sock", t->dir);
	err = vm_lend_to_qemu(vm, t->dir);
	if (err)
		goto fail;
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

const char *vms_trace_probe_method(const struct vms_trace *t, enum vms_probe probe)
{
	if ((unsigned int)probe >= VMS_PROBE__COUNT || !t->probes[probe].set)
		return NULL;
	return t->probes[probe].via_cn ? "connector" : "breakpoint";
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

	if (s->skip)
		return gdb_continue_at(t->g, s->addr + s->skip);
	t->st.single_steps++;
	err = gdb_breakpoint(t->g, 0, s->addr, 0);
	err = err ?: gdb_step(t->g, STOP_WAIT_MS);
	err = err ?: gdb_breakpoint(t->g, 0, s->addr, 1);
	return err ?: gdb_continue(t->g);
}

/* Decode probe p at this stop (at its function, or in its connector hook) and queue the event. */
static void emit(struct vms_trace *t, int p, const struct gdb_regs *regs)
{
	int (*decode)(struct probe_ctx *c) =
		t->probes[p].via_cn ? probe_defs[p].decode_cn : probe_defs[p].decode;
	struct probe_ctx c = { t->vm, t->k, regs, vms_ring_reserve(t->ring) };

	if (!c.ev) {
		t->st.dropped++;
		return;
	}
	vms_event_init(c.ev, t->vm_name, VMS_SOURCE_TRACE, probe_defs[p].name);
	if (decode(&c))
		t->st.errors++; /* what was read is kept */
	vms_ring_commit(t->ring);
	t->st.events++;
}

static struct ret_site *site_for(struct vms_trace *t, uint64_t addr, int add)
{
	struct ret_site *free_site = NULL;

	for (int i = 0; i < RET_SITES; i++) {
		if (t->sites[i].addr == addr)
			return &t->sites[i];
		if (!free_site && !t->sites[i].set && !t->sites[i].waiting)
			free_site = &t->sites[i];
	}
	if (!add || !free_site)
		return NULL;
	*free_site = (struct ret_site){ .addr = addr };
	return free_site;
}

/*
 * A return probe's entry: the return address is on top of the stack. A
 * breakpoint goes there (one per distinct address, while calls are awaited),
 * and the call is remembered by the stack pointer it will return with: a
 * task blocked in accept() may return long after, and others may return to
 * the same place in between.
 */
static void watch_return(struct vms_trace *t, int p, const struct gdb_regs *regs)
{
	struct ret_site *site;
	uint64_t ret_addr;
	unsigned int i;

	if (kread_u64(t->k, regs->rsp, &ret_addr) || ret_addr < KERNEL_HALF ||
	    !(site = site_for(t, ret_addr, 1)))
		goto lost;
	if (!site->set) {
		if (gdb_breakpoint(t->g, 0, ret_addr, 1))
			goto lost;
		site->set = 1;
		tell_guardian(t, ret_addr);
	}
	/* A call at this stack pointer that never came back to us is stale. */
	for (i = 0; i < t->n_pending && t->pending[i].rsp != regs->rsp + 8; i++)
		;
	if (i == t->n_pending) {
		if (t->n_pending == PENDING_MAX)
			goto lost;
		t->n_pending++;
		site->waiting++;
	} else if (t->pending[i].site != ret_addr) {
		struct ret_site *old = site_for(t, t->pending[i].site, 0);

		if (old)
			old->waiting--;
		site->waiting++;
	}
	t->pending[i] = (struct pending){ regs->rsp + 8, ret_addr, p };
	return;
lost:
	t->st.returns_lost++;
}

/* A stop at a return breakpoint: the awaited call's event, then on past it. */
static int handle_return(struct vms_trace *t, struct ret_site *site, const struct gdb_regs *regs)
{
	int err;

	t->st.hits++;
	for (unsigned int i = 0; i < t->n_pending; i++) {
		struct pending call = t->pending[i];

		if (call.site != site->addr || call.rsp != regs->rsp)
			continue;
		t->pending[i] = t->pending[--t->n_pending];
		site->waiting--;
		/* NULL or an error pointer: the call failed (accept() interrupted, say). */
		if (regs->rax && regs->rax < (uint64_t)-MAX_ERRNO)
			emit(t, call.probe, regs);
		break;
	}
	/* The instruction returned to has effects: no skipping it. */
	err = gdb_breakpoint(t->g, 0, site->addr, 0);
	if (err)
		return err;
	site->set = 0;
	if (!site->waiting)
		return gdb_continue(t->g);
	t->st.single_steps++;
	err = gdb_step(t->g, STOP_WAIT_MS);
	err = err ?: gdb_breakpoint(t->g, 0, site->addr, 1);
	if (!err)
		site->set = 1;
	return err ?: gdb_continue(t->g);
}

static int vcpu_index(const struct vms_trace *t, long thread)
{
	for (int i = 0; i < t->n_threads; i++)
		if (t->threads[i] == thread)
			return i;
	return -1;
}

/*
 * The vCPU with these registers is in a wanted connector hook, just past
 * its read of the counter: the event. Found by looking (not reported by
 * QEMU), it may be the one already reported for this vCPU: a vCPU that has
 * not run since sits where it was.
 */
static void hook_event(struct vms_trace *t, int vcpu, const struct gdb_regs *regs, int looked)
{
	struct gdb_regs *last = vcpu >= 0 ? &t->last_hook[vcpu] : NULL;

	if (looked && last && last->rip == regs->rip && last->rsp == regs->rsp &&
	    last->rbx == regs->rbx && last->rdi == regs->rdi && last->cr3 == regs->cr3)
		return;
	for (int p = 0; p < VMS_PROBE__COUNT; p++) {
		struct probe_state *s = &t->probes[p];

		if (s->via_cn && regs->rip >= s->cn_start && regs->rip < s->cn_end) {
			t->st.hits++;
			emit(t, p, regs);
			if (last)
				*last = *regs;
			return;
		}
	}
}

/* Does the instruction that ends at rip read the counter (mov r32, [rip+d] / cmp [rip+d], i8)? */
static int just_read_counter(struct vms_trace *t, uint64_t rip)
{
	uint8_t b[7];
	int32_t disp;

	if (kread(t->k, rip - sizeof(b), b, sizeof(b)))
		return 0;
	if (b[1] == 0x8b && (b[2] & 0xc7) == 0x05)
		memcpy(&disp, b + 3, 4);
	else if (b[0] == 0x83 && (b[1] & 0xc7) == 0x05)
		memcpy(&disp, b + 2, 4);
	else
		return 0;
	return rip + (uint64_t)(int64_t)disp == t->cn_addr;
}

/*
 * The stopped vCPU's registers. Two vCPUs that read the counter together
 * stop the VM once: QEMU reports one and resumes the other past its read (a
 * watchpoint stops after the access), and its event would be lost. So on a
 * guest with several vCPUs, all their registers are read (one round trip),
 * and another vCPU sitting just past the read in a hook is that event. (A
 * vCPU at a breakpoint has not run the instruction: it hits it again.)
 */
static int read_stop(struct vms_trace *t, long stopped, struct gdb_regs *regs)
{
	int me = vcpu_index(t, stopped);

	if (t->n_threads < 2)
		return gdb_read_regs(t->g, regs);
	if (gdb_read_threads_regs(t->g, t->threads, t->n_threads, t->vcpu_regs))
		return -EPIPE;
	for (int i = 0; i < t->n_threads; i++)
		if (i != me && just_read_counter(t, t->vcpu_regs[i].rip))
			hook_event(t, i, &t->vcpu_regs[i], 1);
	if (me < 0)
		return gdb_read_regs(t->g, regs);
	*regs = t->vcpu_regs[me];
	return 0;
}

/* One stop: which probe, decode, queue the event; then past the breakpoint. */
static int handle_stop(struct vms_trace *t)
{
	struct gdb_regs regs;
	long stopped;
	int p;

	/*
	 * The guest ran since the last look: page tables may have changed. What
	 * is known of which RAM pages exist is kept a second (relearning it
	 * costs more than the rest of a stop).
	 */
	if (monotonic_ms() - t->caches_flushed_ms > RESIDENCY_KEEP_MS) {
		vms_vm_flush_caches(t->vm);
		t->caches_flushed_ms = monotonic_ms();
	} else {
		vm_flush_translations(t->vm);
	}
	stopped = gdb_stopped_thread(t->g);
	if (read_stop(t, stopped, &regs))
		return -EPIPE;
	for (p = 0; p < VMS_PROBE__COUNT; p++)
		if (t->probes[p].set && !t->probes[p].via_cn && t->probes[p].addr == regs.rip)
			break;
	if (p == VMS_PROBE__COUNT) {
		for (int i = 0; i < RET_SITES; i++)
			if (t->sites[i].set && t->sites[i].addr == regs.rip)
				return handle_return(t, &t->sites[i], &regs);
		/* After a read of the counter (else a spurious stop): the event if wanted. */
		if (t->cn_set)
			hook_event(t, vcpu_index(t, stopped), &regs, 0);
		return gdb_continue(t->g);
	}
	t->st.hits++;
	if (probe_defs[p].at_return)
		watch_return(t, p, &regs);
	else
		emit(t, p, &regs);
	return step_over(t, &t->probes[p]);
}

/* The VM's run state as QMP says ("running", "paused", "debug", ...) into buf; "" unknown. */
static const char *vm_status(struct vms_trace *t, char *buf, size_t len)
{
	json_t *status = NULL;

	buf[0] = '\0';
	if (!qmp_execute(t->vm->qmp, "query-status", NULL, &status))
		snprintf(buf, len, "%s",
			 json_string_value(json_object_get(status, "status")) ?: "");
	json_decref(status);
	return buf;
}

/*
 * A stop that is not a probe's (SIGTRAP): the owner paused the VM (QMP stop,
 * virsh suspend), or QEMU stopped it itself (shutdown with -no-shutdown, an
 * I/O error, a migration's last phase). Not ours to resume: the trace waits,
 * asking QMP now and then, until someone else resumes it.
 */
static void owner_stopped(struct vms_trace *t)
{
	t->owner_paused = 1;
}

/*
 * The owner resumed the VM. QEMU before 8.1 reports the next hit as it comes;
 * from 8.1 on, a stop reply is sent only once after each continue, and the
 * owner's pause used it up: interrupt, take that stop, continue.
 */
static int owner_resumed(struct vms_trace *t)
{
	int sig;

	t->owner_paused = 0;
	if (!t->stop_reply_once)
		return 0;
	if (gdb_interrupt(t->g))
		return -EPIPE;
	if (gdb_wait_stop(t->g, STOP_WAIT_MS, &sig) == 1 && sig == GDB_SIGNAL_TRAP)
		return handle_stop(t); /* a hit came first: it continues */
	return gdb_continue(t->g);
}

/* While the owner keeps the VM stopped: has it resumed? */
static int check_owner(struct vms_trace *t)
{
	char status[32];

	if (!t->owner_paused || monotonic_ms() - t->owner_checked_ms < OWNER_CHECK_MS)
		return 0;
	t->owner_checked_ms = monotonic_ms();
	if (strcmp(vm_status(t, status, sizeof(status)), "running"))
		return 0;
	return owner_resumed(t);
}

int vms_trace_run(struct vms_trace *t, int timeout_ms, unsigned int max_events)
{
	long long deadline = monotonic_ms() + timeout_ms;
	uint64_t before = t->st.events;
	unsigned int done = 0;

	while (t->running && done < max_events) {
		long long left = deadline - monotonic_ms();
		double t0;
		int sig, r;

		/* Every stop and resume is a QMP event too: QEMU must not hoard them. */
		if (monotonic_ms() - t->events_read_ms >= QMP_EVENTS_EVERY_MS) {
			if (qmp_read_events(t->vm->qmp))
				return vm_error(t->vm, -EPIPE, "%s", qmp_error(t->vm->qmp));
			t->events_read_ms = monotonic_ms();
		}
		if (t->owner_paused && left > OWNER_CHECK_MS)
			left = OWNER_CHECK_MS;
		r = gdb_wait_stop(t->g, left > 0 ? (int)left : 0, &sig);

		if (r == 0 && t->owner_paused && monotonic_ms() < deadline) {
			if (check_owner(t)) {
				t->running = 0;
				return vm_error(t->vm, -EPIPE,
						"cannot resume tracing through the gdbstub");
			}
			continue;
		}
		if (r == 0)
			break;
		if (r < 0) {
			t->running = 0;
			return vm_error(t->vm, r, "the gdbstub connection broke: %s", strerror(-r));
		}
		if (sig != GDB_SIGNAL_TRAP) {
			owner_stopped(t);
			continue;
		}
		t->owner_paused = 0;
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

	char status[32];

	if (!t->running)
		return 0;
	/* Stopped by its owner still: no stop to wait for. Resumed since: as usual. */
	if (t->owner_paused && strcmp(vm_status(t, status, sizeof(status)), "running")) {
		t->running = 0;
		return 0;
	}
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
		/*
		 * QEMU's gdbstub resumes the VM when its debugger detaches, even
		 * one its owner paused: that one goes back to paused (it runs for
		 * the detach's moment).
		 */
		char status[32];
		/* Stopped, and not at a probe ("debug"): its owner's, to stay stopped. */
		int owner_paused = strcmp(vm_status(t, status, sizeof(status)), "running") &&
				   strcmp(status, "debug") && status[0];

		err = halt(t);
		for (int p = 0; p < VMS_PROBE__COUNT; p++)
			if (t->probes[p].set && !t->probes[p].via_cn &&
			    gdb_breakpoint(t->g, 0, t->probes[p].addr, 0) && !err)
				err = -EIO;
		if (t->cn_set && gdb_watchpoint(t->g, GDB_WATCH_ACCESS, t->cn_addr, 4, 0) && !err)
			err = -EIO;
		for (int i = 0; i < RET_SITES; i++)
			if (t->sites[i].set && gdb_breakpoint(t->g, 0, t->sites[i].addr, 0) && !err)
				err = -EIO;
		/* Detaching resumes the VM, also after the errors above. */
		if (gdb_detach(t->g) && !err)
			err = -EPIPE;
		if (owner_paused && !strcmp(vm_status(t, status, sizeof(status)), "running"))
			qmp_execute(t->vm->qmp, "stop", NULL, NULL);
	}
	stop_guardian(t);
	if (t->server_on && hmp(t, "gdbserver none", NULL) && !err)
		err = -EIO;
	if (err)
		vm_error(t->vm, err, "detaching from the gdbstub: %s", strerror(-err));
	unlink(t->socket);
	rmdir(t->dir);
	free(t->threads);
	free(t->last_hook);
	free(t->vcpu_regs);
	free(t);
	return err;
}
