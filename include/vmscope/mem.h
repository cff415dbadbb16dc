/* SPDX-License-Identifier: MIT */
/*
 * vmscope: guest memory, physical and virtual (x86-64 paging).
 *
 * Physical reads go straight to the target's RAM (vms_phys_read() in vm.h).
 * Virtual addresses are translated through the page tables whose root is
 * given as a CR3 value (PCID bits and bit 63 are ignored), with 4- or 5-level
 * paging, 4 KiB, 2 MiB and 1 GiB pages. Page tables are guest data: every
 * walk is bounded, and a bad entry is an error, never a crash.
 *
 * Translations are cached. The cache is flushed by vms_vm_resume(), when the
 * QMP connection sees the VM resume, and by vms_vm_flush_caches(); on a VM
 * that keeps running, flush between views.
 */
#ifndef VMSCOPE_MEM_H
#define VMSCOPE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vms_translation {
	uint64_t gpa;	     /* guest-physical address of the byte */
	uint64_t page_bytes; /* 4096, 2 MiB or 1 GiB */
	int writable, user, executable;
};

/*
 * Translate va through the tables at cr3. -ENOENT when va is not mapped,
 * -EINVAL when it is not canonical, -EFAULT when a table lies outside RAM.
 */
int vms_translate(struct vms_vm *vm, uint64_t cr3, uint64_t va, struct vms_translation *ret);

/* Read len bytes of virtual memory, page by page. On failure, buf may hold part of it. */
int vms_virt_read(struct vms_vm *vm, uint64_t cr3, uint64_t va, void *buf, size_t len);

/*
 * Call fn for every present page mapping (leaf entry) whose range meets
 * [va_start, va_end], in address order, until fn returns non-zero (which is
 * returned). At most max_tables page tables are read (0: 1,000,000): -ELOOP
 * beyond that, so cyclic tables cannot make the walk endless.
 */
typedef int (*vms_mapping_fn)(uint64_t va, const struct vms_translation *t, void *ctx);
int vms_for_each_mapping(struct vms_vm *vm, uint64_t cr3, uint64_t va_start, uint64_t va_end,
			 size_t max_tables, vms_mapping_fn fn, void *ctx);

/*
 * Paging levels (4 or 5) to use. By default they come from vCPU 0's CR4.LA57
 * when the target has vCPU state, else 4; set them for raw images of 5-level
 * guests. 0 restores the default.
 */
int vms_vm_set_paging_levels(struct vms_vm *vm, int levels);
int vms_vm_paging_levels(struct vms_vm *vm);

void vms_vm_flush_caches(struct vms_vm *vm);

#ifdef __cplusplus
}
#endif
#endif
