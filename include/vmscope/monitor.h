/* SPDX-License-Identifier: MIT */
/*
 * vmscope: resource figures of a VM, from the host and from inside.
 *
 * vms_monitor_host() asks the host about a live VM with no help from the
 * guest: QEMU's process in /proc (its CPU time, RSS, page faults), each vCPU
 * thread's schedstat (time on a host CPU and time waiting for one),
 * query-blockstats for every disk device, the counters of the tap devices
 * QEMU holds open (its NICs), and KVM's own statistics (query-stats) when
 * the accelerator is KVM. vms_monitor_guest() reads what
 * the guest's own /proc would say from its RAM, through the OS driver.
 *
 * Counters are cumulative since QEMU (host) or the guest kernel (guest)
 * started; a rate is the difference of two samples over their times.
 */
#ifndef VMSCOPE_MONITOR_H
#define VMSCOPE_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include <vmscope/os.h>
#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vms_host_vcpu {
	int index;	     /* QEMU's cpu-index */
	int thread_id;	     /* the host thread that runs it */
	uint64_t run_ns;     /* on a host CPU */
	uint64_t wait_ns;    /* runnable, waiting in a host run queue */
	uint64_t timeslices; /* times it was scheduled */
};

struct vms_host_disk {
	char device[64]; /* the guest device's qdev id (or path), as query-blockstats says */
	char node[64];	 /* its block node */
	uint64_t read_bytes, write_bytes, read_ops, write_ops, flush_ops, discard_ops;
};

/* A NIC backed by a tap device, counted as the guest sees it: its rx is the tap's tx. */
struct vms_host_nic {
	char device[64]; /* the guest NIC's qdev id, or the tap's name when QEMU does not say */
	char ifname[16]; /* the host's tap device */
	uint64_t rx_bytes, rx_packets, rx_dropped, tx_bytes, tx_packets, tx_dropped;
};

struct vms_kvm_stat {
	char name[64]; /* KVM's own name, e.g. "exits", "halt_exits" */
	uint64_t value; /* summed over vCPUs for per-vCPU statistics */
	int per_vcpu;
};

struct vms_host_metrics {
	uint64_t time_ns;	 /* CLOCK_REALTIME when the sample was taken */
	int qemu_pid;
	uint64_t cpu_user_ns;	 /* QEMU's whole process: every vCPU and I/O thread */
	uint64_t cpu_system_ns;
	uint64_t rss_bytes;
	uint64_t minor_faults, major_faults;
	size_t nr_vcpus;
	struct vms_host_vcpu *vcpus;
	size_t nr_disks;
	struct vms_host_disk *disks;
	size_t nr_kvm_stats;
	struct vms_kvm_stat *kvm_stats;
	char kvm_stats_absent[128]; /* why kvm_stats is empty ("" when it is not) */
	size_t nr_nics;		    /* tap-backed NICs (user-mode networking has no host device) */
	struct vms_host_nic *nics;
};

/* One sample of the host's figures for a live VM (qmp: target). */
int vms_monitor_host(struct vms_vm *vm, struct vms_host_metrics *ret);
void vms_host_metrics_release(struct vms_host_metrics *metrics);

/*
 * The guest's own figures, read from its RAM: what its /proc/uptime,
 * /proc/loadavg, /proc/stat, /proc/vmstat, /proc/meminfo and /proc/diskstats
 * would say at the kernel's last timekeeping update (and /proc/net/dev for
 * the drivers vmscope can read). disks and nets are empty, with *_absent
 * saying why, when the kernel's layout is not one vmscope knows.
 */
struct vms_guest_metrics {
	uint64_t time_ns; /* host CLOCK_REALTIME when the sample was taken */
	struct vms_sysinfo sys;
	struct vms_kernel_counters counters;
	size_t nr_cpus;
	struct vms_cpu_time *cpus;
	size_t nr_disks;
	struct vms_block_stats *disks;
	char disks_absent[160];
	char partial[160]; /* why a list was read only in part ("" when whole) */
	size_t nr_nets;
	struct vms_net_stats *nets;
	char nets_absent[160];
};

/* One sample of the guest's figures (any target the Linux driver reads). */
int vms_monitor_guest(struct vms_vm *vm, struct vms_guest_metrics *ret);
void vms_guest_metrics_release(struct vms_guest_metrics *metrics);

/*
 * Time series for models and plots: rates between two samples of one VM and
 * gauges of the later one. Rates are per second of host time between the
 * two reads, the guest's too: its clock stands still while its CPUs sleep
 * tickless, so its uptime would stretch and shrink the windows, while its
 * busy CPU time is counted tick by tick as it happens. CPU modes are in CPUs
 * (1.0 = one CPU busy throughout), as host_vcpu_run is in vCPUs. A series
 * whose side is absent (NULL) is NaN. Names, in order: vms_monitor_series_names().
 */
#define VMS_SERIES_MAX 48

size_t vms_monitor_series_names(const char *const **ret_names);
/* A series' place in out[] below, by name; -1 if there is none. */
int vms_monitor_series_index(const char *name);
/* out[] gets vms_monitor_series_names()'s count of values. */
void vms_monitor_series(const struct vms_host_metrics *host0, const struct vms_host_metrics *host1,
			const struct vms_guest_metrics *guest0,
			const struct vms_guest_metrics *guest1, double *out);

#ifdef __cplusplus
}
#endif
#endif
