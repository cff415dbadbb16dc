/* SPDX-License-Identifier: MIT */
/*
 * vmscope: what operating system runs inside the VM.
 *
 * Identification reads guest RAM only; nothing runs in the guest.
 */
#ifndef VMSCOPE_OS_H
#define VMSCOPE_OS_H

#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMS_BANNER_MAX 512

struct vms_os_ident {
	char os[16];		     /* "linux" */
	char release[65];	     /* e.g. "6.1.0-56-cloud-amd64" */
	char banner[VMS_BANNER_MAX]; /* the kernel's banner, without its newline */
	uint64_t banner_gpa;	     /* where the banner was read */
};

/*
 * Find the kernel's banner in guest RAM. Returns -ENOENT when no banner is
 * found (no Linux kernel, or not booted yet).
 */
int vms_os_identify(struct vms_vm *vm, struct vms_os_ident *ret_ident);

#ifdef __cplusplus
}
#endif
#endif
