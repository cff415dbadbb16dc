// SPDX-License-Identifier: MIT
/*
 * Hidden processes: the same truth from independent sources, compared.
 *
 * A rootkit hides a process by unlinking it from the task list (what ps,
 * /proc and most tools walk). The process still runs, so other structures
 * still hold it:
 *   the task list      init_task.tasks, as ps reads it;
 *   the run queues     each CPU's rq->curr (its thread group's leader);
 *   the pid IDR        init_pid_ns.idr, the xarray from pid numbers to struct
 *                      pid that /proc and kill() look pids up in: each pid's
 *                      PIDTYPE_PID task;
 *   a memory scan      every 64-byte-aligned task_struct-shaped object in RAM
 *                      (a printable comm, plausible pids, kernel pointers
 *                      in its list heads and signal), kept only if
 *                      its own thread group's list (signal->thread_head)
 *                      holds it, it is not EXIT_DEAD and something holds a
 *                      reference to it: freed or forged look-alikes are not;
 *                      nor is a copy whose pid belongs to a listed task.
 * Each thread group leader any source shows is reported with the sources
 * that show it; one the task list lacks is hidden from it. The scan reads
 * RAM in chunks and checks candidates in the buffer first, so a 1 GiB guest
 * costs about one pass over its RAM.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"
#include "os/linux/list.h"

#define TASK_ALIGN	  64
#define CHUNK_BYTES	  (1u << 20)
#define MAX_PID		  (1 << 22) /* PID_MAX_LIMIT */
#define MAX_THREADS	  65536
#define MAX_SEEN	  (1u << 20)
#define MAX_SCAN_STEPS	  (16u << 20) /* candidates' thread lists, all told */
#define DIRECT_MAP_4LEVEL 0xffff888000000000ull
#define DIRECT_MAP_5LEVEL 0xff11000000000000ull
#define KERNEL_IMAGE	  0xffffffff80000000ull
#define XA_CHUNK	  64
#define EXIT_DEAD	  0x10
#define MAX_XA_NODES	  (1u << 18) /* 16 M pids */
#define MAX_XA_DEPTH	  12

struct cross_layout {
	struct kfield tasks, pid, tgid, comm, signal, thread_node, group_leader, exit_state, usage;
	struct kfield signal_thread_head, rq_curr;
	struct kfield ns_xa_head, xa_slots, pid_tasks, task_pid_links; /* the IDR (optional) */
	struct kfield thread_pid; /* optional: what tells a stale copy from a hidden task */
	uint64_t init_pid_ns;
	uint32_t span; /* of task_struct, from its start to the last member read */
	uint64_t init_task, runqueues, per_cpu_offset, nr_cpu_ids;
};

struct cross_walk {
	struct linux_kernel *k;
	const struct cross_layout *l;
	struct vms_seen_process *seen;
	size_t n, cap;
	/* Open addressing over seen[] by task address: index + 1, 0 for empty. */
	uint32_t *slots;
	size_t nr_slots;
	uint64_t direct_map, ram_end;
	uint64_t steps; /* thread-list reads of the memory scan, against MAX_SCAN_STEPS */
};

static void widen(struct cross_layout *l, const struct kfield *f)
{
	if (f->offset + f->size > l->span)
		l->span = f->offset + f->size;
}

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct cross_layout *l = layout;
	const struct kfield_want want[] = {
		{ &l->tasks, "task_struct", "tasks" },
		{ &l->pid, "task_struct", "pid" },
		{ &l->tgid, "task_struct", "tgid" },
		{ &l->comm, "task_struct", "comm" },
		{ &l->signal, "task_struct", "signal" },
		{ &l->thread_node, "task_struct", "thread_node" },
		{ &l->group_leader, "task_struct", "group_leader" },
		{ &l->exit_state, "task_struct", "exit_state" },
		{ &l->usage, "task_struct", "usage" },
		{ &l->signal_thread_head, "signal_struct", "thread_head" },
		{ &l->rq_curr, "rq", "curr" },
	};

	if (kfields_require(k, want, ARRAY_SIZE(want)) ||
	    ksym_require(k, "init_task", &l->init_task) ||
	    ksym_require(k, "runqueues", &l->runqueues) ||
	    ksym_require(k, "__per_cpu_offset", &l->per_cpu_offset) ||
	    ksym_require(k, "nr_cpu_ids", &l->nr_cpu_ids))
		return -ENOENT;
	/* task_shaped() reads all 16 bytes of comm and both pointers of tasks. */
	if (l->comm.size < 16 || l->tasks.size < 16)
		return vm_error(k->vm, -EPROTO, "the guest's BTF gives task_struct a short %s",
				l->comm.size < 16 ? "comm" : "tasks");
	for (size_t i = 0; i < 9; i++)
		widen(l, want[i].field);
	/* The IDR is a source only where all of it is known. */
	l->init_pid_ns = kallsyms_lookup(&k->ksyms, "init_pid_ns");
	if (kbtf_member(k->btf, "pid_namespace", "idr.idr_rt.xa_head", &l->ns_xa_head) ||
	    kbtf_member(k->btf, "xa_node", "slots", &l->xa_slots) ||
	    kbtf_member(k->btf, "pid", "tasks", &l->pid_tasks) ||
	    kbtf_member(k->btf, "task_struct", "pid_links", &l->task_pid_links))
		l->init_pid_ns = 0;
	if (!l->init_pid_ns || kbtf_member(k->btf, "task_struct", "thread_pid", &l->thread_pid))
		l->thread_pid.found = 0;
	return 0;
}

static struct cross_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->crosscheck_layout, sizeof(struct cross_layout), find_layout);
}

static size_t slot_of(uint64_t task, size_t nr_slots)
{
	return (size_t)((task >> 6) * 0x9e3779b97f4a7c15ull >> 20) & (nr_slots - 1);
}

/* Index i of seen[] into the table, doubling it past half full. */
static int index_add(struct cross_walk *w, size_t i)
{
	if (2 * (w->n + 1) > w->nr_slots) {
		size_t nr = w->nr_slots ? 2 * w->nr_slots : 1024;
		uint32_t *slots = calloc(nr, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		free(w->slots);
		w->slots = slots;
		w->nr_slots = nr;
		for (size_t j = 0; j < w->n; j++)
			if (j != i)
				index_add(w, j);
	}
	for (size_t at = slot_of(w->seen[i].task, w->nr_slots);; at = (at + 1) & (w->nr_slots - 1)) {
		if (!w->slots[at]) {
			w->slots[at] = (uint32_t)i + 1;
			return 0;
		}
	}
}

static struct vms_seen_process *index_find(const struct cross_walk *w, uint64_t task)
{
	if (!w->nr_slots)
		return NULL;
	for (size_t at = slot_of(task, w->nr_slots); w->slots[at]; at = (at + 1) & (w->nr_slots - 1))
		if (w->seen[w->slots[at] - 1].task == task)
			return &w->seen[w->slots[at] - 1];
	return NULL;
}

/* Count a leader as seen by source; the first sighting fills in who it is. */
static int saw(struct cross_walk *w, uint64_t task, int pid, int tgid, const char *comm,
	       unsigned int source)
{
	struct vms_seen_process *s = index_find(w, task);

	if (s) {
		s->sources |= source;
		return 0;
	}
	if (w->n == MAX_SEEN) {
		view_partial(w->k->vm, "more than %u processes: the cross-check compares those first "
			     "seen", MAX_SEEN);
		return -E2BIG;
	}
	s = array_grow(w->seen, &w->cap, w->n, sizeof(*s));
	if (!s)
		return -ENOMEM;
	w->seen = s;
	s = &w->seen[w->n++];
	memset(s, 0, sizeof(*s));
	s->task = task;
	s->pid = pid;
	s->tgid = tgid;
	memcpy(s->comm, comm, sizeof(s->comm) - 1);
	s->sources = source;
	return index_add(w, w->n - 1);
}

/* Read a task's identity; 0 if it reads and looks like one. */
static int identify(struct cross_walk *w, uint64_t task, int *pid, int *tgid, char comm[16])
{
	uint32_t v;

	if (kread_u32(w->k, task + w->l->pid.offset, &v))
		return -EFAULT;
	*pid = (int)v;
	if (kread_u32(w->k, task + w->l->tgid.offset, &v) ||
	    kread(w->k, task + w->l->comm.offset, comm, 16))
		return -EFAULT;
	*tgid = (int)v;
	comm[15] = '\0';
	return 0;
}

static int from_task_list(struct cross_walk *w)
{
	struct list_walk lw;
	uint64_t node;
	int more, err = 0;

	if (list_walk_start(&lw, w->k, w->l->init_task + w->l->tasks.offset, MAX_SEEN))
		return vm_error(w->k->vm, -EFAULT, "init_task is unreadable");
	while (!err && (more = list_walk_next(&lw, &node)) > 0) {
		uint64_t task = node - w->l->tasks.offset;
		int pid, tgid;
		char comm[16];

		if (identify(w, task, &pid, &tgid, comm))
			break;
		err = saw(w, task, pid, tgid, comm, VMS_SOURCE_TASK_LIST);
	}
	if (!err && more < 0)
		view_partial(w->k->vm, "the task list %s", more == -ELOOP ? "does not end" : "breaks");
	return err == -E2BIG ? 0 : err;
}

/* What each CPU runs: its thread group's leader (the idle tasks are no process). */
static int from_run_queues(struct cross_walk *w)
{
	uint32_t cpus = 0;

	if (kread_u32(w->k, w->l->nr_cpu_ids, &cpus) || cpus > 8192)
		return 0;
	for (uint32_t cpu = 0; cpu < cpus; cpu++) {
		uint64_t offset, curr, leader;
		int pid, tgid, err;
		char comm[16];

		if (kread_u64(w->k, w->l->per_cpu_offset + 8ull * cpu, &offset) ||
		    kread_u64(w->k, w->l->runqueues + offset + w->l->rq_curr.offset, &curr) ||
		    kread_u64(w->k, curr + w->l->group_leader.offset, &leader) ||
		    identify(w, leader, &pid, &tgid, comm) || pid <= 0)
			continue;
		err = saw(w, leader, pid, tgid, comm, VMS_SOURCE_RUN_QUEUE);
		if (err)
			return err == -E2BIG ? 0 : err;
	}
	return 0;
}

/* A struct pid's PIDTYPE_PID task, as its group's leader. */
static int saw_pid(struct cross_walk *w, uint64_t pid)
{
	uint64_t first, task, leader;
	int nr, tgid;
	char comm[16];

	if (kread_u64(w->k, pid + w->l->pid_tasks.offset, &first) || !first)
		return 0; /* a pid no task holds any more */
	task = first - w->l->task_pid_links.offset;
	if (kread_u64(w->k, task + w->l->group_leader.offset, &leader) ||
	    identify(w, leader, &nr, &tgid, comm) || nr <= 0)
		return 0;
	return saw(w, leader, nr, tgid, comm, VMS_SOURCE_PID_IDR);
}

/* An xarray (sub)tree: node entries end in 2, pointers to struct pid are 8-aligned. */
static int walk_xa(struct cross_walk *w, uint64_t entry, int depth, unsigned int *nodes)
{
	uint64_t slots[XA_CHUNK];
	int err;

	if (!entry || (entry & 1))
		return 0; /* empty, or a value entry */
	if ((entry & 3) != 2)
		return saw_pid(w, entry);
	if (entry < 4096 || depth == MAX_XA_DEPTH || ++*nodes > MAX_XA_NODES)
		return 0; /* a sibling or retry entry, or a tree deeper or larger than any */
	if (kread(w->k, entry - 2 + w->l->xa_slots.offset, slots, sizeof(slots)))
		return 0;
	for (int i = 0; i < XA_CHUNK; i++) {
		err = walk_xa(w, slots[i], depth + 1, nodes);
		if (err)
			return err;
	}
	return 0;
}

static int from_pid_idr(struct cross_walk *w)
{
	unsigned int nodes = 0;
	uint64_t head;
	int err;

	if (!w->l->init_pid_ns ||
	    kread_u64(w->k, w->l->init_pid_ns + w->l->ns_xa_head.offset, &head))
		return 0;
	err = walk_xa(w, head, 0, &nodes);
	return err == -E2BIG ? 0 : err;
}

static int direct(const struct cross_walk *w, uint64_t va)
{
	return va >= w->direct_map && va - w->direct_map < w->ram_end && !(va & 7);
}

/* A list neighbour: another task (direct map), or init_task in the kernel image. */
static int neighbour(const struct cross_walk *w, uint64_t va)
{
	return direct(w, va) || (va >= KERNEL_IMAGE && !(va & 7));
}

/* The cheap test, on bytes already copied: comm, pids, list and signal pointers. */
static int task_shaped(const struct cross_walk *w, const uint8_t *t)
{
	const struct cross_layout *l = w->l;
	int64_t pid = (int32_t)kfield_get(&l->pid, t), tgid = (int32_t)kfield_get(&l->tgid, t);
	const char *comm = (const char *)t + l->comm.offset;
	size_t len = strnlen(comm, 16);
	uint64_t prev;

	/*
	 * A freed task_struct's memory often still looks whole: but it was reaped
	 * (EXIT_DEAD) and its last reference dropped (usage 0) before it was freed.
	 */
	if (pid <= 0 || pid >= MAX_PID || tgid != pid || len == 0 || len == 16 ||
	    (kfield_get(&l->exit_state, t) & EXIT_DEAD) || (int32_t)kfield_get(&l->usage, t) <= 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)comm[i] < 0x20 || (unsigned char)comm[i] > 0x7e)
			return 0;
	memcpy(&prev, t + l->tasks.offset + 8, sizeof(prev));
	return direct(w, kfield_get(&l->signal, t)) && neighbour(w, kfield_get(&l->tasks, t)) &&
	       neighbour(w, prev);
}

/* The deep test: the candidate's thread group lists it (a live task, not a look-alike). */
static int in_own_thread_group(struct cross_walk *w, uint64_t task, const uint8_t *t)
{
	uint64_t signal = kfield_get(&w->l->signal, t), node;
	uint64_t want = task + w->l->thread_node.offset;
	struct list_walk lw;

	if (list_walk_start(&lw, w->k, signal + w->l->signal_thread_head.offset, MAX_THREADS))
		return 0;
	while (w->steps < MAX_SCAN_STEPS && list_walk_next(&lw, &node) > 0) {
		w->steps++;
		if (node == want)
			return 1;
	}
	return 0;
}

static int out_of_steps(struct cross_walk *w, uint64_t gpa)
{
	view_partial(w->k->vm, "the memory scan's thread lists take more reads than its budget: "
		     "RAM from 0x%" PRIx64 " on not scanned", gpa);
	return -E2BIG;
}

static int scan_chunk(struct cross_walk *w, const uint8_t *buf, size_t len, uint64_t gpa)
{
	for (size_t off = 0; off + w->l->span <= len; off += TASK_ALIGN) {
		const uint8_t *t = buf + off;
		uint64_t task = w->direct_map + gpa + off;
		int err;

		if (w->steps >= MAX_SCAN_STEPS)
			return out_of_steps(w, gpa + off);
		if (!task_shaped(w, t))
			continue;
		if (!in_own_thread_group(w, task, t)) {
			if (w->steps >= MAX_SCAN_STEPS)
				return out_of_steps(w, gpa + off); /* this one is undecided */
			continue;
		}
		err = saw(w, task, (int32_t)kfield_get(&w->l->pid, t),
			  (int32_t)kfield_get(&w->l->tgid, t), (const char *)t + w->l->comm.offset,
			  VMS_SOURCE_MEMORY);
		if (err)
			return err;
	}
	return 0;
}

static int from_memory(struct cross_walk *w)
{
	size_t span = w->l->span, buf_len = CHUNK_BYTES + span;
	uint8_t *buf = malloc(buf_len);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t s = 0; !err && s < w->k->vm->mem.nr_segs; s++) {
		const struct mem_segment *seg = &w->k->vm->mem.segs[s];

		/* Chunks overlap by a task's span, so one across a border is seen whole. */
		for (uint64_t at = 0; !err && at + span <= seg->size; at += CHUNK_BYTES) {
			size_t len = seg->size - at < buf_len ? (size_t)(seg->size - at) : buf_len;

			if (mem_map_read(&w->k->vm->mem, seg->gpa + at, buf, len))
				continue;
			err = scan_chunk(w, buf, len < CHUNK_BYTES + span ? len : CHUNK_BYTES + span,
					 seg->gpa + at);
		}
	}
	free(buf);
	return err == -E2BIG ? 0 : err;
}

/* Is task, by its pid's own backlink, another task that the task list shows? */
static int pid_owned_by_listed(const struct cross_walk *w, uint64_t task)
{
	uint64_t pid = 0, first = 0, owner, leader = 0;
	const struct vms_seen_process *seen;

	if (!w->l->thread_pid.found || kread_u64(w->k, task + w->l->thread_pid.offset, &pid) ||
	    !pid || kread_u64(w->k, pid + w->l->pid_tasks.offset, &first) || !first)
		return 0;
	owner = first - w->l->task_pid_links.offset;
	if (owner == task || kread_u64(w->k, owner + w->l->group_leader.offset, &leader))
		return 0;
	seen = index_find(w, leader);
	return seen && (seen->sources & VMS_SOURCE_TASK_LIST);
}

/*
 * A task_struct that only the memory scan found, whose pid says it is another
 * task the task list shows, is a stale copy (a fork that failed after
 * duplicating its parent, 7.x's init among them), not a hidden process: a
 * process unlinked from the task list keeps its own pid.
 */
static int drop_stale_copies(struct cross_walk *w)
{
	uint8_t *stale = calloc(w->n + 1, 1);
	size_t kept = 0;

	if (!stale)
		return -ENOMEM;
	/* Decided first, through the index, which compacting seen[] would spoil. */
	for (size_t i = 0; i < w->n; i++)
		stale[i] = w->seen[i].sources == VMS_SOURCE_MEMORY &&
			   pid_owned_by_listed(w, w->seen[i].task);
	for (size_t i = 0; i < w->n; i++)
		if (!stale[i])
			w->seen[kept++] = w->seen[i];
	w->n = kept;
	free(stale);
	return 0;
}

/* The direct map's base: page_offset_base where KASLR moves it, else the fixed one. */
static uint64_t direct_map_base(struct linux_kernel *k)
{
	uint64_t at = kallsyms_lookup(&k->ksyms, "page_offset_base"), base = 0;

	if (at && !kread_u64(k, at, &base) && base)
		return base;
	return k->levels == 5 ? DIRECT_MAP_5LEVEL : DIRECT_MAP_4LEVEL;
}

int vms_os_cross_check(struct vms_vm *vm, struct vms_seen_process **ret_seen, size_t *ret_count)
{
	struct cross_walk w = { 0 };
	int err = linux_kernel_get(vm, &w.k);

	if (err)
		return err;
	view_begin(vm);
	w.l = layout(w.k);
	if (!w.l)
		return -ENOENT;
	w.direct_map = direct_map_base(w.k);
	for (size_t s = 0; s < vm->mem.nr_segs; s++)
		if (vm->mem.segs[s].gpa + vm->mem.segs[s].size > w.ram_end)
			w.ram_end = vm->mem.segs[s].gpa + vm->mem.segs[s].size;
	err = from_task_list(&w);
	if (!err)
		err = from_run_queues(&w);
	if (!err)
		err = from_pid_idr(&w);
	if (!err)
		err = from_memory(&w);
	if (!err)
		err = drop_stale_copies(&w); /* the index is stale from here on */
	free(w.slots);
	if (err) {
		free(w.seen);
		return err == -ENOMEM ? vm_error(vm, err, "out of memory") : err;
	}
	*ret_seen = w.seen;
	*ret_count = w.n;
	return 0;
}
