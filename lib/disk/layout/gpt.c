// SPDX-License-Identifier: MIT
/*
 * GUID partition tables: a header at LBA 1 (and its backup at the last
 * LBA), each with a CRC32 of itself and of the entry array it points to.
 * A header is used only if both match and everything it names lies on the
 * disk; the backup stands in for a damaged primary.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "disk/layout/layout.h"

#define GPT_HEADER_MIN	  92u
#define GPT_ENTRY_MIN	  128u
#define GPT_ENTRY_MAX	  4096u
#define GPT_ENTRIES_BYTES (4u << 20) /* what any real table needs, many times over */

struct gpt_header {
	uint64_t my_lba, alternate_lba, first_usable, last_usable, entries_lba;
	uint32_t nr_entries, entry_size, entries_crc;
	uint8_t disk_guid[16];
};

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/* The mixed-endian text form: the first three fields little-endian. */
static void guid_text(const uint8_t *g, char out[40])
{
	snprintf(out, 40, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", le32(g),
		 g[4] | g[5] << 8, g[6] | g[7] << 8, g[8], g[9], g[10], g[11], g[12], g[13], g[14],
		 g[15]);
}

static int zero_guid(const uint8_t *g)
{
	for (int i = 0; i < 16; i++)
		if (g[i])
			return 0;
	return 1;
}

/* UTF-16LE, up to 36 units, to UTF-8 (unpaired surrogates as U+FFFD). */
static void name_text(const uint8_t *p, char out[72])
{
	size_t o = 0;

	for (int i = 0; i < 36; i++) {
		uint32_t c = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8);

		if (!c)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < 36) {
			uint32_t lo = (uint32_t)(p[2 * i + 2] | p[2 * i + 3] << 8);

			if (lo >= 0xdc00 && lo < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i++;
			}
		}
		if (c >= 0xd800 && c < 0xe000)
			c = 0xfffd;
		if (o + 4 >= 72)
			break;
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xe0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			out[o++] = (char)(0xf0 | c >> 18);
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[o] = '\0';
}

/* 1: a header at lba that checks itself; 0: none there; <0: a read failed. */
static int read_header(layout_read_fn read, void *ctx, uint64_t lba, unsigned int sector,
		       uint64_t nr_lbas, struct gpt_header *h)
{
	uint8_t buf[GPT_ENTRY_MAX];
	uint32_t size, crc;
	int err = read(ctx, lba * sector, buf, sector);

	if (err)
		return err;
	if (memcmp(buf, "EFI PART", 8))
		return 0;
	size = le32(buf + 12);
	if (size < GPT_HEADER_MIN || size > sector)
		return 0;
	crc = le32(buf + 16);
	memset(buf + 16, 0, 4);
	if ((uint32_t)crc32(0, buf, size) != crc)
		return 0;
	h->my_lba = le64(buf + 24);
	h->alternate_lba = le64(buf + 32);
	h->first_usable = le64(buf + 40);
	h->last_usable = le64(buf + 48);
	memcpy(h->disk_guid, buf + 56, 16);
	h->entries_lba = le64(buf + 72);
	h->nr_entries = le32(buf + 80);
	h->entry_size = le32(buf + 84);
	h->entries_crc = le32(buf + 88);
	if (h->my_lba != lba || h->first_usable > h->last_usable || h->last_usable >= nr_lbas ||
	    h->entry_size < GPT_ENTRY_MIN || h->entry_size > GPT_ENTRY_MAX || h->entry_size % 8 ||
	    !h->nr_entries || (uint64_t)h->nr_entries * h->entry_size > GPT_ENTRIES_BYTES ||
	    h->entries_lba >= nr_lbas ||
	    (uint64_t)h->nr_entries * h->entry_size > (nr_lbas - h->entries_lba) * sector)
		return 0;
	return 1;
}

static void add_entry(struct layout *l, const uint8_t *e, unsigned int index,
		      const struct gpt_header *h, unsigned int sector)
{
	uint64_t first = le64(e + 32), last = le64(e + 40);
	struct layout_partition *p;

	if (zero_guid(e))
		return; /* unused */
	if (first > last || first < h->first_usable || last > h->last_usable) {
		l->partial = 1;
		snprintf(l->why, sizeof(l->why), "GPT entry %u lies outside the usable area",
			 index + 1);
		return;
	}
	if (l->n == LAYOUT_MAX_PARTITIONS) {
		l->partial = 1;
		snprintf(l->why, sizeof(l->why), "more than %d partitions: the first listed",
			 LAYOUT_MAX_PARTITIONS);
		return;
	}
	p = &l->parts[l->n++];
	memset(p, 0, sizeof(*p));
	p->number = index + 1;
	p->offset = first * sector;
	p->size = (last - first + 1) * sector;
	guid_text(e, p->type);
	guid_text(e + 16, p->uuid);
	name_text(e + 56, p->name);
}

static int read_entries(layout_read_fn read, void *ctx, const struct gpt_header *h,
			unsigned int sector, struct layout *l)
{
	size_t bytes = (size_t)h->nr_entries * h->entry_size;
	uint8_t *a = malloc(bytes);
	int err;

	if (!a)
		return -ENOMEM;
	err = read(ctx, h->entries_lba * sector, a, bytes);
	if (!err && (uint32_t)crc32(0, a, (uInt)bytes) != h->entries_crc)
		err = 1; /* damaged: try the other copy */
	if (!err) {
		l->kind = LAYOUT_GPT;
		l->sector = sector;
		guid_text(h->disk_guid, l->disk_uuid);
		for (uint32_t i = 0; i < h->nr_entries; i++)
			add_entry(l, a + (size_t)i * h->entry_size, i, h, sector);
	}
	free(a);
	return err;
}

int layout_gpt(layout_read_fn read, void *ctx, uint64_t disk_size, struct layout *l)
{
	static const unsigned int sectors[] = { 512, 4096 };
	int seen = 0;

	for (size_t s = 0; s < sizeof(sectors) / sizeof(sectors[0]); s++) {
		unsigned int sector = sectors[s];
		uint64_t nr_lbas = disk_size / sector, lbas[2] = { 1, nr_lbas - 1 };
		struct gpt_header h;

		if (nr_lbas < 3)
			continue;
		for (int copy = 0; copy < 2; copy++) {
			int r = read_header(read, ctx, lbas[copy], sector, nr_lbas, &h);

			if (r < 0)
				return r;
			if (!r)
				continue;
			seen = 1;
			r = read_entries(read, ctx, &h, sector, l);
			if (r <= 0)
				return r ? r : 1;
			if (copy == 0)
				lbas[1] = h.alternate_lba < nr_lbas ? h.alternate_lba : lbas[1];
		}
	}
	if (seen) {
		snprintf(l->why, sizeof(l->why),
			 "GPT: every copy of the partition entries fails "
			 "its CRC32");
		return -EBADMSG;
	}
	return 0;
}
