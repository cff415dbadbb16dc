// SPDX-License-Identifier: MIT
/* The last error of a handle, kept as a sentence for the caller to print. */
#include <stdarg.h>
#include <stdio.h>

#include "core/internal.h"

int vm_error(struct vms_vm *vm, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->error, sizeof(vm->error), fmt, ap);
	va_end(ap);
	return err;
}

const char *vms_last_error(const struct vms_vm *vm)
{
	return vm ? vm->error : "no VM handle";
}
