// SPDX-License-Identifier: MIT
/*
 * The VM handle: parses a target, opens the way in (QMP + RAM, or an image)
 * and answers what the VMM knows of the VM.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "access/qmp.h"
#include "access/ram.h"
#include "core/internal.h"

int vms_vm_new(struct vms_vm **ret_vm)
{
	struct vms_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return -ENOMEM;
	mem_map_init(&vm->mem);
	vm->timeout_ms = 5000;
	*ret_vm = vm;
	return 0;
}

void vms_vm_free(struct vms_vm *vm)
{
	if (!vm)
		return;
	qmp_close(vm->qmp);
	mem_map_release(&vm->mem);
	free(vm);
}

static int attach_qmp(struct vms_vm *vm, const char *path)
{
	int err;

	err = qmp_connect(path, vm->timeout_ms, &vm->qmp, vm->error, sizeof(vm->error));
	if (err)
		return err;
	return ram_attach_qemu(vm);
}

int vms_vm_attach(struct vms_vm *vm, const char *target, const struct vms_attach_opts *opts)
{
	const char *colon = target ? strchr(target, ':') : NULL;
	int err;

	if (vm->qmp || vm->mem.nr_segs)
		return vm_error(vm, -EBUSY, "this handle is already attached");
	if (opts && opts->sz >= offsetof(struct vms_attach_opts, timeout_ms) + sizeof(int) &&
	    opts->timeout_ms > 0)
		vm->timeout_ms = opts->timeout_ms;
	if (!colon || !colon[1])
		return vm_error(vm, -EINVAL, "bad target \"%s\": expected qmp:SOCKET or raw:FILE",
				target ? target : "");
	if (!strncmp(target, "qmp:", 4))
		err = attach_qmp(vm, colon + 1);
	else if (!strncmp(target, "raw:", 4))
		err = raw_attach(vm, colon + 1);
	else
		return vm_error(vm, -EINVAL, "unknown target type \"%.*s\": expected qmp: or raw:",
				(int)(colon - target), target);
	if (err) {
		qmp_close(vm->qmp);
		vm->qmp = NULL;
		mem_map_release(&vm->mem);
		return err;
	}
	vm->error[0] = '\0';
	return 0;
}

static int query_string(struct vms_vm *vm, const char *command, const char *key, char *buf,
			size_t len)
{
	json_t *ret = NULL;
	const char *value;
	int err;

	err = qmp_execute(vm->qmp, command, NULL, &ret);
	if (err)
		return vm_error(vm, err, "%s", qmp_error(vm->qmp));
	value = json_string_value(json_object_get(ret, key));
	snprintf(buf, len, "%s", value ? value : "");
	json_decref(ret);
	return 0;
}

static int query_vcpus(struct vms_vm *vm, int *ret_vcpus)
{
	json_t *ret = NULL;
	int err;

	err = qmp_execute(vm->qmp, "query-cpus-fast", NULL, &ret);
	if (err)
		return vm_error(vm, err, "%s", qmp_error(vm->qmp));
	*ret_vcpus = json_is_array(ret) ? (int)json_array_size(ret) : -1;
	json_decref(ret);
	return 0;
}

static int query_ram(struct vms_vm *vm, uint64_t *ret_bytes)
{
	json_t *ret = NULL;
	int err;

	err = qmp_execute(vm->qmp, "query-memory-size-summary", NULL, &ret);
	if (err)
		return vm_error(vm, err, "%s", qmp_error(vm->qmp));
	*ret_bytes = (uint64_t)json_integer_value(json_object_get(ret, "base-memory")) +
		     (uint64_t)json_integer_value(json_object_get(ret, "plugged-memory"));
	json_decref(ret);
	return 0;
}

int vms_vm_query_info(struct vms_vm *vm, struct vms_vm_info *ret_info)
{
	struct vms_vm_info info = { .vcpus = -1, .qemu_pid = -1 };
	int err;

	if (!vm->qmp && !vm->mem.nr_segs)
		return vm_error(vm, -ENOTCONN, "not attached to a VM");
	if (!vm->qmp) {
		snprintf(info.state, sizeof(info.state), "image");
		info.ram_bytes = mem_map_total(&vm->mem);
		*ret_info = info;
		return 0;
	}
	err = query_string(vm, "query-name", "name", info.name, sizeof(info.name));
	if (!err)
		err = query_string(vm, "query-status", "status", info.state, sizeof(info.state));
	if (!err)
		err = query_vcpus(vm, &info.vcpus);
	if (!err)
		err = query_ram(vm, &info.ram_bytes);
	if (err)
		return err;
	info.qemu_pid = qmp_peer_pid(vm->qmp);
	*ret_info = info;
	return 0;
}

int vms_phys_read(struct vms_vm *vm, uint64_t gpa, void *buf, size_t len)
{
	int err = mem_map_read(&vm->mem, gpa, buf, len);

	if (err == -EFAULT)
		return vm_error(vm, err, "guest-physical range 0x%llx+%zu is not RAM",
				(unsigned long long)gpa, len);
	if (err)
		return vm_error(vm, err, "cannot read guest RAM at 0x%llx: %s",
				(unsigned long long)gpa, strerror(-err));
	return 0;
}
