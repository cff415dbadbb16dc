/* SPDX-License-Identifier: MIT */
/*
 * vmscope: a handle on one virtual machine.
 *
 * A handle is made with vms_vm_new() and bound to a VM with vms_vm_attach().
 * Targets:
 *   qmp:/path/to/qmp.sock   a live QEMU, reached over its QMP socket; guest RAM is
 *                           read from the memory-backend file when the VM has one,
 *                           otherwise through /proc/PID/mem (addresses from gpa2hva)
 *   raw:/path/to/file       a raw physical-memory image, guest-physical 0 at offset 0
 *
 * Every function returns 0 or a negative errno. After a failure,
 * vms_last_error() holds one human sentence naming the cause.
 * A handle is used by one thread at a time.
 */
#ifndef VMSCOPE_VM_H
#define VMSCOPE_VM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vms_vm;

struct vms_attach_opts {
	size_t sz;	/* sizeof(struct vms_attach_opts), for growth */
	int timeout_ms; /* per QMP exchange; 0 means the default (5000) */
};

int vms_vm_new(struct vms_vm **ret_vm);
/* Stops using the VM (the VM itself keeps running); NULL is allowed. */
void vms_vm_free(struct vms_vm *vm);

int vms_vm_attach(struct vms_vm *vm, const char *target, const struct vms_attach_opts *opts);

/* The last error on this handle as a sentence, or "" when there was none. */
const char *vms_last_error(const struct vms_vm *vm);

#define VMS_NAME_MAX  256
#define VMS_STATE_MAX 32

struct vms_vm_info {
	char name[VMS_NAME_MAX];   /* "" when the VM has no name */
	char state[VMS_STATE_MAX]; /* QMP run state: "running", "paused", ... */
	int vcpus;		   /* -1 when unknown (raw images) */
	uint64_t ram_bytes;	   /* guest RAM, holes excluded */
	int qemu_pid;		   /* -1 when not a live QEMU */
};

/* What the VMM says of the VM (QMP), never what the guest says. */
int vms_vm_query_info(struct vms_vm *vm, struct vms_vm_info *ret_info);

/*
 * Copy len bytes of guest-physical memory at gpa into buf. A range that is not
 * wholly inside guest RAM fails with -EFAULT and copies nothing.
 */
int vms_phys_read(struct vms_vm *vm, uint64_t gpa, void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
