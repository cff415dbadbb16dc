/* SPDX-License-Identifier: MIT */
/*
 * A small set-associative translation cache: (page-table root, virtual 4 KiB
 * page) -> translation of that page, and where the page can be read directly
 * when it can (the softmmu TLB idea). Cheap enough to consult on every
 * virtual read; flushed as a whole. Four ways per set keep pages whose
 * addresses hash alike from evicting each other.
 */
#ifndef VMSCOPE_ARCH_TLB_H
#define VMSCOPE_ARCH_TLB_H

#include <stdint.h>

#include "arch/x86_64.h"

#define TLB_SETS 512
#define TLB_WAYS 4

struct tlb_entry {
	uint64_t root;			 /* CR3 with flag bits cleared */
	uint64_t vpage;			 /* va >> 12, plus one so that 0 means empty */
	uint64_t gpage;			 /* gpa of the 4 KiB page's first byte */
	const uint8_t *host_page;	 /* where we can read that page directly, or NULL */
	uint8_t page_bytes_log2;
	uint8_t writable, user, executable;
};

struct tlb_set {
	struct tlb_entry way[TLB_WAYS];
	unsigned int next; /* the way the next insertion replaces */
};

struct tlb {
	struct tlb_set sets[TLB_SETS];
};

void tlb_flush(struct tlb *tlb);
void tlb_insert(struct tlb *tlb, uint64_t root, uint64_t va, const struct x86_translation *t,
		const uint8_t *host_page);

static inline struct tlb_set *tlb_set_of(struct tlb *tlb, uint64_t root, uint64_t vpage)
{
	return &tlb->sets[(vpage ^ (root >> 12)) & (TLB_SETS - 1)];
}

/* The entry for va, or NULL. Inline: every virtual read asks. */
static inline const struct tlb_entry *tlb_find(struct tlb *tlb, uint64_t root, uint64_t va)
{
	uint64_t vpage = (va >> 12) + 1;
	struct tlb_set *set = tlb_set_of(tlb, root, vpage);

	for (unsigned int i = 0; i < TLB_WAYS; i++)
		if (set->way[i].vpage == vpage && set->way[i].root == root)
			return &set->way[i];
	return NULL;
}

/* 1 and *ret filled on a hit. */
static inline int tlb_lookup(struct tlb *tlb, uint64_t root, uint64_t va,
			     struct x86_translation *ret)
{
	const struct tlb_entry *e = tlb_find(tlb, root, va);

	if (!e)
		return 0;
	ret->gpa = e->gpage | (va & 4095);
	ret->page_bytes = 1ull << e->page_bytes_log2;
	ret->writable = e->writable;
	ret->user = e->user;
	ret->executable = e->executable;
	return 1;
}

#endif
