/* SPDX-License-Identifier: MIT */
/*
 * vmscope: the registers of a VM's vCPUs (x86-64).
 *
 * From a live QEMU they are read over QMP (HMP "info registers", which does
 * not stop the VM; the kernel GS base, which that command does not show, is
 * read from a 4 KiB dump-guest-memory, which stops the VM for a moment). From
 * an ELF core they come from the per-vCPU notes QEMU wrote into it.
 */
#ifndef VMSCOPE_VCPU_H
#define VMSCOPE_VCPU_H

#include <stdint.h>

#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vms_regs_flags {
	VMS_REGS_EFER = 1u << 0,	   /* efer is the register's value */
	VMS_REGS_EFER_DERIVED = 1u << 1,   /* efer was inferred (LME/LMA from CS.L and CR0.PG) */
	VMS_REGS_KERNEL_GS_BASE = 1u << 2, /* kernel_gs_base is known */
	VMS_REGS_HALTED = 1u << 3,	   /* the vCPU was halted (HLT) */
};

struct vms_vcpu_regs {
	int index; /* vCPU number, as QEMU counts them */
	uint32_t flags; /* enum vms_regs_flags */
	int cpl;	/* current privilege level, 0 (kernel) to 3 (user) */
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	uint64_t cr0, cr2, cr3, cr4, efer;
	uint64_t fs_base, gs_base, kernel_gs_base;
	uint16_t cs, ss; /* selectors */
};

/*
 * The registers of every vCPU, ordered by index. *ret_regs is malloc'ed,
 * owned by the caller; *ret_count vCPUs. -ENODATA for targets without vCPU
 * state (raw images).
 */
int vms_vcpu_get_regs(struct vms_vm *vm, struct vms_vcpu_regs **ret_regs, int *ret_count);

/*
 * One vCPU's CR3, from the live registers (QEMU's "info registers"), the
 * core's notes, or -ENODATA for raw images. Unlike vms_vcpu_get_regs, which
 * learns the kernel GS base from a one-page dump, this never stops the VM.
 */
int vms_vcpu_get_cr3(struct vms_vm *vm, int vcpu, uint64_t *ret_cr3);

#ifdef __cplusplus
}
#endif
#endif
