/* SPDX-License-Identifier: MIT */
/*
 * A small direct-mapped translation cache: (page-table root, virtual 4 KiB
 * page) -> translation of that page. Cheap enough to consult on every
 * virtual read; flushed as a whole.
 */
#ifndef VMSCOPE_ARCH_TLB_H
#define VMSCOPE_ARCH_TLB_H

#include <stdint.h>

#include "arch/x86_64.h"

#define TLB_ENTRIES 1024

struct tlb_entry {
	uint64_t root;	 /* CR3 with flag bits cleared */
	uint64_t vpage;	 /* va >> 12, plus one so that 0 means empty */
	uint64_t gpage;	 /* gpa of the 4 KiB page's first byte */
	uint32_t page_bytes_log2;
	uint8_t writable, user, executable;
};

struct tlb {
	struct tlb_entry entries[TLB_ENTRIES];
	uint64_t hits, misses;
};

void tlb_flush(struct tlb *tlb);
int tlb_lookup(struct tlb *tlb, uint64_t root, uint64_t va, struct x86_translation *ret);
void tlb_insert(struct tlb *tlb, uint64_t root, uint64_t va, const struct x86_translation *t);

#endif
