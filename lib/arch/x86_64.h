/* SPDX-License-Identifier: MIT */
/*
 * x86-64 paging: 4- and 5-level walks with 4 KiB, 2 MiB and 1 GiB pages.
 * Pure functions over a physical-read callback, so they run the same on live
 * RAM, a dump, or a page table built in a test buffer.
 */
#ifndef VMSCOPE_ARCH_X86_64_H
#define VMSCOPE_ARCH_X86_64_H

#include <stddef.h>
#include <stdint.h>

#define X86_PTE_PRESENT (1ull << 0)
#define X86_PTE_WRITE	(1ull << 1)
#define X86_PTE_USER	(1ull << 2)
#define X86_PTE_LARGE	(1ull << 7)
#define X86_PTE_NX	(1ull << 63)
#define X86_PTE_ADDR	0x000ffffffffff000ull
#define X86_CR4_LA57	(1ull << 12)

typedef int (*x86_phys_read_fn)(void *ctx, uint64_t gpa, void *buf, size_t len);

struct x86_mmu {
	x86_phys_read_fn read;
	void *ctx;
	int levels; /* 4 or 5 */
};

struct x86_translation {
	uint64_t gpa;
	uint64_t page_bytes;
	int writable, user, executable; /* as every level of the walk allows */
};

/* Is va canonical for this many paging levels? */
int x86_canonical(int levels, uint64_t va);

/*
 * Walk the tables rooted at cr3 for va. -EINVAL: not canonical (or bad
 * levels); -ENOENT: not present, or a reserved large-page bit; -EFAULT: a
 * table outside RAM (the read callback's error is returned as is otherwise).
 */
int x86_translate(const struct x86_mmu *mmu, uint64_t cr3, uint64_t va,
		  struct x86_translation *ret);

/*
 * Call fn for every present leaf mapping whose virtual range meets
 * [va_start, va_end], in address order, until fn returns non-zero (returned).
 * At most max_tables tables are read: -ELOOP beyond that, so cyclic or
 * absurdly shared tables cannot make the walk endless.
 */
typedef int (*x86_mapping_fn)(uint64_t va, const struct x86_translation *t, void *ctx);
int x86_for_each_mapping(const struct x86_mmu *mmu, uint64_t cr3, uint64_t va_start,
			 uint64_t va_end, size_t max_tables, x86_mapping_fn fn, void *ctx);

#endif
