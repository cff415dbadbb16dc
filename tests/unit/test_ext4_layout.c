// SPDX-License-Identifier: MIT
/*
 * The ext4 block map against e2fsprogs itself: filesystems made by mke2fs
 * (today's defaults: 64bit, flex_bg, metadata_csum; and a classic layout
 * with 32-byte descriptors and 1 KiB blocks), and dumpe2fs's account of every
 * group as the ground truth. Then corrupted superblocks and descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "disk/ext4/layout.h"

struct image {
	char path[64];
	int fd;
	uint64_t size;
};

static int read_image(void *ctx, uint64_t offset, void *buf, size_t len)
{
	struct image *img = ctx;

	return pread(img->fd, buf, len, (off_t)offset) == (ssize_t)len ? 0 : -EIO;
}

static void make_image(struct image *img, const char *mkfs_options, const char *size)
{
	char command[512];

	snprintf(img->path, sizeof(img->path), "/tmp/vmscope-test-ext4.XXXXXX");
	img->fd = mkstemp(img->path);
	assert_true(img->fd >= 0);
	snprintf(command, sizeof(command), "mke2fs -q -F -t ext4 %s %s %s >/dev/null 2>&1",
		 mkfs_options, img->path, size);
	assert_int_equal(system(command), 0);
	img->size = (uint64_t)lseek(img->fd, 0, SEEK_END);
}

static void drop_image(struct image *img)
{
	close(img->fd);
	unlink(img->path);
}

/* dumpe2fs: "Block bitmap at N", "Inode bitmap at N", "Inode table at A-B", per group. */
static void check_against_dumpe2fs(const struct image *img, const struct ext4_layout *l)
{
	char command[128], line[512];
	uint32_t group = 0, seen_tables = 0;
	uint64_t a, b;
	FILE *p;

	snprintf(command, sizeof(command), "dumpe2fs %s 2>/dev/null", img->path);
	p = popen(command, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		const char *at;

		if (sscanf(line, "Group %" SCNu32 ":", &group) == 1)
			continue;
		if ((at = strstr(line, "Block bitmap at ")) && sscanf(at, "Block bitmap at %" SCNu64, &a) == 1) {
			assert_int_equal(l->group[group].block_bitmap, a);
			assert_int_equal(ext4_classify(l, a, NULL), EXT4_BLOCK_BLOCK_BITMAP);
		}
		if ((at = strstr(line, "Inode bitmap at ")) && sscanf(at, "Inode bitmap at %" SCNu64, &a) == 1) {
			assert_int_equal(l->group[group].inode_bitmap, a);
			assert_int_equal(ext4_classify(l, a, NULL), EXT4_BLOCK_INODE_BITMAP);
		}
		if ((at = strstr(line, "Inode table at ")) &&
		    sscanf(at, "Inode table at %" SCNu64 "-%" SCNu64, &a, &b) == 2) {
			uint32_t owner = 0;

			assert_int_equal(l->group[group].inode_table, a);
			assert_int_equal(b - a + 1, l->itable_blocks);
			assert_int_equal(ext4_classify(l, b, &owner), EXT4_BLOCK_INODE_TABLE);
			assert_int_equal(owner, group);
			seen_tables++;
		}
		if ((at = strstr(line, "superblock at ")) && sscanf(at, "superblock at %" SCNu64, &a) == 1)
			assert_int_equal(ext4_classify(l, a, NULL), EXT4_BLOCK_SUPER);
		if ((at = strstr(line, "Group descriptors at ")) &&
		    sscanf(at, "Group descriptors at %" SCNu64 "-%" SCNu64, &a, &b) == 2)
			assert_int_equal(ext4_classify(l, b, NULL), EXT4_BLOCK_GDT);
	}
	pclose(p);
	assert_int_equal(seen_tables, l->groups);
}

static void check_image(const char *options, const char *size, uint32_t block_size,
			uint32_t desc_size)
{
	struct ext4_layout l;
	struct image img;
	char err[128];

	make_image(&img, options, size);
	assert_int_equal(ext4_layout_load(&l, img.size, read_image, &img, err, sizeof(err)), 0);
	assert_int_equal(l.block_size, block_size);
	assert_int_equal(l.desc_size, desc_size);
	assert_true(l.groups > 1);
	check_against_dumpe2fs(&img, &l);
	assert_int_equal(ext4_classify(&l, l.blocks, NULL), EXT4_BLOCK_OUTSIDE);
	ext4_layout_release(&l);
	drop_image(&img);
}

static void test_todays_defaults(void **state)
{
	(void)state;
	check_image("-b 4096 -O 64bit,metadata_csum,flex_bg", "300M", 4096, 64);
}

static void test_classic_layout(void **state)
{
	(void)state;
	check_image("-b 1024 -O ^64bit,^flex_bg,^metadata_csum", "40M", 1024, 32);
}

static void corrupt(struct image *img, uint64_t offset, const void *bytes, size_t len)
{
	assert_int_equal(pwrite(img->fd, bytes, len, (off_t)offset), (ssize_t)len);
}

static void test_hostile_filesystems(void **state)
{
	struct ext4_layout l;
	struct image img;
	char err[128];
	uint32_t huge = 0xffffffffu;

	(void)state;
	make_image(&img, "-b 4096", "64M");
	corrupt(&img, 1024 + 56, "\x00\x00", 2); /* s_magic */
	assert_int_equal(ext4_layout_load(&l, img.size, read_image, &img, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no ext2/3/4 superblock"));
	drop_image(&img);

	make_image(&img, "-b 4096", "64M");
	corrupt(&img, 1024 + 32, &huge, 4); /* s_blocks_per_group */
	assert_int_equal(ext4_layout_load(&l, img.size, read_image, &img, err, sizeof(err)), -EINVAL);
	drop_image(&img);

	make_image(&img, "-b 4096", "64M");
	corrupt(&img, 1024 + 4, &huge, 4); /* s_blocks_count beyond the device */
	assert_int_equal(ext4_layout_load(&l, img.size, read_image, &img, err, sizeof(err)), -EINVAL);
	drop_image(&img);

	/* A descriptor pointing its inode table beyond the end. */
	make_image(&img, "-b 4096", "64M");
	corrupt(&img, 4096 + 8, &huge, 4); /* group 0's bg_inode_table */
	assert_int_equal(ext4_layout_load(&l, img.size, read_image, &img, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "outside the filesystem"));
	drop_image(&img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_todays_defaults),
		cmocka_unit_test(test_classic_layout),
		cmocka_unit_test(test_hostile_filesystems),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
