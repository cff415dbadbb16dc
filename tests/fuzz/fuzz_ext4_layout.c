// SPDX-License-Identifier: MIT
/* libFuzzer target: ext4 superblock and group descriptors, the input being the disk. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "disk/ext4/layout.h"

struct disk {
	const uint8_t *data;
	size_t size;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_disk(void *ctx, uint64_t offset, void *buf, size_t len)
{
	const struct disk *d = ctx;

	if (offset > d->size || len > d->size - offset)
		return -EIO;
	memcpy(buf, d->data + offset, len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk d = { data, size };
	struct ext4_layout l;
	uint32_t group;
	char err[128];

	if (ext4_layout_load(&l, size, read_disk, &d, err, sizeof(err)))
		return 0;
	for (uint64_t b = 0; b < l.blocks && b < 4096; b++)
		ext4_classify(&l, b, &group);
	ext4_layout_release(&l);
	return 0;
}
