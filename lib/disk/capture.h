/* SPDX-License-Identifier: MIT */
/* Capture for other parts of the library: requests to a callback instead of a ring. */
#ifndef VMSCOPE_DISK_CAPTURE_H
#define VMSCOPE_DISK_CAPTURE_H

#include <vmscope/disk.h>

#include "disk/nbd.h"

struct vms_disk_reader;

struct capture_config {
	enum vms_capture_mode mode;
	/* the smallest block a background mirror copies, or a bitmap bit stands for */
	uint32_t granularity;
	uint32_t interval_ms;		/* bitmap: between polls; 0: the default */
	struct vms_disk_reader *reader; /* bitmap: exports on its NBD server; NULL: one of ours */
	nbd_request_fn fn;
	nbd_want_fn want;
	void *ctx;
};

/*
 * vms_capture_start(), with every request handed to fn (on the capture's
 * thread; in blocking mode before the guest's write completes: fn must be
 * quick) when fn is set; want says which payloads fn needs (see
 * nbd_want_fn).
 */
int capture_start(struct vms_vm *vm, const char *node, const struct capture_config *cfg,
		  struct vms_ring *ring, struct vms_capture **ret_capture);

/* vms_capture_stop(), with the capture's final figures (a last poll included) in ret. */
int capture_stop_stats(struct vms_capture *c, struct vms_capture_stats *ret);

#endif
