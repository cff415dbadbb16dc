// SPDX-License-Identifier: MIT
/*
 * Finding kallsyms tables by their structure in a planted RAM image: the
 * 6.4-and-later order with PC-relative offsets, the older order with
 * kallsyms_relative_base and seqs_of_names, look-alike token tables before
 * the real ones (skipped), too many of them (a bounded search that gives up
 * with a clear reason), and a names table cut short (not taken).
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

#include <vmscope/vm.h>

#include "os/linux/linux.h"

#define IMAGE_BYTES (16u << 20)
#define NUM	    600
#define BASE	    0xffffffff81000000ull

static uint8_t *image;

struct layout {
	size_t num, names, markers, seqs, tokens, index, offsets, base, end;
};

static size_t put_tokens(size_t at, size_t *ret_index)
{
	uint16_t index[256];
	size_t start = at;

	for (int i = 0; i < 256; i++) {
		char tok[8];

		if (i > 0x20 && i < 0x7f)
			snprintf(tok, sizeof(tok), "%c", i);
		else
			snprintf(tok, sizeof(tok), "~%02x", i);
		index[i] = (uint16_t)(at - start);
		memcpy(image + at, tok, strlen(tok) + 1);
		at += strlen(tok) + 1;
	}
	at = (at + 1) & ~(size_t)1;
	memcpy(image + at, index, sizeof(index));
	*ret_index = at;
	return at + sizeof(index);
}

/* Names "Tsym0".."TsymN-1" (bytes are their own tokens), markers every 256. */
static size_t put_names(struct layout *l, size_t at, int cut)
{
	uint32_t markers[(NUM + 255) / 256], count = NUM;

	l->num = at;
	memcpy(image + at, &count, 4);
	l->names = at + 4;
	at = l->names;
	for (int i = 0; i < NUM; i++) {
		char name[16];
		int len = snprintf(name, sizeof(name), "%csym%d", i == 1 ? 'D' : 'T', i);

		if (i == 0)
			len = snprintf(name, sizeof(name), "T_text");
		if (i % 256 == 0)
			markers[i / 256] = (uint32_t)(at - l->names);
		image[at++] = (uint8_t)(cut && i == NUM - 1 ? 200 : len);
		memcpy(image + at, name, (size_t)len);
		at += (size_t)len;
	}
	at = (at + 7) & ~(size_t)7;
	l->markers = at;
	memcpy(image + at, markers, sizeof(markers));
	return at + sizeof(markers);
}

/* Symbol i lies at BASE + 0x100 * i. */
static uint64_t addr_of(int i)
{
	return BASE + 0x100 * (uint64_t)i;
}

/* 6.4 on: num_syms, names, markers, tokens, index, offsets (own-slot relative). */
static void build_new(struct layout *l, size_t at, int cut)
{
	uint64_t offsets_va;

	at = put_names(l, at, cut);
	l->tokens = at;
	at = put_tokens(at, &l->index);
	l->offsets = at;
	offsets_va = BASE + 0x400000; /* where the kernel would map the table */
	for (int i = 0; i < NUM; i++) {
		int32_t off = (int32_t)(int64_t)(addr_of(i) - (offsets_va + 4 * (uint64_t)i));

		memcpy(image + at + 4 * (size_t)i, &off, 4);
	}
	l->end = at + 4 * NUM;
}

/* Up to 6.3: offsets, relative_base, num_syms, names, markers, seqs, tokens, index. */
static void build_old(struct layout *l, size_t at)
{
	uint64_t base = BASE;

	l->offsets = at;
	for (int i = 0; i < NUM; i++) {
		int32_t off = (int32_t)(addr_of(i) - base); /* plain base-relative */

		memcpy(image + at + 4 * (size_t)i, &off, 4);
	}
	at = (at + 4 * NUM + 7) & ~(size_t)7;
	l->base = at;
	memcpy(image + at, &base, 8);
	at = put_names(l, at + 8, 0);
	l->seqs = at;
	for (int i = 0; i < NUM; i++) { /* big-endian 3-byte indices */
		image[at++] = 0;
		image[at++] = (uint8_t)(i >> 8);
		image[at++] = (uint8_t)i;
	}
	at = (at + 7) & ~(size_t)7;
	l->tokens = at;
	l->end = put_tokens(at, &l->index);
}

static struct vms_vm *attach_image(char *path, size_t len)
{
	struct vms_vm *vm;
	char target[128];
	FILE *f;
	int fd;

	snprintf(path, len, "/tmp/vmscope-test-ksearch.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_int_equal(fwrite(image, 1, IMAGE_BYTES, f), IMAGE_BYTES);
	fclose(f);
	snprintf(target, sizeof(target), "raw:%s", path);
	assert_int_equal(vms_vm_new(&vm), 0);
	assert_int_equal(vms_vm_attach(vm, target, NULL), 0);
	unlink(path); /* mapped now: nothing is left behind, even if an assertion fails later */
	return vm;
}

static int read_image(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	(void)ctx;
	if (gpa > IMAGE_BYTES || len > IMAGE_BYTES - gpa)
		return -EFAULT;
	memcpy(buf, image + gpa, len);
	return 0;
}

static int search(struct kallsyms_tables *t, char *why, size_t len)
{
	char path[64];
	struct vms_vm *vm = attach_image(path, sizeof(path));
	int err = kallsyms_search(vm, 0, UINT64_MAX, t, why, len);

	vms_vm_free(vm);
	return err;
}

static int setup(void **state)
{
	(void)state;
	image = calloc(1, IMAGE_BYTES);
	return image ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(image);
	return 0;
}

static void check_decoded(struct kallsyms_tables *t, uint64_t shift)
{
	struct kallsyms ks;
	char why[160];

	assert_int_equal(kallsyms_load(&ks, t, read_image, NULL, why, sizeof(why)), 0);
	kallsyms_rebase(&ks, shift);
	assert_int_equal(ks.nr_syms, NUM);
	assert_int_equal(kallsyms_lookup(&ks, "_text"), addr_of(0));
	assert_int_equal(kallsyms_lookup(&ks, "sym1"), addr_of(1));
	assert_int_equal(ks.syms[1].type, 'D');
	assert_int_equal(kallsyms_lookup(&ks, "sym599"), addr_of(599));
	kallsyms_release(&ks);
}

static void test_new_order_pc_relative(void **state)
{
	struct kallsyms_tables t;
	struct layout l;
	char why[160];

	(void)state;
	memset(image, 0, IMAGE_BYTES);
	build_new(&l, 0x600000, 0);
	assert_int_equal(search(&t, why, sizeof(why)), 0);
	assert_int_equal(t.token_table, l.tokens);
	assert_int_equal(t.token_index, l.index);
	assert_int_equal(t.names, l.names);
	assert_int_equal(t.num_syms, l.num);
	assert_int_equal(t.offsets, l.offsets);
	assert_int_equal(t.relative_base, 0);
	/* Decoded relative to the table; where the kernel maps it places them. */
	check_decoded(&t, BASE + 0x400000);
	assert_int_equal(t.encoding, KALLSYMS_PC_RELATIVE);
}

static void test_old_order_with_seqs(void **state)
{
	struct kallsyms_tables t;
	struct layout l;
	char why[160];

	(void)state;
	memset(image, 0, IMAGE_BYTES);
	build_old(&l, 0x300000);
	assert_int_equal(search(&t, why, sizeof(why)), 0);
	assert_int_equal(t.token_table, l.tokens);
	assert_int_equal(t.names, l.names);
	assert_int_equal(t.offsets, l.offsets);
	assert_int_equal(t.relative_base, l.base);
	check_decoded(&t, 0);
	assert_int_equal(t.encoding, KALLSYMS_BASE_RELATIVE);
}

/* Whole-looking token tables with nothing around them come first: skipped. */
static void test_lookalike_tokens_skipped(void **state)
{
	struct kallsyms_tables t;
	struct layout l;
	size_t index;
	char why[160];

	(void)state;
	memset(image, 0, IMAGE_BYTES);
	for (int i = 0; i < 4; i++)
		put_tokens(0x10000 + 0x10000 * (size_t)i, &index);
	build_new(&l, 0x900000, 0);
	assert_int_equal(search(&t, why, sizeof(why)), 0);
	assert_int_equal(t.token_table, l.tokens);
}

/* More look-alikes than the search tries: it gives up, saying why. */
static void test_too_many_lookalikes(void **state)
{
	struct kallsyms_tables t;
	struct layout l;
	size_t index;
	char why[160];

	(void)state;
	memset(image, 0, IMAGE_BYTES);
	for (int i = 0; i < 40; i++)
		put_tokens(0x10000 + 0x4000 * (size_t)i, &index);
	build_new(&l, 0x900000, 0);
	assert_int_equal(search(&t, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "none is whole"));
}

/* A names table whose last entry runs past the markers is not taken. */
static void test_cut_names_refused(void **state)
{
	struct kallsyms_tables t;
	struct layout l;
	char why[160];

	(void)state;
	memset(image, 0, IMAGE_BYTES);
	build_new(&l, 0x600000, 1);
	assert_int_equal(search(&t, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "no names or offsets"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_order_pc_relative),
		cmocka_unit_test(test_old_order_with_seqs),
		cmocka_unit_test(test_lookalike_tokens_skipped),
		cmocka_unit_test(test_too_many_lookalikes),
		cmocka_unit_test(test_cut_names_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
