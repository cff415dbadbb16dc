/* SPDX-License-Identifier: MIT */
/*
 * vmscope: events from inside a live guest, two ways.
 *
 * Stops (vms_trace_start): QEMU's gdbstub is switched on in the running VM
 * (HMP gdbserver); vmscope watches the kernel's process-events connector
 * and sets breakpoints on kernel functions found by name (kallsyms); at each
 * stop the arguments are decoded with the Linux driver's knowledge (BTF
 * layouts, the x86-64 calling convention) and the VM continues. Nothing is
 * lost or invented, at the cost of a stop per event. Under TCG the
 * breakpoints live in QEMU, not in guest memory.
 *
 * Polling (vms_poll_start): the process, module and socket views are read
 * at a chosen rate and diffed. The guest is never stopped; what lives
 * shorter than the period may be missed.
 */
#ifndef VMSCOPE_TRACE_H
#define VMSCOPE_TRACE_H

#include <stdint.h>

#include <vmscope/ring.h>
#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vms_probe {
	VMS_PROBE_EXEC,
	VMS_PROBE_FORK,
	VMS_PROBE_EXIT,
	VMS_PROBE_MODULE_LOAD,
	VMS_PROBE_MODULE_UNLOAD,
	VMS_PROBE_OPEN,
	VMS_PROBE_CONNECT,
	VMS_PROBE_ACCEPT,
	VMS_PROBE__COUNT,
};

/* "exec", "fork", ...; NULL out of range. */
const char *vms_probe_name(enum vms_probe probe);
/* The probe called name, or -1. */
int vms_probe_by_name(const char *name);

#define VMS_PROBES_DEFAULT                                                        \
	((1u << VMS_PROBE_EXEC) | (1u << VMS_PROBE_FORK) | (1u << VMS_PROBE_EXIT) | \
	 (1u << VMS_PROBE_MODULE_LOAD) | (1u << VMS_PROBE_MODULE_UNLOAD) |         \
	 (1u << VMS_PROBE_CONNECT) | (1u << VMS_PROBE_ACCEPT))

struct vms_trace;

struct vms_trace_stats {
	uint64_t hits, events, dropped, errors;
	uint64_t single_steps; /* hits stepped over the slow way (prologue not skippable) */
	uint64_t returns_lost; /* return probes whose return could not be watched */
	double stopped_s; /* wall time the VM spent stopped on our account */
	unsigned int probes_set, probes_unavailable;
};

/*
 * exec, fork and exit stop, by default, in the kernel's process-events
 * connector (cn_proc): one access watchpoint on its listener counter, which
 * each of its hooks reads first. Stopping there is much cheaper than at a
 * breakpoint (under TCG, QEMU 7.2 discards all translated code at
 * every breakpoint stop). There exec is seen once it succeeded, its filename
 * the executable as resolved. VMS_TRACE_BREAKPOINTS stops at the functions
 * instead (exec: at the call, failed ones too, the filename as passed).
 */
#define VMS_TRACE_BREAKPOINTS 1u

/*
 * Attach: gdbstub on; the watchpoint and one breakpoint per other wanted
 * probe (a bit per enum vms_probe). A probe whose function the kernel lacks
 * is left out and reported by vms_trace_probe_status(); the others work.
 */
int vms_trace_start(struct vms_vm *vm, unsigned int probes, unsigned int flags,
		    struct vms_ring *ring, struct vms_trace **ret);
/* How a probe works: "connector", "breakpoint", or NULL when it is not set. */
const char *vms_trace_probe_method(const struct vms_trace *t, enum vms_probe probe);
/* Why a wanted probe is not set (NULL when it is set or was not wanted). */
const char *vms_trace_probe_status(const struct vms_trace *t, enum vms_probe probe);
/*
 * Let the guest run up to timeout_ms, handling each breakpoint hit (at most
 * max_events; events go to the ring, which must have room: the caller
 * drains it between calls). Returns events emitted, or a negative errno.
 */
int vms_trace_run(struct vms_trace *t, int timeout_ms, unsigned int max_events);
void vms_trace_get_stats(const struct vms_trace *t, struct vms_trace_stats *ret);
/* Remove every breakpoint, detach, switch the gdbstub off; the VM runs on. NULL ok. */
int vms_trace_stop(struct vms_trace *t);

/* -- polling -- */

struct vms_poll;

/* The views a poll reads, a bit each. */
#define VMS_POLL_PROCESSES 1u
#define VMS_POLL_MODULES   2u
#define VMS_POLL_SOCKETS   4u
#define VMS_POLL_ALL	   (VMS_POLL_PROCESSES | VMS_POLL_MODULES | VMS_POLL_SOCKETS)

/*
 * Take the first snapshot of the views wanted (VMS_POLL_*; -EINVAL for
 * none); later ones are diffed against the last.
 */
int vms_poll_start(struct vms_vm *vm, unsigned int views, struct vms_ring *ring,
		   struct vms_poll **ret);
/*
 * One poll: process_start, process_exit (and process_exec), module_load,
 * module_unload, socket_open, socket_close events for what changed in the
 * views wanted. Returns events emitted.
 */
int vms_poll_once(struct vms_poll *p);
void vms_poll_free(struct vms_poll *p);

#ifdef __cplusplus
}
#endif
#endif
