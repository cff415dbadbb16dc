/* SPDX-License-Identifier: MIT */
#ifndef VMSCOPE_ACCESS_REGS_H
#define VMSCOPE_ACCESS_REGS_H

#include <vmscope/vcpu.h>

/*
 * Parse HMP "info registers -a" text (QEMU's x86 format) into one entry per
 * "CPU#n" block. *ret_regs is malloc'ed.
 */
int regs_parse_hmp(const char *text, struct vms_vcpu_regs **ret_regs, int *ret_count);

/*
 * Registers of a live QEMU's vCPUs. With with_kernel_gs_base, also read the
 * kernel GS base from a 4 KiB dump (which stops the VM for a moment); without
 * it the VM is never stopped.
 */
int regs_read_live(struct vms_vm *vm, int with_kernel_gs_base, struct vms_vcpu_regs **ret_regs,
		   int *ret_count);

#endif
