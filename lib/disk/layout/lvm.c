// SPDX-License-Identifier: MIT
/*
 * LVM2 physical volumes. The label ("LABELONE", type "LVM2 001") is in one
 * of the PV's first four sectors; after it the PV header gives the PV's
 * UUID and its metadata areas. Each area starts with a header naming where
 * in its circular buffer the current metadata text lies; the text is LVM's
 * configuration format, parsed with LVM's own parser (libdevmapper's
 * dm_config). Every header and the text carry LVM's CRC32 (the reflected
 * polynomial, seeded with 0xf597a6cf, not inverted at the end), and all of
 * it is checked before anything is believed: a guest can write anything on
 * its disk. Of the metadata, the volume group's extent size, this PV's
 * first extent and each logical volume's segments are used: a segment of
 * type "striped" with one stripe on this PV is a plain run of extents.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdevmapper.h>
#include <zlib.h>

#include "disk/layout/layout.h"

#define SECTOR	      512u
#define LABEL_SECTORS 4
#define MDA_HEADER    512u
#define MAX_MDAS      2
#define METADATA_MAX  (4u << 20) /* LVM's areas are 1 MiB by default */
#define MAX_NESTING   8		 /* VG { logical_volumes { lv { segment { stripes [ */
#define LVM_CRC_SEED  0xf597a6cfu
#define EXTENT_MAX    (1ull << 31) /* sectors: far above LVM's largest extent */

static const char mda_magic[16] = " LVM2 x[5A%r0N*>";

struct text_area {
	uint64_t start, size;		/* the area, from the PV's start */
	uint64_t offset, len, checksum; /* the text in it */
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint32_t lvm_crc(uint32_t crc, const void *buf, size_t len)
{
	return (uint32_t)crc32(crc ^ 0xffffffffu, buf, (uInt)len) ^ 0xffffffffu;
}

static int fail(struct layout_lvm *l, int err, const char *why)
{
	snprintf(l->why, sizeof(l->why), "LVM2 physical volume: %s", why);
	return err;
}

/* The label's sector, its PV header checked: 1 found, 0 none. */
static int find_label(layout_read_fn read, void *ctx, uint64_t offset, uint64_t space,
		      uint8_t s[SECTOR], uint32_t *ret_at)
{
	for (uint64_t i = 0; i < LABEL_SECTORS && (i + 1) * SECTOR <= space; i++) {
		uint32_t at;

		if (read(ctx, offset + i * SECTOR, s, SECTOR))
			return -EIO;
		if (memcmp(s, "LABELONE", 8) || memcmp(s + 24, "LVM2 001", 8) || le64(s + 8) != i)
			continue;
		at = le32(s + 20);
		if (lvm_crc(LVM_CRC_SEED, s + 20, SECTOR - 20) != le32(s + 16) || at < 32 ||
		    at > SECTOR - 40 - 16)
			continue;
		*ret_at = at;
		return 1;
	}
	return 0;
}

/* The metadata areas the PV header lists (after its data areas), in the space. */
static size_t metadata_areas(const uint8_t s[SECTOR], uint32_t at, uint64_t space,
			     struct text_area mdas[MAX_MDAS])
{
	size_t p = at + 40, n = 0;
	int lists = 0;

	for (; p + 16 <= SECTOR && lists < 2; p += 16) {
		uint64_t o = le64(s + p), z = le64(s + p + 8);

		if (!o && !z) {
			lists++;
			continue;
		}
		if (lists == 1 && n < MAX_MDAS && o >= SECTOR && o < space && z >= 2 * MDA_HEADER &&
		    z <= space - o)
			mdas[n++] = (struct text_area){ .start = o, .size = z };
	}
	return n;
}

/* The area's header: where its current text lies. 0, or -EINVAL when it does not check. */
static int read_area(layout_read_fn read, void *ctx, uint64_t offset, struct text_area *a)
{
	uint8_t h[MDA_HEADER];

	if (read(ctx, offset + a->start, h, sizeof(h)))
		return -EIO;
	if (lvm_crc(LVM_CRC_SEED, h + 4, sizeof(h) - 4) != le32(h) ||
	    memcmp(h + 4, mda_magic, sizeof(mda_magic)) || le32(h + 20) != 1 ||
	    le64(h + 24) != a->start || le64(h + 32) != a->size)
		return -EINVAL;
	/* The first location is the committed metadata; its flags bit 0: "ignore this area". */
	a->offset = le64(h + 40);
	a->len = le64(h + 48);
	a->checksum = le32(h + 56);
	if (le32(h + 60) & 1 || a->offset < MDA_HEADER || a->offset >= a->size || !a->len ||
	    a->len > a->size - MDA_HEADER || a->len > METADATA_MAX)
		return -EINVAL;
	return 0;
}

/* The text, which may wrap round the circular buffer, checked. Caller frees. */
static char *read_text(layout_read_fn read, void *ctx, uint64_t offset, const struct text_area *a)
{
	uint64_t first = a->size - a->offset < a->len ? a->size - a->offset : a->len;
	char *text = malloc(a->len + 1);

	if (!text)
		return NULL;
	if (read(ctx, offset + a->start + a->offset, text, first) ||
	    (a->len > first &&
	     read(ctx, offset + a->start + MDA_HEADER, text + first, a->len - first)) ||
	    lvm_crc(LVM_CRC_SEED, text, a->len) != a->checksum) {
		free(text);
		return NULL;
	}
	text[a->len] = '\0';
	return text;
}

/*
 * LVM's parser (libdevmapper's dm_config) is not written for hostile text:
 * it recurses once per nested section and once per "/" in a key (a key
 * "a/b/c" is three nested nodes), and its tokenizer lets quotes, "#" and
 * "]" sit inside bare keys. So the text is first checked against the shape
 * LVM writes, with a tokenizer no more lenient than LVM's: strings start a
 * token and end at an unescaped '"', bare tokens hold only [A-Za-z0-9._+-]
 * and end where LVM's tokenizer ends them too, a comment starts a token; nesting of
 * sections and arrays at most MAX_NESTING, at most MAX_NODES keys in all.
 * Text that passes can only nest as deep as its braces say.
 */
#define MAX_NODES 65536

static int bare(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '+' || c == '-';
}

static int number(const char *t, size_t n)
{
	size_t i = n && (t[0] == '-' || t[0] == '+');

	if (i == n || t[i] < '0' || t[i] > '9')
		return 0;
	for (; i < n; i++)
		if ((t[i] < '0' || t[i] > '9') && t[i] != '.')
			return 0;
	return 1;
}

/* Past the string that starts at t[i] ('"'): the index after its closing quote, or 0. */
static size_t string_end(const char *t, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (t[i] == '\\' && i + 1 < len)
			i++;
		else if (t[i] == '"')
			return i + 1;
		else if (!t[i])
			return 0;
	}
	return 0;
}

static int lvm_shaped(const char *t, size_t len)
{
	int depth = 0;
	size_t nodes = 0;

	for (size_t i = 0; i < len;) {
		char c = t[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || (!c && i == len - 1)) {
			i++;
		} else if (c == '#') {
			while (i < len && t[i] != '\n')
				i++;
		} else if (c == '"') {
			i = string_end(t, len, i);
			if (!i)
				return 0;
		} else if (c == '{' || c == '[') {
			if (++depth > MAX_NESTING)
				return 0;
			i++;
		} else if (c == '}' || c == ']') {
			if (--depth < 0)
				return 0;
			i++;
		} else if (c == '=' || c == ',') {
			nodes += c == '=';
			i++;
		} else if (bare(c)) {
			size_t from = i;

			while (i < len && bare(t[i]))
				i++;
			/*
			 * What may follow a bare token without LVM's tokenizer taking
			 * it in: a number ends at any other character, a name only at
			 * whitespace or '='.
			 */
			if (i < len && t[i] && !strchr(number(t + from, i - from) ? " \t\n\r,]" : " \t\n\r=", t[i]))
				return 0;
			nodes++;
		} else {
			return 0;
		}
		if (nodes > MAX_NODES)
			return 0;
	}
	return depth == 0;
}

static void quiet(int level, const char *file, int line, int dm_errno, const char *f, ...)
{
	(void)level, (void)file, (void)line, (void)dm_errno, (void)f;
}

/* libdevmapper logs parse errors to stderr; here they are the guest's, and reported as such. */
static void quiet_libdevmapper(void)
{
	dm_log_with_errno_init(quiet);
}

/*
 * A section's entry by its key, walked here (a bounded walk over its
 * siblings): a key given twice is taken as absent, the parser having been
 * told not to check for duplicates.
 */
static const struct dm_config_node *first_named(const struct dm_config_node *first,
						const char *key)
{
	const struct dm_config_node *found = NULL;
	size_t budget = MAX_NODES;

	for (const struct dm_config_node *n = first; n && budget--; n = n->sib) {
		if (strcmp(n->key, key))
			continue;
		if (found)
			return NULL;
		found = n;
	}
	return found;
}

static const struct dm_config_node *child(const struct dm_config_node *section, const char *key)
{
	return first_named(section->child, key);
}

static int u64_at(const struct dm_config_node *n, const char *key, uint64_t *ret)
{
	const struct dm_config_node *c = child(n, key);

	if (!c || !c->v || c->v->type != DM_CFG_INT || c->v->v.i < 0)
		return -EINVAL;
	*ret = (uint64_t)c->v->v.i;
	return 0;
}

static const char *str_at(const struct dm_config_node *n, const char *key)
{
	const struct dm_config_node *c = child(n, key);

	return c && c->v && c->v->type == DM_CFG_STRING ? c->v->v.str : NULL;
}

/* LVM's rule for VG and LV names. */
static int good_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= LAYOUT_LVM_NAME || s[0] == '-' || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_.-") == n;
}

static void copy_uuid(char out[40], const char *id)
{
	snprintf(out, 40, "%.38s", id && strlen(id) <= 38 ? id : "");
}

static int same_uuid(const char *dashed, const uint8_t plain[32])
{
	size_t j = 0;

	for (size_t i = 0; dashed[i]; i++) {
		if (dashed[i] == '-')
			continue;
		if (j == 32 || dashed[i] != (char)plain[j++])
			return 0;
	}
	return j == 32;
}

static int has_flag(const struct dm_config_node *n, const char *key, const char *flag)
{
	const struct dm_config_node *c = child(n, key);
	int budget = 64;

	for (const struct dm_config_value *v = c ? c->v : NULL; v && budget--; v = v->next)
		if (v->type == DM_CFG_STRING && !strcmp(v->v.str, flag))
			return 1;
	return 0;
}

struct vg {
	uint64_t extent;   /* bytes */
	uint64_t pe_start; /* bytes, on this PV */
	uint64_t pe_count;
	const char *pv; /* this PV's name in the metadata ("pv0") */
	uint64_t space;
};

static int refuse(struct layout_volume *v, const char *why)
{
	snprintf(v->refused, sizeof(v->refused), "%s", why);
	return 0;
}

/* One segment: 0 and appended, or 0 with v->refused set; 1: it is on another PV. */
static int segment(const struct vg *g, const struct dm_config_node *s, struct layout_volume *v)
{
	const char *type = str_at(s, "type");
	const struct dm_config_node *st = child(s, "stripes");
	uint64_t start, count, stripes = 0, pv_start, lv_off, len, pv_off;
	char why[96];

	if (u64_at(s, "start_extent", &start) || u64_at(s, "extent_count", &count) || !count ||
	    !type)
		return refuse(v, "a segment without its extents or type");
	if (strcmp(type, "striped")) {
		snprintf(why, sizeof(why), "a %.40s volume, not a linear one", type);
		return refuse(v, why);
	}
	if (u64_at(s, "stripe_count", &stripes) || stripes != 1) {
		snprintf(why, sizeof(why), "striped over %llu devices, not linear",
			 (unsigned long long)stripes);
		return refuse(v, stripes > 1 ? why : "a segment with no stripe count");
	}
	if (!st || !st->v || st->v->type != DM_CFG_STRING || !st->v->next ||
	    st->v->next->type != DM_CFG_INT || st->v->next->v.i < 0)
		return refuse(v, "a segment without its stripe");
	if (strcmp(st->v->v.str, g->pv))
		return 1;
	pv_start = (uint64_t)st->v->next->v.i;
	if (count > g->pe_count || pv_start > g->pe_count - count ||
	    __builtin_mul_overflow(start, g->extent, &lv_off) ||
	    __builtin_mul_overflow(count, g->extent, &len) ||
	    __builtin_mul_overflow(pv_start, g->extent, &pv_off) ||
	    __builtin_add_overflow(pv_off, g->pe_start, &pv_off) || pv_off > g->space ||
	    len > g->space - pv_off)
		return refuse(v, "a segment beyond its physical volume");
	if (v->nr_segments == LAYOUT_MAX_SEGMENTS)
		return refuse(v, "more than 16 segments");
	v->seg[v->nr_segments++] = (struct layout_segment){ lv_off, pv_off, len };
	return 0;
}

static int by_lv_offset(const void *a, const void *b)
{
	const struct layout_segment *x = a, *y = b;

	return (x->lv_offset > y->lv_offset) - (x->lv_offset < y->lv_offset);
}

/* The segments, in order, must cover the volume from 0 without gaps or overlaps. */
static void check_contiguous(struct layout_volume *v)
{
	uint64_t at = 0;

	qsort(v->seg, v->nr_segments, sizeof(v->seg[0]), by_lv_offset);
	for (size_t i = 0; i < v->nr_segments; i++) {
		if (v->seg[i].lv_offset != at) {
			refuse(v, "segments with gaps or overlaps");
			return;
		}
		at += v->seg[i].len;
	}
	v->size = at;
	if (!v->nr_segments)
		refuse(v, "no segments");
}

/* 1: a volume with a part on this PV, in *v; 0: none of it is here. */
static int volume(const struct vg *g, const struct dm_config_node *lv, struct layout_volume *v)
{
	int budget = LAYOUT_MAX_SEGMENTS + 1, elsewhere = 0;

	snprintf(v->name, sizeof(v->name), "%s", lv->key);
	copy_uuid(v->uuid, str_at(lv, "id"));
	for (const struct dm_config_node *s = lv->child; s && !v->refused[0]; s = s->sib) {
		if (!s->child)
			continue; /* a value, not a segment */
		if (!budget--) {
			refuse(v, "more than 16 segments");
			break;
		}
		elsewhere += segment(g, s, v);
	}
	if (!v->refused[0] && elsewhere && !v->nr_segments)
		return 0;
	if (!v->refused[0] && elsewhere)
		refuse(v, "partly on another physical volume");
	if (!v->refused[0])
		check_contiguous(v);
	if (v->refused[0])
		v->nr_segments = 0;
	return 1;
}

static int this_pv(const struct dm_config_node *vg, const uint8_t uuid[32], struct vg *g)
{
	const struct dm_config_node *pvs = child(vg, "physical_volumes");
	int budget = 4096;

	for (const struct dm_config_node *p = pvs ? pvs->child : NULL; p && budget--; p = p->sib) {
		const char *id = str_at(p, "id");

		if (!id || !same_uuid(id, uuid))
			continue;
		g->pv = p->key;
		if (u64_at(p, "pe_start", &g->pe_start) || u64_at(p, "pe_count", &g->pe_count) ||
		    g->pe_start > g->space / SECTOR)
			return -EINVAL;
		g->pe_start *= SECTOR;
		return 0;
	}
	return -ENOENT;
}

static int volumes(const struct dm_config_node *vg, const uint8_t uuid[32], uint64_t space,
		   struct layout_lvm *l)
{
	const struct dm_config_node *lvs = child(vg, "logical_volumes");
	struct vg g = { .space = space };
	int err;

	if (!good_name(vg->key))
		return fail(l, -EINVAL, "its volume group's name is not one LVM allows");
	snprintf(l->vg, sizeof(l->vg), "%s", vg->key);
	copy_uuid(l->vg_uuid, str_at(vg, "id"));
	if (u64_at(vg, "seqno", &l->seqno) || u64_at(vg, "extent_size", &g.extent) || !g.extent ||
	    g.extent > EXTENT_MAX)
		return fail(l, -EINVAL, "its metadata has no usable extent size");
	g.extent *= SECTOR;
	err = this_pv(vg, uuid, &g);
	if (err)
		return fail(l, err,
			    err == -ENOENT ? "its metadata does not list it"
					   : "its metadata gives it no usable extents");
	for (const struct dm_config_node *lv = lvs ? lvs->child : NULL; lv; lv = lv->sib) {
		if (!lv->child || !has_flag(lv, "status", "VISIBLE"))
			continue; /* a pool's or mirror's hidden parts */
		if (!good_name(lv->key)) {
			l->partial = 1;
			snprintf(l->why, sizeof(l->why),
				 "a logical volume's name is not one LVM allows");
			continue;
		}
		if (l->n == LAYOUT_MAX_VOLUMES) {
			l->partial = 1;
			snprintf(l->why, sizeof(l->why), "more than %d logical volumes",
				 LAYOUT_MAX_VOLUMES);
			break;
		}
		memset(&l->vols[l->n], 0, sizeof(l->vols[0]));
		l->n += volume(&g, lv, &l->vols[l->n]);
	}
	return 0;
}

static int parse(const char *text, size_t len, const uint8_t uuid[32], uint64_t space,
		 struct layout_lvm *l)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct dm_config_tree *cft;
	const struct dm_config_node *vg, *contents;
	int err;

	if (!lvm_shaped(text, len))
		return fail(l, -EINVAL, "its metadata is not shaped as LVM writes it (nesting, "
			    "tokens or size)");
	pthread_once(&once, quiet_libdevmapper);
	cft = dm_config_create();
	if (!cft)
		return fail(l, -ENOMEM, "out of memory");
	/* Duplicate keys are refused by child(): the parser's own check is quadratic. */
	if (!dm_config_parse_without_dup_node_check(cft, text, text + len)) {
		dm_config_destroy(cft);
		return fail(l, -EINVAL, "its metadata does not parse");
	}
	for (vg = cft->root; vg && !vg->child; vg = vg->sib)
		;
	contents = first_named(cft->root, "contents");
	if (!vg || !contents || !contents->v || contents->v->type != DM_CFG_STRING ||
	    strcmp(contents->v->v.str, "Text Format Volume Group"))
		err = fail(l, -EINVAL, "its metadata names no volume group");
	else
		err = volumes(vg, uuid, space, l);
	dm_config_destroy(cft);
	return err;
}

int layout_lvm(layout_read_fn read, void *ctx, uint64_t offset, uint64_t space,
	       struct layout_lvm *ret)
{
	struct text_area mdas[MAX_MDAS];
	uint8_t s[SECTOR], uuid[32];
	uint32_t at;
	size_t n;
	int r, err = -EINVAL;

	memset(ret, 0, sizeof(*ret));
	r = find_label(read, ctx, offset, space, s, &at);
	if (r <= 0)
		return r < 0 ? fail(ret, r, "cannot be read") : 0;
	memcpy(uuid, s + at, sizeof(uuid));
	n = metadata_areas(s, at, space, mdas);
	/* The newest copy that checks; a damaged one is passed over for the other. */
	for (size_t i = 0; i < n; i++) {
		struct layout_lvm *try = malloc(sizeof(*try));
		char *text = NULL;
		int area;

		if (!try)
			return fail(ret, -ENOMEM, "out of memory");
		memset(try, 0, sizeof(*try));
		area = read_area(read, ctx, offset, &mdas[i]);
		if (!area)
			text = read_text(read, ctx, offset, &mdas[i]);
		r = text ? parse(text, mdas[i].len, uuid, space, try) : -EINVAL;
		if (!r && (err || try->seqno > ret->seqno)) {
			*ret = *try;
			err = 0;
		} else if (err && text) {
			err = r;
			memcpy(ret->why, try->why, sizeof(ret->why));
		} else if (err && area == -EIO) {
			err = fail(ret, -EIO, "its metadata area cannot be read");
		} else if (err) {
			err = fail(ret, -EINVAL, "no copy of its metadata checks");
		}
		free(text);
		free(try);
	}
	if (!n)
		return fail(ret, -EINVAL, "its label lists no metadata area");
	return err ? err : 1;
}
