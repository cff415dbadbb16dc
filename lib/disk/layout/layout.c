// SPDX-License-Identifier: MIT
/*
 * Which partition table a disk has: GPT first (its protective MBR would
 * otherwise read as one partition of type 0xee), then MBR, else the whole
 * disk is one filesystem (or none).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "disk/layout/layout.h"

static int (*const tables[])(layout_read_fn read, void *ctx, uint64_t disk_size,
			     struct layout *ret) = { layout_gpt, layout_mbr };

const char *layout_kind_name(enum layout_kind kind)
{
	return kind == LAYOUT_GPT ? "gpt" : kind == LAYOUT_MBR ? "mbr" : "none";
}

int layout_read(layout_read_fn read, void *ctx, uint64_t disk_size, struct layout *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		int r = tables[i](read, ctx, disk_size, ret);

		if (r < 0) {
			if (!ret->why[0])
				strcpy(ret->why, "the disk cannot be read");
			return r;
		}
		if (r > 0)
			return 0;
		memset(ret, 0, sizeof(*ret));
	}
	ret->kind = LAYOUT_WHOLE_DISK;
	return 0;
}

int layout_read_mapped(layout_read_fn read, void *ctx, const struct vms_disk_segment *seg,
		       size_t n, uint64_t offset, void *buf, size_t len)
{
	uint8_t *out = buf;

	for (size_t i = 0; i < n && len; i++) {
		uint64_t end = seg[i].lv_offset + seg[i].len, part;
		int err;

		if (offset < seg[i].lv_offset || offset >= end)
			continue;
		part = end - offset < len ? end - offset : len;
		err = read(ctx, seg[i].disk_offset + (offset - seg[i].lv_offset), out, part);
		if (err)
			return err;
		out += part;
		offset += part;
		len -= part;
	}
	return len ? -EIO : 0;
}
