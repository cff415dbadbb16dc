// SPDX-License-Identifier: MIT
/*
 * LVM2 physical volumes made by lvm2's own tools (tests/lvm-on-images), read
 * back and compared with what lvm2 says of them (lvs, pvs): linear volumes
 * of one and of three segments, a striped one and one spread over both PVs
 * (both refused), an ext4 filesystem read through a volume's segments. Then
 * the guest's forgeries, each with every checksum made right so that the
 * check under test is the one that must catch it: metadata nested to run
 * the parser's stack out, segments past the PV or overlapping, a thin
 * volume, a name LVM forbids; damaged checksums; and metadata that wraps
 * round its circular buffer, which must still read.
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zlib.h>

#include "disk/layout/layout.h"
#include "run_command.h"

#define PV_BYTES (64u << 20)
#define MDA	 4096u /* where lvm2 puts the first metadata area */

static char dir[64], pv1[96], pv2[96], report[96];

/*
 * One volume group over both PVs, with volumes of every shape vmscope must
 * tell apart: data (linear, one segment on PV1), grown (linear, three
 * segments on PV1: extended twice, mid between), mid (linear), wide
 * (striped over both PVs), spread (linear, a segment on each PV).
 */
static const char shapes[] =
	"lvm pvcreate -q $pv1 $pv2; lvm vgcreate -q -s 1M $vg $pv1 $pv2; "
	"mk() { lvm lvcreate --driverloaded n --activate n --zero n -q \"$@\"; }; "
	"mk -L 16M -n data $vg $pv1; mk -L 4M -n grown $vg $pv1; mk -L 4M -n mid $vg $pv1; "
	"lvm lvextend --driverloaded n -q -L +4M $vg/grown $pv1; "
	"lvm lvextend --driverloaded n -q -L +4M $vg/grown $pv1:40-; "
	"mk -i 2 -L 8M -n wide $vg $pv1 $pv2; mk -L 8M -n spread $vg $pv1:50-53 $pv2:20-23";
static json_t *lvs, *pvs;

static int read_image(void *ctx, uint64_t offset, void *buf, size_t len)
{
	int fd = *(int *)ctx;

	return pread(fd, buf, len, (off_t)offset) == (ssize_t)len ? 0 : -EIO;
}

static int read_pv(const char *path, struct layout_lvm *l)
{
	int fd = open(path, O_RDONLY), r;

	assert_true(fd >= 0);
	r = layout_lvm(read_image, &fd, 0, PV_BYTES, l);
	close(fd);
	return r;
}

static void image_io(const char *path, uint64_t offset, void *buf, size_t len, int write)
{
	int fd = open(path, write ? O_RDWR : O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(write ? pwrite(fd, buf, len, (off_t)offset)
			       : pread(fd, buf, len, (off_t)offset),
			 (ssize_t)len);
	close(fd);
}

static int setup(void **state)
{
	json_error_t e;
	char *src = getenv("VMSCOPE_SRCDIR");
	json_t *a, *b;
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vmscope-lvm-XXXXXX");
	if (!mkdtemp(dir) || !src)
		return -1;
	snprintf(pv1, sizeof(pv1), "%s/pv1.img", dir);
	snprintf(pv2, sizeof(pv2), "%s/pv2.img", dir);
	snprintf(report, sizeof(report), "%s/report.json", dir);
	if (run_command("truncate -s 64M %s %s && %s/tests/lvm-on-images %s '%s' %s %s", pv1, pv2,
			src, report, shapes, pv1, pv2))
		return -1;
	/* Two JSON documents, one after the other: lvs's, then pvs's. */
	f = fopen(report, "r");
	if (!f)
		return -1;
	a = json_loadf(f, JSON_DISABLE_EOF_CHECK, &e);
	b = json_loadf(f, JSON_DISABLE_EOF_CHECK, &e);
	fclose(f);
	lvs = json_object_get(json_array_get(json_object_get(a, "report"), 0), "lv");
	pvs = json_object_get(json_array_get(json_object_get(b, "report"), 0), "pv");
	json_incref(lvs);
	json_incref(pvs);
	json_decref(a);
	json_decref(b);
	return lvs && pvs ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	json_decref(lvs);
	json_decref(pvs);
	run_command("rm -rf %s", dir);
	return 0;
}

static uint64_t num(json_t *o, const char *key)
{
	return strtoull(json_string_value(json_object_get(o, key)), NULL, 10);
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const struct layout_volume *find(const struct layout_lvm *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->vols[i].name, name))
			return &l->vols[i];
	return NULL;
}

/* Each of lvs's linear segments on PV1, as the volume's segments. */
static void assert_linear_as_lvs(const struct layout_lvm *l, uint64_t pe_start)
{
	const uint64_t extent = 1u << 20; /* shapes: vgcreate -s 1M */
	size_t i, checked = 0;
	json_t *seg;

	json_array_foreach(lvs, i, seg) {
		const struct layout_volume *v = find(l, str(seg, "lv_name"));
		unsigned long first, last;
		size_t k;

		if (strcmp(str(seg, "lv_name"), "data") && strcmp(str(seg, "lv_name"), "grown") &&
		    strcmp(str(seg, "lv_name"), "mid"))
			continue;
		assert_non_null(v);
		assert_string_equal(v->refused, "");
		assert_string_equal(v->uuid, str(seg, "lv_uuid"));
		assert_int_equal(v->size, num(seg, "lv_size"));
		assert_int_equal(sscanf(str(seg, "seg_pe_ranges"), "PV1:%lu-%lu", &first, &last),
				 2);
		for (k = 0; k < v->nr_segments && v->seg[k].lv_offset != num(seg, "seg_start"); k++)
			;
		assert_true(k < v->nr_segments);
		assert_int_equal(v->seg[k].len, num(seg, "seg_size"));
		assert_int_equal(v->seg[k].pv_offset, pe_start + first * extent);
		assert_int_equal(v->seg[k].len, (last - first + 1) * extent);
		checked++;
	}
	assert_int_equal(checked, 5); /* data, mid, and grown's three */
	assert_int_equal(find(l, "grown")->nr_segments, 3);
}

static void test_lvm2_made(void **state)
{
	struct layout_lvm *l = calloc(1, sizeof(*l));
	json_t *pv = json_array_get(pvs, 0);

	(void)state;
	assert_int_equal(read_pv(pv1, l), 1);
	assert_string_equal(l->vg, str(json_array_get(lvs, 0), "vg_name"));
	assert_string_equal(str(pv, "pv_name"), "PV1");
	assert_false(l->partial);
	assert_linear_as_lvs(l, num(pv, "pe_start"));
	assert_string_equal(find(l, "wide")->refused, "striped over 2 devices, not linear");
	assert_string_equal(find(l, "spread")->refused, "partly on another physical volume");
	assert_int_equal(l->n, 5);
	/* From PV2: only what has a part there. */
	assert_int_equal(read_pv(pv2, l), 1);
	assert_int_equal(l->n, 2);
	assert_non_null(find(l, "wide"));
	assert_string_equal(find(l, "spread")->refused, "partly on another physical volume");
	free(l);
}

/* An ext4 filesystem scattered over grown's three segments reads as one. */
static void test_filesystem_in_segments(void **state)
{
	struct layout_lvm *l = calloc(1, sizeof(*l));
	struct vms_disk_segment seg[LAYOUT_MAX_SEGMENTS];
	const struct layout_volume *v;
	char fs[128];
	struct layout_fs probed;
	uint8_t *buf;
	int fd;

	(void)state;
	assert_int_equal(read_pv(pv1, l), 1);
	v = find(l, "grown");
	snprintf(fs, sizeof(fs), "%s/fs.img", dir);
	assert_int_equal(run_command("rm -f %s && mke2fs -q -F -t ext4 -L grownfs -U "
				     "0b8e4dd2-2c4f-4a8b-9f00-5e3c7a9d1e42 %s %llu >/dev/null",
				     fs, fs, (unsigned long long)(v->size >> 10)),
			 0);
	buf = malloc(v->size);
	image_io(fs, 0, buf, v->size, 0);
	for (size_t i = 0; i < v->nr_segments; i++) {
		image_io(pv1, v->seg[i].pv_offset, buf + v->seg[i].lv_offset, v->seg[i].len, 1);
		seg[i] = (struct vms_disk_segment){ v->seg[i].lv_offset, v->seg[i].pv_offset,
						    v->seg[i].len };
	}
	free(buf);
	fd = open(pv1, O_RDONLY);
	assert_true(fd >= 0);
	/* Through the segments: the superblock, and nothing past the volume's end. */
	{
		uint8_t sb[1024];

		assert_int_equal(layout_read_mapped(read_image, &fd, seg, v->nr_segments, 1024, sb,
						    sizeof(sb)),
				 0);
		assert_int_equal(sb[0x38] | sb[0x39] << 8, 0xef53);
		assert_int_equal(layout_read_mapped(read_image, &fd, seg, v->nr_segments,
						    v->size - 512, sb, sizeof(sb)),
				 -EIO);
	}
	layout_probe_fs(read_image, &fd, v->seg[0].pv_offset, v->seg[0].len, &probed);
	assert_string_equal(probed.type, "ext4");
	assert_string_equal(probed.label, "grownfs");
	assert_string_equal(probed.uuid, "0b8e4dd2-2c4f-4a8b-9f00-5e3c7a9d1e42");
	close(fd);
	free(l);
}

/* One byte of PV1 changed, whatever it held. */
static void flip(uint64_t offset)
{
	uint8_t b;

	image_io(pv1, offset, &b, 1, 0);
	b ^= 1;
	image_io(pv1, offset, &b, 1, 1);
}

/* The current metadata text of PV1's first area, and where it is. */
static char *metadata(uint64_t *ret_at, uint64_t *ret_len)
{
	uint8_t h[512];
	char *text;

	image_io(pv1, MDA, h, sizeof(h), 0);
	memcpy(ret_at, h + 40, 8);
	memcpy(ret_len, h + 48, 8);
	text = calloc(1, *ret_len + 1);
	image_io(pv1, MDA + *ret_at, text, *ret_len, 0);
	return text;
}

static uint32_t lvm_crc(uint32_t crc, const void *buf, size_t len)
{
	return (uint32_t)crc32(crc ^ 0xffffffffu, buf, (uInt)len) ^ 0xffffffffu;
}

/* New metadata text at offset `at` of the area (wrapping as LVM does), every CRC made right. */
static void put_metadata(const char *text, size_t len, uint64_t at)
{
	uint8_t h[512];
	uint64_t area, first;
	uint32_t crc;

	image_io(pv1, MDA, h, sizeof(h), 0);
	memcpy(&area, h + 32, 8);
	first = area - at < len ? area - at : len;
	image_io(pv1, MDA + at, (void *)text, first, 1);
	if (len > first)
		image_io(pv1, MDA + 512, (void *)(text + first), len - first, 1);
	crc = lvm_crc(0xf597a6cfu, text, len);
	memcpy(h + 40, &at, 8);
	memcpy(h + 48, &(uint64_t){ len }, 8);
	memcpy(h + 56, &crc, 4);
	crc = lvm_crc(0xf597a6cfu, h + 4, sizeof(h) - 4);
	memcpy(h, &crc, 4);
	image_io(pv1, MDA, h, sizeof(h), 1);
}

/* The original text with `from` replaced by `to` (the first time it occurs). */
static char *edited(const char *text, const char *from, const char *to)
{
	const char *p = strstr(text, from);
	char *out;

	assert_non_null(p);
	out = malloc(strlen(text) + strlen(to) + 1);
	sprintf(out, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
	return out;
}

#define NOT_SHAPED                                                                          \
	"LVM2 physical volume: its metadata is not shaped as LVM writes it (nesting, tokens or " \
	"size)"

struct forgery {
	const char *from, *to;
	int result;	    /* layout_lvm's */
	const char *volume; /* refused, with */
	const char *why;    /* this, or for result < 0 the why */
};

static void test_forged(void **state)
{
	static const struct forgery forged[] = {
		{ "type = \"striped\"", "type = \"thin\"", 1, "data",
		  "a thin volume, not a linear one" },
		{ "extent_count = 16", "extent_count = 1600000", 1, "data",
		  "a segment beyond its physical volume" },
		{ "start_extent = 0", "start_extent = 4", 1, "data",
		  "segments with gaps or overlaps" },
		{ "extent_count = 16", "extent_count = -16", 1, "data",
		  "a segment without its extents or type" },
		{ "extent_size = 2048", "extent_size = 0", -EINVAL, NULL,
		  "LVM2 physical volume: its metadata has no usable extent size" },
		{ "format = \"lvm2\"", "format = [[[[[[[[[[[[[[[[\"lvm2\"]]]]]]]]]]]]]]]]", -EINVAL,
		  NULL, NOT_SHAPED },
		/* What libdevmapper's tokenizer would nest without braces that say so. */
		{ "format = \"lvm2\"", "format/a/a/a/a/a/a/a/a/a/a = \"lvm2\"", -EINVAL, NULL,
		  NOT_SHAPED },
		{ "format = \"lvm2\"", "q = '\"' a { a { a { a { a { a { a { a { a {", -EINVAL, NULL,
		  NOT_SHAPED },
		{ "format = \"lvm2\"", "x\"y = 1 a { a { a { a { a { a { a { a { a {", -EINVAL, NULL,
		  NOT_SHAPED },
		{ "format = \"lvm2\"", "a]{a]{a]{a]{a]{a]{a]{a]{a]{a]{", -EINVAL, NULL, NOT_SHAPED },
		{ "physical_volumes {", "physical_volumes {{", -EINVAL, NULL, NOT_SHAPED },
		{ "extent_size = 2048", "extent_size = = 2048", -EINVAL, NULL,
		  "LVM2 physical volume: its metadata does not parse" },
		/* Given twice, a key is no key. */
		{ "extent_size = 2048", "extent_size = 2048\nextent_size = 4096", -EINVAL, NULL,
		  "LVM2 physical volume: its metadata has no usable extent size" },
		{ "contents = \"Text Format Volume Group\"", "contents = \"x\"", -EINVAL, NULL,
		  "LVM2 physical volume: its metadata names no volume group" },
	};
	struct layout_lvm *l = calloc(1, sizeof(*l));
	uint64_t at, len;
	char *orig = metadata(&at, &len);

	(void)state;
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		const struct forgery *f = &forged[i];
		char *text = edited(orig, f->from, f->to);

		put_metadata(text, strlen(text) + 1, at);
		assert_int_equal(read_pv(pv1, l), f->result);
		if (f->volume)
			assert_string_equal(find(l, f->volume)->refused, f->why);
		else
			assert_string_equal(l->why, f->why);
		free(text);
	}
	/* A name LVM forbids: that volume is left out, and the list said to be partial. */
	{
		char *text = edited(orig, "\nmid {", "\n-mid {");

		put_metadata(text, strlen(text) + 1, at);
		assert_int_equal(read_pv(pv1, l), 1);
		assert_true(l->partial);
		assert_null(find(l, "-mid"));
		assert_non_null(find(l, "data"));
		free(text);
	}
	/* Keys by the ten thousand, whose duplicate check would take the parser minutes. */
	{
		size_t n = 70000, at_end = strlen(orig);
		char *text = malloc(at_end + n * 12 + 1), *p;

		memcpy(text, orig, at_end);
		p = text + at_end;
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "k%06zu = 1\n", i);
		put_metadata(text, (size_t)(p - text) + 1, at);
		assert_int_equal(read_pv(pv1, l), -EINVAL);
		assert_string_equal(l->why, NOT_SHAPED);
		free(text);
	}
	/* Wrapped round the end of the area: read in two parts, and all there. */
	{
		uint8_t h[512];
		uint64_t area;

		image_io(pv1, MDA, h, sizeof(h), 0);
		memcpy(&area, h + 32, 8);
		put_metadata(orig, len, area - 100);
		assert_int_equal(read_pv(pv1, l), 1);
		assert_linear_as_lvs(l, num(json_array_get(pvs, 0), "pe_start"));
	}
	/* The text's checksum wrong: no copy checks. */
	put_metadata(orig, len, at);
	flip(MDA + at + 10);
	assert_true(read_pv(pv1, l) < 0);
	assert_string_equal(l->why, "LVM2 physical volume: no copy of its metadata checks");
	/* The area header's checksum wrong (a byte past its locations): no copy checks either. */
	put_metadata(orig, len, at);
	flip(MDA + 200);
	assert_true(read_pv(pv1, l) < 0);
	assert_string_equal(l->why, "LVM2 physical volume: no copy of its metadata checks");
	/* The label's checksum wrong: no PV at all. */
	put_metadata(orig, len, at);
	assert_int_equal(read_pv(pv1, l), 1);
	flip(512 + 40); /* in the PV header, under the label's CRC */
	assert_int_equal(read_pv(pv1, l), 0);
	free(orig);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lvm2_made),
		cmocka_unit_test(test_filesystem_in_segments),
		cmocka_unit_test(test_forged),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
