// SPDX-License-Identifier: MIT
/*
 * Finding the kernel banner in memory images built here: decoys, fragments,
 * planted copies and banners cut off by the end of RAM. Images are attached
 * through the public raw: target, as a user would.
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

#include <vmscope/os.h>

#include "os/linux/linux.h"

#define REAL                                                                                       \
	"Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "     \
	"12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "                \
	"PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"

struct image {
	uint8_t *bytes;
	size_t size;
	char path[64];
};

static void image_new(struct image *img, size_t size)
{
	img->bytes = calloc(1, size);
	img->size = size;
	assert_non_null(img->bytes);
}

/* Place text (with its terminating NUL when nul is set) at offset. */
static void put(struct image *img, size_t offset, const char *text, int nul)
{
	memcpy(img->bytes + offset, text, strlen(text) + (nul ? 1 : 0));
}

static int identify(struct image *img, struct vms_os_ident *ident, char *target, size_t len)
{
	struct vms_vm *vm;
	FILE *f;
	int fd, err;

	snprintf(img->path, sizeof(img->path), "/tmp/vmscope-test-banner.XXXXXX");
	fd = mkstemp(img->path);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_int_equal(fwrite(img->bytes, 1, img->size, f), img->size);
	fclose(f);
	snprintf(target, len, "raw:%s", img->path);
	assert_int_equal(vms_vm_new(&vm), 0);
	err = vms_vm_attach(vm, target, NULL);
	assert_int_equal(err, 0);
	err = vms_os_identify(vm, ident);
	vms_vm_free(vm);
	unlink(img->path);
	free(img->bytes);
	return err;
}

static void test_shape_of_a_banner(void **state)
{
	(void)state;
	assert_int_equal(linux_banner_length(REAL "\n", sizeof(REAL) + 1), strlen(REAL));
	/* No NUL after the newline: a fragment of a longer text. */
	assert_int_equal(linux_banner_length(REAL "\nmore", sizeof(REAL "\nmore")), 0);
	/* Cut by the end of the buffer. */
	assert_int_equal(linux_banner_length(REAL, strlen(REAL)), 0);
	assert_int_equal(linux_banner_length("Linux version  (x) #1\n", 24), 0);
	assert_int_equal(linux_banner_length("Linux version 6.1 (x) # SMP\n", 30), 0);
	assert_int_equal(linux_banner_length("Linux version 6.1 (x\x01) #1\n", 27), 0);
	assert_int_equal(linux_banner_length("Linux version 6.1(x) #1\n", 25), 0);
	assert_int_equal(linux_banner_length("Linux version 6.1 (x) #1\n", 26), 24);
}

static void test_finds_the_banner_among_fragments(void **state)
{
	char target[128];
	struct vms_os_ident ident;
	struct image img;

	(void)state;
	image_new(&img, 8 << 20);
	/* A compressed-looking fragment and a half-overwritten copy come first. */
	put(&img, 0x1000, "Linux version 6.1.0-56-cloud-amd64 (debian-kernel@\x04\x01\"s", 0);
	put(&img, 0x3000, REAL ")6)\n", 1);
	put(&img, 0x200000, REAL "\n", 1);
	put(&img, 0x500010, REAL "\n", 1);
	assert_int_equal(identify(&img, &ident, target, sizeof(target)), 0);
	assert_string_equal(ident.os, "linux");
	assert_string_equal(ident.banner, REAL);
	assert_string_equal(ident.release, "6.1.0-56-cloud-amd64");
	assert_int_equal(ident.banner_gpa, 0x200000);
}

static void test_no_banner_is_enoent(void **state)
{
	char target[128];
	struct vms_os_ident ident;
	struct image img;

	(void)state;
	image_new(&img, 1 << 20);
	memset(img.bytes, 'L', img.size);
	put(&img, 100, "Linux version ", 0);
	assert_int_equal(identify(&img, &ident, target, sizeof(target)), -ENOENT);
}

static void test_banner_cut_by_end_of_ram(void **state)
{
	char target[128];
	struct vms_os_ident ident;
	struct image img;

	(void)state;
	image_new(&img, 1 << 20);
	put(&img, (1 << 20) - 40, "Linux version 6.1.0-56-cloud-amd64 (deb", 0);
	assert_int_equal(identify(&img, &ident, target, sizeof(target)), -ENOENT);

	/* A short banner that ends right at the last byte of RAM is whole. */
	image_new(&img, 1 << 20);
	put(&img, (1 << 20) - 27, "Linux version 6.1 (x) #1\n", 1);
	assert_int_equal(identify(&img, &ident, target, sizeof(target)), 0);
	assert_string_equal(ident.banner, "Linux version 6.1 (x) #1");
}

/* RAM full of banner prefixes costs bounded work and still ends. */
static void test_flood_of_prefixes_is_bounded(void **state)
{
	char target[128];
	struct vms_os_ident ident;
	struct image img;

	(void)state;
	image_new(&img, 4 << 20);
	for (size_t off = 0; off + 20 < img.size; off += 20)
		memcpy(img.bytes + off, "Linux version 1 (", 17);
	assert_int_equal(identify(&img, &ident, target, sizeof(target)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shape_of_a_banner),
		cmocka_unit_test(test_finds_the_banner_among_fragments),
		cmocka_unit_test(test_no_banner_is_enoent),
		cmocka_unit_test(test_banner_cut_by_end_of_ram),
		cmocka_unit_test(test_flood_of_prefixes_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
