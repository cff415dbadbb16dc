// SPDX-License-Identifier: MIT
/*
 * Guest-physical memory segments and the reads and scans over them.
 *
 * Invariant: map->segs is sorted by gpa and no two segments overlap, so a
 * lookup is a binary search and a read that crosses from one segment into the
 * next is served piecewise only if they are contiguous in guest-physical space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "access/mem.h"
#include "access/ramfile.h"

#define SCAN_CHUNK_BYTES (4u << 20)

void mem_map_init(struct mem_map *map)
{
	memset(map, 0, sizeof(*map));
	map->proc_mem_fd = -1;
}

void mem_map_release(struct mem_map *map)
{
	for (size_t i = 0; i < map->nr_maps; i++)
		munmap(map->maps[i].addr, map->maps[i].len);
	for (size_t i = 0; i < map->nr_files; i++)
		ram_file_close(map->files[i]);
	if (map->proc_mem_fd >= 0)
		close(map->proc_mem_fd);
	free(map->files);
	free(map->maps);
	free(map->segs);
	mem_map_init(map);
}

int mem_map_add_mapping(struct mem_map *map, void *addr, size_t len)
{
	struct mem_mapping *maps;

	maps = realloc(map->maps, (map->nr_maps + 1) * sizeof(*maps));
	if (!maps)
		return -ENOMEM;
	maps[map->nr_maps++] = (struct mem_mapping){ addr, len };
	map->maps = maps;
	return 0;
}

int mem_map_add_file(struct mem_map *map, struct ram_file *file)
{
	struct ram_file **files = realloc(map->files, (map->nr_files + 1) * sizeof(*files));

	if (!files) {
		ram_file_close(file);
		return -ENOMEM;
	}
	files[map->nr_files++] = file;
	map->files = files;
	return 0;
}

void mem_map_forget(struct mem_map *map)
{
	for (size_t i = 0; i < map->nr_files; i++)
		ram_file_forget(map->files[i]);
}

static int continues(const struct mem_segment *prev, const struct mem_segment *seg)
{
	if (prev->gpa + prev->size != seg->gpa)
		return 0;
	if (prev->file || seg->file)
		return prev->file == seg->file && prev->file_offset + prev->size == seg->file_offset;
	if (prev->host || seg->host)
		return prev->host && seg->host && prev->host + prev->size == seg->host;
	return prev->hva + prev->size == seg->hva;
}

int mem_map_add(struct mem_map *map, const struct mem_segment *seg)
{
	struct mem_segment *segs;
	size_t at = 0;

	if (!seg->size || seg->gpa + seg->size < seg->gpa)
		return -EINVAL;
	while (at < map->nr_segs && map->segs[at].gpa < seg->gpa)
		at++;
	if (at > 0 && map->segs[at - 1].gpa + map->segs[at - 1].size > seg->gpa)
		return -EEXIST;
	if (at < map->nr_segs && seg->gpa + seg->size > map->segs[at].gpa)
		return -EEXIST;
	if (at > 0 && continues(&map->segs[at - 1], seg)) {
		map->segs[at - 1].size += seg->size;
		return 0;
	}
	segs = realloc(map->segs, (map->nr_segs + 1) * sizeof(*segs));
	if (!segs)
		return -ENOMEM;
	memmove(&segs[at + 1], &segs[at], (map->nr_segs - at) * sizeof(*segs));
	segs[at] = *seg;
	map->segs = segs;
	map->nr_segs++;
	return 0;
}

static const struct mem_segment *find_segment(const struct mem_map *map, uint64_t gpa)
{
	size_t lo = 0, hi = map->nr_segs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct mem_segment *s = &map->segs[mid];

		if (gpa < s->gpa)
			hi = mid;
		else if (gpa - s->gpa >= s->size)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

static int segment_read(const struct mem_map *map, const struct mem_segment *seg, uint64_t offset,
			void *buf, size_t len)
{
	ssize_t n;

	if (seg->host) {
		memcpy(buf, seg->host + offset, len);
		return 0;
	}
	if (seg->file)
		return ram_file_read(seg->file, seg->file_offset + offset, buf, len);
	while (len) {
		n = pread(map->proc_mem_fd, buf, len, (off_t)(seg->hva + offset));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf = (uint8_t *)buf + n;
		offset += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Every byte must be present before any is copied. */
static int range_present(const struct mem_map *map, uint64_t gpa, size_t len)
{
	while (len) {
		const struct mem_segment *s = find_segment(map, gpa);
		uint64_t avail;

		if (!s)
			return 0;
		avail = s->size - (gpa - s->gpa);
		if (avail >= len)
			return 1;
		gpa += avail;
		len -= avail;
	}
	return 1;
}

int mem_map_read(const struct mem_map *map, uint64_t gpa, void *buf, size_t len)
{
	const struct mem_segment *first = find_segment(map, gpa);

	/* The common case first: the whole range inside one segment. */
	if (first && len <= first->size - (gpa - first->gpa))
		return segment_read(map, first, gpa - first->gpa, buf, len);
	if (gpa + len < gpa || !range_present(map, gpa, len))
		return -EFAULT;
	while (len) {
		const struct mem_segment *s = find_segment(map, gpa);
		uint64_t offset = gpa - s->gpa;
		size_t part = s->size - offset < len ? (size_t)(s->size - offset) : len;
		int err = segment_read(map, s, offset, buf, part);

		if (err)
			return err;
		buf = (uint8_t *)buf + part;
		gpa += part;
		len -= part;
	}
	return 0;
}

const uint8_t *mem_map_host_page(const struct mem_map *map, uint64_t gpa)
{
	const struct mem_segment *s = find_segment(map, gpa);
	uint64_t offset;

	if (!s || (gpa & 4095) || s->size - (gpa - s->gpa) < 4096)
		return NULL;
	offset = gpa - s->gpa;
	if (s->file)
		return ram_file_page(s->file, s->file_offset + offset);
	return s->host ? s->host + offset : NULL;
}

uint64_t mem_map_avail(const struct mem_map *map, uint64_t gpa)
{
	uint64_t avail = 0;

	for (;;) {
		const struct mem_segment *s = find_segment(map, gpa + avail);

		if (!s)
			return avail;
		avail = s->gpa + s->size - gpa;
		if (!avail) /* the segment ends at the top of the address space */
			return UINT64_MAX;
	}
}

uint64_t mem_map_total(const struct mem_map *map)
{
	uint64_t total = 0;

	for (size_t i = 0; i < map->nr_segs; i++)
		total += map->segs[i].size;
	return total;
}

static int scan_buffer(const uint8_t *data, size_t len, uint64_t gpa, const void *needle,
		       size_t needle_len, mem_found_fn found, void *ctx)
{
	const uint8_t *p = data, *end = data + len;

	while ((size_t)(end - p) >= needle_len) {
		const uint8_t *hit = memmem(p, (size_t)(end - p), needle, needle_len);
		int ret;

		if (!hit)
			break;
		ret = found(gpa + (uint64_t)(hit - data), ctx);
		if (ret)
			return ret;
		p = hit + 1;
	}
	return 0;
}

/*
 * Scan a segment that is read rather than mapped (QEMU's process, or a RAM
 * file whose holes must not be touched) in chunks. Consecutive chunks
 * overlap by needle_len - 1 bytes so a match across their border is seen once.
 */
static int scan_by_reading(const struct mem_map *map, const struct mem_segment *seg, const void *needle,
		       size_t needle_len, mem_found_fn found, void *ctx)
{
	uint8_t *chunk;
	uint64_t start = 0;
	int ret = 0;

	if (needle_len >= SCAN_CHUNK_BYTES)
		return -EINVAL;
	chunk = malloc(SCAN_CHUNK_BYTES);
	if (!chunk)
		return -ENOMEM;
	for (;;) {
		uint64_t left = seg->size - start;
		size_t len = left < SCAN_CHUNK_BYTES ? (size_t)left : SCAN_CHUNK_BYTES;

		ret = segment_read(map, seg, start, chunk, len);
		if (!ret)
			ret = scan_buffer(chunk, len, seg->gpa + start, needle, needle_len, found,
					  ctx);
		if (ret || len == left)
			break;
		start += len - (needle_len - 1);
	}
	free(chunk);
	return ret;
}

/* The part of seg within [low, high), as a segment of its own (size 0 if none). */
static struct mem_segment clip(const struct mem_segment *seg, uint64_t low, uint64_t high)
{
	struct mem_segment part = *seg;
	uint64_t start = seg->gpa > low ? seg->gpa : low;
	uint64_t end = seg->gpa + seg->size < high ? seg->gpa + seg->size : high;
	uint64_t skip = start - seg->gpa;

	if (start >= end) {
		part.size = 0;
		return part;
	}
	part.gpa = start;
	part.size = end - start;
	if (part.host)
		part.host += skip;
	part.file_offset += skip;
	part.hva += skip;
	return part;
}

int mem_map_scan_range(const struct mem_map *map, uint64_t low, uint64_t high,
		       const void *needle, size_t needle_len, mem_found_fn found, void *ctx)
{
	int ret = 0;

	if (!needle_len)
		return -EINVAL;
	for (size_t i = 0; i < map->nr_segs && !ret; i++) {
		struct mem_segment s = clip(&map->segs[i], low, high);

		if (s.size < needle_len)
			continue;
		if (s.host && !s.file)
			ret = scan_buffer(s.host, s.size, s.gpa, needle, needle_len, found, ctx);
		else
			ret = scan_by_reading(map, &s, needle, needle_len, found, ctx);
	}
	return ret;
}

int mem_map_scan(const struct mem_map *map, const void *needle, size_t needle_len,
		 mem_found_fn found, void *ctx)
{
	return mem_map_scan_range(map, 0, UINT64_MAX, needle, needle_len, found, ctx);
}
