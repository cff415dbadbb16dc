// SPDX-License-Identifier: MIT
/*
 * Virtual memory of a VM: x86-64 translation through the handle's cache, and
 * reads that follow it page by page.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/mem.h>

#include "access/qmp.h"
#include "access/regs.h"
#include "arch/x86_64.h"
#include "core/internal.h"

void vms_vm_flush_caches(struct vms_vm *vm)
{
	tlb_flush(&vm->tlb);
	mem_map_forget(&vm->mem);
	vm->resumes_seen = *vm->resumes;
}

void vm_flush_translations(struct vms_vm *vm)
{
	tlb_flush(&vm->tlb);
	vm->resumes_seen = *vm->resumes;
}

/* vCPU 0's CR4.LA57, read without stopping the VM. */
static int detect_levels(struct vms_vm *vm)
{
	struct vms_vcpu_regs *regs = NULL;
	uint64_t cr4;
	int count, err;

	if (vm->has_core && vm->core.nr_regs) {
		cr4 = vm->core.regs[0].cr4;
	} else if (vm->qmp) {
		err = regs_read_live(vm, 0, &regs, &count);
		if (err)
			return err;
		cr4 = regs[0].cr4;
		free(regs);
	} else {
		return 4;
	}
	return cr4 & X86_CR4_LA57 ? 5 : 4;
}

int vms_vm_paging_levels(struct vms_vm *vm)
{
	int levels;

	if (vm->paging_levels)
		return vm->paging_levels;
	if (vm->detected_levels)
		return vm->detected_levels;
	levels = detect_levels(vm);
	if (levels > 0)
		vm->detected_levels = levels;
	return levels;
}

int vms_vm_set_paging_levels(struct vms_vm *vm, int levels)
{
	if (levels != 0 && levels != 4 && levels != 5)
		return vm_error(vm, -EINVAL, "paging levels must be 4 or 5, not %d", levels);
	vm->paging_levels = levels;
	tlb_flush(&vm->tlb);
	return 0;
}

static int read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	const struct mem_map *map = ctx;

	return mem_map_read(map, gpa, buf, len);
}

/* A VM seen to resume since the caches were filled invalidates them. */
static inline void check_resumed(struct vms_vm *vm)
{
	/* Relaxed: libvirt's event thread may be counting (access/libvirt.c). */
	if (__atomic_load_n(vm->resumes, __ATOMIC_RELAXED) != vm->resumes_seen)
		vms_vm_flush_caches(vm);
}

static int translate_miss(struct vms_vm *vm, uint64_t root, uint64_t va,
			  struct x86_translation *ret)
{
	struct x86_mmu mmu = { read_phys, &vm->mem, vms_vm_paging_levels(vm) };
	int err;

	if (mmu.levels < 0)
		return mmu.levels;
	err = x86_translate(&mmu, root, va, ret);
	if (!err)
		tlb_insert(&vm->tlb, root, va, ret,
			   mem_map_host_page(&vm->mem, ret->gpa & ~4095ull));
	return err;
}

static int translate(struct vms_vm *vm, uint64_t cr3, uint64_t va, struct x86_translation *ret)
{
	uint64_t root = cr3 & X86_PTE_ADDR;

	check_resumed(vm);
	if (tlb_lookup(&vm->tlb, root, va, ret))
		return 0;
	return translate_miss(vm, root, va, ret);
}

static int translate_error(struct vms_vm *vm, int err, uint64_t cr3, uint64_t va)
{
	switch (err) {
	case -ENOENT:
		return vm_error(vm, err, "0x%" PRIx64 " is not mapped (cr3 0x%" PRIx64 ")", va, cr3);
	case -EINVAL:
		return vm_error(vm, err, "0x%" PRIx64 " is not a canonical address", va);
	case -EFAULT:
		return vm_error(vm, err, "a page table for 0x%" PRIx64 " lies outside RAM", va);
	default:
		return err; /* the message is already set */
	}
}

int vms_translate(struct vms_vm *vm, uint64_t cr3, uint64_t va, struct vms_translation *ret)
{
	struct x86_translation t;
	int err = translate(vm, cr3, va, &t);

	if (err)
		return translate_error(vm, err, cr3, va);
	ret->gpa = t.gpa;
	ret->page_bytes = t.page_bytes;
	ret->writable = t.writable;
	ret->user = t.user;
	ret->executable = t.executable;
	return 0;
}

int vms_virt_read(struct vms_vm *vm, uint64_t cr3, uint64_t va, void *buf, size_t len)
{
	uint8_t *out = buf;

	/* The hot path: a read inside one cached page we can read directly. */
	if ((va & 4095) + len <= 4096) {
		const struct tlb_entry *e;

		check_resumed(vm);
		e = tlb_find(&vm->tlb, cr3 & X86_PTE_ADDR, va);
		if (e && e->host_page) {
			memcpy(out, e->host_page + (va & 4095), len);
			return 0;
		}
	}

	while (len) {
		struct x86_translation t;
		size_t part = 4096 - (va & 4095);
		int err;

		if (part > len)
			part = len;
		err = translate(vm, cr3, va, &t);
		if (err)
			return translate_error(vm, err, cr3, va);
		err = mem_map_read(&vm->mem, t.gpa, out, part);
		if (err)
			return vm_error(vm, err, "0x%" PRIx64 " maps to 0x%" PRIx64
					", which is not RAM", va, t.gpa);
		out += part;
		va += part;
		len -= part;
	}
	return 0;
}

struct mapping_relay {
	vms_mapping_fn fn;
	void *ctx;
};

static int relay_mapping(uint64_t va, const struct x86_translation *t, void *ctx)
{
	struct mapping_relay *relay = ctx;
	struct vms_translation out = { t->gpa, t->page_bytes, t->writable, t->user,
				       t->executable };

	return relay->fn(va, &out, relay->ctx);
}

int vms_for_each_mapping(struct vms_vm *vm, uint64_t cr3, uint64_t va_start, uint64_t va_end,
			 size_t max_tables, vms_mapping_fn fn, void *ctx)
{
	struct x86_mmu mmu = { read_phys, &vm->mem, vms_vm_paging_levels(vm) };
	struct mapping_relay relay = { fn, ctx };
	int err;

	if (mmu.levels < 0)
		return mmu.levels;
	err = x86_for_each_mapping(&mmu, cr3, va_start, va_end, max_tables ? max_tables : 1000000,
				   relay_mapping, &relay);
	if (err == -ELOOP)
		return vm_error(vm, err, "the page tables at 0x%" PRIx64 " hold more tables than %zu"
				" (cyclic?)", cr3, max_tables ? max_tables : 1000000);
	return err;
}
