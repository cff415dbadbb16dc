// SPDX-License-Identifier: MIT
/*
 * Finding the kallsyms tables in guest-physical RAM by their own structure,
 * for kernels whose vmcoreinfo does not locate them (before 6.0, or 7.x,
 * whose vmcoreinfo names no kallsyms_relative_base) and for guests whose
 * vmcoreinfo cannot be trusted.
 *
 * Every kernel's scripts/kallsyms emits the same tables, in an order that has
 * changed over the years:
 *   5.x, 6.0-6.3:  offsets, relative_base, num_syms, names, markers,
 *                  [seqs_of_names,] token_table, token_index
 *   6.4 on:        num_syms, names, markers, token_table, token_index,
 *                  offsets, [relative_base,] seqs_of_names
 * What holds in all of them, and is searched for here:
 *   - the token table is 256 NUL-terminated tokens, and the digits, which are
 *     never merged into longer tokens, are tokens 0x30..0x39 ("0\0" .. "9\0");
 *   - the token index (256 u16 offsets of the tokens) follows it at once;
 *   - the markers (u32 offset of every 256th name) end at the token table,
 *     or 3 bytes per symbol before it (seqs_of_names);
 *   - num_syms (u32) directly precedes the names, and decoding that many
 *     names from there lands on every marker and ends at the markers;
 *   - the offsets (one s32 per symbol) lie just before relative_base and
 *     num_syms, or just after the token index.
 * Which encoding the offsets use is left to kallsyms_load (the one that puts
 * the symbols in address order). A guest can plant look-alikes anywhere, so
 * candidates are checked all the way, a bounded number of them, and the
 * caller still verifies what they decode to (kernel.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define MAX_TOKEN_LEN	128
#define TOKEN_SPAN	(256 * (MAX_TOKEN_LEN + 1) + 16)
#define MAX_CANDIDATES	16
#define WINDOW_BEFORE	(12u << 20) /* names and offsets of ~500,000 symbols */
#define WINDOW_AFTER	(12u << 20)
#define MAX_MARKER_STEP (256u * 256)

static const char digits[] = "0\0" "1\0" "2\0" "3\0" "4\0" "5\0" "6\0" "7\0" "8\0" "9";

/* A span of guest-physical RAM copied once, read with bounds. */
struct window {
	uint8_t *buf;
	uint64_t gpa; /* of buf[0] */
	size_t len;
};

static int window_load(struct vms_vm *vm, uint64_t center, uint64_t before, uint64_t after,
		       struct window *w)
{
	uint64_t start = center & ~4095ull, end;

	/* Grow page by page while the RAM stays contiguous, up to the limits. */
	while (center - start < before && start >= 4096 && mem_map_avail(&vm->mem, start - 4096))
		start -= 4096;
	end = center + (mem_map_avail(&vm->mem, center) < after ? mem_map_avail(&vm->mem, center)
								: after);
	w->len = (size_t)(end - start);
	w->gpa = start;
	w->buf = malloc(w->len ? w->len : 1);
	if (!w->buf)
		return -ENOMEM;
	return mem_map_read(&vm->mem, start, w->buf, w->len);
}

static uint32_t w_u32(const struct window *w, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, w->buf + (gpa - w->gpa), 4);
	return v;
}

static int w_has(const struct window *w, uint64_t gpa, uint64_t len)
{
	return gpa >= w->gpa && gpa - w->gpa <= w->len && len <= w->len - (gpa - w->gpa);
}

/* -- the token table and its index --------------------------------------- */

static int token_char(uint8_t c)
{
	return c > 0x20 && c < 0x7f;
}

struct token_table {
	uint64_t table, index, end; /* guest-physical */
	uint16_t offsets[256];
};

/*
 * buf holds RAM from base on; the digits sit at digits_at. Walk back to
 * token 1 and on to the last token, then look for the index just after.
 */
static int check_tokens(const uint8_t *buf, size_t len, size_t digits_at, uint64_t base,
			struct token_table *ret)
{
	size_t start[256], at = digits_at;
	uint16_t index[256];

	for (int tok = 0x2f; tok >= 1; tok--) { /* token tok ends with the NUL at at - 1 */
		size_t s = at - 1;

		while (s > 0 && buf[s - 1] && at - 1 - s < MAX_TOKEN_LEN)
			s--;
		if (s == 0 || s == at - 1 || buf[s - 1])
			return -ENOENT;
		for (size_t i = s; i < at - 1; i++)
			if (!token_char(buf[i]))
				return -ENOENT;
		start[tok] = s;
		at = s;
	}
	at = digits_at;
	for (int tok = 0x30; tok < 256; tok++) {
		size_t n = 0;

		while (at + n < len && buf[at + n] && n < MAX_TOKEN_LEN && token_char(buf[at + n]))
			n++;
		if (!n || at + n >= len || buf[at + n])
			return -ENOENT;
		start[tok] = at;
		at += n + 1;
	}
	/* The index follows, aligned to 2, 4 or 8 bytes; token 0 is whatever precedes 1. */
	for (size_t align = 2; align <= 8; align *= 2) {
		size_t i_at = (size_t)(((base + at + align - 1) & ~(uint64_t)(align - 1)) - base);
		size_t tab;
		int ok = 1;

		if (i_at + sizeof(index) > len)
			return -ENOENT;
		memcpy(index, buf + i_at, sizeof(index));
		if (index[0] || index[1] < 2 || index[1] > start[1] || index[1] > MAX_TOKEN_LEN + 1)
			continue;
		tab = start[1] - index[1];
		for (int tok = 1; tok < 256 && ok; tok++)
			ok = index[tok] == start[tok] - tab;
		for (size_t i = tab; ok && i < start[1] - 1; i++)
			ok = token_char(buf[i]);
		if (!ok)
			continue;
		ret->table = base + tab;
		ret->index = base + i_at;
		ret->end = base + i_at + sizeof(index);
		memcpy(ret->offsets, index, sizeof(index));
		return 0;
	}
	return -ENOENT;
}

/* -- markers, count and names -------------------------------------------- */

/* How many markers run from p on: 0 first, then rising by a plausible step. */
static size_t marker_run(const struct window *w, uint64_t p, uint64_t limit)
{
	size_t n = 1;
	uint32_t prev = 0;

	while (p + 4 * (n + 1) <= limit) {
		uint32_t v = w_u32(w, p + 4 * n);

		if (v < prev + 512 || v - prev > MAX_MARKER_STEP)
			break;
		prev = v;
		n++;
	}
	return n;
}

/* Skip count names from at; 0 past the window or if one is empty. */
static uint64_t skip_names(const struct window *w, uint64_t at, uint64_t count, uint64_t limit)
{
	for (uint64_t i = 0; i < count; i++) {
		size_t len;

		if (at >= limit)
			return 0;
		len = w->buf[at - w->gpa];
		at++;
		if (len & 0x80) {
			if (at >= limit)
				return 0;
			len = (len & 0x7f) | ((size_t)w->buf[at - w->gpa] << 7);
			at++;
		}
		if (!len || len > limit - at)
			return 0;
		at += len;
	}
	return at;
}

/* Do num names from names land on every marker and end within 8 bytes of them? */
static int names_fit(const struct window *w, uint64_t names, uint32_t num, uint64_t markers,
		     size_t nr_markers)
{
	uint64_t at = names;

	for (size_t m = 0; m < nr_markers; m++) {
		uint64_t count = m + 1 < nr_markers ? 256 : num - 256 * (uint64_t)m;

		if (at - names != w_u32(w, markers + 4 * m))
			return 0;
		at = skip_names(w, at, count, markers);
		if (!at)
			return 0;
	}
	return markers - at < 8;
}

/* num_syms directly precedes the names, 4 or 8 bytes before them. */
static int find_names(const struct window *w, uint64_t markers, size_t nr_markers,
		      struct kallsyms_tables *t)
{
	uint64_t low = 256 * (uint64_t)(nr_markers - 1), high = 256 * (uint64_t)nr_markers;

	uint64_t top = (markers - 4) & ~3ull;

	/* Downwards; q > top once it wraps below zero. */
	for (uint64_t q = top; q >= w->gpa && q <= top; q -= 4) {
		uint32_t num = w_u32(w, q);

		if (num <= low || num > high)
			continue;
		for (uint64_t names = q + 4; names <= q + 8; names += 4) {
			if (!names_fit(w, names, num, markers, nr_markers))
				continue;
			t->num_syms = q;
			t->names = names;
			t->names_len = markers - names;
			return 0;
		}
	}
	return -ENOENT;
}

/* -- offsets --------------------------------------------------------------- */

static int kernel_va(uint64_t v)
{
	return v >= 0xffffffff80000000ull;
}

/* The offsets, and relative_base where the kernel has one. */
static int find_offsets(const struct window *w, const struct token_table *tt, uint32_t num,
			struct kallsyms_tables *t)
{
	uint64_t bytes = 4 * (uint64_t)num, base;

	/*
	 * Old order: ... offsets, relative_base, num_syms, each table starting
	 * 8-aligned (so 4 bytes of padding follow an odd number of offsets).
	 */
	for (uint64_t pad = 0; pad <= 4; pad += 4) {
		uint64_t rb = t->num_syms - 8, off = rb - pad - bytes;

		if (t->num_syms < 8 + pad + bytes || !w_has(w, off, bytes + pad + 8))
			continue;
		memcpy(&base, w->buf + (rb - w->gpa), 8);
		if (kernel_va(base) && (off & 7) == 0) {
			t->offsets = off;
			t->relative_base = rb;
			return 0;
		}
	}
	/* New order: token_index, offsets, then relative_base (until 6.14) or not at all. */
	for (uint64_t off = tt->end; off <= tt->end + 4; off += 4) {
		uint64_t rb = (off + bytes + 7) & ~7ull;

		if (!w_has(w, off, bytes))
			continue;
		t->offsets = off;
		t->relative_base = 0;
		if (w_has(w, rb, 8)) {
			memcpy(&base, w->buf + (rb - w->gpa), 8);
			if (kernel_va(base))
				t->relative_base = rb;
		}
		return 0;
	}
	return -ENOENT;
}

/* The markers nearest below the token table whose names and count fit. */
static int find_rest(const struct window *w, const struct token_table *tt,
		     struct kallsyms_tables *t)
{
	uint64_t top = (tt->table - 4) & ~3ull;

	for (uint64_t p = top; p >= w->gpa + 8 && p <= top; p -= 4) {
		uint32_t first = w_u32(w, p + 4);
		size_t nr;
		uint64_t gap, end;

		if (w_u32(w, p) || first < 512 || first > MAX_MARKER_STEP)
			continue;
		nr = marker_run(w, p, tt->table);
		end = p + 4 * nr;
		gap = tt->table - end;
		/* Straight before the tokens, or before seqs_of_names (3 bytes a symbol). */
		if (nr < 2 || (gap >= 16 && (gap + 16 < 3 * 256 * (uint64_t)(nr - 1) ||
					     gap > 3 * 256 * (uint64_t)nr + 16)))
			continue;
		if (find_names(w, p, nr, t))
			continue;
		t->token_table = tt->table;
		t->token_index = tt->index;
		return find_offsets(w, tt, w_u32(w, t->num_syms), t);
	}
	return -ENOENT;
}

/* -- the scan -------------------------------------------------------------- */

struct search {
	struct vms_vm *vm;
	struct kallsyms_tables *ret;
	int tried, found;
};

static int try_candidate(uint64_t gpa, void *ctx)
{
	struct search *s = ctx;
	struct window w = { 0 };
	struct token_table tt;
	int err;

	if (s->tried == MAX_CANDIDATES)
		return -ELOOP;
	if (window_load(s->vm, gpa, TOKEN_SPAN, TOKEN_SPAN, &w) ||
	    check_tokens(w.buf, w.len, (size_t)(gpa - w.gpa), w.gpa, &tt)) {
		free(w.buf);
		return 0;
	}
	free(w.buf);
	s->tried++;
	memset(&w, 0, sizeof(w));
	err = window_load(s->vm, tt.table, WINDOW_BEFORE, WINDOW_AFTER, &w);
	if (!err) {
		memset(s->ret, 0, sizeof(*s->ret));
		err = find_rest(&w, &tt, s->ret);
	}
	free(w.buf);
	if (err)
		return 0;
	s->found = 1;
	return 1;
}

int kallsyms_search(struct vms_vm *vm, uint64_t low, uint64_t high, struct kallsyms_tables *ret,
		    char *errbuf, size_t len)
{
	struct search s = { vm, ret, 0, 0 };
	int err = mem_map_scan_range(&vm->mem, low, high, digits, sizeof(digits), try_candidate,
				     &s);

	if (s.found)
		return 0;
	if (err == -ELOOP)
		snprintf(errbuf, len, "kallsyms: %d token tables look right but none is whole",
			 MAX_CANDIDATES);
	else if (err < 0)
		snprintf(errbuf, len, "kallsyms: cannot scan guest RAM: %s", strerror(-err));
	else
		snprintf(errbuf, len, "kallsyms: no symbol tables in guest RAM%s",
			 s.tried ? " (token tables, but no names or offsets with them)" : "");
	return err == -ELOOP || err >= 0 ? -ENOENT : err;
}
