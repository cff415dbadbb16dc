// SPDX-License-Identifier: MIT
/*
 * Polling: the process, module and socket views read again and diffed with
 * the last reading. Each view is sorted by an identity that a reused number
 * cannot fake (a process: pid and start time; a module: name and base; a
 * socket: protocol, both ends and inode), and the two sorted lists are
 * merged: what is only in the new one started, what is only in the old one
 * ended, and a process in both whose name or command line changed has
 * exec'ed. The guest never stops; what lived shorter than the period is not
 * seen at all, nor an exec followed by another within it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>
#include <vmscope/trace.h>

#include "core/internal.h"
#include "core/util.h"

struct snapshot {
	struct vms_process *procs;
	size_t nr_procs;
	struct vms_module *mods;
	size_t nr_mods;
	struct vms_socket *socks;
	size_t nr_socks;
};

struct vms_poll {
	struct vms_vm *vm;
	struct vms_ring *ring;
	char vm_name[VMS_NAME_MAX];
	unsigned int views; /* VMS_POLL_* */
	struct snapshot last;
};

static int by_process(const void *a, const void *b)
{
	const struct vms_process *x = a, *y = b;

	if (x->tgid != y->tgid)
		return x->tgid < y->tgid ? -1 : 1;
	return x->start_time_ns < y->start_time_ns ? -1 : x->start_time_ns > y->start_time_ns;
}

static int by_module(const void *a, const void *b)
{
	const struct vms_module *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : x->base < y->base ? -1 : x->base > y->base;
}

static int by_socket(const void *a, const void *b)
{
	const struct vms_socket *x = a, *y = b;
	int c = strcmp(x->protocol, y->protocol);

	c = c ?: strcmp(x->local_address, y->local_address);
	c = c ?: (x->local_port > y->local_port) - (x->local_port < y->local_port);
	c = c ?: strcmp(x->remote_address, y->remote_address);
	c = c ?: (x->remote_port > y->remote_port) - (x->remote_port < y->remote_port);
	return c ?: (x->inode > y->inode) - (x->inode < y->inode);
}

static void release(struct snapshot *s)
{
	vms_processes_free(s->procs, s->nr_procs);
	free(s->mods);
	free(s->socks);
	memset(s, 0, sizeof(*s));
}

/* Every view, sorted; a view the guest will not give is an error (its events would lie). */
static int take(struct vms_poll *p, struct snapshot *s)
{
	int err = 0;

	memset(s, 0, sizeof(*s)); /* the views not wanted stay empty */
	if (p->views & VMS_POLL_PROCESSES)
		err = vms_os_processes(p->vm, 0, &s->procs, &s->nr_procs);
	if (!err && (p->views & VMS_POLL_MODULES))
		err = vms_os_modules(p->vm, &s->mods, &s->nr_mods);
	if (!err && (p->views & VMS_POLL_SOCKETS))
		err = vms_os_sockets(p->vm, &s->socks, &s->nr_socks);
	if (err) {
		release(s);
		return err;
	}
	sort_array(s->procs, s->nr_procs, sizeof(*s->procs), by_process);
	sort_array(s->mods, s->nr_mods, sizeof(*s->mods), by_module);
	sort_array(s->socks, s->nr_socks, sizeof(*s->socks), by_socket);
	return 0;
}

static struct vms_event *event(struct vms_poll *p, const char *type)
{
	struct vms_event *ev = vms_ring_reserve(p->ring);

	if (ev)
		vms_event_init(ev, p->vm_name, VMS_SOURCE_POLL, type);
	return ev;
}

static void add_process(struct vms_event *ev, const struct vms_process *proc)
{
	vms_event_add_int(ev, "pid", proc->tgid);
	vms_event_add_int(ev, "ppid", proc->ppid);
	vms_event_add_uint(ev, "uid", proc->uid);
	vms_event_add_str(ev, "comm", proc->comm);
	if (proc->cmdline)
		vms_event_add_str(ev, "cmdline", proc->cmdline);
}

static int process_event(struct vms_poll *p, const struct vms_process *proc, int started)
{
	struct vms_event *ev = event(p, started ? "process_start" : "process_exit");

	if (!ev)
		return 0;
	add_process(ev, proc);
	vms_event_add_uint(ev, "start_time_ns", proc->start_time_ns);
	vms_ring_commit(p->ring);
	return 1;
}

/* Same pid and start time, another program: an exec (or a prctl(PR_SET_NAME)). */
static int exec_event(struct vms_poll *p, const struct vms_process *was,
		      const struct vms_process *now)
{
	struct vms_event *ev;

	/* Kernel threads never exec, but a worker's name shows its current work queue. */
	if (was->kernel_thread && now->kernel_thread)
		return 0;
	if (!strcmp(was->comm, now->comm) &&
	    (!was->cmdline || !now->cmdline || !strcmp(was->cmdline, now->cmdline)))
		return 0;
	ev = event(p, "process_exec");
	if (!ev)
		return 0;
	add_process(ev, now);
	vms_event_add_str(ev, "old_comm", was->comm);
	vms_ring_commit(p->ring);
	return 1;
}

/* The processes both readings have (both sorted by identity), checked for an exec. */
static int diff_execs(struct vms_poll *p, const struct snapshot *was, const struct snapshot *now)
{
	size_t i = 0, j = 0;
	int n = 0;

	while (i < was->nr_procs && j < now->nr_procs) {
		int c = by_process(&was->procs[i], &now->procs[j]);

		if (!c)
			n += exec_event(p, &was->procs[i], &now->procs[j]);
		i += c <= 0;
		j += c >= 0;
	}
	return n;
}

static int module_event(struct vms_poll *p, const struct vms_module *m, int loaded)
{
	struct vms_event *ev = event(p, loaded ? "module_load" : "module_unload");

	if (!ev)
		return 0;
	vms_event_add_str(ev, "name", m->name);
	vms_event_add_uint(ev, "base", m->base);
	vms_event_add_uint(ev, "size", m->size);
	vms_ring_commit(p->ring);
	return 1;
}

static int socket_event(struct vms_poll *p, const struct vms_socket *s, int opened)
{
	struct vms_event *ev = event(p, opened ? "socket_open" : "socket_close");

	if (!ev)
		return 0;
	vms_event_add_str(ev, "protocol", s->protocol);
	vms_event_add_str(ev, "local_address", s->local_address);
	vms_event_add_int(ev, "local_port", s->local_port);
	vms_event_add_str(ev, "remote_address", s->remote_address);
	vms_event_add_int(ev, "remote_port", s->remote_port);
	vms_event_add_str(ev, "state", s->state);
	if (s->pid >= 0)
		vms_event_add_int(ev, "pid", s->pid);
	vms_ring_commit(p->ring);
	return 1;
}

/* Merge two sorted arrays, reporting the entries only one side has. */
#define DIFF(old, nr_old, new, nr_new, cmp, report)                                  \
	({                                                                           \
		size_t i_ = 0, j_ = 0;                                               \
		int n_ = 0;                                                          \
		while (i_ < (nr_old) || j_ < (nr_new)) {                             \
			int c_ = i_ == (nr_old)	  ? 1                                \
				 : j_ == (nr_new) ? -1                               \
						  : cmp(&(old)[i_], &(new)[j_]);     \
			if (!c_) {                                                   \
				i_++, j_++;                                          \
				continue;                                            \
			}                                                            \
			n_ += c_ < 0 ? report(p, &(old)[i_++], 0)                     \
				     : report(p, &(new)[j_++], 1);                    \
		}                                                                    \
		n_;                                                                  \
	})

int vms_poll_start(struct vms_vm *vm, unsigned int views, struct vms_ring *ring,
		   struct vms_poll **ret)
{
	struct vms_poll *p;
	int err;

	if (!(views & VMS_POLL_ALL) || (views & ~VMS_POLL_ALL))
		return vm_error(vm, -EINVAL, "no view to poll (views 0x%x)", views);
	p = calloc(1, sizeof(*p));
	if (!p)
		return vm_error(vm, -ENOMEM, "out of memory");
	p->vm = vm;
	p->views = views;
	p->ring = ring;
	vms_vm_event_name(vm, p->vm_name, sizeof(p->vm_name));
	err = take(p, &p->last);
	if (err) {
		free(p);
		return err;
	}
	*ret = p;
	return 0;
}

int vms_poll_once(struct vms_poll *p)
{
	struct snapshot now;
	int err, n = 0;

	/* The VM ran since the last poll: translations and RAM residency may be stale. */
	vms_vm_flush_caches(p->vm);
	err = take(p, &now);

	if (err)
		return err;
	n += DIFF(p->last.procs, p->last.nr_procs, now.procs, now.nr_procs, by_process,
		  process_event);
	n += diff_execs(p, &p->last, &now);
	n += DIFF(p->last.mods, p->last.nr_mods, now.mods, now.nr_mods, by_module, module_event);
	n += DIFF(p->last.socks, p->last.nr_socks, now.socks, now.nr_socks, by_socket,
		  socket_event);
	release(&p->last);
	p->last = now;
	return n;
}

void vms_poll_free(struct vms_poll *p)
{
	if (!p)
		return;
	release(&p->last);
	free(p);
}
