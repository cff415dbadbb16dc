/* SPDX-License-Identifier: MIT */
/*
 * Linux probes: which kernel function each event stops at, and how its
 * arguments are decoded at the stop (the x86-64 calling convention puts the
 * first arguments in rdi, rsi, rdx, rcx).
 */
#ifndef VMSCOPE_TRACE_PROBE_H
#define VMSCOPE_TRACE_PROBE_H

#include <vmscope/event.h>
#include <vmscope/trace.h>

#include "access/gdb.h"

struct linux_kernel;

struct probe_ctx {
	struct vms_vm *vm;
	struct linux_kernel *k;
	const struct gdb_regs *regs;
	struct vms_event *ev;
};

struct probe_def {
	const char *name;
	const char *const *functions; /* candidates, the first the kernel has wins */
	int (*decode)(struct probe_ctx *c);
	/* Decode at the function's return (regs->rax is its result), not its entry. */
	int at_return;
	/*
	 * The process-events connector's hook for this event, if it has one: a
	 * function whose first act is to read PROBE_CN_COUNTER, so one access
	 * watchpoint on that counter stops the VM inside the hook (rdi still its
	 * argument), and decode_cn decodes there.
	 */
	const char *connector;
	int (*decode_cn)(struct probe_ctx *c);
};

#define PROBE_CN_COUNTER "proc_event_num_listeners"

extern const struct probe_def probe_defs[VMS_PROBE__COUNT];

#endif
