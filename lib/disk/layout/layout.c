// SPDX-License-Identifier: MIT
/*
 * Which partition table a disk has: GPT first (its protective MBR would
 * otherwise read as one partition of type 0xee), then MBR, else the whole
 * disk is one filesystem (or none).
 */
#include <errno.h>
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
