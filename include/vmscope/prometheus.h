/* SPDX-License-Identifier: MIT */
/*
 * vmscope: VM figures in Prometheus's text exposition format (0.0.4).
 *
 * Names follow Prometheus's conventions: the vmscope_ prefix, base units
 * (seconds, bytes), _total on counters, labels only vm plus vcpu, device or
 * cpu (and mode, as node_exporter has it) where a series needs one. Guest
 * figures take node_exporter's names after vmscope_guest_ where one exists;
 * host figures the libvirt exporters'. Attributes are on vmscope_vm_info.
 *
 * A scrape must show every family once, each VM's samples under it, so a
 * VM's sample is rendered into one text cut by family (vms_prom_render), and
 * a scrape writes, family by family, the header and every VM's part.
 */
#ifndef VMSCOPE_PROMETHEUS_H
#define VMSCOPE_PROMETHEUS_H

#include <stddef.h>
#include <stdio.h>

#include <vmscope/monitor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The number of families; write family i's "# HELP" and "# TYPE" lines. */
size_t vms_prom_families(void);
void vms_prom_header(FILE *f, size_t family);

/* What one VM's rendering knows beside its figures. */
struct vms_prom_vm {
	const char *name;
	int up;			  /* the last sample worked and is fresh */
	double sample_time_s;	  /* when it was taken (Unix time), 0: never */
	double sample_duration_s; /* how long it took */
	const struct vms_host_metrics *host;   /* NULL when absent */
	const struct vms_guest_metrics *guest; /* NULL when absent */
	size_t nr_estimates;		       /* guest series estimated from host figures */
	const char *const *estimate_names;     /* vms_monitor_series_names() names */
	const double *estimates;
	const double *estimate_fits;	       /* their out-of-sample fit % so far */
};

/*
 * Render vm's samples into one text to free(): family i's lines for this VM
 * (perhaps none) are bytes offsets[i] to offsets[i + 1]. offsets has room
 * for vms_prom_families() + 1.
 */
int vms_prom_render(const struct vms_prom_vm *vm, char **ret_text, size_t *offsets);

#ifdef __cplusplus
}
#endif
#endif
