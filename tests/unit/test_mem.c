// SPDX-License-Identifier: MIT
/*
 * Guest-physical segments: merging, holes, overlaps, and scans, through both
 * kinds of segment. The "remote" kind reads our own /proc/self/mem, exactly
 * as it reads QEMU's.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "access/mem.h"

static uint8_t ram_low[3 << 20];
static uint8_t ram_high[9 << 20];

static void fill(void)
{
	for (size_t i = 0; i < sizeof(ram_low); i++)
		ram_low[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < sizeof(ram_high); i++)
		ram_high[i] = (uint8_t)(i * 13 + 1);
}

/* Low RAM at 0, a hole, high RAM at 4 GiB. */
static void build(struct mem_map *map, int remote)
{
	struct mem_segment low = { .gpa = 0, .size = sizeof(ram_low) };
	struct mem_segment high = { .gpa = 1ull << 32, .size = sizeof(ram_high) };

	mem_map_init(map);
	if (remote) {
		map->proc_mem_fd = open("/proc/self/mem", O_RDONLY);
		assert_true(map->proc_mem_fd >= 0);
		low.hva = (uintptr_t)ram_low;
		high.hva = (uintptr_t)ram_high;
	} else {
		low.host = ram_low;
		high.host = ram_high;
	}
	assert_int_equal(mem_map_add(map, &high), 0);
	assert_int_equal(mem_map_add(map, &low), 0);
}

static void check_reads(int remote)
{
	struct mem_map map;
	uint8_t buf[8192];

	fill();
	build(&map, remote);
	assert_int_equal(map.nr_segs, 2);
	assert_int_equal(mem_map_total(&map), sizeof(ram_low) + sizeof(ram_high));
	assert_int_equal(mem_map_read(&map, 4090, buf, 100), 0);
	assert_memory_equal(buf, ram_low + 4090, 100);
	assert_int_equal(mem_map_read(&map, (1ull << 32) + 12345, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, ram_high + 12345, sizeof(buf));
	/* The last byte of RAM reads; one past it does not. */
	assert_int_equal(mem_map_read(&map, sizeof(ram_low) - 1, buf, 1), 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(mem_map_read(&map, sizeof(ram_low) - 10, buf, 20), -EFAULT);
	assert_int_equal(buf[0], 0x5a); /* nothing copied on failure */
	assert_int_equal(mem_map_read(&map, 1ull << 31, buf, 1), -EFAULT);
	assert_int_equal(mem_map_read(&map, UINT64_MAX - 4, buf, 10), -EFAULT);
	mem_map_release(&map);
}

static void test_reads_mapped(void **state)
{
	(void)state;
	check_reads(0);
}

static void test_reads_remote(void **state)
{
	(void)state;
	check_reads(1);
}

static void test_adjacent_segments_merge_and_overlaps_refused(void **state)
{
	struct mem_map map;
	struct mem_segment a = { .gpa = 0, .size = 4096, .host = ram_low };
	struct mem_segment b = { .gpa = 4096, .size = 4096, .host = ram_low + 4096 };
	struct mem_segment c = { .gpa = 6000, .size = 4096, .host = ram_high };
	struct mem_segment d = { .gpa = 8192, .size = 4096, .host = ram_high };
	uint8_t buf[64];

	(void)state;
	fill();
	mem_map_init(&map);
	assert_int_equal(mem_map_add(&map, &a), 0);
	assert_int_equal(mem_map_add(&map, &b), 0);
	assert_int_equal(map.nr_segs, 1);
	assert_int_equal(mem_map_add(&map, &c), -EEXIST);
	assert_int_equal(mem_map_add(&map, &d), 0); /* contiguous gpa, other memory */
	assert_int_equal(map.nr_segs, 2);
	/* A read across two segments is served from both. */
	assert_int_equal(mem_map_read(&map, 8192 - 32, buf, 64), 0);
	assert_memory_equal(buf, ram_low + 8192 - 32, 32);
	assert_memory_equal(buf + 32, ram_high, 32);
	c.size = 0;
	assert_int_equal(mem_map_add(&map, &c), -EINVAL);
	c = (struct mem_segment){ .gpa = UINT64_MAX - 10, .size = 100, .host = ram_low };
	assert_int_equal(mem_map_add(&map, &c), -EINVAL);
	mem_map_release(&map);
}

struct hits {
	uint64_t gpa[16];
	int n;
	int stop_after;
};

static int on_hit(uint64_t gpa, void *ctx)
{
	struct hits *h = ctx;

	if (h->n < 16)
		h->gpa[h->n] = gpa;
	h->n++;
	return h->stop_after && h->n == h->stop_after;
}

/* Needles at the start, across the 4 MiB chunk border, and at the very end. */
static void check_scan(int remote)
{
	static const char needle[] = "Linux version ";
	size_t len = sizeof(needle) - 1, border = (4u << 20) - 5;
	struct hits h = { 0 };
	struct mem_map map;

	memset(ram_low, 0, sizeof(ram_low));
	memset(ram_high, 0, sizeof(ram_high));
	memcpy(ram_low, needle, len);
	memcpy(ram_high + border, needle, len);
	memcpy(ram_high + sizeof(ram_high) - len, needle, len);
	build(&map, remote);
	assert_int_equal(mem_map_scan(&map, needle, len, on_hit, &h), 0);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.gpa[0], 0);
	assert_int_equal(h.gpa[1], (1ull << 32) + border);
	assert_int_equal(h.gpa[2], (1ull << 32) + sizeof(ram_high) - len);

	h = (struct hits){ .stop_after = 2 };
	assert_int_equal(mem_map_scan(&map, needle, len, on_hit, &h), 1);
	assert_int_equal(h.n, 2);
	mem_map_release(&map);
}

static void test_scan_mapped(void **state)
{
	(void)state;
	check_scan(0);
}

static void test_scan_remote(void **state)
{
	(void)state;
	check_scan(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_mapped),
		cmocka_unit_test(test_reads_remote),
		cmocka_unit_test(test_adjacent_segments_merge_and_overlaps_refused),
		cmocka_unit_test(test_scan_mapped),
		cmocka_unit_test(test_scan_remote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
