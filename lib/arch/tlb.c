// SPDX-License-Identifier: MIT
/* Direct-mapped translation cache; see tlb.h. */
#include <string.h>

#include "arch/tlb.h"

static struct tlb_entry *slot(struct tlb *tlb, uint64_t root, uint64_t vpage)
{
	uint64_t h = vpage ^ (root >> 12) ^ (vpage >> 10);

	return &tlb->entries[h & (TLB_ENTRIES - 1)];
}

void tlb_flush(struct tlb *tlb)
{
	memset(tlb->entries, 0, sizeof(tlb->entries));
}

int tlb_lookup(struct tlb *tlb, uint64_t root, uint64_t va, struct x86_translation *ret)
{
	uint64_t vpage = (va >> 12) + 1;
	struct tlb_entry *e = slot(tlb, root, vpage);

	if (e->vpage != vpage || e->root != root) {
		tlb->misses++;
		return 0;
	}
	tlb->hits++;
	ret->gpa = e->gpage | (va & 4095);
	ret->page_bytes = 1ull << e->page_bytes_log2;
	ret->writable = e->writable;
	ret->user = e->user;
	ret->executable = e->executable;
	return 1;
}

void tlb_insert(struct tlb *tlb, uint64_t root, uint64_t va, const struct x86_translation *t)
{
	uint64_t vpage = (va >> 12) + 1;
	struct tlb_entry *e = slot(tlb, root, vpage);

	e->root = root;
	e->vpage = vpage;
	e->gpage = t->gpa & ~4095ull;
	e->page_bytes_log2 = (uint32_t)__builtin_ctzll(t->page_bytes);
	e->writable = (uint8_t)t->writable;
	e->user = (uint8_t)t->user;
	e->executable = (uint8_t)t->executable;
}
