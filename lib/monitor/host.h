/* SPDX-License-Identifier: MIT */
/* What host sampling keeps on a handle between samples (host.c, tap.c). */
#ifndef VMSCOPE_MONITOR_HOST_H
#define VMSCOPE_MONITOR_HOST_H

#include <stddef.h>

#include <vmscope/monitor.h>

#define HOST_REFRESH 30 /* samples between two looks at what rarely changes */

struct tap {
	char ifname[16];
	char device[64];
};

struct host_cache {
	int kvm; /* -1: not asked yet */
	size_t nr_vcpus;
	int *index, *tid;
	unsigned age; /* samples since the vCPU threads were asked */
	struct tap *taps;
	size_t nr_taps;
	int taps_known;
	unsigned taps_age;
};

/* The tap devices QEMU holds (pid's /dev/net/tun descriptors) and their counters. */
int host_read_nics(struct vms_vm *vm, struct host_cache *c, int pid, struct vms_host_metrics *m);
void host_taps_free(struct host_cache *c);

#endif
