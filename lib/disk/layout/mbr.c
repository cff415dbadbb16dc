// SPDX-License-Identifier: MIT
/*
 * MBR partition tables: four entries in sector 0, and for an extended
 * partition a chain of EBRs inside it, each holding one logical partition
 * (relative to itself) and the link to the next (relative to the extended
 * partition). Linux numbers the logical ones from 5. The chain is the
 * guest's: it is bounded, and a link out of the extended partition or back
 * to an EBR already read ends it, marked partial.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "disk/layout/layout.h"

#define SECTOR	    512u
#define MAX_LOGICAL (LAYOUT_MAX_PARTITIONS - 4)
#define TYPE_GPT    0xee

struct mbr_entry {
	uint8_t type;
	uint64_t start, count; /* sectors */
};

static void entry_at(const uint8_t *sector, int i, struct mbr_entry *e)
{
	const uint8_t *p = sector + 446 + 16 * i;

	e->type = p[4];
	e->start = (uint64_t)p[8] | (uint64_t)p[9] << 8 | (uint64_t)p[10] << 16 |
		   (uint64_t)p[11] << 24;
	e->count = (uint64_t)p[12] | (uint64_t)p[13] << 8 | (uint64_t)p[14] << 16 |
		   (uint64_t)p[15] << 24;
}

static int is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

static int signed_sector(const uint8_t *s)
{
	return s[510] == 0x55 && s[511] == 0xaa;
}

static int partial(struct layout *l, const char *why)
{
	l->partial = 1;
	snprintf(l->why, sizeof(l->why), "%s", why);
	return 0;
}

/* A partition of count sectors from sector start, if it lies inside [low, high). */
static void add(struct layout *l, unsigned int number, const struct mbr_entry *e, uint64_t start,
		uint64_t low, uint64_t high)
{
	struct layout_partition *p;

	if (start < low || start >= high || e->count > high - start) {
		char why[80];

		snprintf(why, sizeof(why), "MBR partition %u lies outside its disk or container",
			 number);
		partial(l, why);
		return;
	}
	p = &l->parts[l->n++];
	memset(p, 0, sizeof(*p));
	p->number = number;
	p->offset = start * SECTOR;
	p->size = e->count * SECTOR;
	snprintf(p->type, sizeof(p->type), "0x%02x", e->type);
}

static int logical(layout_read_fn read, void *ctx, const struct mbr_entry *ext, struct layout *l)
{
	uint64_t ebr = ext->start, seen[MAX_LOGICAL];
	uint64_t end = ext->start + ext->count;
	unsigned int number = 5;

	for (unsigned int i = 0;; i++) {
		uint8_t s[SECTOR];
		struct mbr_entry part, next;
		int err;

		if (i == MAX_LOGICAL)
			return partial(l, "more logical partitions than vmscope reads");
		for (unsigned int j = 0; j < i; j++)
			if (seen[j] == ebr)
				return partial(l, "the chain of logical partitions loops");
		seen[i] = ebr;
		err = read(ctx, ebr * SECTOR, s, SECTOR);
		if (err)
			return err;
		if (!signed_sector(s))
			return partial(l, "an EBR of the extended partition is not signed");
		entry_at(s, 0, &part);
		entry_at(s, 1, &next);
		if (part.type && part.count)
			add(l, number++, &part, ebr + part.start, ebr + 1, end);
		if (!is_extended(next.type) || !next.count)
			return 0;
		if (next.start >= ext->count)
			return partial(l,
				       "a link of the logical chain leaves the extended partition");
		ebr = ext->start + next.start;
	}
}

int layout_mbr(layout_read_fn read, void *ctx, uint64_t disk_size, struct layout *l)
{
	uint64_t sectors = disk_size / SECTOR;
	struct mbr_entry e[4];
	uint8_t s[SECTOR];
	int err, used = 0, extended = -1;

	if (sectors < 2)
		return 0;
	err = read(ctx, 0, s, SECTOR);
	if (err)
		return err;
	if (!signed_sector(s))
		return 0;
	for (int i = 0; i < 4; i++) {
		entry_at(s, i, &e[i]);
		if (!e[i].type || !e[i].count)
			continue;
		used++;
		if (e[i].type == TYPE_GPT) {
			snprintf(l->why, sizeof(l->why),
				 "a protective MBR, but no GPT header on the "
				 "disk checks out (both copies damaged?)");
			return -EBADMSG;
		}
	}
	/* A boot sector with an empty table (a whole-disk filesystem's) is no table. */
	if (!used)
		return 0;
	l->kind = LAYOUT_MBR;
	l->sector = SECTOR;
	for (int i = 0; i < 4; i++) {
		if (!e[i].type || !e[i].count)
			continue;
		if (is_extended(e[i].type) && extended < 0) {
			extended = i;
			continue;
		}
		add(l, (unsigned int)i + 1, &e[i], e[i].start, 1, sectors);
	}
	if (extended >= 0) {
		const struct mbr_entry *x = &e[extended];

		if (x->start < 1 || x->start >= sectors || x->count > sectors - x->start)
			partial(l, "the extended partition lies outside the disk");
		else if ((err = logical(read, ctx, x, l)))
			return err;
	}
	return 1;
}
