// SPDX-License-Identifier: MIT
/*
 * x86-64 page-table walks.
 *
 * Level n (1 = page table, 2 = page directory, 3 = PDPT, 4 = PML4, 5 = PML5)
 * indexes va bits 12 + 9(n-1) up to 20 + 9(n-1). A present entry with the PS
 * bit ends the walk at level 2 (2 MiB) or 3 (1 GiB); at levels 4 and 5 the bit
 * is reserved and the hardware faults, so we report "not mapped". Access
 * rights are the intersection of every level's, as the MMU applies them.
 * A walk reads at most five entries, so a cyclic table cannot stall it; only
 * the enumeration needs an explicit bound.
 */
#include <errno.h>
#include <string.h>

#include "arch/x86_64.h"

#define LARGE_2M_ADDR 0x000fffffffe00000ull
#define LARGE_1G_ADDR 0x000fffffc0000000ull

static unsigned int level_shift(int level)
{
	return 12u + 9u * (unsigned int)(level - 1);
}

int x86_canonical(int levels, uint64_t va)
{
	unsigned int top = levels == 5 ? 56 : 47;
	uint64_t high = va >> top;

	return high == 0 || high == (~0ull >> top);
}

static uint64_t frame_of(uint64_t entry, int level)
{
	if (level == 3)
		return entry & LARGE_1G_ADDR;
	if (level == 2)
		return entry & LARGE_2M_ADDR;
	return entry & X86_PTE_ADDR;
}

/* Is this entry a leaf? -ENOENT for a large bit where it is reserved. */
static int is_leaf(uint64_t entry, int level)
{
	if (level == 1)
		return 1;
	if (!(entry & X86_PTE_LARGE))
		return 0;
	return level <= 3 ? 1 : -ENOENT;
}

static void merge_rights(struct x86_translation *t, uint64_t entry)
{
	t->writable &= !!(entry & X86_PTE_WRITE);
	t->user &= !!(entry & X86_PTE_USER);
	t->executable &= !(entry & X86_PTE_NX);
}

static int read_entry(const struct x86_mmu *mmu, uint64_t table, unsigned int index,
		      uint64_t *ret_entry)
{
	int err = mmu->read(mmu->ctx, table + 8ull * index, ret_entry, sizeof(*ret_entry));

	return err ? -EFAULT : 0;
}

int x86_translate(const struct x86_mmu *mmu, uint64_t cr3, uint64_t va,
		  struct x86_translation *ret)
{
	struct x86_translation t = { .writable = 1, .user = 1, .executable = 1 };
	uint64_t table = cr3 & X86_PTE_ADDR;

	if ((mmu->levels != 4 && mmu->levels != 5) || !x86_canonical(mmu->levels, va))
		return -EINVAL;
	for (int level = mmu->levels; level >= 1; level--) {
		unsigned int index = (va >> level_shift(level)) & 511;
		uint64_t entry;
		int err = read_entry(mmu, table, index, &entry), leaf;

		if (err)
			return err;
		if (!(entry & X86_PTE_PRESENT))
			return -ENOENT;
		merge_rights(&t, entry);
		leaf = is_leaf(entry, level);
		if (leaf < 0)
			return leaf;
		if (leaf) {
			t.page_bytes = 1ull << level_shift(level);
			t.gpa = frame_of(entry, level) | (va & (t.page_bytes - 1));
			*ret = t;
			return 0;
		}
		table = entry & X86_PTE_ADDR;
	}
	return -ENOENT; /* not reached: level 1 is always a leaf */
}

struct enum_state {
	const struct x86_mmu *mmu;
	uint64_t va_start, va_end;
	size_t tables_left;
	x86_mapping_fn fn;
	void *ctx;
};

/* Sign-extend a virtual address built from table indices. */
static uint64_t canonical_va(int levels, uint64_t va)
{
	unsigned int bits = levels == 5 ? 57 : 48;

	return (uint64_t)((int64_t)(va << (64 - bits)) >> (64 - bits));
}

static int walk_table(struct enum_state *s, uint64_t table, int level, uint64_t va_base,
		      struct x86_translation rights)
{
	uint64_t entries[512];
	uint64_t span = 1ull << level_shift(level);

	if (!s->tables_left--)
		return -ELOOP;
	if (s->mmu->read(s->mmu->ctx, table, entries, sizeof(entries)))
		return 0; /* a table outside RAM maps nothing we can reach */
	for (unsigned int i = 0; i < 512; i++) {
		uint64_t va = canonical_va(s->mmu->levels, va_base + i * span);
		struct x86_translation t = rights;
		int leaf, ret;

		if (!(entries[i] & X86_PTE_PRESENT) || va + (span - 1) < s->va_start ||
		    va > s->va_end)
			continue;
		merge_rights(&t, entries[i]);
		leaf = is_leaf(entries[i], level);
		if (leaf < 0)
			continue;
		if (leaf) {
			t.page_bytes = span;
			t.gpa = frame_of(entries[i], level);
			ret = s->fn(va, &t, s->ctx);
		} else {
			ret = walk_table(s, entries[i] & X86_PTE_ADDR, level - 1, va_base + i * span,
					 t);
		}
		if (ret)
			return ret;
	}
	return 0;
}

int x86_for_each_mapping(const struct x86_mmu *mmu, uint64_t cr3, uint64_t va_start,
			 uint64_t va_end, size_t max_tables, x86_mapping_fn fn, void *ctx)
{
	struct enum_state s = { mmu, va_start, va_end, max_tables, fn, ctx };
	struct x86_translation rights = { .writable = 1, .user = 1, .executable = 1 };

	if (mmu->levels != 4 && mmu->levels != 5)
		return -EINVAL;
	return walk_table(&s, cr3 & X86_PTE_ADDR, mmu->levels, 0, rights);
}
