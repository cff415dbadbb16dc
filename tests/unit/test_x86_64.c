// SPDX-License-Identifier: MIT
/*
 * x86-64 walks over page tables built in a buffer: 4- and 5-level, every page
 * size, rights, and malformed tables (cycles, entries outside RAM,
 * non-canonical addresses, reserved large-page bits). Then the same tables
 * through the public API on a raw image, for page-crossing reads and the
 * translation cache.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <vmscope/mem.h>

#include "arch/x86_64.h"

#define RAM_BYTES (4u << 20)
#define P	  X86_PTE_PRESENT
#define W	  X86_PTE_WRITE
#define U	  X86_PTE_USER
#define PS	  X86_PTE_LARGE
#define NX	  X86_PTE_NX

struct fake_ram {
	uint8_t *bytes;
	uint64_t next_table; /* bump allocator for tables */
	int levels;
	uint64_t root;
};

static int fake_read(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct fake_ram *ram = ctx;

	if (gpa > RAM_BYTES || len > RAM_BYTES - gpa)
		return -EFAULT;
	memcpy(buf, ram->bytes + gpa, len);
	return 0;
}

static uint64_t new_table(struct fake_ram *ram)
{
	uint64_t at = ram->next_table;

	ram->next_table += 4096;
	assert_true(ram->next_table <= RAM_BYTES / 2);
	return at;
}

static uint64_t *entry(struct fake_ram *ram, uint64_t table, unsigned int index)
{
	return (uint64_t *)(ram->bytes + table) + index;
}

static void ram_init(struct fake_ram *ram, int levels)
{
	ram->bytes = calloc(1, RAM_BYTES);
	assert_non_null(ram->bytes);
	ram->next_table = 0x1000;
	ram->levels = levels;
	ram->root = new_table(ram);
}

/* Map va -> gpa with a page of the level's size (1: 4K, 2: 2M, 3: 1G), flags on the leaf. */
static void map(struct fake_ram *ram, uint64_t va, uint64_t gpa, int leaf_level, uint64_t flags)
{
	uint64_t table = ram->root;

	for (int level = ram->levels; level > leaf_level; level--) {
		uint64_t *e = entry(ram, table, (va >> (12 + 9 * (level - 1))) & 511);

		if (!(*e & P))
			*e = new_table(ram) | P | W | U;
		table = *e & X86_PTE_ADDR;
	}
	*entry(ram, table, (va >> (12 + 9 * (leaf_level - 1))) & 511) =
		gpa | flags | P | (leaf_level > 1 ? PS : 0);
}

static struct x86_mmu mmu_of(struct fake_ram *ram)
{
	return (struct x86_mmu){ fake_read, ram, ram->levels };
}

static void test_page_sizes_and_rights(void **state)
{
	struct fake_ram ram;
	struct x86_mmu mmu;
	struct x86_translation t;

	(void)state;
	ram_init(&ram, 4);
	mmu = mmu_of(&ram);
	map(&ram, 0x400000, 0x300000, 1, U);			      /* user, read-only, exec */
	map(&ram, 0xffff888000200000ull, 0x200000, 2, W | NX);	      /* kernel 2M */
	map(&ram, 0xffff888040000000ull, 0x80000000ull, 3, W | NX); /* kernel 1G */

	assert_int_equal(x86_translate(&mmu, ram.root, 0x400123, &t), 0);
	assert_int_equal(t.gpa, 0x300123);
	assert_int_equal(t.page_bytes, 4096);
	assert_true(t.user && !t.writable && t.executable);

	assert_int_equal(x86_translate(&mmu, ram.root, 0xffff888000212345ull, &t), 0);
	assert_int_equal(t.gpa, 0x212345);
	assert_int_equal(t.page_bytes, 2u << 20);
	assert_true(!t.user && t.writable && !t.executable);

	assert_int_equal(x86_translate(&mmu, ram.root, 0xffff888041234567ull, &t), 0);
	assert_int_equal(t.gpa, 0x81234567ull);
	assert_int_equal(t.page_bytes, 1u << 30);

	/* PCID bits and bit 63 of CR3 are not part of the table address. */
	assert_int_equal(x86_translate(&mmu, ram.root | 0x5 | (1ull << 63), 0x400123, &t), 0);
	assert_int_equal(t.gpa, 0x300123);
	assert_int_equal(x86_translate(&mmu, ram.root, 0x401000, &t), -ENOENT);
	free(ram.bytes);
}

/* The PAT bit of a large page (bit 12) is not an address bit. */
static void test_large_page_pat_bit_ignored(void **state)
{
	struct fake_ram ram;
	struct x86_mmu mmu;
	struct x86_translation t;

	(void)state;
	ram_init(&ram, 4);
	mmu = mmu_of(&ram);
	map(&ram, 0x40000000, 0x600000 | (1u << 12), 2, 0);
	assert_int_equal(x86_translate(&mmu, ram.root, 0x40000010, &t), 0);
	assert_int_equal(t.gpa, 0x600010);
	free(ram.bytes);
}

static void test_five_levels(void **state)
{
	struct fake_ram ram;
	struct x86_mmu mmu;
	struct x86_translation t;
	uint64_t va = 0xff11000012345678ull; /* only canonical with 57-bit addresses */

	(void)state;
	ram_init(&ram, 5);
	mmu = mmu_of(&ram);
	map(&ram, va & ~4095ull, 0x123000, 1, 0);
	assert_int_equal(x86_translate(&mmu, ram.root, va, &t), 0);
	assert_int_equal(t.gpa, 0x123678);
	mmu.levels = 4;
	assert_int_equal(x86_translate(&mmu, ram.root, va, &t), -EINVAL);
	assert_true(x86_canonical(5, 0x00ffffffffffffffull));
	assert_false(x86_canonical(5, 0x0100000000000000ull));
	assert_true(x86_canonical(4, 0xffff800000000000ull));
	assert_false(x86_canonical(4, 0xff11000012345678ull));
	mmu.levels = 3;
	assert_int_equal(x86_translate(&mmu, ram.root, 0, &t), -EINVAL);
	free(ram.bytes);
}

static void test_malformed_tables(void **state)
{
	struct fake_ram ram;
	struct x86_mmu mmu;
	struct x86_translation t;

	(void)state;
	ram_init(&ram, 4);
	mmu = mmu_of(&ram);
	/* A PML4 entry pointing at the PML4 itself: the walk still ends after 4 reads. */
	*entry(&ram, ram.root, 0) = ram.root | P | W;
	assert_int_equal(x86_translate(&mmu, ram.root, 0x10, &t), 0);
	assert_int_equal(t.gpa, ram.root + 0x10);
	/* A table far outside RAM. */
	*entry(&ram, ram.root, 1) = 0x7ff0000000ull | P;
	assert_int_equal(x86_translate(&mmu, ram.root, 1ull << 39, &t), -EFAULT);
	/* A large page bit where it is reserved (PML4). */
	*entry(&ram, ram.root, 2) = 0x200000 | P | PS;
	assert_int_equal(x86_translate(&mmu, ram.root, 2ull << 39, &t), -ENOENT);
	/* Non-canonical, and a root outside RAM. */
	assert_int_equal(x86_translate(&mmu, ram.root, 0x0000900000000000ull, &t), -EINVAL);
	assert_int_equal(x86_translate(&mmu, 0x7fff0000000ull, 0x1000, &t), -EFAULT);
	free(ram.bytes);
}

struct counter {
	int n;
	uint64_t last_va;
	int ordered;
	int stop_at;
};

static int count_mapping(uint64_t va, const struct x86_translation *t, void *ctx)
{
	struct counter *c = ctx;

	(void)t;
	if (c->n && va <= c->last_va)
		c->ordered = 0;
	c->last_va = va;
	c->n++;
	return c->stop_at && c->n == c->stop_at;
}

static void test_enumeration_in_order_and_bounded(void **state)
{
	struct counter c = { .ordered = 1 };
	struct fake_ram ram;
	struct x86_mmu mmu;
	uint64_t fan;

	(void)state;
	ram_init(&ram, 4);
	mmu = mmu_of(&ram);
	map(&ram, 0xffffffff81000000ull, 0x1000000, 2, 0);
	map(&ram, 0x400000, 0x300000, 1, U);
	map(&ram, 0x401000, 0x301000, 1, U);
	map(&ram, 0xffff888000000000ull, 0x40000000, 3, W);
	assert_int_equal(x86_for_each_mapping(&mmu, ram.root, 0, UINT64_MAX, 100, count_mapping, &c),
			 0);
	assert_int_equal(c.n, 4);
	assert_true(c.ordered);
	assert_int_equal(c.last_va, 0xffffffff81000000ull);

	/* A range limits what is reported; a callback can stop the walk. */
	c = (struct counter){ .ordered = 1 };
	assert_int_equal(x86_for_each_mapping(&mmu, ram.root, 0x401000, 0x401fff, 100, count_mapping,
					      &c),
			 0);
	assert_int_equal(c.n, 1);
	c = (struct counter){ .ordered = 1, .stop_at = 2 };
	assert_int_equal(x86_for_each_mapping(&mmu, ram.root, 0, UINT64_MAX, 100, count_mapping, &c),
			 1);

	/* Every entry of a table pointing at one shared table: 512^3 paths, cut off. */
	fan = new_table(&ram);
	for (unsigned int i = 0; i < 512; i++)
		*entry(&ram, fan, i) = fan | P;
	*entry(&ram, ram.root, 5) = fan | P;
	c = (struct counter){ .ordered = 1 };
	assert_int_equal(x86_for_each_mapping(&mmu, ram.root, 0, UINT64_MAX, 10000, count_mapping,
					      &c),
			 -ELOOP);
	free(ram.bytes);
}

/* Through the public API: a raw image holding the tables above. */
static void test_virtual_reads_across_pages_and_cache(void **state)
{
	char path[] = "/tmp/vmscope-test-x86.XXXXXX";
	struct vms_translation t;
	struct fake_ram ram;
	struct vms_vm *vm;
	char target[64], buf[32];
	FILE *f;
	int fd;

	(void)state;
	ram_init(&ram, 4);
	/* Two virtually adjacent pages, physically apart and in reverse order. */
	map(&ram, 0x10000000, 0x3f0000, 1, 0);
	map(&ram, 0x10001000, 0x3e0000, 1, 0);
	memcpy(ram.bytes + 0x3f0ff0, "first page ends ", 16);
	memcpy(ram.bytes + 0x3e0000, "second page starts", 18);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w+b");
	assert_int_equal(fwrite(ram.bytes, 1, RAM_BYTES, f), RAM_BYTES);
	fflush(f);
	snprintf(target, sizeof(target), "raw:%s", path);
	assert_int_equal(vms_vm_new(&vm), 0);
	assert_int_equal(vms_vm_attach(vm, target, NULL), 0);
	assert_int_equal(vms_vm_paging_levels(vm), 4);
	assert_int_equal(vms_virt_read(vm, ram.root, 0x10000ff0, buf, 32), 0);
	assert_memory_equal(buf, "first page ends second page start", 32);
	assert_int_equal(vms_virt_read(vm, ram.root, 0x10001ff0, buf, 32), -ENOENT);
	assert_non_null(strstr(vms_last_error(vm), "0x10002000 is not mapped"));

	/*
	 * Change the table under the handle (the image is mapped, so the new
	 * bytes show through): the cached translation stands until the caches
	 * are flushed, then the walk sees the new entry.
	 */
	assert_int_equal(vms_translate(vm, ram.root, 0x10000000, &t), 0);
	assert_int_equal(t.gpa, 0x3f0000);
	map(&ram, 0x10000000, 0x3d0000, 1, 0);
	fseek(f, 0, SEEK_SET);
	assert_int_equal(fwrite(ram.bytes, 1, RAM_BYTES, f), RAM_BYTES);
	fclose(f);
	assert_int_equal(vms_translate(vm, ram.root, 0x10000000, &t), 0);
	assert_int_equal(t.gpa, 0x3f0000);
	vms_vm_flush_caches(vm);
	assert_int_equal(vms_translate(vm, ram.root, 0x10000000, &t), 0);
	assert_int_equal(t.gpa, 0x3d0000);
	assert_int_equal(vms_vm_set_paging_levels(vm, 5), 0);
	assert_int_equal(vms_vm_set_paging_levels(vm, 3), -EINVAL);
	vms_vm_free(vm);
	unlink(path);
	free(ram.bytes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_sizes_and_rights),
		cmocka_unit_test(test_large_page_pat_bit_ignored),
		cmocka_unit_test(test_five_levels),
		cmocka_unit_test(test_malformed_tables),
		cmocka_unit_test(test_enumeration_in_order_and_bounded),
		cmocka_unit_test(test_virtual_reads_across_pages_and_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
