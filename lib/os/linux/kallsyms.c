// SPDX-License-Identifier: MIT
/*
 * Decoding the kernel's own symbol table (kallsyms) from its RAM: no
 * System.map, no debug package.
 *
 * kallsyms_names holds one entry per symbol: a length (one byte, or two when
 * the first has bit 7 set, since Linux 6.1) and that many token numbers; each
 * token expands through kallsyms_token_index (256 u16 offsets) into
 * kallsyms_token_table (NUL-terminated strings). The first character of a
 * name is its nm-style type. Addresses are 32-bit offsets, read one of three
 * ways (enum kallsyms_encoding): from kallsyms_relative_base plainly or in
 * x86's "absolute per-CPU" form, or (6.15 on) from each offset's own slot. A
 * symbol whose address is known otherwise decides which; without one, the
 * encoding under which the symbols come out in address order (the kernel
 * sorts them) wins. The tables are guest data: counts, lengths and token
 * offsets are bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/linux/linux.h"

#define MAX_SYMS	  (4u << 20)
#define MAX_NAMES_BYTES	  (64u << 20)
#define MAX_NAME	  512
#define TOKEN_TABLE_BYTES 65536

struct decoder {
	const uint8_t *names;
	size_t names_len, pos;
	const char *tokens;
	size_t tokens_len;
	uint16_t index[256];
};

static int fail(char *errbuf, size_t len, int err, const char *what)
{
	snprintf(errbuf, len, "kallsyms: %s", what);
	return err;
}

/* Expand one entry into out (NUL-terminated); returns its length or -EPROTO. */
static int decode_one(struct decoder *d, char *out)
{
	size_t len, n = 0;

	if (d->pos >= d->names_len)
		return -EPROTO;
	len = d->names[d->pos++];
	if (len & 0x80) {
		if (d->pos >= d->names_len)
			return -EPROTO;
		len = (len & 0x7f) | ((size_t)d->names[d->pos++] << 7);
	}
	if (!len || len > d->names_len - d->pos)
		return -EPROTO;
	for (size_t i = 0; i < len; i++) {
		size_t at = d->index[d->names[d->pos + i]];

		for (; at < d->tokens_len && d->tokens[at]; at++) {
			if (n == MAX_NAME - 1)
				return -EPROTO;
			out[n++] = d->tokens[at];
		}
	}
	d->pos += len;
	out[n] = '\0';
	return (int)n;
}

static uint64_t hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

int kallsyms_index(struct kallsyms *ks)
{
	ks->hash_size = 1;
	while (ks->hash_size < ks->nr_syms * 2)
		ks->hash_size <<= 1;
	ks->hash = calloc(ks->hash_size, sizeof(*ks->hash));
	if (!ks->hash)
		return -ENOMEM;
	for (size_t i = 0; i < ks->nr_syms; i++) {
		size_t slot = hash_name(ks->syms[i].name) & (ks->hash_size - 1);

		/* Keep the first of duplicate names (static functions repeat). */
		while (ks->hash[slot] && strcmp(ks->syms[ks->hash[slot] - 1].name, ks->syms[i].name))
			slot = (slot + 1) & (ks->hash_size - 1);
		if (!ks->hash[slot])
			ks->hash[slot] = (uint32_t)i + 1;
	}
	return 0;
}

uint64_t kallsyms_lookup(const struct kallsyms *ks, const char *name)
{
	size_t slot;

	if (!ks->hash_size)
		return 0;
	slot = hash_name(name) & (ks->hash_size - 1);
	while (ks->hash[slot]) {
		const struct ksym *s = &ks->syms[ks->hash[slot] - 1];

		if (!strcmp(s->name, name))
			return s->addr;
		slot = (slot + 1) & (ks->hash_size - 1);
	}
	return 0;
}

uint64_t kallsyms_end(const struct kallsyms *ks, uint64_t addr)
{
	uint64_t end = 0;

	for (size_t i = 0; i < ks->nr_syms; i++)
		if (ks->syms[i].addr > addr && (!end || ks->syms[i].addr < end))
			end = ks->syms[i].addr;
	return end;
}

void kallsyms_rebase(struct kallsyms *ks, uint64_t delta)
{
	for (size_t i = 0; i < ks->nr_syms; i++)
		ks->syms[i].addr += delta;
}

static uint64_t address(enum kallsyms_encoding enc, const int32_t *offsets, size_t i,
			uint64_t base, uint64_t offsets_va)
{
	int32_t offset = offsets[i];

	switch (enc) {
	case KALLSYMS_ABSOLUTE_PERCPU:
		return offset >= 0 ? (uint64_t)offset : base - 1 - (uint64_t)(int64_t)offset;
	case KALLSYMS_BASE_RELATIVE:
		return base + (uint32_t)offset;
	default:
		return offsets_va + 4 * (uint64_t)i + (uint64_t)(int64_t)offset;
	}
}

/* Read the fixed tables: count, token index and table, base. */
static int read_tables(struct decoder *d, const struct kallsyms_tables *t, kread_fn read,
		       void *ctx, uint32_t *ret_num, uint64_t *ret_base, char *errbuf, size_t len)
{
	char *tokens = malloc(TOKEN_TABLE_BYTES);
	uint16_t max_index = 0;

	if (!tokens)
		return -ENOMEM;
	d->tokens = tokens;
	*ret_base = 0;
	if (read(ctx, t->num_syms, ret_num, 4) ||
	    (t->relative_base && read(ctx, t->relative_base, ret_base, 8)) ||
	    read(ctx, t->token_index, d->index, sizeof(d->index)))
		return fail(errbuf, len, -EFAULT, "cannot read its tables");
	if (!*ret_num || *ret_num > MAX_SYMS)
		return fail(errbuf, len, -EPROTO, "implausible symbol count");
	for (int i = 0; i < 256; i++)
		max_index = d->index[i] > max_index ? d->index[i] : max_index;
	d->tokens_len = (size_t)max_index + 64 < TOKEN_TABLE_BYTES ? (size_t)max_index + 64
								    : TOKEN_TABLE_BYTES;
	if (max_index >= TOKEN_TABLE_BYTES - 1 || read(ctx, t->token_table, tokens, d->tokens_len))
		return fail(errbuf, len, -EPROTO, "bad token table");
	tokens[d->tokens_len - 1] = '\0';
	return 0;
}

/* kallsyms_names ends where the next table begins; read that span at once. */
static int read_names(struct decoder *d, const struct kallsyms_tables *t, kread_fn read, void *ctx,
		      char *errbuf, size_t len)
{
	uint64_t end = t->token_table > t->names ? t->token_table : t->token_index;
	uint8_t *names;

	if (t->names_len)
		end = t->names + t->names_len;
	if (end <= t->names || end - t->names > MAX_NAMES_BYTES)
		return fail(errbuf, len, -EPROTO, "implausible table layout");
	names = malloc(end - t->names);
	if (!names)
		return -ENOMEM;
	d->names = names;
	d->names_len = end - t->names;
	if (read(ctx, t->names, names, d->names_len))
		return fail(errbuf, len, -EFAULT, "cannot read the names");
	return 0;
}

/* Names go into one growing buffer; pointers are fixed up once it stops moving. */
static int decode_all(struct kallsyms *ks, struct decoder *d, char *errbuf, size_t len)
{
	size_t used = 0, cap = d->names_len * 2 + 4096;
	char name[MAX_NAME];

	ks->names = malloc(cap);
	if (!ks->names)
		return -ENOMEM;
	for (size_t i = 0; i < ks->nr_syms; i++) {
		int n = decode_one(d, name);

		if (n < 1)
			return fail(errbuf, len, -EPROTO, "malformed name table");
		if (used + (size_t)n > cap) {
			char *grown = realloc(ks->names, cap * 2);

			if (!grown)
				return -ENOMEM;
			ks->names = grown;
			cap *= 2;
		}
		memcpy(ks->names + used, name + 1, (size_t)n); /* without the type, with NUL */
		ks->syms[i].name = (const char *)(uintptr_t)used;
		ks->syms[i].type = name[0];
		used += (size_t)n;
	}
	for (size_t i = 0; i < ks->nr_syms; i++)
		ks->syms[i].name = ks->names + (uintptr_t)ks->syms[i].name;
	return 0;
}

/* How often an address is lower than the one before it: the kernel sorts them. */
static size_t disorder(enum kallsyms_encoding enc, const int32_t *offsets, size_t n,
		       uint64_t base)
{
	size_t count = 0;

	for (size_t i = 1; i < n; i++)
		count += address(enc, offsets, i, base, 0) < address(enc, offsets, i - 1, base, 0);
	return count;
}

static size_t non_negative(const int32_t *offsets, size_t n)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += offsets[i] >= 0;
	return count;
}

static enum kallsyms_encoding choose_by_check(const struct kallsyms *ks,
					      const struct kallsyms_tables *t,
					      const int32_t *offsets, uint64_t base)
{
	size_t i;

	for (i = 0; i < ks->nr_syms && strcmp(ks->syms[i].name, t->check_name); i++)
		;
	if (i == ks->nr_syms)
		return KALLSYMS_ENCODING_UNKNOWN;
	for (int enc = KALLSYMS_ABSOLUTE_PERCPU; enc <= KALLSYMS_PC_RELATIVE; enc++) {
		if ((enc == KALLSYMS_PC_RELATIVE) != !t->relative_base)
			continue;
		if (address(enc, offsets, i, base, t->offsets_va) == t->check_addr)
			return enc;
	}
	return KALLSYMS_ENCODING_UNKNOWN;
}

/* Without a known symbol: the encoding in whose order the table is (all but 1/64). */
static enum kallsyms_encoding choose_by_order(const struct kallsyms *ks,
					      const struct kallsyms_tables *t,
					      const int32_t *offsets, uint64_t base)
{
	enum kallsyms_encoding best = KALLSYMS_ENCODING_UNKNOWN;
	size_t best_disorder = ks->nr_syms / 64 + 1;

	for (int enc = KALLSYMS_ABSOLUTE_PERCPU; enc <= KALLSYMS_PC_RELATIVE; enc++) {
		size_t d;

		if ((enc == KALLSYMS_PC_RELATIVE) != !t->relative_base)
			continue;
		/* Only per-CPU symbols are non-negative there: a table of mostly
		 * non-negative offsets is plainly relative, though in order both ways. */
		if (enc == KALLSYMS_ABSOLUTE_PERCPU &&
		    non_negative(offsets, ks->nr_syms) > ks->nr_syms / 2)
			continue;
		d = disorder(enc, offsets, ks->nr_syms, base);
		if (d < best_disorder) {
			best = enc;
			best_disorder = d;
		}
	}
	return best;
}

static int place_symbols(struct kallsyms *ks, struct kallsyms_tables *t, const int32_t *offsets,
			 uint64_t base, char *errbuf, size_t len)
{
	enum kallsyms_encoding enc = t->encoding;

	if (!enc && t->check_name)
		enc = choose_by_check(ks, t, offsets, base);
	else if (!enc)
		enc = choose_by_order(ks, t, offsets, base);
	if (!enc)
		return fail(errbuf, len, -EPROTO,
			    t->check_name ? "decoded addresses disagree with vmcoreinfo"
					  : "no address encoding puts the symbols in order");
	t->encoding = enc;
	for (size_t i = 0; i < ks->nr_syms; i++)
		ks->syms[i].addr = address(enc, offsets, i, base, t->offsets_va);
	return 0;
}

int kallsyms_load(struct kallsyms *ks, struct kallsyms_tables *t, kread_fn read, void *ctx,
		  char *errbuf, size_t errbuf_len)
{
	struct decoder d = { 0 };
	int32_t *offsets = NULL;
	uint32_t num = 0;
	uint64_t base = 0;
	int err;

	memset(ks, 0, sizeof(*ks));
	err = read_tables(&d, t, read, ctx, &num, &base, errbuf, errbuf_len);
	if (!err)
		err = read_names(&d, t, read, ctx, errbuf, errbuf_len);
	if (!err)
		t->names_len = d.names_len;
	if (!err) {
		offsets = malloc((size_t)num * sizeof(*offsets));
		ks->syms = calloc(num, sizeof(*ks->syms));
		ks->nr_syms = num;
		err = !offsets || !ks->syms ? -ENOMEM : 0;
	}
	if (!err && read(ctx, t->offsets, offsets, (size_t)num * sizeof(*offsets)))
		err = fail(errbuf, errbuf_len, -EFAULT, "cannot read the offsets");
	if (!err)
		err = decode_all(ks, &d, errbuf, errbuf_len);
	if (!err)
		err = place_symbols(ks, t, offsets, base, errbuf, errbuf_len);
	if (!err)
		err = kallsyms_index(ks);
	free(offsets);
	free((void *)d.names);
	free((void *)d.tokens);
	if (err)
		kallsyms_release(ks);
	return err;
}

void kallsyms_release(struct kallsyms *ks)
{
	free(ks->syms);
	free(ks->names);
	free(ks->hash);
	memset(ks, 0, sizeof(*ks));
}
