/* SPDX-License-Identifier: MIT */
/*
 * vmscope: capturing a live VM's disk writes.
 *
 * vms_capture_start() mirrors every write the guest makes to one of its disks
 * (a block node, e.g. "disk0") to an NBD server inside vmscope, through
 * QEMU's active mirror (blockdev-mirror, sync none, copy-mode
 * write-blocking): nothing to change in the VM, no restart. Each write is
 * acknowledged at once and turned into an event on the caller's ring
 * ("disk_write", "disk_zero", "disk_trim", "disk_flush" with offset and
 * length); what does not fit in the ring is counted, never waited for.
 * vms_capture_stop() cancels the job and removes the NBD node: the VM and its
 * disk carry on untouched, as they do if vmscope dies.
 */
#ifndef VMSCOPE_DISK_H
#define VMSCOPE_DISK_H

#include <stdint.h>

#include <vmscope/ring.h>
#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vms_capture;

struct vms_capture_stats {
	uint64_t writes, write_bytes, zeroes, trims, flushes;
	uint64_t dropped; /* requests acknowledged but not queued: the ring was full */
};

/* Start capturing the block node's writes into ring (single producer: the capture). */
int vms_capture_start(struct vms_vm *vm, const char *node, struct vms_ring *ring,
		      struct vms_capture **ret_capture);
void vms_capture_get_stats(const struct vms_capture *capture, struct vms_capture_stats *ret);
/* Detach cleanly; NULL is allowed. Returns the first error of the detach, if any. */
int vms_capture_stop(struct vms_capture *capture);

/*
 * Reading a live VM's disk as the guest sees it, through a read-only export
 * of QEMU's own NBD server (whatever the image format). The VM keeps running.
 */
struct vms_disk_reader;

int vms_disk_open(struct vms_vm *vm, const char *node, struct vms_disk_reader **ret_reader);
uint64_t vms_disk_size(const struct vms_disk_reader *reader);
int vms_disk_read(struct vms_disk_reader *reader, uint64_t offset, void *buf, size_t len);
/* Remove the export and stop QEMU's NBD server; NULL is allowed. */
int vms_disk_close(struct vms_disk_reader *reader);

#ifdef __cplusplus
}
#endif
#endif
