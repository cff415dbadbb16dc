/* SPDX-License-Identifier: MIT */
/* Capture for other parts of the library: requests to a callback instead of a ring. */
#ifndef VMSCOPE_DISK_CAPTURE_H
#define VMSCOPE_DISK_CAPTURE_H

#include <vmscope/disk.h>

#include "disk/nbd.h"

/*
 * vms_capture_start(), with every request handed to fn (on the NBD thread,
 * before the guest's write completes: fn must be quick) when fn is set;
 * want says which payloads fn needs (see nbd_want_fn). granularity: the
 * smallest block a background mirror copies (a power of two from 512).
 */
int capture_start(struct vms_vm *vm, const char *node, enum vms_capture_mode mode,
		  uint32_t granularity, struct vms_ring *ring, nbd_request_fn fn, nbd_want_fn want,
		  void *fn_ctx, struct vms_capture **ret_capture);

#endif
