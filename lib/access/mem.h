/* SPDX-License-Identifier: MIT */
/*
 * Guest-physical memory as a sorted table of segments (the drgn model). Each
 * segment is either mapped into our address space (memory-backend file, raw
 * image) or read from another process (QEMU's /proc/PID/mem at a host virtual
 * address learned from gpa2hva). Segments never overlap; the gaps between
 * them are holes where a read fails.
 */
#ifndef VMSCOPE_ACCESS_MEM_H
#define VMSCOPE_ACCESS_MEM_H

#include <stddef.h>
#include <stdint.h>

struct mem_segment {
	uint64_t gpa;	     /* first guest-physical address */
	uint64_t size;	     /* bytes */
	const uint8_t *host; /* direct mapping, or NULL */
	uint64_t hva;	     /* QEMU's address for it when host is NULL */
};

struct mem_mapping {
	void *addr;
	size_t len;
};

struct mem_map {
	struct mem_segment *segs;
	size_t nr_segs;
	struct mem_mapping *maps; /* what to munmap at the end */
	size_t nr_maps;
	int proc_mem_fd; /* QEMU's /proc/PID/mem, or -1 */
};

void mem_map_init(struct mem_map *map);
void mem_map_release(struct mem_map *map);

/* Add a segment; adjacent compatible segments merge. -EEXIST on overlap. */
int mem_map_add(struct mem_map *map, const struct mem_segment *seg);
int mem_map_add_mapping(struct mem_map *map, void *addr, size_t len);

/* Copy guest-physical bytes; -EFAULT if any byte lies outside RAM. */
int mem_map_read(const struct mem_map *map, uint64_t gpa, void *buf, size_t len);

/* How many bytes from gpa on are RAM without a hole (0 if gpa is not RAM). */
uint64_t mem_map_avail(const struct mem_map *map, uint64_t gpa);

uint64_t mem_map_total(const struct mem_map *map);

/*
 * Call found(gpa, ctx) for every occurrence of needle in guest RAM, in
 * ascending address order, until found returns non-zero (which is returned).
 */
typedef int (*mem_found_fn)(uint64_t gpa, void *ctx);
int mem_map_scan(const struct mem_map *map, const void *needle, size_t needle_len,
		 mem_found_fn found, void *ctx);

#endif
