// SPDX-License-Identifier: MIT
/*
 * What a partition (or a whole disk) holds, by the signature each format
 * keeps at a fixed place: ext2/3/4 (with label, UUID and size from the
 * superblock), XFS, Btrfs, swap, an LVM2 physical volume. Nothing is
 * trusted beyond the fixed-size fields read; a size is capped by the space
 * that holds it.
 */
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "disk/layout/layout.h"

#define EXT4_MAGIC	      0xef53
#define EXT4_FEATURE_JOURNAL  0x4u
#define EXT4_INCOMPAT_EXTENTS 0x40u
#define EXT4_INCOMPAT_64BIT   0x80u

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A label of at most n bytes: up to its NUL, non-printable bytes as '?'. */
static void label_text(const uint8_t *p, size_t n, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && p[i] && o + 1 < len; i++)
		out[o++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	out[o] = '\0';
}

static int ext(const uint8_t *sb, uint64_t space, struct layout_fs *fs)
{
	uint32_t log = le32(sb + 0x18), compat = le32(sb + 0x5c), incompat = le32(sb + 0x60);
	uint64_t blocks = le32(sb + 0x4);

	if ((sb[0x38] | sb[0x39] << 8) != EXT4_MAGIC || log > 6)
		return 0;
	if (incompat & EXT4_INCOMPAT_64BIT)
		blocks |= (uint64_t)le32(sb + 0x150) << 32;
	snprintf(fs->type, sizeof(fs->type), "%s",
		 incompat & (EXT4_INCOMPAT_EXTENTS | EXT4_INCOMPAT_64BIT) ? "ext4"
		 : compat & EXT4_FEATURE_JOURNAL			  ? "ext3"
									  : "ext2");
	fs->size = blocks << (10 + log);
	if (fs->size > space || blocks >> 54)
		fs->size = space; /* a superblock claiming more than its partition */
	uuid_text(sb + 0x68, fs->uuid);
	label_text(sb + 0x78, 16, fs->label, sizeof(fs->label));
	return 1;
}

void layout_probe_fs(layout_read_fn read, void *ctx, uint64_t offset, uint64_t space,
		     struct layout_fs *fs)
{
	uint8_t b[1024];

	memset(fs, 0, sizeof(*fs));
	if (space >= 2048 && !read(ctx, offset + 1024, b, 1024) && ext(b, space, fs))
		return;
	if (space >= 1024 && !read(ctx, offset, b, 1024)) {
		if (!memcmp(b, "XFSB", 4)) {
			snprintf(fs->type, sizeof(fs->type), "xfs");
			uuid_text(b + 32, fs->uuid);
			label_text(b + 108, 12, fs->label, sizeof(fs->label));
			return;
		}
		if (!memcmp(b + 512, "LABELONE", 8) && !memcmp(b + 512 + 24, "LVM2 001", 8)) {
			snprintf(fs->type, sizeof(fs->type), "lvm2_member");
			return;
		}
	}
	if (space >= 4096 && !read(ctx, offset + 4096 - 10, b, 10) &&
	    !memcmp(b, "SWAPSPACE2", 10)) {
		snprintf(fs->type, sizeof(fs->type), "swap");
		return;
	}
	if (space >= 0x10048 && !read(ctx, offset + 0x10040, b, 8) && !memcmp(b, "_BHRfS_M", 8))
		snprintf(fs->type, sizeof(fs->type), "btrfs");
}
