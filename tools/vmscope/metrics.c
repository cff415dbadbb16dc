// SPDX-License-Identifier: MIT
/*
 * vmscope metrics TARGET [--json]: one sample of a VM's figures, the host's
 * (QEMU's process, vCPU threads, disks, KVM) and the guest's own (from its
 * RAM). Either side may be absent: a dump has no host, a guest that is not
 * Linux has no guest figures; the JSON says why under "host_absent" or
 * "guest_absent".
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/monitor.h>

#include "cli.h"

static json_t *host_json(const struct vms_host_metrics *h)
{
	json_t *vcpus = json_array(), *disks = json_array(), *nics = json_array(), *kvm = NULL;

	for (size_t i = 0; i < h->nr_vcpus; i++) {
		const struct vms_host_vcpu *v = &h->vcpus[i];

		json_array_append_new(vcpus, json_pack("{s:i,s:i,s:I,s:I,s:I}", "vcpu", v->index,
						       "thread_id", v->thread_id, "run_ns",
						       (json_int_t)v->run_ns, "wait_ns",
						       (json_int_t)v->wait_ns, "timeslices",
						       (json_int_t)v->timeslices));
	}
	for (size_t i = 0; i < h->nr_disks; i++) {
		const struct vms_host_disk *d = &h->disks[i];

		json_array_append_new(
			disks, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "device", d->device,
					 "node", d->node, "read_bytes", (json_int_t)d->read_bytes,
					 "write_bytes", (json_int_t)d->write_bytes, "read_ops",
					 (json_int_t)d->read_ops, "write_ops", (json_int_t)d->write_ops,
					 "flush_ops", (json_int_t)d->flush_ops, "discard_ops",
					 (json_int_t)d->discard_ops));
	}
	for (size_t i = 0; i < h->nr_nics; i++) {
		const struct vms_host_nic *n = &h->nics[i];

		json_array_append_new(
			nics, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "device", n->device,
					"ifname", n->ifname, "rx_bytes", (json_int_t)n->rx_bytes,
					"rx_packets", (json_int_t)n->rx_packets, "rx_dropped",
					(json_int_t)n->rx_dropped, "tx_bytes", (json_int_t)n->tx_bytes,
					"tx_packets", (json_int_t)n->tx_packets, "tx_dropped",
					(json_int_t)n->tx_dropped));
	}
	if (h->nr_kvm_stats) {
		kvm = json_object();
		for (size_t i = 0; i < h->nr_kvm_stats; i++)
			json_object_set_new(kvm, h->kvm_stats[i].name,
					    json_integer((json_int_t)h->kvm_stats[i].value));
	}
	return json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:s?}", "qemu_pid", h->qemu_pid,
			 "cpu_user_ns", (json_int_t)h->cpu_user_ns, "cpu_system_ns",
			 (json_int_t)h->cpu_system_ns, "rss_bytes", (json_int_t)h->rss_bytes,
			 "minor_faults", (json_int_t)h->minor_faults, "major_faults",
			 (json_int_t)h->major_faults, "vcpus", vcpus, "disks", disks, "nics", nics, "kvm", kvm ? kvm : json_null(),
			 "kvm_absent", h->kvm_stats_absent[0] ? h->kvm_stats_absent : NULL);
}

static json_t *cpu_json(const struct vms_cpu_time *c)
{
	return json_pack("{s:i,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "cpu", c->cpu,
			 "online", c->online, "user_ns", (json_int_t)c->user_ns, "nice_ns",
			 (json_int_t)c->nice_ns, "system_ns", (json_int_t)c->system_ns, "idle_ns",
			 (json_int_t)c->idle_ns, "iowait_ns", (json_int_t)c->iowait_ns, "irq_ns",
			 (json_int_t)c->irq_ns, "softirq_ns", (json_int_t)c->softirq_ns, "steal_ns",
			 (json_int_t)c->steal_ns, "guest_ns", (json_int_t)c->guest_ns,
			 "guest_nice_ns", (json_int_t)c->guest_nice_ns);
}

static json_t *guest_json(const struct vms_guest_metrics *g)
{
	const struct vms_sysinfo *s = &g->sys;
	const struct vms_kernel_counters *c = &g->counters;
	json_t *cpus = json_array(), *disks = json_array(), *nets = json_array();

	for (size_t i = 0; i < g->nr_nets; i++) {
		const struct vms_net_stats *n = &g->nets[i];

		json_array_append_new(nets, json_pack("{s:s,s:s,s:b,s:I,s:I,s:I,s:I}", "name", n->name,
						      "driver", n->driver, "counted", n->counted,
						      "rx_bytes", (json_int_t)n->rx_bytes, "rx_packets",
						      (json_int_t)n->rx_packets, "tx_bytes",
						      (json_int_t)n->tx_bytes, "tx_packets",
						      (json_int_t)n->tx_packets));
	}
	for (size_t i = 0; i < g->nr_cpus; i++)
		json_array_append_new(cpus, cpu_json(&g->cpus[i]));
	for (size_t i = 0; i < g->nr_disks; i++) {
		const struct vms_block_stats *d = &g->disks[i];

		json_array_append_new(disks, json_pack("{s:s,s:I,s:I,s:I,s:I}", "name", d->name,
						       "read_bytes", (json_int_t)d->read_bytes,
						       "write_bytes", (json_int_t)d->write_bytes,
						       "read_ios", (json_int_t)d->read_ios,
						       "write_ios", (json_int_t)d->write_ios));
	}
	return json_pack("{s:s,s:f,s:[f,f,f],s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
			 "s:{s:I,s:I,s:I,s:I,s:I},s:o,s:o,s:s?,s:o,s:s?,s:s?}",
			 "release", s->release, "uptime_s", s->uptime_s, "load", s->load[0],
			 s->load[1], s->load[2], "tasks", (json_int_t)s->tasks, "running",
			 (json_int_t)c->running, "blocked", (json_int_t)c->blocked,
			 "context_switches", (json_int_t)s->context_switches, "forks",
			 (json_int_t)s->forks, "page_faults", (json_int_t)c->page_faults,
			 "major_faults", (json_int_t)c->major_faults, "pgpgin_kb",
			 (json_int_t)c->pgpgin_kb, "pgpgout_kb", (json_int_t)c->pgpgout_kb,
			 "swap_in", (json_int_t)c->swap_in, "swap_out", (json_int_t)c->swap_out,
			 "memory", "total_bytes", (json_int_t)s->mem_total_bytes, "free_bytes",
			 (json_int_t)s->mem_free_bytes, "available_bytes",
			 (json_int_t)s->mem_available_bytes, "buffers_bytes",
			 (json_int_t)c->mem_buffers_bytes, "cached_bytes",
			 (json_int_t)c->mem_cached_bytes, "cpus", cpus, "disks", disks,
			 "disks_absent", g->disks_absent[0] ? g->disks_absent : NULL, "nets", nets,
			 "nets_absent", g->nets_absent[0] ? g->nets_absent : NULL, "partial",
			 g->partial[0] ? g->partial : NULL);
}

/* One event per side ("host_metrics", "guest_metrics"), in parts that fit. */
#define SERIES_PER_EVENT (VMS_EVENT_MAX_ATTRS - 1)

static int log_side(struct vms_sink *log, const char *vm, const char *side,
		    const double *values, uint64_t time_ns)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	const char *const *names;
	size_t n = vms_monitor_series_names(&names), len = strlen(side);
	unsigned int part = 0;
	int err = 0;

	if (!ev)
		return -ENOMEM;
	ev->nr_attrs = 0;
	for (size_t i = 0; i <= n && !err; i++) {
		int mine = i < n && !strncmp(names[i], side, len) && names[i][len] == '_' &&
			   isfinite(values[i]);

		/* Flush a full part, or the last one. */
		if (ev->nr_attrs > 1 && (i == n || (mine && ev->nr_attrs == SERIES_PER_EVENT + 1))) {
			err = vms_sink_write(log, ev);
			ev->nr_attrs = 0;
		}
		if (!mine || err)
			continue;
		if (!ev->nr_attrs) {
			char type[VMS_EVENT_TYPE_MAX];

			snprintf(type, sizeof(type), "%s_metrics", side);
			vms_event_init(ev, vm, VMS_SOURCE_MONITOR, type);
			ev->time_ns = time_ns;
			vms_event_add_uint(ev, "part", part++);
		}
		err = vms_event_add_double(ev, names[i] + len + 1, values[i]);
	}
	free(ev);
	return err;
}

int cli_log_series(struct vms_sink *log, const char *vm, const double *values,
		   uint64_t time_ns)
{
	int err = log_side(log, vm, "host", values, time_ns);

	return err ? err : log_side(log, vm, "guest", values, time_ns);
}

int cli_sample(struct vms_vm *vm, struct cli_sample *ret)
{
	return cli_sample_sides(vm, ret, 1);
}

int cli_sample_sides(struct vms_vm *vm, struct cli_sample *ret, int guest)
{
	memset(ret, 0, sizeof(*ret));
	if (vms_monitor_host(vm, &ret->host))
		snprintf(ret->host_absent, sizeof(ret->host_absent), "%s", vms_last_error(vm));
	else
		ret->has_host = 1;
	if (!guest)
		snprintf(ret->guest_absent, sizeof(ret->guest_absent), "not sampled this turn");
	else if (vms_monitor_guest(vm, &ret->guest))
		snprintf(ret->guest_absent, sizeof(ret->guest_absent), "%s", vms_last_error(vm));
	else
		ret->has_guest = 1;
	return ret->has_host || ret->has_guest ? 0 : -1;
}

void cli_sample_release(struct cli_sample *s)
{
	vms_host_metrics_release(&s->host);
	vms_guest_metrics_release(&s->guest);
}

void *cli_sample_json(const char *vm_name, const struct cli_sample *s)
{
	return json_pack("{s:s,s:I,s:o,s:s?,s:o,s:s?}", "vm", vm_name, "time_ns",
			 (json_int_t)(s->has_guest ? s->guest.time_ns : s->host.time_ns), "host",
			 s->has_host ? host_json(&s->host) : json_null(), "host_absent",
			 s->has_host ? NULL : s->host_absent, "guest",
			 s->has_guest ? guest_json(&s->guest) : json_null(), "guest_absent",
			 s->has_guest ? NULL : s->guest_absent);
}

static void print_host(const struct vms_host_metrics *h)
{
	printf("host: QEMU pid %d: CPU %.2f s user, %.2f s system; RSS %.1f MiB; "
	       "%" PRIu64 " minor, %" PRIu64 " major faults\n",
	       h->qemu_pid, h->cpu_user_ns / 1e9, h->cpu_system_ns / 1e9,
	       h->rss_bytes / 1048576.0, h->minor_faults, h->major_faults);
	for (size_t i = 0; i < h->nr_vcpus; i++)
		printf("  vcpu%-3d thread %-7d ran %.3f s, waited %.3f s\n", h->vcpus[i].index,
		       h->vcpus[i].thread_id, h->vcpus[i].run_ns / 1e9, h->vcpus[i].wait_ns / 1e9);
	for (size_t i = 0; i < h->nr_disks; i++)
		printf("  disk %-8s read %" PRIu64 " B in %" PRIu64 " ops, wrote %" PRIu64
		       " B in %" PRIu64 " ops, %" PRIu64 " flushes\n",
		       h->disks[i].device, h->disks[i].read_bytes, h->disks[i].read_ops,
		       h->disks[i].write_bytes, h->disks[i].write_ops, h->disks[i].flush_ops);
	for (size_t i = 0; i < h->nr_nics; i++)
		printf("  nic %-8s (%s) received %" PRIu64 " B in %" PRIu64 " packets, sent %" PRIu64
		       " B in %" PRIu64 " packets\n",
		       h->nics[i].device, h->nics[i].ifname, h->nics[i].rx_bytes, h->nics[i].rx_packets,
		       h->nics[i].tx_bytes, h->nics[i].tx_packets);
	if (h->kvm_stats_absent[0])
		printf("  kvm: %s\n", h->kvm_stats_absent);
	for (size_t i = 0; i < h->nr_kvm_stats; i++)
		printf("  kvm %s %" PRIu64 "\n", h->kvm_stats[i].name, h->kvm_stats[i].value);
}

static void print_guest(const struct vms_guest_metrics *g)
{
	const struct vms_sysinfo *s = &g->sys;
	const struct vms_kernel_counters *c = &g->counters;

	printf("guest: Linux %s, up %.2f s, load %.2f %.2f %.2f\n", s->release, s->uptime_s,
	       s->load[0], s->load[1], s->load[2]);
	printf("  tasks %" PRIu64 " (%" PRIu64 " running, %" PRIu64 " blocked); %" PRIu64
	       " context switches, %" PRIu64 " forks, %" PRIu64 " page faults (%" PRIu64
	       " major)\n",
	       s->tasks, c->running, c->blocked, s->context_switches, s->forks, c->page_faults,
	       c->major_faults);
	printf("  memory %" PRIu64 " kB: %" PRIu64 " free, %" PRIu64 " available, %" PRIu64
	       " buffers, %" PRIu64 " cached\n",
	       s->mem_total_bytes >> 10, s->mem_free_bytes >> 10, s->mem_available_bytes >> 10,
	       c->mem_buffers_bytes >> 10, c->mem_cached_bytes >> 10);
	for (size_t i = 0; i < g->nr_cpus; i++) {
		const struct vms_cpu_time *t = &g->cpus[i];

		printf("  cpu%-3d user %.2f nice %.2f system %.2f idle %.2f iowait %.2f irq %.2f "
		       "softirq %.2f steal %.2f s\n",
		       t->cpu, t->user_ns / 1e9, t->nice_ns / 1e9, t->system_ns / 1e9,
		       t->idle_ns / 1e9, t->iowait_ns / 1e9, t->irq_ns / 1e9, t->softirq_ns / 1e9,
		       t->steal_ns / 1e9);
	}
	for (size_t i = 0; i < g->nr_disks; i++)
		printf("  disk %-8s read %" PRIu64 " B in %" PRIu64 " ios, wrote %" PRIu64
		       " B in %" PRIu64 " ios\n",
		       g->disks[i].name, g->disks[i].read_bytes, g->disks[i].read_ios,
		       g->disks[i].write_bytes, g->disks[i].write_ios);
	if (g->disks_absent[0])
		printf("  disks: %s\n", g->disks_absent);
	for (size_t i = 0; i < g->nr_nets; i++)
		if (g->nets[i].counted)
			printf("  net  %-8s received %" PRIu64 " B in %" PRIu64 " packets, sent %" PRIu64
			       " B in %" PRIu64 " packets\n",
			       g->nets[i].name, g->nets[i].rx_bytes, g->nets[i].rx_packets,
			       g->nets[i].tx_bytes, g->nets[i].tx_packets);
		else
			printf("  net  %-8s (%s: counters kept where vmscope does not read them)\n",
			       g->nets[i].name, g->nets[i].driver[0] ? g->nets[i].driver : "no driver");
}

static int run_metrics(int argc, char **argv)
{
	struct vms_vm_info info = { 0 };
	struct cli_sample s;
	struct vms_vm *vm;
	int json, status;

	status = cli_target_args(argc, argv, &cmd_metrics, &json);
	if (status >= 0)
		return status;
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	vms_vm_query_info(vm, &info);
	status = 0;
	if (cli_sample(vm, &s))
		status = cli_fail("no figures: %s; %s", s.host_absent, s.guest_absent);
	else if (json)
		status = cli_print_json(cli_sample_json(info.name, &s));
	else {
		if (s.has_host)
			print_host(&s.host);
		else
			printf("host: %s\n", s.host_absent);
		if (s.has_guest)
			print_guest(&s.guest);
		else
			printf("guest: %s\n", s.guest_absent);
	}
	if (!status && s.has_guest && s.guest.partial[0])
		fprintf(stderr, "vmscope: warning: partial result: %s\n", s.guest.partial);
	cli_sample_release(&s);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_metrics = {
	.name = "metrics",
	.usage = "TARGET [--json]",
	.summary = "one sample of a VM's figures: the host's and the guest's own",
	.run = run_metrics,
};
