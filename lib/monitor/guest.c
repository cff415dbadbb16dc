// SPDX-License-Identifier: MIT
/*
 * A VM's figures as its own monitoring would see them, by introspection:
 * the OS driver's sysinfo, CPU times, kernel counters and block device
 * statistics, taken together. The guest may be running: each figure is
 * read once, so a sample spans the few hundred microseconds of its reads.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vmscope/monitor.h>

#include "core/internal.h"

static uint64_t realtime_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static void note_partial(struct vms_vm *vm, struct vms_guest_metrics *m)
{
	const char *why = vms_view_warning(vm);

	if (why && !m->partial[0])
		snprintf(m->partial, sizeof(m->partial), "%s", why);
}

int vms_monitor_guest(struct vms_vm *vm, struct vms_guest_metrics *ret)
{
	struct vms_guest_metrics m = { 0 };
	int err;

	m.time_ns = realtime_ns();
	err = vms_os_sysinfo(vm, &m.sys);
	if (!err)
		err = vms_os_cpu_times(vm, &m.cpus, &m.nr_cpus);
	if (!err)
		err = vms_os_kernel_counters(vm, &m.counters);
	if (err) {
		vms_guest_metrics_release(&m);
		return err;
	}
	note_partial(vm, &m);
	err = vms_os_block_stats(vm, &m.disks, &m.nr_disks);
	if (err) {
		snprintf(m.disks_absent, sizeof(m.disks_absent), "%s", vms_last_error(vm));
		m.nr_disks = 0;
	}
	note_partial(vm, &m);
	if (vms_os_net_stats(vm, &m.nets, &m.nr_nets)) {
		snprintf(m.nets_absent, sizeof(m.nets_absent), "%s", vms_last_error(vm));
		m.nr_nets = 0;
	}
	note_partial(vm, &m);
	*ret = m;
	return 0;
}

void vms_guest_metrics_release(struct vms_guest_metrics *m)
{
	if (!m)
		return;
	free(m->cpus);
	free(m->disks);
	free(m->nets);
	memset(m, 0, sizeof(*m));
}
