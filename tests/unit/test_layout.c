// SPDX-License-Identifier: MIT
/*
 * Partition tables made by sfdisk, read back and compared with what sfdisk
 * itself says of them (--json): GPT (names in UTF-8, the backup header when
 * the primary is damaged) and MBR with logical partitions; then the guest's
 * forgeries: both GPT copies damaged, a huge entry count, a looping EBR
 * chain, a partition past the disk's end.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zlib.h>

#include "disk/layout/layout.h"
#include "run_command.h"

#define DISK_BYTES (64u << 20)

static char image[64];

static int read_image(void *ctx, uint64_t offset, void *buf, size_t len)
{
	int fd = *(int *)ctx;

	return pread(fd, buf, len, (off_t)offset) == (ssize_t)len ? 0 : -EIO;
}

/* An image partitioned by sfdisk from script (its own input format). */
static void make_image(const char *script)
{
	int fd;

	snprintf(image, sizeof(image), "/tmp/vmscope-layout-XXXXXX");
	fd = mkstemp(image);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DISK_BYTES), 0);
	close(fd);
	assert_int_equal(run_command("printf '%s' | sfdisk -q %s >/dev/null", script, image), 0);
}

static int read_layout(struct layout *l)
{
	int fd = open(image, O_RDONLY), err;

	assert_true(fd >= 0);
	err = layout_read(read_image, &fd, DISK_BYTES, l);
	close(fd);
	return err;
}

/* What sfdisk --json says, against ours: start, size, type, uuid, name. */
static void assert_same_as_sfdisk(const struct layout *l)
{
	char command[256];
	json_error_t jerr;
	json_t *doc, *parts, *e;
	size_t i, n = 0;
	FILE *p;

	snprintf(command, sizeof(command), "sfdisk --json %s 2>/dev/null", image);
	p = popen(command, "r");
	assert_non_null(p);
	doc = json_loadf(p, 0, &jerr);
	pclose(p);
	assert_non_null(doc);
	parts = json_object_get(json_object_get(doc, "partitiontable"), "partitions");
	json_array_foreach(parts, i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *node = json_string_value(json_object_get(e, "node"));
		const char *uuid = json_string_value(json_object_get(e, "uuid"));
		const char *name = json_string_value(json_object_get(e, "name"));
		const struct layout_partition *q = &l->parts[n];
		/* "IMAGE3", or "IMAGEp3" when the name ends in a digit */
		const char *suffix = node + strlen(image) + (node[strlen(image)] == 'p');
		unsigned int number = (unsigned int)atoi(suffix);

		if (l->kind == LAYOUT_MBR && (!strcmp(type, "5") || !strcmp(type, "f")))
			continue; /* the extended container holds no filesystem */
		assert_true(n < l->n);
		assert_int_equal(q->number, number);
		assert_int_equal(q->offset, json_integer_value(json_object_get(e, "start")) * 512);
		assert_int_equal(q->size, json_integer_value(json_object_get(e, "size")) * 512);
		if (l->kind == LAYOUT_GPT) {
			assert_int_equal(strcasecmp(q->type, type), 0);
			assert_int_equal(strcasecmp(q->uuid, uuid), 0);
			assert_string_equal(q->name, name ? name : "");
		} else {
			assert_int_equal(strtoul(q->type, NULL, 16), strtoul(type, NULL, 16));
		}
		n++;
	}
	assert_int_equal(n, l->n);
	json_decref(doc);
}

static const char gpt_script[] = "label: gpt\\n"
				 "start=2048, size=20480, name=root, type=L\\n"
				 "start=22528, size=10240, name=\"data \\303\\274\"\\n"
				 "size=8192, type=S\\n";

static void test_gpt(void **state)
{
	struct layout *l = malloc(sizeof(*l));

	(void)state;
	make_image(gpt_script);
	assert_int_equal(read_layout(l), 0);
	assert_int_equal(l->kind, LAYOUT_GPT);
	assert_int_equal(l->n, 3);
	assert_false(l->partial);
	assert_same_as_sfdisk(l);
	assert_string_equal(l->parts[1].name, "data \xc3\xbc");
	unlink(image);
	free(l);
}

/* len bytes of the image at offset, read into buf, or written from it. */
static void image_io(uint64_t offset, void *buf, size_t len, int write)
{
	int fd = open(image, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(write ? pwrite(fd, buf, len, (off_t)offset)
			       : pread(fd, buf, len, (off_t)offset),
			 (ssize_t)len);
	close(fd);
}

static void flip(uint64_t offset)
{
	unsigned char b;

	image_io(offset, &b, 1, 0);
	b ^= 0x01;
	image_io(offset, &b, 1, 1);
}

/* The primary header says there are 2^31 entries, its CRC made to match. */
static void forge_entry_count(void)
{
	unsigned char h[92];
	uint32_t crc;

	image_io(512, h, sizeof(h), 0);
	h[83] = 0x80;
	memset(h + 16, 0, 4);
	crc = (uint32_t)crc32(0, h, sizeof(h));
	memcpy(h + 16, &crc, 4);
	image_io(512, h, sizeof(h), 1);
}

static void test_gpt_damage(void **state)
{
	struct layout *l = malloc(sizeof(*l));

	(void)state;
	make_image(gpt_script);
	flip(512 + 40); /* the primary header: the backup serves */
	assert_int_equal(read_layout(l), 0);
	assert_int_equal(l->kind, LAYOUT_GPT);
	assert_same_as_sfdisk(l);
	flip(512 + 40);
	forge_entry_count(); /* a header that checks itself but names 2^31 entries */
	assert_int_equal(read_layout(l), 0);
	assert_int_equal(l->n, 3);
	flip(1024 + 10); /* primary entries, and the backup header too */
	flip(DISK_BYTES - 512 + 40);
	assert_int_equal(read_layout(l), -EBADMSG);
	assert_non_null(strstr(l->why, "protective MBR"));
	unlink(image);
	free(l);
}

static const char mbr_script[] = "label: dos\\n"
				 "start=2048, size=10240, type=83\\n"
				 "start=12288, size=10240, type=83\\n"
				 "start=22528, size=40960, type=5\\n"
				 "size=8192, type=83\\n"
				 "size=8192, type=82\\n"
				 "size=8192, type=83\\n";

static void test_mbr(void **state)
{
	struct layout *l = malloc(sizeof(*l));

	(void)state;
	make_image(mbr_script);
	assert_int_equal(read_layout(l), 0);
	assert_int_equal(l->kind, LAYOUT_MBR);
	assert_int_equal(l->n, 5);
	assert_false(l->partial);
	assert_same_as_sfdisk(l);
	unlink(image);
	free(l);
}

static void poke32(uint64_t offset, uint32_t v)
{
	image_io(offset, &v, 4, 1);
}

static void test_mbr_forged(void **state)
{
	struct layout *l = malloc(sizeof(*l));
	uint64_t first_ebr = 22528ull * 512, second_ebr;
	uint32_t link;

	(void)state;
	make_image(mbr_script);
	/* The first EBR's link, relative to the extended partition's start. */
	image_io(first_ebr + 446 + 16 + 8, &link, 4, 0);
	second_ebr = first_ebr + (uint64_t)link * 512;
	/* The second (last) EBR links back to the first: read once, marked partial. */
	poke32(second_ebr + 446 + 16 + 4, 0x05); /* type: extended, end CHS zero */
	poke32(second_ebr + 446 + 16 + 8, 0);
	poke32(second_ebr + 446 + 16 + 12, 8192);
	assert_int_equal(read_layout(l), 0);
	assert_true(l->partial);
	assert_non_null(strstr(l->why, "loops"));
	assert_int_equal(l->n, 5);
	/* A primary partition past the disk's end is left out, said so. */
	poke32(446 + 16 + 12, 0x7fffffff);
	assert_int_equal(read_layout(l), 0);
	assert_true(l->partial);
	assert_int_equal(l->n, 4);
	unlink(image);
	free(l);
}

static void test_whole_disk(void **state)
{
	struct layout *l = malloc(sizeof(*l));
	int fd;

	(void)state;
	snprintf(image, sizeof(image), "/tmp/vmscope-layout-XXXXXX");
	fd = mkstemp(image);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(run_command("mke2fs -q -F -t ext4 %s 16M >/dev/null 2>&1", image), 0);
	fd = open(image, O_RDONLY);
	assert_int_equal(layout_read(read_image, &fd, 16u << 20, l), 0);
	close(fd);
	assert_int_equal(l->kind, LAYOUT_WHOLE_DISK);
	assert_int_equal(l->n, 0);
	unlink(image);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpt),	   cmocka_unit_test(test_gpt_damage),
		cmocka_unit_test(test_mbr),	   cmocka_unit_test(test_mbr_forged),
		cmocka_unit_test(test_whole_disk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
