/* SPDX-License-Identifier: MIT */
/*
 * vmscope: a handle on one virtual machine.
 *
 * A handle is made with vms_vm_new() and bound to a VM with vms_vm_attach().
 * Targets:
 *   qmp:/path/to/qmp.sock   a live QEMU, reached over its QMP socket; guest RAM is
 *                           read from the memory-backend file when the VM has one,
 *                           otherwise through /proc/PID/mem (addresses from gpa2hva)
 *   dump:/path/to/core      an ELF core from QMP dump-guest-memory (vms_vm_dump()),
 *                           with the vCPU registers QEMU noted in it
 *   raw:/path/to/file       a raw physical-memory image, guest-physical 0 at offset 0
 *   libvirt:DOMAIN          a running libvirt domain on this host, through libvirt's
 *                           monitor passthrough or the domain's second QMP monitor
 *                           (vmscope/libvirt.h); RAM as for qmp:
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
	/* libvirt:DOMAIN targets: the URI (NULL: $LIBVIRT_DEFAULT_URI, else qemu:///system) */
	const char *libvirt_uri;
	int libvirt_monitor; /* enum vms_libvirt_monitor (vmscope/libvirt.h) */
	/*
	 * The VM's name in the events it gives (trace, polling, capture,
	 * fswatch): what a daemon calls it. NULL: QEMU's -name.
	 */
	const char *name;
};

int vms_vm_new(struct vms_vm **ret_vm);
/* Stops using the VM (the VM itself keeps running); NULL is allowed. */
void vms_vm_free(struct vms_vm *vm);

int vms_vm_attach(struct vms_vm *vm, const char *target, const struct vms_attach_opts *opts);

/* The last error on this handle as a sentence, or "" when there was none. */
const char *vms_last_error(const struct vms_vm *vm);

/*
 * NULL if the last view (vms_os_processes, ...) read everything it looked
 * at; else one sentence saying what it left out. Guest lists can be broken
 * or absurdly long: a view then returns what it could read (0, with its
 * results) and says so here, and fails only when its anchor is unreadable.
 */
const char *vms_view_warning(const struct vms_vm *vm);

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
/* The name events carry: the one attach was given, else QEMU's -name; "" when neither. */
void vms_vm_event_name(struct vms_vm *vm, char *buf, size_t len);

/*
 * Copy len bytes of guest-physical memory at gpa into buf. A range that is not
 * wholly inside guest RAM fails with -EFAULT and copies nothing.
 */
int vms_phys_read(struct vms_vm *vm, uint64_t gpa, void *buf, size_t len);

/*
 * Consistency: vms_vm_pause() stops a live VM (QMP stop) so that several reads
 * see one instant; vms_vm_resume() lets it run again, but only if this handle
 * stopped it. Calls nest. Reading does not pause unless asked to. Both are
 * no-ops for dumps and images.
 */
int vms_vm_pause(struct vms_vm *vm);
int vms_vm_resume(struct vms_vm *vm);

/*
 * Write an ELF core of the live VM to path (QMP dump-guest-memory through a
 * file descriptor we pass, so QEMU needs no access to path). The core holds
 * all guest RAM and every vCPU's registers, including EFER in a note of
 * vmscope's own; attach to it later as dump:PATH.
 */
int vms_vm_dump(struct vms_vm *vm, const char *path);

#ifdef __cplusplus
}
#endif
#endif
