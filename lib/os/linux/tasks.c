// SPDX-License-Identifier: MIT
/*
 * Processes and threads: the task list from init_task.tasks (one entry per
 * thread group leader), each group's threads from signal->thread_head, and
 * each process's command line read from its own memory through its own page
 * tables (mm->pgd).
 *
 * Only the span of task_struct that holds the members we use is copied, once
 * per task. Lists are guest data: a walk stops at the head, at a link or task
 * it cannot read, at a cycle that misses the head, or after MAX_TASKS
 * entries (MAX_ENTRIES tasks and threads in all); the view then returns what
 * it read and says what it left out
 * (vms_view_warning), failing only when init_task itself is unreadable.
 * Command lines, threads' copies included, share one budget per view
 * (CMDLINE_BUDGET bytes; past it they
 * are left NULL, and said so); one that is unreadable (paged out, not yet
 * faulted in) is NULL for that process only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"
#include "os/linux/list.h"

#define MAX_TASKS	(1u << 20)
#define MAX_ENTRIES	(4u << 20) /* tasks and threads, the whole view */
#define MAX_CMDLINE	65536
#define CMDLINE_BUDGET	(64u << 20)
#define TASK_REPORT	0x7f
#define TASK_UNINTERRUPTIBLE 0x02
#define TASK_NOLOAD	0x400
#define PF_WQ_WORKER	0x00000020
#define PF_KTHREAD	0x00200000

struct task_layout {
	struct kfield tasks, pid, tgid, comm, real_parent, cred, mm, start_time, signal, state,
		exit_state, thread_node;
	struct kfield cred_uid, cred_gid;
	struct kfield mm_arg_start, mm_arg_end, mm_pgd;
	struct kfield signal_nr_threads, signal_thread_head;
	/* Kernel thread names (optional: older kernels lack some). */
	struct kfield flags, worker_private, kthread_full_name, kthread_data;
	struct kfield worker_desc, worker_current_work, worker_pool, worker_rescue_wq, wq_name;
	uint32_t span; /* bytes of task_struct to copy */
	uint64_t init_task;
};

struct ps_walk {
	struct linux_kernel *k;
	const struct task_layout *l;
	struct vms_process *procs;
	size_t count, cap;
	unsigned int flags;
	uint8_t *task; /* one task's copied span */
	size_t cmdline_bytes;
};

static void measure_span(struct task_layout *l)
{
	const struct kfield *fields = &l->tasks;

	for (size_t i = 0; i < 12; i++) /* the task_struct members come first */
		if (fields[i].offset + fields[i].size > l->span)
			l->span = fields[i].offset + fields[i].size;
	if (l->flags.offset + l->flags.size > l->span)
		l->span = l->flags.offset + l->flags.size;
	if (l->worker_private.offset + l->worker_private.size > l->span)
		l->span = l->worker_private.offset + l->worker_private.size;
}

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct task_layout *l = layout;
	const struct kfield_want want[] = {
		{ &l->tasks, "task_struct", "tasks" },
		{ &l->pid, "task_struct", "pid" },
		{ &l->tgid, "task_struct", "tgid" },
		{ &l->comm, "task_struct", "comm" },
		{ &l->real_parent, "task_struct", "real_parent" },
		{ &l->cred, "task_struct", "real_cred" },
		{ &l->mm, "task_struct", "mm" },
		{ &l->start_time, "task_struct", "start_boottime" },
		{ &l->signal, "task_struct", "signal" },
		{ &l->exit_state, "task_struct", "exit_state" },
		{ &l->thread_node, "task_struct", "thread_node" },
		{ &l->cred_uid, "cred", "uid.val" },
		{ &l->cred_gid, "cred", "gid.val" },
		{ &l->mm_arg_start, "mm_struct", "arg_start" },
		{ &l->mm_arg_end, "mm_struct", "arg_end" },
		{ &l->mm_pgd, "mm_struct", "pgd" },
		{ &l->signal_nr_threads, "signal_struct", "nr_threads" },
		{ &l->signal_thread_head, "signal_struct", "thread_head" },
	};

	if (kfields_require(k, want, ARRAY_SIZE(want)))
		return -ENOENT;
	kbtf_member(k->btf, "task_struct", "flags", &l->flags);
	/* Before 5.17 a kernel thread's struct kthread hid in set_child_tid. */
	if (kbtf_member(k->btf, "task_struct", "worker_private", &l->worker_private))
		kbtf_member(k->btf, "task_struct", "set_child_tid", &l->worker_private);
	kbtf_member(k->btf, "kthread", "full_name", &l->kthread_full_name);
	kbtf_member(k->btf, "kthread", "data", &l->kthread_data);
	kbtf_member(k->btf, "worker", "desc", &l->worker_desc);
	kbtf_member(k->btf, "worker", "current_work", &l->worker_current_work);
	kbtf_member(k->btf, "worker", "pool", &l->worker_pool);
	kbtf_member(k->btf, "worker", "rescue_wq", &l->worker_rescue_wq);
	kbtf_member(k->btf, "workqueue_struct", "name", &l->wq_name);
	/* Linux 5.14 renamed state to __state. */
	if (kbtf_member(k->btf, "task_struct", "__state", &l->state) &&
	    kfield_require(k, "task_struct", "state", &l->state))
		return -ENOENT;
	if (ksym_require(k, "init_task", &l->init_task))
		return -ENOENT;
	measure_span(l);
	return 0;
}

static const struct task_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->tasks_layout, sizeof(struct task_layout), find_layout);
}

/* The letter ps shows, computed as the kernel's task_state_index() does. */
static char state_letter(uint32_t state, uint32_t exit_state)
{
	static const char letters[] = "RSDTtXZP";
	uint32_t report = (state | exit_state) & TASK_REPORT;
	int bit = 0;

	if (report == TASK_UNINTERRUPTIBLE && (state & TASK_NOLOAD))
		return 'I';
	while (report) {
		bit++;
		report >>= 1;
	}
	return letters[bit < 8 ? bit : 7];
}

/*
 * A workqueue worker's name as wq_worker_comm() makes it: its comm (which
 * since Linux 6.9 names a rescuer "kworker/R-" and its workqueue, cut to 15
 * characters that /proc shows whole), then "+desc" while it works or "-desc"
 * after.
 */
static void worker_name(struct linux_kernel *k, const struct task_layout *l, uint64_t worker,
			char *name, size_t len)
{
	char desc[32] = "", wq[32]; /* WORKER_DESC_LEN and WQ_NAME_LEN are 24 */
	uint64_t rescue_wq = 0, pool = 0, current = 0;
	size_t used;

	if (!strncmp(name, "kworker/R-", 10) && l->worker_rescue_wq.found && l->wq_name.found &&
	    !kread_u64(k, worker + l->worker_rescue_wq.offset, &rescue_wq) && rescue_wq &&
	    !kread_string(k, rescue_wq + l->wq_name.offset, wq, sizeof(wq)))
		snprintf(name, len, "kworker/R-%s", wq);
	if (!l->worker_desc.found || !l->worker_pool.found ||
	    kread_u64(k, worker + l->worker_pool.offset, &pool) || !pool ||
	    kread_string(k, worker + l->worker_desc.offset, desc,
			 l->worker_desc.size < sizeof(desc) ? l->worker_desc.size : sizeof(desc)) ||
	    !desc[0])
		return;
	kread_u64(k, worker + l->worker_current_work.offset, &current);
	used = strlen(name);
	snprintf(name + used, len - used, "%c%s", current ? '+' : '-', desc);
}

/* The name /proc shows: a kernel thread's full name, a worker's description. */
static void task_name(struct linux_kernel *k, const struct task_layout *l, const uint8_t *task,
		      char *name, size_t len)
{
	uint64_t flags = l->flags.found ? kfield_get(&l->flags, task) : 0, kthread, full = 0, data = 0;
	char full_name[64];

	snprintf(name, len, "%.*s", (int)(l->comm.size < len ? l->comm.size : len - 1),
		 (const char *)task + l->comm.offset);
	if (!(flags & PF_KTHREAD) || !l->worker_private.found)
		return;
	kthread = kfield_get(&l->worker_private, task);
	if (!kthread)
		return;
	if (flags & PF_WQ_WORKER) {
		if (l->kthread_data.found && !kread_u64(k, kthread + l->kthread_data.offset, &data) &&
		    data)
			worker_name(k, l, data, name, len);
		return;
	}
	if (l->kthread_full_name.found && !kread_u64(k, kthread + l->kthread_full_name.offset, &full) &&
	    full && !kread_string(k, full, full_name, sizeof(full_name)))
		snprintf(name, len, "%s", full_name);
}

/* The command line from the process's own memory, NULs turned into spaces. */
static char *read_cmdline(struct linux_kernel *k, const struct task_layout *l, uint64_t mm)
{
	uint64_t start, end, pgd;
	struct vms_translation root;
	size_t len;
	char *text;

	if (kread_u64(k, mm + l->mm_arg_start.offset, &start) ||
	    kread_u64(k, mm + l->mm_arg_end.offset, &end) ||
	    kread_u64(k, mm + l->mm_pgd.offset, &pgd) || end < start ||
	    vms_translate(k->vm, k->root, pgd, &root))
		return NULL;
	len = end - start > MAX_CMDLINE ? MAX_CMDLINE : (size_t)(end - start);
	text = malloc(len + 1);
	if (!text)
		return NULL;
	if (len && vms_virt_read(k->vm, root.gpa, start, text, len)) {
		free(text);
		return NULL;
	}
	while (len && text[len - 1] == '\0')
		len--;
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\0')
			text[i] = ' ';
	text[len] = '\0';
	return text;
}

static struct vms_process *grow(struct ps_walk *w)
{
	struct vms_process *p = array_grow(w->procs, &w->cap, w->count, sizeof(*p));

	if (!p)
		return NULL;
	w->procs = p;
	memset(&w->procs[w->count], 0, sizeof(w->procs[0]));
	return &w->procs[w->count++];
}

static void over_cmdline_budget(struct ps_walk *w)
{
	view_partial(w->k->vm, "command lines past the first %u MiB are left out",
		     CMDLINE_BUDGET >> 20);
}

static void add_cmdline(struct ps_walk *w, struct vms_process *p, uint64_t mm)
{
	if (!mm) {
		p->cmdline = strdup("");
		return;
	}
	if (w->cmdline_bytes >= CMDLINE_BUDGET) {
		over_cmdline_budget(w);
		return;
	}
	p->cmdline = read_cmdline(w->k, w->l, mm);
	if (p->cmdline)
		w->cmdline_bytes += strlen(p->cmdline) + 1;
}

/* A thread's copy of its leader's command line, from the same budget. */
static char *thread_cmdline(struct ps_walk *w, const char *cmdline)
{
	size_t len = cmdline ? strlen(cmdline) + 1 : 0;

	if (!cmdline)
		return NULL;
	if (w->cmdline_bytes + len > CMDLINE_BUDGET) {
		over_cmdline_budget(w);
		return NULL;
	}
	w->cmdline_bytes += len;
	return strdup(cmdline);
}

/* Fill one entry from the task at addr; group carries the leader's shared facts. */
static int add_task(struct ps_walk *w, uint64_t addr, const struct vms_process *group)
{
	const struct task_layout *l = w->l;
	struct vms_process *p;
	uint64_t parent, cred, mm;
	uint32_t value;

	if (w->count >= MAX_ENTRIES)
		return -E2BIG;
	if (kread(w->k, addr, w->task, l->span))
		return vm_error(w->k->vm, -EFAULT, "task_struct at 0x%llx is unreadable",
				(unsigned long long)addr);
	p = grow(w);
	if (!p)
		return vm_error(w->k->vm, -ENOMEM, "out of memory");
	p->task = addr;
	p->pid = (int)kfield_get(&l->pid, w->task);
	p->tgid = (int)kfield_get(&l->tgid, w->task);
	task_name(w->k, l, w->task, p->comm, sizeof(p->comm));
	p->state = state_letter((uint32_t)kfield_get(&l->state, w->task),
				(uint32_t)kfield_get(&l->exit_state, w->task));
	p->start_time_ns = kfield_get(&l->start_time, w->task);
	parent = kfield_get(&l->real_parent, w->task);
	cred = kfield_get(&l->cred, w->task);
	mm = kfield_get(&l->mm, w->task);
	if (!kread_u32(w->k, parent + l->tgid.offset, &value))
		p->ppid = (int)value;
	if (!kread_u32(w->k, cred + l->cred_uid.offset, &value))
		p->uid = value;
	if (!kread_u32(w->k, cred + l->cred_gid.offset, &value))
		p->gid = value;
	p->kernel_thread = mm == 0;
	if (group) {
		p->threads = group->threads;
		p->cmdline = thread_cmdline(w, group->cmdline);
		return 0;
	}
	if (!kread_u32(w->k, kfield_get(&l->signal, w->task) + l->signal_nr_threads.offset, &value))
		p->threads = (int)value;
	if (!(w->flags & LINUX_PS_NO_CMDLINE))
		add_cmdline(w, p, mm);
	return 0;
}

/* A list that ends early: keep what was read, say why the rest is missing. */
static void walk_partial(struct ps_walk *w, int err, const char *list)
{
	if (err == -ELOOP)
		view_partial(w->k->vm, "%s does not end (a cycle, or over %u entries): %zu listed",
			     list, MAX_TASKS, w->count);
	else
		view_partial(w->k->vm, "%s breaks (a link or a task is unreadable): %zu listed",
			     list, w->count);
}

/* Every thread of the group led by the task just added, leader included. */
static int add_threads(struct ps_walk *w)
{
	uint64_t signal = kfield_get(&w->l->signal, w->task), node;
	size_t before = --w->count; /* the leader's entry, redone below */
	struct vms_process group = w->procs[before];
	size_t leader_bytes = group.cmdline ? strlen(group.cmdline) + 1 : 0;
	struct list_walk lw;
	int more = -EFAULT, err = 0;

	/* The leader's line is charged again by its thread entry's copy, not twice. */
	w->cmdline_bytes -= leader_bytes;
	if (!list_walk_start(&lw, w->k, signal + w->l->signal_thread_head.offset, MAX_TASKS))
		while (!err && (more = list_walk_next(&lw, &node)) > 0)
			err = add_task(w, node - w->l->thread_node.offset, &group);
	if (err == -ENOMEM) {
		free(group.cmdline);
		return err;
	}
	if ((more < 0 || err) && err != -E2BIG)
		walk_partial(w, err ? err : more, "a thread list");
	if (w->count == before) { /* not one thread read: keep the leader's own entry */
		w->procs[w->count++] = group;
		w->cmdline_bytes += leader_bytes;
	} else {
		free(group.cmdline);
	}
	return err == -E2BIG ? err : 0;
}

/* A cycle that misses the head: cut the list where a task comes again. */
static void cut_repeats(struct ps_walk *w)
{
	uint64_t *addrs = malloc(w->count * sizeof(*addrs) + 1);
	size_t cut;

	if (!addrs)
		return;
	for (size_t i = 0; i < w->count; i++)
		addrs[i] = w->procs[i].task;
	cut = list_first_repeat(addrs, w->count);
	free(addrs);
	for (size_t i = cut; i < w->count; i++)
		free(w->procs[i].cmdline);
	w->count = cut;
}

static int walk(struct ps_walk *w)
{
	struct list_walk lw;
	uint64_t node;
	int more, err = 0;

	if (list_walk_start(&lw, w->k, w->l->init_task + w->l->tasks.offset, MAX_TASKS))
		return vm_error(w->k->vm, -EFAULT, "init_task is unreadable");
	while ((more = list_walk_next(&lw, &node)) > 0) {
		uint64_t task = node - w->l->tasks.offset;

		err = add_task(w, task, NULL);
		if (!err && (w->flags & VMS_PS_THREADS))
			err = add_threads(w);
		/* -EFAULT: its own links are in the task we cannot read */
		if (err == -EFAULT || err == -E2BIG)
			break;
		if (err)
			return err;
	}
	/* A cycle can fill the entry budget before the list walk sees it loop. */
	if (more == -ELOOP || err == -E2BIG)
		cut_repeats(w);
	if (err == -E2BIG) {
		view_partial(w->k->vm, "more than %u tasks and threads: %zu listed", MAX_ENTRIES,
			     w->count);
		return 0;
	}
	if (more < 0 || err == -EFAULT)
		walk_partial(w, more < 0 ? more : err, "the task list");
	return 0;
}

void vms_processes_free(struct vms_process *procs, size_t count)
{
	for (size_t i = 0; procs && i < count; i++)
		free(procs[i].cmdline);
	free(procs);
}

int vms_os_processes(struct vms_vm *vm, unsigned int flags, struct vms_process **ret_procs,
		     size_t *ret_count)
{
	struct ps_walk w = { .flags = flags };
	int err = linux_kernel_get(vm, &w.k);

	if (err)
		return err;
	w.l = layout(w.k);
	if (!w.l)
		return -ENOENT;
	w.task = malloc(w.l->span);
	if (!w.task)
		return vm_error(vm, -ENOMEM, "out of memory");
	err = walk(&w);
	free(w.task);
	if (err) {
		vms_processes_free(w.procs, w.count);
		return err;
	}
	*ret_procs = w.procs;
	*ret_count = w.count;
	return 0;
}

int linux_task_read(struct linux_kernel *k, uint64_t addr, struct vms_process *ret)
{
	struct ps_walk w = { .k = k, .flags = LINUX_PS_NO_CMDLINE };
	int err;

	w.l = layout(k);
	if (!w.l)
		return -ENOENT;
	w.task = malloc(w.l->span);
	if (!w.task)
		return vm_error(k->vm, -ENOMEM, "out of memory");
	err = add_task(&w, addr, NULL);
	free(w.task);
	if (!err)
		*ret = w.procs[0];
	free(w.procs);
	return err;
}
