// SPDX-License-Identifier: MIT
/*
 * Prometheus text exposition of a VM's figures. One table names every
 * family; each family's writer prints this VM's lines for it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/prometheus.h>

#include "core/internal.h"

struct family {
	const char *name, *type, *help;
	void (*write)(FILE *f, const struct family *fam, const struct vms_prom_vm *vm);
	size_t field; /* for the generic writers: which figure */
};

/* A label value as the format wants it: backslash, quote and newline escaped. */
static void label(FILE *f, const char *key, const char *value, int first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", key);
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void value(FILE *f, double v)
{
	if (isnan(v))
		fputs(" NaN\n", f);
	else
		fprintf(f, " %.15g\n", v);
}

/* name{vm="..."[,key="..."]} value */
static void sample(FILE *f, const struct family *fam, const struct vms_prom_vm *vm,
		   const char *key, const char *key_value, double v)
{
	fprintf(f, "%s{", fam->name);
	label(f, "vm", vm->name, 1);
	if (key)
		label(f, key, key_value, 0);
	fputc('}', f);
	value(f, v);
}

static void write_up(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	sample(f, fam, vm, NULL, NULL, vm->up);
}

static void write_info(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	char pid[16] = "", vcpus[16] = "";

	if (!vm->host && !vm->guest)
		return; /* never reached: nothing known of it */
	if (vm->host) {
		snprintf(pid, sizeof(pid), "%d", vm->host->qemu_pid);
		snprintf(vcpus, sizeof(vcpus), "%zu", vm->host->nr_vcpus);
	}
	fprintf(f, "%s{", fam->name);
	label(f, "vm", vm->name, 1);
	label(f, "qemu_pid", pid, 0);
	label(f, "vcpus", vcpus, 0);
	label(f, "kernel_release", vm->guest ? vm->guest->sys.release : "", 0);
	label(f, "kvm", vm->host && vm->host->nr_kvm_stats ? "yes" : "no", 0);
	fputs("} 1\n", f);
}

static void write_sample_time(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	if (vm->sample_time_s > 0)
		sample(f, fam, vm, NULL, NULL, vm->sample_time_s);
}

static void write_sample_duration(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	if (vm->sample_time_s > 0)
		sample(f, fam, vm, NULL, NULL, vm->sample_duration_s);
}

/* -- host ------------------------------------------------------------------ */

enum { VCPU_RUN, VCPU_WAIT };

static void write_vcpu(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	for (size_t i = 0; vm->host && i < vm->host->nr_vcpus; i++) {
		const struct vms_host_vcpu *v = &vm->host->vcpus[i];
		char index[16];

		snprintf(index, sizeof(index), "%d", v->index);
		sample(f, fam, vm, "vcpu", index,
		       (double)(fam->field == VCPU_RUN ? v->run_ns : v->wait_ns) / 1e9);
	}
}

enum { QEMU_USER, QEMU_SYSTEM, QEMU_RSS, QEMU_MINFLT, QEMU_MAJFLT };

static void write_qemu(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	const struct vms_host_metrics *h = vm->host;
	double v[] = { 0, 0, 0, 0, 0 };

	if (!h)
		return;
	v[QEMU_USER] = (double)h->cpu_user_ns / 1e9;
	v[QEMU_SYSTEM] = (double)h->cpu_system_ns / 1e9;
	v[QEMU_RSS] = (double)h->rss_bytes;
	v[QEMU_MINFLT] = (double)h->minor_faults;
	v[QEMU_MAJFLT] = (double)h->major_faults;
	sample(f, fam, vm, NULL, NULL, v[fam->field]);
}

enum { BLK_RB, BLK_WB, BLK_RO, BLK_WO, BLK_FO, BLK_DO };

static void write_block(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	for (size_t i = 0; vm->host && i < vm->host->nr_disks; i++) {
		const struct vms_host_disk *d = &vm->host->disks[i];
		uint64_t v[] = { d->read_bytes, d->write_bytes, d->read_ops,
				 d->write_ops,	d->flush_ops,	d->discard_ops };

		sample(f, fam, vm, "device", d->device, (double)v[fam->field]);
	}
}

enum { NET_RB, NET_RP, NET_TB, NET_TP };

static void write_net(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	for (size_t i = 0; vm->host && i < vm->host->nr_nics; i++) {
		const struct vms_host_nic *n = &vm->host->nics[i];
		uint64_t v[] = { n->rx_bytes, n->rx_packets, n->tx_bytes, n->tx_packets };

		sample(f, fam, vm, "device", n->device, (double)v[fam->field]);
	}
}

/* -- guest ----------------------------------------------------------------- */

static void write_guest_cpu(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	static const char *const modes[] = { "user", "nice",	"system", "idle",
					     "iowait", "irq", "softirq", "steal" };

	for (size_t i = 0; vm->guest && i < vm->guest->nr_cpus; i++) {
		const struct vms_cpu_time *c = &vm->guest->cpus[i];
		uint64_t ns[] = { c->user_ns, c->nice_ns, c->system_ns,	 c->idle_ns,
				  c->iowait_ns, c->irq_ns, c->softirq_ns, c->steal_ns };
		char cpu[16];

		if (!c->online)
			continue;
		snprintf(cpu, sizeof(cpu), "%d", c->cpu);
		for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
			fprintf(f, "%s{", fam->name);
			label(f, "vm", vm->name, 1);
			label(f, "cpu", cpu, 0);
			label(f, "mode", modes[m], 0);
			fputc('}', f);
			value(f, (double)ns[m] / 1e9);
		}
	}
}

enum { G_LOAD1, G_LOAD5, G_LOAD15, G_UPTIME, G_RUNNING, G_BLOCKED, G_THREADS, G_CTXT, G_FORKS,
       G_PGFAULT, G_PGMAJFAULT, G_MEM_TOTAL, G_MEM_FREE, G_MEM_AVAIL, G_MEM_BUFFERS,
       G_MEM_CACHED, G_COUNT };

static void write_guest(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	const struct vms_guest_metrics *g = vm->guest;
	double v[G_COUNT];

	if (!g)
		return;
	v[G_LOAD1] = g->sys.load[0];
	v[G_LOAD5] = g->sys.load[1];
	v[G_LOAD15] = g->sys.load[2];
	v[G_UPTIME] = g->sys.uptime_s;
	v[G_RUNNING] = (double)g->counters.running;
	v[G_BLOCKED] = (double)g->counters.blocked;
	v[G_THREADS] = (double)g->sys.tasks;
	v[G_CTXT] = (double)g->sys.context_switches;
	v[G_FORKS] = (double)g->sys.forks;
	v[G_PGFAULT] = (double)g->counters.page_faults;
	v[G_PGMAJFAULT] = (double)g->counters.major_faults;
	v[G_MEM_TOTAL] = (double)g->sys.mem_total_bytes;
	v[G_MEM_FREE] = (double)g->sys.mem_free_bytes;
	v[G_MEM_AVAIL] = (double)g->sys.mem_available_bytes;
	v[G_MEM_BUFFERS] = (double)g->counters.mem_buffers_bytes;
	v[G_MEM_CACHED] = (double)g->counters.mem_cached_bytes;
	sample(f, fam, vm, NULL, NULL, v[fam->field]);
}

enum { GD_RB, GD_WB, GD_RIO, GD_WIO };

static void write_guest_disk(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	for (size_t i = 0; vm->guest && i < vm->guest->nr_disks; i++) {
		const struct vms_block_stats *d = &vm->guest->disks[i];
		uint64_t v[] = { d->read_bytes, d->write_bytes, d->read_ios, d->write_ios };

		sample(f, fam, vm, "device", d->name, (double)v[fam->field]);
	}
}

enum { GN_RB, GN_RP, GN_TB, GN_TP };

static void write_guest_net(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	for (size_t i = 0; vm->guest && i < vm->guest->nr_nets; i++) {
		const struct vms_net_stats *n = &vm->guest->nets[i];
		uint64_t v[] = { n->rx_bytes, n->rx_packets, n->tx_bytes, n->tx_packets };

		if (n->counted)
			sample(f, fam, vm, "device", n->name, (double)v[fam->field]);
	}
}

/* Estimates carry the name of the series they stand for. */
static void write_estimates(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	const double *v = fam->field ? vm->estimate_fits : vm->estimates;

	for (size_t i = 0; v && i < vm->nr_estimates; i++)
		if (isfinite(v[i]))
			sample(f, fam, vm, "series", vm->estimate_names[i], v[i]);
}

static void write_guest_time(FILE *f, const struct family *fam, const struct vms_prom_vm *vm)
{
	if (vm->guest)
		sample(f, fam, vm, NULL, NULL, (double)vm->guest->time_ns / 1e9);
}

#define GUEST(n, t, h, field) { "vmscope_guest_" n, t, h, write_guest, field }

static const struct family families[] = {
	{ "vmscope_up", "gauge", "1 if the VM's last sample worked and is fresh, else 0.", write_up },
	{ "vmscope_vm_info", "gauge", "A VM's attributes, as labels (value 1).", write_info },
	{ "vmscope_last_sample_timestamp_seconds", "gauge",
	  "When the VM's last good sample was taken (Unix time).", write_sample_time },
	{ "vmscope_sample_duration_seconds", "gauge", "How long the VM's last sample took.",
	  write_sample_duration },
	{ "vmscope_vcpu_seconds_total", "counter", "Time a vCPU's thread ran on a host CPU.",
	  write_vcpu, VCPU_RUN },
	{ "vmscope_vcpu_wait_seconds_total", "counter",
	  "Time a vCPU's thread waited, runnable, for a host CPU.", write_vcpu, VCPU_WAIT },
	{ "vmscope_qemu_user_seconds_total", "counter", "QEMU's user CPU time, all threads.",
	  write_qemu, QEMU_USER },
	{ "vmscope_qemu_system_seconds_total", "counter", "QEMU's system CPU time, all threads.",
	  write_qemu, QEMU_SYSTEM },
	{ "vmscope_qemu_resident_memory_bytes", "gauge", "QEMU's resident memory.", write_qemu,
	  QEMU_RSS },
	{ "vmscope_qemu_minor_page_faults_total", "counter", "QEMU's minor page faults.",
	  write_qemu, QEMU_MINFLT },
	{ "vmscope_qemu_major_page_faults_total", "counter", "QEMU's major page faults.",
	  write_qemu, QEMU_MAJFLT },
	{ "vmscope_block_read_bytes_total", "counter", "Bytes the guest's disk device read (QEMU).",
	  write_block, BLK_RB },
	{ "vmscope_block_write_bytes_total", "counter",
	  "Bytes the guest's disk device wrote, write-zeroes included (QEMU).", write_block,
	  BLK_WB },
	{ "vmscope_block_read_requests_total", "counter", "Read requests of a disk device (QEMU).",
	  write_block, BLK_RO },
	{ "vmscope_block_write_requests_total", "counter",
	  "Write requests of a disk device (QEMU).", write_block, BLK_WO },
	{ "vmscope_block_flush_requests_total", "counter",
	  "Flush requests of a disk device (QEMU).", write_block, BLK_FO },
	{ "vmscope_block_discard_requests_total", "counter",
	  "Discard requests of a disk device (QEMU).", write_block, BLK_DO },
	{ "vmscope_net_receive_bytes_total", "counter",
	  "Bytes the guest's NIC received (its tap device's transmit side).", write_net, NET_RB },
	{ "vmscope_net_receive_packets_total", "counter", "Packets the guest's NIC received.",
	  write_net, NET_RP },
	{ "vmscope_net_transmit_bytes_total", "counter",
	  "Bytes the guest's NIC sent (its tap device's receive side).", write_net, NET_TB },
	{ "vmscope_net_transmit_packets_total", "counter", "Packets the guest's NIC sent.",
	  write_net, NET_TP },
	{ "vmscope_guest_cpu_seconds_total", "counter",
	  "Seconds the guest's CPUs spent in each mode, as its /proc/stat counts them.",
	  write_guest_cpu },
	GUEST("load1", "gauge", "The guest's 1-minute load average.", G_LOAD1),
	GUEST("load5", "gauge", "The guest's 5-minute load average.", G_LOAD5),
	GUEST("load15", "gauge", "The guest's 15-minute load average.", G_LOAD15),
	GUEST("uptime_seconds", "gauge", "Seconds since the guest booted (CLOCK_BOOTTIME).",
	      G_UPTIME),
	GUEST("procs_running", "gauge", "The guest's runnable tasks.", G_RUNNING),
	GUEST("procs_blocked", "gauge", "The guest's tasks waiting for I/O.", G_BLOCKED),
	GUEST("threads", "gauge", "The guest's threads.", G_THREADS),
	GUEST("context_switches_total", "counter", "The guest's context switches.", G_CTXT),
	GUEST("forks_total", "counter", "Forks in the guest.", G_FORKS),
	GUEST("page_faults_total", "counter", "The guest's page faults (pgfault).", G_PGFAULT),
	GUEST("major_page_faults_total", "counter", "The guest's major page faults.",
	      G_PGMAJFAULT),
	GUEST("memory_total_bytes", "gauge", "The guest's MemTotal.", G_MEM_TOTAL),
	GUEST("memory_free_bytes", "gauge", "The guest's MemFree.", G_MEM_FREE),
	GUEST("memory_available_bytes", "gauge", "The guest's MemAvailable.", G_MEM_AVAIL),
	GUEST("memory_buffers_bytes", "gauge", "The guest's Buffers.", G_MEM_BUFFERS),
	GUEST("memory_cached_bytes", "gauge", "The guest's Cached.", G_MEM_CACHED),
	{ "vmscope_guest_disk_read_bytes_total", "counter", "Bytes the guest read from a device.",
	  write_guest_disk, GD_RB },
	{ "vmscope_guest_disk_written_bytes_total", "counter",
	  "Bytes the guest wrote to a device.", write_guest_disk, GD_WB },
	{ "vmscope_guest_disk_reads_completed_total", "counter",
	  "Reads the guest completed on a device.", write_guest_disk, GD_RIO },
	{ "vmscope_guest_disk_writes_completed_total", "counter",
	  "Writes the guest completed on a device.", write_guest_disk, GD_WIO },
	{ "vmscope_guest_network_receive_bytes_total", "counter",
	  "Bytes an interface received, as the guest's /proc/net/dev counts them.",
	  write_guest_net, GN_RB },
	{ "vmscope_guest_network_receive_packets_total", "counter",
	  "Packets an interface received, as the guest counts them.", write_guest_net, GN_RP },
	{ "vmscope_guest_network_transmit_bytes_total", "counter",
	  "Bytes an interface sent, as the guest counts them.", write_guest_net, GN_TB },
	{ "vmscope_guest_network_transmit_packets_total", "counter",
	  "Packets an interface sent, as the guest counts them.", write_guest_net, GN_TP },
	{ "vmscope_guest_sample_timestamp_seconds", "gauge",
	  "When the guest's figures shown were read from its RAM (Unix time).", write_guest_time },
	{ "vmscope_guest_estimate", "gauge",
	  "A guest figure estimated from host figures at every sample, by a model refitted at "
	  "each introspection (series: the record-metrics series it stands for, in its units).",
	  write_estimates, 0 },
	{ "vmscope_guest_estimate_fit_percent", "gauge",
	  "How well the estimates matched the introspection samples that followed them "
	  "(100 is perfect; can be negative).",
	  write_estimates, 1 },
};

size_t vms_prom_families(void)
{
	return ARRAY_SIZE(families);
}

void vms_prom_header(FILE *f, size_t i)
{
	if (i < ARRAY_SIZE(families))
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", families[i].name, families[i].help,
			families[i].name, families[i].type);
}

int vms_prom_render(const struct vms_prom_vm *vm, char **ret_text, size_t *offsets)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return -ENOMEM;
	/* One stream for every family, cut where each ends: one allocation per turn. */
	for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
		offsets[i] = (size_t)ftell(f);
		families[i].write(f, &families[i], vm);
	}
	offsets[ARRAY_SIZE(families)] = (size_t)ftell(f);
	if (fclose(f)) {
		free(text);
		return -ENOMEM;
	}
	*ret_text = text;
	return 0;
}
