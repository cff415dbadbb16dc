/* SPDX-License-Identifier: MIT */
/*
 * Library-internal declarations shared across subsystems. Nothing here is
 * exported (the version script exports vms_* only).
 */
#ifndef VMSCOPE_INTERNAL_H
#define VMSCOPE_INTERNAL_H

#include <stdlib.h>
#include <unistd.h>

#include <vmscope/vm.h>

#include "access/elfcore.h"
#include "access/mem.h"
#include "arch/tlb.h"

#define VMS_ERROR_MAX 512

struct qmp;

/*
 * libvirt 9.0's libvirtd dies at the DUMP_COMPLETED event of a dump it did
 * not start itself, sent through its passthrough or a second monitor alike
 * (tested: test_libvirt). So no dump-guest-memory goes to a libvirt domain.
 */
#define LIBVIRT_DUMP_REFUSAL                                                                       \
	"dump-guest-memory is not sent to a libvirt domain's QEMU: libvirtd 9.0 dies of a dump "   \
	"it did not start; use virsh dump --memory-only (docs/libvirt.md)"

struct vms_vm {
	char error[VMS_ERROR_MAX];
	char view_warning[VMS_ERROR_MAX]; /* empty: the last view was read whole */
	int timeout_ms;
	struct qmp *qmp;     /* NULL unless the target is a live QEMU */
	struct mem_map mem;  /* guest-physical memory, every target has one */
	struct elfcore core; /* vCPU state of a dump: target */
	int has_core;
	int via_libvirt;     /* a libvirt:DOMAIN target: no dump-guest-memory */
	char name[VMS_NAME_MAX]; /* the attach options' name for events; "" none */
	int paging_levels;   /* set by the user; 0: detect */
	int detected_levels; /* 0 until detected */
	struct tlb tlb;
	const unsigned long *resumes; /* qmp_resumes(), or a counter that never moves */
	unsigned long resumes_seen;   /* *resumes when the caches were last valid */
	unsigned long no_resumes;
	int pause_depth;
	int paused_by_us;
	void *os_state; /* what the OS driver learned (os/linux: struct linux_kernel) */
	void (*os_state_free)(void *os_state);
	void *monitor_state; /* what host sampling keeps between samples (monitor/host.c) */
	void (*monitor_state_free)(void *monitor_state);
};

/*
 * Forget cached translations only, keeping what is known of which RAM pages
 * exist: for many short stops in a row (a page the guest fills meanwhile is
 * still read right, through pread()).
 */
void vm_flush_translations(struct vms_vm *vm);

/* A view starts whole; view_partial() says what it left out (printf-style). */
void view_begin(struct vms_vm *vm);
void view_partial(struct vms_vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Record a sentence about the failure on the handle and return err (a negative
 * errno), so callers can write: return vm_error(vm, -EIO, "...", ...);
 */
int vm_error(struct vms_vm *vm, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Cleanup helpers, as in systemd and drgn. */
static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define _cleanup_free_	__attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* Hand a cleanup-managed pointer out: the local no longer owns it. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _taken_ = (p);                                                       \
		(p) = NULL;                                                                        \
		_taken_;                                                                           \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * QEMU makes or reaches sockets in vmscope's private directories (the
 * gdbstub's, NBD's): one run as another user (libvirt's libvirt-qemu) is
 * given path (the directory, or a socket vmscope listens on). Root reaches
 * it still. 0, or the error set.
 */
int vm_lend_to_qemu(struct vms_vm *vm, const char *path);

#endif
