/* SPDX-License-Identifier: MIT */
/*
 * Guest-physical memory as a sorted table of segments (the drgn model). Each
 * segment is read one of three ways: from a mapping of a file (raw image,
 * dump), from a memory-backend file (ramfile.c: mapped, but holes read with
 * pread), or from another process (QEMU's /proc/PID/mem at a host virtual
 * address learned from gpa2hva). Segments never overlap; the gaps between
 * them are holes where a read fails.
 */
#ifndef VMSCOPE_ACCESS_MEM_H
#define VMSCOPE_ACCESS_MEM_H

#include <stddef.h>
#include <stdint.h>

struct ram_file;

struct mem_segment {
	uint64_t gpa;		/* first guest-physical address */
	uint64_t size;		/* bytes */
	const uint8_t *host;	/* direct mapping, or NULL */
	struct ram_file *file;	/* memory-backend file, or NULL */
	uint64_t file_offset;	/* where the segment starts in file */
	uint64_t hva;		/* QEMU's address for it when neither */
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
	struct ram_file **files; /* what to close at the end */
	size_t nr_files;
	int proc_mem_fd; /* QEMU's /proc/PID/mem, or -1 */
};

void mem_map_init(struct mem_map *map);
void mem_map_release(struct mem_map *map);

/* Add a segment; adjacent compatible segments merge. -EEXIST on overlap. */
int mem_map_add(struct mem_map *map, const struct mem_segment *seg);
int mem_map_add_mapping(struct mem_map *map, void *addr, size_t len);
/* The map takes the file (closed with the map, even on failure). */
int mem_map_add_file(struct mem_map *map, struct ram_file *file);

/* Forget what was learned about RAM files: the VM may have run since. */
void mem_map_forget(struct mem_map *map);

/* Copy guest-physical bytes; -EFAULT if any byte lies outside RAM. */
int mem_map_read(const struct mem_map *map, uint64_t gpa, void *buf, size_t len);

/*
 * Where the 4 KiB page at gpa (page-aligned) can be read directly, if it can:
 * in a mapping, and, for a RAM file, only if the page exists. NULL otherwise.
 * Valid until mem_map_forget().
 */
const uint8_t *mem_map_host_page(const struct mem_map *map, uint64_t gpa);

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
/* The same, for matches that lie wholly within guest-physical [low, high). */
int mem_map_scan_range(const struct mem_map *map, uint64_t low, uint64_t high,
		       const void *needle, size_t needle_len, mem_found_fn found, void *ctx);

#endif
