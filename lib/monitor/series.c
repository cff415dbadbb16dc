// SPDX-License-Identifier: MIT
/*
 * Samples into time series: each series is a rate of a counter between two
 * samples or a gauge of the later one. The table below is the one place a
 * series is named; record-metrics, model fit and the exporter's estimates
 * all use these names.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include <vmscope/monitor.h>

#include "core/internal.h"

enum side { HOST, GUEST };
enum kind { RATE, GAUGE };

struct series {
	const char *name;
	enum side side;
	enum kind kind;
	double (*get)(const void *sample); /* the counter or gauge, from one side's sample */
};

#define H(s) ((const struct vms_host_metrics *)(s))
#define G(s) ((const struct vms_guest_metrics *)(s))

static double host_vcpu_run(const void *s)
{
	double t = 0;

	for (size_t i = 0; i < H(s)->nr_vcpus; i++)
		t += (double)H(s)->vcpus[i].run_ns / 1e9;
	return t;
}

static double host_vcpu_wait(const void *s)
{
	double t = 0;

	for (size_t i = 0; i < H(s)->nr_vcpus; i++)
		t += (double)H(s)->vcpus[i].wait_ns / 1e9;
	return t;
}

static double host_disk(const void *s, int field)
{
	double t = 0;

	for (size_t i = 0; i < H(s)->nr_disks; i++) {
		const struct vms_host_disk *d = &H(s)->disks[i];
		uint64_t v[] = { d->read_bytes, d->write_bytes, d->read_ops, d->write_ops };

		t += (double)v[field];
	}
	return t;
}

static double host_disk_rb(const void *s) { return host_disk(s, 0); }
static double host_disk_wb(const void *s) { return host_disk(s, 1); }
static double host_disk_ro(const void *s) { return host_disk(s, 2); }
static double host_disk_wo(const void *s) { return host_disk(s, 3); }
static double host_net(const void *s, int tx)
{
	double t = 0;

	for (size_t i = 0; i < H(s)->nr_nics; i++)
		t += (double)(tx ? H(s)->nics[i].tx_bytes : H(s)->nics[i].rx_bytes);
	return t;
}

static double host_net_rx(const void *s) { return host_net(s, 0); }
static double host_net_tx(const void *s) { return host_net(s, 1); }
static double host_user(const void *s) { return (double)H(s)->cpu_user_ns / 1e9; }
static double host_system(const void *s) { return (double)H(s)->cpu_system_ns / 1e9; }
static double host_rss(const void *s) { return (double)H(s)->rss_bytes; }
static double host_minflt(const void *s) { return (double)H(s)->minor_faults; }
static double host_majflt(const void *s) { return (double)H(s)->major_faults; }

/* Seconds over every CPU in one mode (offset of its field in vms_cpu_time). */
static double guest_cpu(const void *s, size_t field)
{
	double t = 0;

	for (size_t i = 0; i < G(s)->nr_cpus; i++)
		t += (double)*(const uint64_t *)((const char *)&G(s)->cpus[i] + field) / 1e9;
	return t;
}

#define CPU_MODE(fn, field)                                                                        \
	static double fn(const void *s)                                                            \
	{                                                                                          \
		return guest_cpu(s, offsetof(struct vms_cpu_time, field));                         \
	}
CPU_MODE(guest_user, user_ns)
CPU_MODE(guest_nice, nice_ns)
CPU_MODE(guest_system, system_ns)
CPU_MODE(guest_idle, idle_ns)
CPU_MODE(guest_iowait, iowait_ns)
CPU_MODE(guest_irq, irq_ns)
CPU_MODE(guest_softirq, softirq_ns)
CPU_MODE(guest_steal, steal_ns)

static double guest_busy(const void *s)
{
	return guest_user(s) + guest_nice(s) + guest_system(s) + guest_irq(s) + guest_softirq(s) +
	       guest_steal(s);
}

/* Whole disks only: a partition's I/O is counted on its disk as well. */
static double guest_disk(const void *s, int write)
{
	double t = 0;

	for (size_t i = 0; i < G(s)->nr_disks; i++)
		if (!G(s)->disks[i].partition)
			t += (double)(write ? G(s)->disks[i].write_bytes : G(s)->disks[i].read_bytes);
	return t;
}

/* Every counted interface but loopback: what crosses the VM's edge. */
static double guest_net(const void *s, int tx)
{
	double t = 0;

	for (size_t i = 0; i < G(s)->nr_nets; i++) {
		const struct vms_net_stats *n = &G(s)->nets[i];

		if (n->counted && strcmp(n->driver, "loopback"))
			t += (double)(tx ? n->tx_bytes : n->rx_bytes);
	}
	return t;
}

static double guest_net_rx(const void *s) { return guest_net(s, 0); }
static double guest_net_tx(const void *s) { return guest_net(s, 1); }
static double guest_disk_rb(const void *s) { return guest_disk(s, 0); }
static double guest_disk_wb(const void *s) { return guest_disk(s, 1); }
static double guest_load1(const void *s) { return G(s)->sys.load[0]; }
static double guest_load5(const void *s) { return G(s)->sys.load[1]; }
static double guest_load15(const void *s) { return G(s)->sys.load[2]; }
static double guest_tasks(const void *s) { return (double)G(s)->sys.tasks; }
static double guest_running(const void *s) { return (double)G(s)->counters.running; }
static double guest_blocked(const void *s) { return (double)G(s)->counters.blocked; }
static double guest_ctxt(const void *s) { return (double)G(s)->sys.context_switches; }
static double guest_forks(const void *s) { return (double)G(s)->sys.forks; }
static double guest_faults(const void *s) { return (double)G(s)->counters.page_faults; }
static double guest_majflt(const void *s) { return (double)G(s)->counters.major_faults; }
static double guest_free(const void *s) { return (double)G(s)->sys.mem_free_bytes; }
static double guest_avail(const void *s) { return (double)G(s)->sys.mem_available_bytes; }
static double guest_buffers(const void *s) { return (double)G(s)->counters.mem_buffers_bytes; }
static double guest_cached(const void *s) { return (double)G(s)->counters.mem_cached_bytes; }
static double guest_used(const void *s)
{
	return (double)G(s)->sys.mem_total_bytes - (double)G(s)->sys.mem_available_bytes;
}

static const struct series table[] = {
	{ "host_vcpu_run", HOST, RATE, host_vcpu_run },
	{ "host_vcpu_wait", HOST, RATE, host_vcpu_wait },
	{ "host_qemu_user", HOST, RATE, host_user },
	{ "host_qemu_system", HOST, RATE, host_system },
	{ "host_rss_bytes", HOST, GAUGE, host_rss },
	{ "host_minor_faults", HOST, RATE, host_minflt },
	{ "host_major_faults", HOST, RATE, host_majflt },
	{ "host_disk_read_bytes", HOST, RATE, host_disk_rb },
	{ "host_disk_write_bytes", HOST, RATE, host_disk_wb },
	{ "host_disk_read_ops", HOST, RATE, host_disk_ro },
	{ "host_disk_write_ops", HOST, RATE, host_disk_wo },
	{ "host_net_rx_bytes", HOST, RATE, host_net_rx },
	{ "host_net_tx_bytes", HOST, RATE, host_net_tx },
	{ "guest_cpu_busy", GUEST, RATE, guest_busy },
	{ "guest_cpu_user", GUEST, RATE, guest_user },
	{ "guest_cpu_system", GUEST, RATE, guest_system },
	{ "guest_cpu_idle", GUEST, RATE, guest_idle },
	{ "guest_cpu_iowait", GUEST, RATE, guest_iowait },
	{ "guest_cpu_steal", GUEST, RATE, guest_steal },
	{ "guest_load1", GUEST, GAUGE, guest_load1 },
	{ "guest_load5", GUEST, GAUGE, guest_load5 },
	{ "guest_load15", GUEST, GAUGE, guest_load15 },
	{ "guest_tasks", GUEST, GAUGE, guest_tasks },
	{ "guest_running", GUEST, GAUGE, guest_running },
	{ "guest_blocked", GUEST, GAUGE, guest_blocked },
	{ "guest_context_switches", GUEST, RATE, guest_ctxt },
	{ "guest_forks", GUEST, RATE, guest_forks },
	{ "guest_page_faults", GUEST, RATE, guest_faults },
	{ "guest_major_faults", GUEST, RATE, guest_majflt },
	{ "guest_mem_free_bytes", GUEST, GAUGE, guest_free },
	{ "guest_mem_available_bytes", GUEST, GAUGE, guest_avail },
	{ "guest_mem_used_bytes", GUEST, GAUGE, guest_used },
	{ "guest_mem_buffers_bytes", GUEST, GAUGE, guest_buffers },
	{ "guest_mem_cached_bytes", GUEST, GAUGE, guest_cached },
	{ "guest_disk_read_bytes", GUEST, RATE, guest_disk_rb },
	{ "guest_disk_write_bytes", GUEST, RATE, guest_disk_wb },
	{ "guest_net_rx_bytes", GUEST, RATE, guest_net_rx },
	{ "guest_net_tx_bytes", GUEST, RATE, guest_net_tx },
};

_Static_assert(ARRAY_SIZE(table) <= VMS_SERIES_MAX, "VMS_SERIES_MAX is too small");

size_t vms_monitor_series_names(const char *const **ret_names)
{
	static const char *names[ARRAY_SIZE(table)];

	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		names[i] = table[i].name;
	*ret_names = names;
	return ARRAY_SIZE(table);
}

int vms_monitor_series_index(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (!strcmp(table[i].name, name))
			return (int)i;
	return -1;
}

void vms_monitor_series(const struct vms_host_metrics *h0, const struct vms_host_metrics *h1,
			const struct vms_guest_metrics *g0, const struct vms_guest_metrics *g1,
			double *out)
{
	double host_dt = h0 && h1 ? (double)(h1->time_ns - h0->time_ns) / 1e9 : 0;
	double guest_dt = g0 && g1 ? (double)(g1->time_ns - g0->time_ns) / 1e9 : 0;

	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		const struct series *s = &table[i];
		const void *a = s->side == HOST ? (const void *)h0 : (const void *)g0;
		const void *b = s->side == HOST ? (const void *)h1 : (const void *)g1;
		double dt = s->side == HOST ? host_dt : guest_dt;

		if (!b || (s->kind != GAUGE && (!a || !(dt > 0))))
			out[i] = NAN;
		else if (s->kind == GAUGE)
			out[i] = s->get(b);
		else
			out[i] = (s->get(b) - s->get(a)) / dt;
	}
}
