/* SPDX-License-Identifier: MIT */
/* The dirty-bitmap capture mode (bitmap.c): polls instead of a mirror. */
#ifndef VMSCOPE_DISK_BITMAP_H
#define VMSCOPE_DISK_BITMAP_H

#include <stddef.h>
#include <stdint.h>

#include <vmscope/disk.h>

#include "disk/nbd.h"

#define BITMAP_INTERVAL_MS 100u

struct qmp;
struct bitmap_poll;

struct bitmap_config {
	const char *socket;   /* the NBD server QEMU already runs (the disk reader's) */
	uint32_t granularity; /* bytes a bit stands for: a power of two from 512 */
	uint32_t interval_ms; /* between polls; 0: BITMAP_INTERVAL_MS */
	nbd_request_fn fn;    /* each dirty extent, as a write, on the poll thread */
	nbd_want_fn want;     /* which of them fn wants the bytes of */
	void *ctx;
};

/* The first bitmap on the node, and the poll thread; why: the failure's sentence. */
int bitmap_start(struct qmp *qmp, const char *node, uint64_t size, const struct bitmap_config *cfg,
		 struct bitmap_poll **ret, char *why, size_t why_len);
/* Adds polls, dirty_bytes, read_bytes and poll_us_max to the capture's figures. */
void bitmap_get_stats(const struct bitmap_poll *b, struct vms_capture_stats *ret);
/*
 * A last poll, then the bitmap goes: 0, or the first error of the capture's
 * life. ret, unless NULL, gets the final figures as bitmap_get_stats() does.
 */
int bitmap_stop(struct bitmap_poll *b, struct vms_capture_stats *ret, char *why, size_t why_len);

#endif
