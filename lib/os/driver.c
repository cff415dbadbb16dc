// SPDX-License-Identifier: MIT
/*
 * The registry of OS drivers. Identification asks each in turn; the first that
 * recognises the guest wins. A new driver is one file plus one line here.
 */
#include <errno.h>

#include "core/internal.h"
#include "os/driver.h"

static const struct os_driver *const drivers[] = {
	&linux_driver,
};

int vms_os_identify(struct vms_vm *vm, struct vms_os_ident *ret_ident)
{
	if (!vm->mem.nr_segs)
		return vm_error(vm, -ENOTCONN, "not attached to a VM");
	for (size_t i = 0; i < ARRAY_SIZE(drivers); i++) {
		int err = drivers[i]->identify(vm, ret_ident);

		if (err != -ENOENT)
			return err;
	}
	return vm_error(vm, -ENOENT, "no known operating system found in guest RAM");
}
