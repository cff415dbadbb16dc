// SPDX-License-Identifier: MIT
/*
 * A VM's figures as the host sees them, with nothing from the guest:
 *   vCPUs    query-cpus-fast names each vCPU's thread; the kernel's
 *            /proc/PID/task/TID/schedstat says, in ns, how long it ran and
 *            how long it waited runnable
 *   process  /proc/PID/stat (CPU time in clock ticks, page faults) and
 *            /proc/PID/statm (resident pages) of QEMU itself
 *   disks    query-blockstats, QEMU's own accounting per guest device
 *   KVM      query-stats for the VM and its vCPUs; under TCG there are none
 * What does not change between samples is kept on the handle: whether the
 * accelerator is KVM (asked once, query-kvm), the vCPU threads (asked again
 * every HOST_REFRESH samples, or at once when a thread is gone) and the tap
 * devices (tap.c). So a
 * sample under TCG costs one QMP round trip (query-blockstats), under KVM
 * three; everything else is a few /proc reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <vmscope/monitor.h>

#include "access/qmp.h"
#include "core/internal.h"
#include "monitor/host.h"

#define MAX_VCPUS   4096
#define MAX_DISKS   1024
#define MAX_KVM	    512

static void cache_free(void *state)
{
	struct host_cache *c = state;

	if (c) {
		free(c->index);
		free(c->tid);
		host_taps_free(c);
		free(c);
	}
}

static struct host_cache *cache_of(struct vms_vm *vm)
{
	struct host_cache *c = vm->monitor_state;

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		c->kvm = -1;
		vm->monitor_state = c;
		vm->monitor_state_free = cache_free;
	}
	return c;
}

/* A small /proc file into buf, NUL-terminated; the length or -errno. */
static ssize_t read_proc(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

static int qmp_fail(struct vms_vm *vm, int err)
{
	return vm_error(vm, err, "%s", qmp_error(vm->qmp));
}

/* utime, stime, minflt, majflt: after the command name, whose ')' may repeat inside. */
static int read_process(struct vms_vm *vm, int pid, struct vms_host_metrics *m)
{
	unsigned long long minflt, majflt, utime, stime, resident;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char path[64], buf[2048], *end;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_proc(path, buf, sizeof(buf)) <= 0 || !(end = strrchr(buf, ')')))
		return vm_error(vm, -ESRCH, "QEMU's process %d is gone", pid);
	/* Fields 3.. after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime. */
	if (sscanf(end + 1, " %*c %*d %*d %*d %*d %*d %*u %llu %*u %llu %*u %llu %llu", &minflt,
		   &majflt, &utime, &stime) != 4)
		return vm_error(vm, -EPROTO, "%s is not as Linux writes it", path);
	m->minor_faults = minflt;
	m->major_faults = majflt;
	m->cpu_user_ns = utime * (1000000000ull / (unsigned long long)ticks);
	m->cpu_system_ns = stime * (1000000000ull / (unsigned long long)ticks);
	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	if (read_proc(path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%*u %llu", &resident) != 1)
		return vm_error(vm, -ESRCH, "QEMU's process %d is gone", pid);
	m->rss_bytes = resident * (unsigned long long)page;
	return 0;
}

/* 0, or -ESRCH when the thread is gone (the vCPU list changed). */
static int read_schedstat(int pid, struct vms_host_vcpu *v)
{
	unsigned long long run, wait, slices;
	char path[64], buf[128];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, v->thread_id);
	if (read_proc(path, buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3)
		return -ESRCH;
	v->run_ns = run;
	v->wait_ns = wait;
	v->timeslices = slices;
	return 0;
}

static int ask_vcpus(struct vms_vm *vm, struct host_cache *c)
{
	json_t *list = NULL, *cpu;
	size_t i, n;
	int err = qmp_execute(vm->qmp, "query-cpus-fast", NULL, &list);

	if (err)
		return qmp_fail(vm, err);
	n = json_is_array(list) ? json_array_size(list) : 0;
	n = n > MAX_VCPUS ? MAX_VCPUS : n;
	free(c->index);
	free(c->tid);
	c->index = calloc(n ? n : 1, sizeof(*c->index));
	c->tid = calloc(n ? n : 1, sizeof(*c->tid));
	c->nr_vcpus = 0;
	if (!c->index || !c->tid) {
		json_decref(list);
		return vm_error(vm, -ENOMEM, "out of memory");
	}
	json_array_foreach (list, i, cpu) {
		if (i >= n)
			break;
		c->index[i] = (int)json_integer_value(json_object_get(cpu, "cpu-index"));
		c->tid[i] = (int)json_integer_value(json_object_get(cpu, "thread-id"));
	}
	c->nr_vcpus = n;
	c->age = 0;
	json_decref(list);
	return 0;
}

static int read_vcpus(struct vms_vm *vm, int pid, struct vms_host_metrics *m)
{
	struct host_cache *c = cache_of(vm);
	int err = 0, again = 0;

	if (!c)
		return vm_error(vm, -ENOMEM, "out of memory");
	if (!c->index || ++c->age >= HOST_REFRESH)
		err = ask_vcpus(vm, c);
	for (int round = 0; !err && round < 2; round++) {
		free(m->vcpus);
		m->nr_vcpus = c->nr_vcpus;
		m->vcpus = calloc(m->nr_vcpus ? m->nr_vcpus : 1, sizeof(*m->vcpus));
		if (!m->vcpus)
			return vm_error(vm, -ENOMEM, "out of memory");
		again = 0;
		for (size_t i = 0; i < m->nr_vcpus; i++) {
			m->vcpus[i].index = c->index[i];
			m->vcpus[i].thread_id = c->tid[i];
			if (c->tid[i] > 0 && read_schedstat(pid, &m->vcpus[i]))
				again = 1;
		}
		if (!again || round)
			break;
		err = ask_vcpus(vm, c); /* a thread went away: vCPUs changed, or QEMU did */
	}
	return err;
}

static uint64_t stat_u64(json_t *stats, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(stats, key));

	return v > 0 ? (uint64_t)v : 0;
}

/* "/machine/peripheral/vda/virtio-backend" is the device the user named vda. */
static void device_name(json_t *dev, char *buf, size_t len)
{
	const char *name = json_string_value(json_object_get(dev, "device"));
	const char *qdev = json_string_value(json_object_get(dev, "qdev"));
	const char *prefix = "/machine/peripheral/";

	if (name && *name) {
		snprintf(buf, len, "%s", name);
	} else if (qdev && !strncmp(qdev, prefix, strlen(prefix))) {
		qdev += strlen(prefix);
		snprintf(buf, len, "%.*s", (int)strcspn(qdev, "/"), qdev);
	} else {
		snprintf(buf, len, "%s", qdev ? qdev : "");
	}
}

static int read_disks(struct vms_vm *vm, struct vms_host_metrics *m)
{
	json_t *list = NULL, *dev;
	size_t i, n;
	int err = qmp_execute(vm->qmp, "query-blockstats", NULL, &list);

	if (err)
		return qmp_fail(vm, err);
	n = json_is_array(list) ? json_array_size(list) : 0;
	m->disks = calloc(n ? (n > MAX_DISKS ? MAX_DISKS : n) : 1, sizeof(*m->disks));
	if (!m->disks) {
		json_decref(list);
		return vm_error(vm, -ENOMEM, "out of memory");
	}
	json_array_foreach (list, i, dev) {
		json_t *stats = json_object_get(dev, "stats");
		const char *node = json_string_value(json_object_get(dev, "node-name"));
		struct vms_host_disk *d;

		if (m->nr_disks >= MAX_DISKS)
			break;
		d = &m->disks[m->nr_disks++];
		device_name(dev, d->device, sizeof(d->device));
		snprintf(d->node, sizeof(d->node), "%s", node ? node : "");
		d->read_bytes = stat_u64(stats, "rd_bytes");
		d->write_bytes = stat_u64(stats, "wr_bytes");
		d->read_ops = stat_u64(stats, "rd_operations");
		d->write_ops = stat_u64(stats, "wr_operations");
		d->flush_ops = stat_u64(stats, "flush_operations");
		d->discard_ops = stat_u64(stats, "unmap_operations");
	}
	json_decref(list);
	return 0;
}

/* Add one provider's integer statistics (histograms are left out). */
static int add_kvm_stats(struct vms_host_metrics *m, json_t *stats, int per_vcpu)
{
	json_t *stat;
	size_t i;

	json_array_foreach (stats, i, stat) {
		const char *name = json_string_value(json_object_get(stat, "name"));
		json_t *value = json_object_get(stat, "value");
		struct vms_kvm_stat *s = NULL;

		if (!name || !json_is_integer(value))
			continue;
		for (size_t j = 0; j < m->nr_kvm_stats && !s; j++)
			if (m->kvm_stats[j].per_vcpu == per_vcpu && !strcmp(m->kvm_stats[j].name, name))
				s = &m->kvm_stats[j];
		if (!s) {
			if (m->nr_kvm_stats >= MAX_KVM)
				continue;
			s = &m->kvm_stats[m->nr_kvm_stats++];
			snprintf(s->name, sizeof(s->name), "%s", name);
			s->per_vcpu = per_vcpu;
		}
		s->value += (uint64_t)json_integer_value(value);
	}
	return 0;
}

/* query-kvm once per handle: the accelerator does not change while QEMU runs. */
static int kvm_enabled(struct vms_vm *vm)
{
	struct host_cache *c = cache_of(vm);
	json_t *ret = NULL;

	if (!c)
		return 0;
	if (c->kvm < 0 && !qmp_execute(vm->qmp, "query-kvm", NULL, &ret)) {
		c->kvm = json_is_true(json_object_get(ret, "enabled"));
		json_decref(ret);
	}
	return c->kvm > 0;
}

static void read_kvm(struct vms_vm *vm, struct vms_host_metrics *m)
{
	static const char *const targets[] = { "vm", "vcpu" };

	if (!kvm_enabled(vm)) {
		snprintf(m->kvm_stats_absent, sizeof(m->kvm_stats_absent),
			 "no KVM statistics: the accelerator is not KVM");
		return;
	}

	m->kvm_stats = calloc(MAX_KVM, sizeof(*m->kvm_stats));
	if (!m->kvm_stats) {
		snprintf(m->kvm_stats_absent, sizeof(m->kvm_stats_absent), "out of memory");
		return;
	}
	for (size_t t = 0; t < ARRAY_SIZE(targets); t++) {
		json_t *list = NULL, *entry;
		size_t i;

		if (qmp_execute(vm->qmp, "query-stats", json_pack("{s:s}", "target", targets[t]),
				&list)) {
			snprintf(m->kvm_stats_absent, sizeof(m->kvm_stats_absent),
				 "QEMU answers no query-stats (before 7.1?)");
			return;
		}
		json_array_foreach (list, i, entry)
			if (!strcmp(json_string_value(json_object_get(entry, "provider")) ?: "", "kvm"))
				add_kvm_stats(m, json_object_get(entry, "stats"), t == 1);
		json_decref(list);
	}
	if (!m->nr_kvm_stats)
		snprintf(m->kvm_stats_absent, sizeof(m->kvm_stats_absent),
			 "no KVM statistics: the accelerator is not KVM");
}

int vms_monitor_host(struct vms_vm *vm, struct vms_host_metrics *ret)
{
	struct vms_host_metrics m = { 0 };
	struct timespec now;
	int err;

	if (!vm->qmp)
		return vm_error(vm, -ENOTSUP, "host figures need a live VM (a qmp: target)");
	m.qemu_pid = qmp_peer_pid(vm->qmp);
	if (m.qemu_pid <= 0)
		return vm_error(vm, -ESRCH, "cannot tell QEMU's process from its QMP socket");
	clock_gettime(CLOCK_REALTIME, &now);
	m.time_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	err = read_process(vm, m.qemu_pid, &m);
	if (!err)
		err = read_vcpus(vm, m.qemu_pid, &m);
	if (!err)
		err = read_disks(vm, &m);
	if (!err && cache_of(vm))
		host_read_nics(vm, cache_of(vm), m.qemu_pid, &m);
	if (!err)
		read_kvm(vm, &m);
	if (err) {
		vms_host_metrics_release(&m);
		return err;
	}
	*ret = m;
	return 0;
}

void vms_host_metrics_release(struct vms_host_metrics *m)
{
	if (!m)
		return;
	free(m->vcpus);
	free(m->disks);
	free(m->kvm_stats);
	free(m->nics);
	memset(m, 0, sizeof(*m));
}
