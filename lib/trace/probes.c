// SPDX-License-Identifier: MIT
/*
 * What each probe reads at its stop. Kernel memory comes through the Linux
 * driver (init_top_pgt, BTF layouts); user memory (a path, argv, a socket
 * address) through the stopped vCPU's own page tables (CR3 from the stop),
 * which in kernel mode map the calling process. Every read is bounded; a
 * field that cannot be read is left out of the event, never guessed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>

#include "core/internal.h"
#include "os/linux/linux.h"
#include "trace/probe.h"

#define ARGV_MAX     64
#define ARG_BYTES    256
#define ARGV_BYTES   4096
#define ARGC_MAX     (1 << 20) /* counted past what is kept, up to this */
#define CR3_ADDRESS  0x000ffffffffff000ull /* without PCID and the no-flush bit */
#define AF_INET_     2
#define AF_INET6_    10
#define EXIT_SIGNAL  0x7f
#define KERNEL_HALF  0xffff800000000000ull

/*
 * The members the probes read, found in BTF once (a lookup scans every type:
 * too slow for each event). One missing leaves only its field out.
 */
struct probe_layout {
	struct kfield regs_di, regs_si, how_flags, task_mm, task_exit_code, mm_exe_file,
		mm_arg_start, mm_arg_end, mm_start_stack, file_mnt, file_dentry;
};

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct probe_layout *l = layout;
	const struct kfield_want want[] = {
		{ &l->regs_di, "pt_regs", "di" },
		{ &l->regs_si, "pt_regs", "si" },
		{ &l->how_flags, "open_how", "flags" },
		{ &l->task_mm, "task_struct", "mm" },
		{ &l->task_exit_code, "task_struct", "exit_code" },
		{ &l->mm_exe_file, "mm_struct", "exe_file" },
		{ &l->mm_arg_start, "mm_struct", "arg_start" },
		{ &l->mm_arg_end, "mm_struct", "arg_end" },
		{ &l->mm_start_stack, "mm_struct", "start_stack" },
		{ &l->file_mnt, "file", "f_path.mnt" },
		{ &l->file_dentry, "file", "f_path.dentry" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		kbtf_member(k->btf, want[i].type, want[i].path, want[i].field);
	return 0;
}

static const struct probe_layout *layout(struct probe_ctx *c)
{
	return linux_layout(c->k, &c->k->probes_layout, sizeof(struct probe_layout), find_layout);
}

/* Read the 64-bit member f of the object at addr; fails if f is unknown or reads 0. */
static int read_nonzero(struct probe_ctx *c, uint64_t addr, const struct kfield *f, uint64_t *ret)
{
	if (!f->found || kread_u64(c->k, addr + f->offset, ret))
		return -EFAULT;
	return *ret ? 0 : -ENOENT;
}

static uint64_t cr3(const struct probe_ctx *c)
{
	return c->regs->cr3 & CR3_ADDRESS;
}

/* A NUL-terminated user string; 0 or -errno. */
static int user_string(struct probe_ctx *c, uint64_t va, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len - 1) {
		/* Page by page: a string may end just before an unmapped page. */
		size_t chunk = 4096 - ((va + got) & 4095);

		if (chunk > len - 1 - got)
			chunk = len - 1 - got;
		if (vms_virt_read(c->vm, cr3(c), va + got, buf + got, chunk)) {
			buf[got] = 0; /* what was read, cut where the mapping ends */
			return got ? 0 : -EFAULT;
		}
		if (memchr(buf + got, 0, chunk))
			return 0;
		got += chunk;
	}
	buf[len - 1] = 0;
	return 0;
}

/* The running task: pid, tgid, ppid, uid, comm on the event; its tgid returned. */
static int add_current(struct probe_ctx *c, struct vms_process *ret)
{
	uint64_t task;
	int err = linux_current_task(c->k, c->regs->gs_base, &task);

	err = err ?: linux_task_read(c->k, task, ret);
	if (err)
		return err;
	vms_event_add_int(c->ev, "pid", ret->tgid);
	vms_event_add_int(c->ev, "tid", ret->pid);
	vms_event_add_int(c->ev, "ppid", ret->ppid);
	vms_event_add_uint(c->ev, "uid", ret->uid);
	vms_event_add_str(c->ev, "comm", ret->comm);
	return 0;
}

/* argv as kept, and argc as it is: argv_truncated says whether any argument is left out. */
static void add_argv(struct probe_ctx *c, const char *argv, int kept, int argc)
{
	vms_event_add_str(c->ev, "argv", argv);
	vms_event_add_int(c->ev, "argc", argc > kept ? argc : kept);
	vms_event_add_bool(c->ev, "argv_truncated", argc > kept);
}

/* How many non-NULL pointers argv holds, counting on from known (bounded). */
static int count_pointers(struct probe_ctx *c, uint64_t argv_ptr, int known)
{
	uint64_t p = 1;
	int n = known;

	while (n < ARGC_MAX &&
	       !vms_virt_read(c->vm, cr3(c), argv_ptr + 8 * (uint64_t)n, &p, sizeof(p)) && p)
		n++;
	return n;
}

/* __x64_sys_execve(const struct pt_regs *regs): the filename and argv the caller passed. */
static int decode_exec(struct probe_ctx *c)
{
	char filename[ARG_BYTES], argv[ARGV_BYTES] = "", arg[ARG_BYTES];
	const struct probe_layout *l = layout(c);
	struct vms_process cur;
	uint64_t file_ptr, argv_ptr;
	size_t used = 0;
	int argc = 0, err = add_current(c, &cur);

	if (err)
		return err;
	if (!l || read_nonzero(c, c->regs->rdi, &l->regs_di, &file_ptr) ||
	    read_nonzero(c, c->regs->rdi, &l->regs_si, &argv_ptr))
		return -EFAULT;
	if (!user_string(c, file_ptr, filename, sizeof(filename)))
		vms_event_add_str(c->ev, "filename", filename);
	for (; argc < ARGV_MAX; argc++) {
		uint64_t p;
		int w;

		if (vms_virt_read(c->vm, cr3(c), argv_ptr + 8 * (uint64_t)argc, &p, sizeof(p)) || !p ||
		    user_string(c, p, arg, sizeof(arg)))
			break;
		w = snprintf(argv + used, sizeof(argv) - used, "%s%s", argc ? " " : "", arg);
		if (w < 0 || (size_t)w >= sizeof(argv) - used) {
			argv[used] = 0; /* the argument that does not fit is left out whole */
			break;
		}
		used += (size_t)w;
	}
	add_argv(c, argv, argc, count_pointers(c, argv_ptr, argc));
	return 0;
}

/* wake_up_new_task(struct task_struct *p): a new task, its parent running. */
static int decode_fork(struct probe_ctx *c)
{
	struct vms_process parent, child;
	int err = linux_task_read(c->k, c->regs->rdi, &child);

	if (err)
		return err;
	err = add_current(c, &parent);
	vms_event_add_int(c->ev, "child_pid", child.tgid);
	vms_event_add_int(c->ev, "child_tid", child.pid);
	vms_event_add_bool(c->ev, "thread", child.pid != child.tgid);
	return err;
}

/* A wait status (exit code << 8, or the fatal signal) of the task cur. */
static void add_exit(struct probe_ctx *c, uint64_t status, const struct vms_process *cur)
{
	vms_event_add_int(c->ev, "exit_code", (int64_t)((status >> 8) & 0xff));
	vms_event_add_int(c->ev, "signal", (int64_t)(status & EXIT_SIGNAL));
	vms_event_add_bool(c->ev, "thread", cur->pid != cur->tgid);
}

/* do_exit(long code): code is the wait status (exit code << 8, or the signal). */
static int decode_exit(struct probe_ctx *c)
{
	struct vms_process cur;
	int err = add_current(c, &cur);

	if (err)
		return err;
	add_exit(c, c->regs->rdi, &cur);
	return 0;
}

/* do_init_module(struct module *mod) and free_module(struct module *mod). */
static int decode_module(struct probe_ctx *c)
{
	struct vms_module m;
	struct vms_process cur;
	int err = linux_module_read(c->k, c->regs->rdi, &m);

	if (err)
		return err;
	vms_event_add_str(c->ev, "name", m.name);
	vms_event_add_uint(c->ev, "base", m.base);
	vms_event_add_uint(c->ev, "size", m.size);
	return add_current(c, &cur);
}

/* do_sys_openat2(int dfd, const char __user *filename, struct open_how *how). */
static int decode_open(struct probe_ctx *c)
{
	char path[ARG_BYTES * 4];
	struct vms_process cur;
	const struct probe_layout *l = layout(c);
	uint64_t value;
	int err = add_current(c, &cur);

	if (err)
		return err;
	if (!user_string(c, c->regs->rsi, path, sizeof(path)))
		vms_event_add_str(c->ev, "path", path);
	if (l && l->how_flags.found && !kread_u64(c->k, c->regs->rdx + l->how_flags.offset, &value))
		vms_event_add_uint(c->ev, "flags", value);
	vms_event_add_int(c->ev, "dfd", (int32_t)c->regs->rdi);
	return 0;
}

/* __sys_connect(int fd, struct sockaddr __user *addr, int addrlen). */
static int decode_connect(struct probe_ctx *c)
{
	uint8_t sa[28] = { 0 };
	char text[64];
	size_t len = c->regs->rdx < sizeof(sa) ? (size_t)c->regs->rdx : sizeof(sa);
	struct vms_process cur;
	uint16_t family;
	int err = add_current(c, &cur);

	if (err)
		return err;
	vms_event_add_int(c->ev, "fd", (int32_t)c->regs->rdi);
	if (len < 4 || vms_virt_read(c->vm, cr3(c), c->regs->rsi, sa, len))
		return 0;
	memcpy(&family, sa, 2);
	vms_event_add_str(c->ev, "family", family == AF_INET_	 ? "inet"
					  : family == AF_INET6_ ? "inet6"
								: "other");
	if (family == AF_INET_ && len >= 8)
		snprintf(text, sizeof(text), "%u.%u.%u.%u", sa[4], sa[5], sa[6], sa[7]);
	else if (family == AF_INET6_ && len >= 24)
		snprintf(text, sizeof(text), "%x:%x:%x:%x:%x:%x:%x:%x", sa[8] << 8 | sa[9],
			 sa[10] << 8 | sa[11], sa[12] << 8 | sa[13], sa[14] << 8 | sa[15],
			 sa[16] << 8 | sa[17], sa[18] << 8 | sa[19], sa[20] << 8 | sa[21],
			 sa[22] << 8 | sa[23]);
	else
		return 0;
	vms_event_add_str(c->ev, "daddr", text);
	vms_event_add_int(c->ev, "dport", sa[2] << 8 | sa[3]);
	return 0;
}

/*
 * inet_csk_accept() returns the accepted connection's struct sock: decoded
 * at the return, in the accepting task (a NULL or error result is no event).
 */
static int decode_accept(struct probe_ctx *c)
{
	struct vms_process cur;
	struct vms_socket s;
	int err = add_current(c, &cur);

	err = err ?: linux_sock_read(c->k, c->regs->rax, 0, &s);
	if (err)
		return err;
	vms_event_add_str(c->ev, "family", strcmp(s.protocol, "tcp6") ? "inet" : "inet6");
	vms_event_add_str(c->ev, "local_address", s.local_address);
	vms_event_add_int(c->ev, "local_port", s.local_port);
	vms_event_add_str(c->ev, "remote_address", s.remote_address);
	vms_event_add_int(c->ev, "remote_port", s.remote_port);
	return 0;
}

/* -- at the process-events connector's hooks (cn_proc) -- */

/* The path of the task's executable (mm->exe_file), as d_path() gives it. */
static int exe_path(struct probe_ctx *c, uint64_t task, char *buf, size_t len)
{
	const struct probe_layout *l = layout(c);
	uint64_t mm, file, mnt, dentry;

	if (!l || read_nonzero(c, task, &l->task_mm, &mm) || read_nonzero(c, mm, &l->mm_exe_file, &file) ||
	    read_nonzero(c, file, &l->file_mnt, &mnt) || read_nonzero(c, file, &l->file_dentry, &dentry))
		return -EFAULT;
	return linux_path(c->k, linux_mount_of_vfsmount(c->k, mnt), dentry, buf, len);
}

/*
 * The new image's arguments (mm->arg_start..arg_end, NUL-separated): joined
 * by spaces, the first len - 1 bytes of them, whole arguments only. *kept
 * counts those; *argc is the count the new stack begins with (at
 * mm->start_stack, before the program has run), or *kept if unreadable.
 */
static int arg_area(struct probe_ctx *c, uint64_t task, char *buf, size_t len, int *kept,
		    int *argc)
{
	const struct probe_layout *l = layout(c);
	uint64_t mm, start, end, stack, count;
	size_t n;

	if (!l || read_nonzero(c, task, &l->task_mm, &mm) ||
	    read_nonzero(c, mm, &l->mm_arg_start, &start) || read_nonzero(c, mm, &l->mm_arg_end, &end) ||
	    end <= start)
		return -EFAULT;
	n = end - start < len - 1 ? (size_t)(end - start) : len - 1;
	if (vms_virt_read(c->vm, cr3(c), start, buf, n))
		return -EFAULT;
	if (n < end - start) /* cut: leave out the argument the cut went through */
		while (n && buf[n - 1])
			n--;
	while (n && !buf[n - 1])
		n--;
	buf[n] = 0;
	*kept = n ? 1 : 0;
	for (size_t i = 0; i < n; i++)
		if (!buf[i]) {
			buf[i] = ' ';
			(*kept)++;
		}
	*argc = *kept;
	if (!read_nonzero(c, mm, &l->mm_start_stack, &stack) &&
	    !vms_virt_read(c->vm, cr3(c), stack, &count, sizeof(count)) && count >= (uint64_t)*kept &&
	    count <= ARGC_MAX)
		*argc = (int)count;
	return 0;
}

/* proc_exec_connector(current), once the new image is in place. */
static int decode_exec_cn(struct probe_ctx *c)
{
	char path[ARG_BYTES * 4], argv[ARGV_BYTES];
	struct vms_process cur;
	int kept = 0, argc = 0, err = add_current(c, &cur);

	if (err)
		return err;
	if (!exe_path(c, cur.task, path, sizeof(path)))
		vms_event_add_str(c->ev, "filename", path);
	err = arg_area(c, cur.task, argv, sizeof(argv), &kept, &argc);
	if (err)
		return err;
	add_argv(c, argv, kept, argc);
	return 0;
}

/* Is the task at addr a new child (or thread) of the running task parent? */
static int child_of(struct probe_ctx *c, uint64_t addr, const struct vms_process *parent,
		    struct vms_process *ret)
{
	if (addr < KERNEL_HALF || addr == parent->task || linux_task_read(c->k, addr, ret))
		return 0;
	/* A thread of it, a child, or a child of its parent (CLONE_PARENT, never from pid 1). */
	return ret->pid > 0 && ret->tgid > 0 && ret->start_time_ns >= parent->start_time_ns &&
	       (ret->tgid == parent->tgid || ret->ppid == parent->tgid ||
		(ret->ppid > 0 && ret->ppid == parent->ppid));
}

/*
 * proc_fork_connector(struct task_struct *task): the new task, its parent
 * running. The hook reads the counter early, but the compiler may have moved
 * its argument out of rdi by then (a callee-saved register, before clearing
 * a buffer with rdi): the registers are tried, and the task in one that is
 * the running task's youngest child or thread is it.
 */
static int decode_fork_cn(struct probe_ctx *c)
{
	const struct gdb_regs *r = c->regs;
	const uint64_t candidates[] = { r->rdi, r->rbx, r->r12, r->r13, r->r14, r->r15,
					r->rbp, r->rsi, r->rdx, r->rcx, r->r8,	r->r9 };
	struct vms_process parent, child = { 0 }, one;
	int err = add_current(c, &parent);

	if (err)
		return err;
	/* Another child may sit in a register too: the new one started last. */
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++)
		if (child_of(c, candidates[i], &parent, &one) &&
		    (!child.task || one.start_time_ns > child.start_time_ns))
			child = one;
	if (!child.task)
		return -ESRCH;
	vms_event_add_int(c->ev, "child_pid", child.tgid);
	vms_event_add_int(c->ev, "child_tid", child.pid);
	vms_event_add_bool(c->ev, "thread", child.pid != child.tgid);
	return 0;
}

/* proc_exit_connector(current): exit_code holds the wait status do_exit() was given. */
static int decode_exit_cn(struct probe_ctx *c)
{
	const struct probe_layout *l = layout(c);
	struct vms_process cur;
	uint32_t code;
	int err = add_current(c, &cur);

	if (err)
		return err;
	if (!l || !l->task_exit_code.found ||
	    kread_u32(c->k, cur.task + l->task_exit_code.offset, &code))
		return -EFAULT;
	add_exit(c, code, &cur);
	return 0;
}

static const char *const exec_fns[] = { "__x64_sys_execve", NULL };
static const char *const fork_fns[] = { "wake_up_new_task", NULL };
static const char *const exit_fns[] = { "do_exit", NULL };
static const char *const load_fns[] = { "do_init_module", NULL };
static const char *const unload_fns[] = { "free_module", NULL };
static const char *const open_fns[] = { "do_sys_openat2", NULL };
static const char *const connect_fns[] = { "__sys_connect", NULL };
static const char *const accept_fns[] = { "inet_csk_accept", NULL };

const struct probe_def probe_defs[VMS_PROBE__COUNT] = {
	[VMS_PROBE_EXEC] = { "exec", exec_fns, decode_exec, 0, "proc_exec_connector",
			     decode_exec_cn },
	[VMS_PROBE_FORK] = { "fork", fork_fns, decode_fork, 0, "proc_fork_connector",
			     decode_fork_cn },
	[VMS_PROBE_EXIT] = { "exit", exit_fns, decode_exit, 0, "proc_exit_connector",
			     decode_exit_cn },
	[VMS_PROBE_MODULE_LOAD] = { "module_load", load_fns, decode_module },
	[VMS_PROBE_MODULE_UNLOAD] = { "module_unload", unload_fns, decode_module },
	[VMS_PROBE_OPEN] = { "open", open_fns, decode_open },
	[VMS_PROBE_CONNECT] = { "connect", connect_fns, decode_connect },
	[VMS_PROBE_ACCEPT] = { "accept", accept_fns, decode_accept, 1 },
};

const char *vms_probe_name(enum vms_probe probe)
{
	return (unsigned int)probe < VMS_PROBE__COUNT ? probe_defs[probe].name : NULL;
}

int vms_probe_by_name(const char *name)
{
	for (int i = 0; i < VMS_PROBE__COUNT; i++)
		if (!strcmp(probe_defs[i].name, name))
			return i;
	return -1;
}
