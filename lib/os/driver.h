/* SPDX-License-Identifier: MIT */
#ifndef VMSCOPE_OS_DRIVER_H
#define VMSCOPE_OS_DRIVER_H

#include <vmscope/os.h>

struct os_driver {
	const char *name;
	/* 0 and *ret filled when the guest runs this OS; -ENOENT when it does not. */
	int (*identify)(struct vms_vm *vm, struct vms_os_ident *ret);
};

extern const struct os_driver linux_driver;

#endif
