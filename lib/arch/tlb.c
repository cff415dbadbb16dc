// SPDX-License-Identifier: MIT
/* The translation cache; see tlb.h. Insertion replaces ways round-robin. */
#include <string.h>

#include "arch/tlb.h"

void tlb_flush(struct tlb *tlb)
{
	memset(tlb->sets, 0, sizeof(tlb->sets));
}

void tlb_insert(struct tlb *tlb, uint64_t root, uint64_t va, const struct x86_translation *t,
		const uint8_t *host_page)
{
	uint64_t vpage = (va >> 12) + 1;
	struct tlb_set *set = tlb_set_of(tlb, root, vpage);
	struct tlb_entry *e = &set->way[set->next];

	set->next = (set->next + 1) % TLB_WAYS;
	e->root = root;
	e->vpage = vpage;
	e->gpage = t->gpa & ~4095ull;
	e->host_page = host_page;
	e->page_bytes_log2 = (uint8_t)__builtin_ctzll(t->page_bytes);
	e->writable = (uint8_t)t->writable;
	e->user = (uint8_t)t->user;
	e->executable = (uint8_t)t->executable;
}
