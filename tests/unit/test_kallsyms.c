// SPDX-License-Identifier: MIT
/*
 * kallsyms decoding over tables built here: token expansion, both address
 * encodings, the one- and two-byte length forms, lookups, and tables a
 * hostile guest could plant (absurd counts, names running off the end,
 * addresses that disagree with vmcoreinfo).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "os/linux/linux.h"

#define BASE	    0xffffffff81000000ull
#define AREA	    (1u << 20)
#define NUM	    0x1000
#define NAMES	    0x2000
#define TOKENS	    0x40000
#define TOKEN_INDEX 0x50000
#define OFFSETS	    0x60000
#define REL_BASE    0x70000

static uint8_t area[AREA];

static int fake_read(void *ctx, uint64_t va, void *buf, size_t len)
{
	(void)ctx;
	if (va < BASE || va - BASE > AREA || len > AREA - (va - BASE))
		return -EFAULT;
	memcpy(buf, area + (va - BASE), len);
	return 0;
}

struct builder {
	size_t names_at, tokens_at;
	uint16_t index[256];
	int n;
};

/* Token 0x80 is "init_", 0x81 is "task"; every other byte stands for itself. */
static void build_tokens(struct builder *b)
{
	b->tokens_at = 0;
	for (int i = 0; i < 256; i++) {
		const char *tok = i == 0x80 ? "init_" : i == 0x81 ? "task" : NULL;
		char one[2] = { (char)(i ? i : '?'), 0 };

		if (!tok)
			tok = one;
		b->index[i] = (uint16_t)b->tokens_at;
		memcpy(area + TOKENS + b->tokens_at, tok, strlen(tok) + 1);
		b->tokens_at += strlen(tok) + 1;
	}
	memcpy(area + TOKEN_INDEX, b->index, sizeof(b->index));
}

static void add_symbol(struct builder *b, const uint8_t *tokens, size_t len, int32_t offset)
{
	if (len >= 0x80) { /* the two-byte length form */
		area[NAMES + b->names_at++] = (uint8_t)(0x80 | (len & 0x7f));
		area[NAMES + b->names_at++] = (uint8_t)(len >> 7);
	} else {
		area[NAMES + b->names_at++] = (uint8_t)len;
	}
	memcpy(area + NAMES + b->names_at, tokens, len);
	b->names_at += len;
	memcpy(area + OFFSETS + 4 * b->n, &offset, 4);
	b->n++;
}

static void add_plain(struct builder *b, const char *typed_name, int32_t offset)
{
	add_symbol(b, (const uint8_t *)typed_name, strlen(typed_name), offset);
}

static struct kallsyms_tables tables(uint64_t check_addr)
{
	return (struct kallsyms_tables){ BASE + NUM,	     BASE + NAMES,	BASE + TOKENS,
					 BASE + TOKEN_INDEX, BASE + OFFSETS,	BASE + REL_BASE,
					 check_addr,	     "_stext" };
}

/* A small kernel: relative base BASE, x86's absolute-per-CPU encoding. */
static void build(struct builder *b)
{
	static const uint8_t init_task[] = { 'D', 0x80, 0x81 }; /* "D" "init_" "task" */
	uint64_t base = BASE;
	uint32_t count;
	char long_name[200];

	memset(area, 0, sizeof(area));
	memset(b, 0, sizeof(*b));
	build_tokens(b);
	memcpy(area + REL_BASE, &base, 8);
	add_plain(b, "T_stext", -1);	    /* base - 1 - (-1) = base */
	add_symbol(b, init_task, sizeof(init_task), -0x2001); /* base + 0x2000 */
	add_plain(b, "dfixed_percpu_data", 0x40); /* absolute: 0x40 */
	add_plain(b, "tlinux_banner", -0x1001);
	add_plain(b, "tlinux_banner", -0x5001); /* a static duplicate: the first one wins */
	memset(long_name, 'x', sizeof(long_name));
	long_name[0] = 'T';
	add_symbol(b, (const uint8_t *)long_name, sizeof(long_name), -0x9001);
	count = (uint32_t)b->n;
	memcpy(area + NUM, &count, 4);
}

static void test_decodes_names_types_and_addresses(void **state)
{
	struct kallsyms_tables t;
	struct kallsyms ks;
	struct builder b;
	char err[128];

	(void)state;
	build(&b);
	t = tables(BASE);
	assert_int_equal(kallsyms_load(&ks, &t, fake_read, NULL, err, sizeof(err)), 0);
	assert_int_equal(ks.nr_syms, 6);
	assert_string_equal(ks.syms[1].name, "init_task");
	assert_int_equal(ks.syms[1].type, 'D');
	assert_int_equal(kallsyms_lookup(&ks, "_stext"), BASE);
	assert_int_equal(kallsyms_lookup(&ks, "init_task"), BASE + 0x2000);
	assert_int_equal(kallsyms_lookup(&ks, "fixed_percpu_data"), 0x40);
	assert_int_equal(kallsyms_lookup(&ks, "linux_banner"), BASE + 0x1000);
	assert_int_equal(strlen(ks.syms[5].name), 199);
	assert_int_equal(kallsyms_lookup(&ks, "no_such_symbol"), 0);
	kallsyms_release(&ks);
}

/* The same offsets read as plain base-relative, when that is what lands _stext right. */
static void test_relative_encoding(void **state)
{
	struct kallsyms_tables t;
	struct kallsyms ks;
	struct builder b;
	char err[128];

	(void)state;
	build(&b);
	t = tables(BASE + 0xffffffffull); /* base + (u32)-1 */
	assert_int_equal(kallsyms_load(&ks, &t, fake_read, NULL, err, sizeof(err)), 0);
	assert_int_equal(kallsyms_lookup(&ks, "fixed_percpu_data"), BASE + 0x40);
	kallsyms_release(&ks);
}

static void test_hostile_tables(void **state)
{
	struct kallsyms_tables t;
	struct kallsyms ks;
	struct builder b;
	uint32_t count;
	char err[128];

	(void)state;
	build(&b);
	t = tables(BASE + 0x123);
	assert_int_equal(kallsyms_load(&ks, &t, fake_read, NULL, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "disagree with vmcoreinfo"));

	count = 0x7fffffff;
	memcpy(area + NUM, &count, 4);
	t = tables(BASE);
	assert_int_equal(kallsyms_load(&ks, &t, fake_read, NULL, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "implausible symbol count"));

	/* More symbols claimed than the names hold. */
	count = 5000;
	memcpy(area + NUM, &count, 4);
	assert_int_equal(kallsyms_load(&ks, &t, fake_read, NULL, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "malformed name table"));

	/* A token index pointing far outside the token table. */
	build(&b);
	b.index['T'] = 0xfff0;
	memcpy(area + TOKEN_INDEX, b.index, sizeof(b.index));
	assert_int_equal(kallsyms_load(&ks, &t, fake_read, NULL, err, sizeof(err)), -EPROTO);

	/* Tables that are not where vmcoreinfo says. */
	build(&b);
	t.names = 0xffff000000000000ull;
	assert_int_not_equal(kallsyms_load(&ks, &t, fake_read, NULL, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decodes_names_types_and_addresses),
		cmocka_unit_test(test_relative_encoding),
		cmocka_unit_test(test_hostile_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
