// SPDX-License-Identifier: MIT
/*
 * The last error of a handle, kept as a sentence for the caller to print; and
 * the last view's warning, when it returned only part of what the guest has
 * (a broken link, a budget reached).
 */
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

void view_begin(struct vms_vm *vm)
{
	vm->view_warning[0] = '\0';
}

void view_partial(struct vms_vm *vm, const char *fmt, ...)
{
	va_list ap;

	if (vm->view_warning[0])
		return; /* the first cause is the one to tell */
	va_start(ap, fmt);
	vsnprintf(vm->view_warning, sizeof(vm->view_warning), fmt, ap);
	va_end(ap);
}

const char *vms_view_warning(const struct vms_vm *vm)
{
	return vm && vm->view_warning[0] ? vm->view_warning : NULL;
}
