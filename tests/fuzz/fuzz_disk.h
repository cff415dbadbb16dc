/* SPDX-License-Identifier: MIT */
/* For the fuzz targets whose input is a disk: reading it, bounds checked. */
#ifndef VMSCOPE_FUZZ_DISK_H
#define VMSCOPE_FUZZ_DISK_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

struct fuzz_disk {
	const uint8_t *data;
	size_t size;
};

static inline int fuzz_disk_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
	const struct fuzz_disk *d = ctx;

	if (offset > d->size || len > d->size - offset)
		return -EIO;
	memcpy(buf, d->data + offset, len);
	return 0;
}

#endif
