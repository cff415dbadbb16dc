// SPDX-License-Identifier: MIT
/*
 * The VM handle: parses a target, opens the way in (QMP + RAM, or an image)
 * and answers what the VMM knows of the VM.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmscope/libvirt.h>
#include <vmscope/mem.h>
#include <vmscope/vcpu.h>

#include "access/dump.h"
#include "access/libvirt.h"
#include "access/qmp.h"
#include "access/ram.h"
#include "access/regs.h"
#include "core/internal.h"

int vms_vm_new(struct vms_vm **ret_vm)
{
	struct vms_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return -ENOMEM;
	mem_map_init(&vm->mem);
	vm->timeout_ms = 5000;
	vm->resumes = &vm->no_resumes;
	*ret_vm = vm;
	return 0;
}

void vms_vm_free(struct vms_vm *vm)
{
	if (!vm)
		return;
	if (vm->paused_by_us)
		qmp_execute(vm->qmp, "cont", NULL, NULL); /* never leave a VM stopped */
	if (vm->os_state_free)
		vm->os_state_free(vm->os_state);
	if (vm->monitor_state_free)
		vm->monitor_state_free(vm->monitor_state);
	qmp_close(vm->qmp);
	elfcore_release(&vm->core);
	mem_map_release(&vm->mem);
	free(vm);
}

/* With vm->qmp connected: its events, and guest RAM. */
static int attach_monitor(struct vms_vm *vm)
{
	vm->resumes = qmp_resumes(vm->qmp);
	vm->resumes_seen = *vm->resumes;
	return ram_attach_qemu(vm);
}

static int attach_qmp(struct vms_vm *vm, const char *path)
{
	int err;

	err = qmp_connect(path, vm->timeout_ms, &vm->qmp, vm->error, sizeof(vm->error));
	if (err)
		return err;
	return attach_monitor(vm);
}

/* Whether opts (sized by its sz) reaches field. */
#define OPTS_HAS(opts, field)                                                                      \
	((opts) && (opts)->sz >= offsetof(struct vms_attach_opts, field) + sizeof((opts)->field))

static int attach_libvirt(struct vms_vm *vm, const char *domain, const struct vms_attach_opts *opts)
{
	const char *uri = OPTS_HAS(opts, libvirt_uri) ? opts->libvirt_uri : NULL;
	int mode = OPTS_HAS(opts, libvirt_monitor) ? opts->libvirt_monitor : 0;
	int err;

	if (mode < VMS_LIBVIRT_MONITOR_AUTO || mode > VMS_LIBVIRT_MONITOR_SECOND)
		return vm_error(vm, -EINVAL, "unknown libvirt monitor mode %d", mode);
	err = qmp_connect_libvirt(uri, domain, mode, vm->timeout_ms, &vm->qmp, vm->error,
				  sizeof(vm->error));
	if (err)
		return err;
	vm->via_libvirt = 1;
	return attach_monitor(vm);
}

int vms_vm_attach(struct vms_vm *vm, const char *target, const struct vms_attach_opts *opts)
{
	const char *colon = target ? strchr(target, ':') : NULL;
	int err;

	if (vm->qmp || vm->mem.nr_segs)
		return vm_error(vm, -EBUSY, "this handle is already attached");
	if (OPTS_HAS(opts, timeout_ms) && opts->timeout_ms > 0)
		vm->timeout_ms = opts->timeout_ms;
	if (OPTS_HAS(opts, name) && opts->name) {
		if (strlen(opts->name) >= sizeof(vm->name))
			return vm_error(vm, -EINVAL, "the name is longer than %d bytes",
					VMS_NAME_MAX - 1);
		snprintf(vm->name, sizeof(vm->name), "%s", opts->name);
	}
	if (!colon || !colon[1])
		return vm_error(vm, -EINVAL,
				"bad target \"%s\": expected qmp:SOCKET, libvirt:DOMAIN, "
				"dump:FILE or raw:FILE",
				target ? target : "");
	if (!strncmp(target, "qmp:", 4))
		err = attach_qmp(vm, colon + 1);
	else if (!strncmp(target, "libvirt:", 8))
		err = attach_libvirt(vm, colon + 1, opts);
	else if (!strncmp(target, "dump:", 5))
		err = dump_attach(vm, colon + 1);
	else if (!strncmp(target, "raw:", 4))
		err = raw_attach(vm, colon + 1);
	else
		return vm_error(
			vm, -EINVAL,
			"unknown target type \"%.*s\": expected qmp:, libvirt:, dump: or raw:",
			(int)(colon - target), target);
	if (err) {
		qmp_close(vm->qmp);
		vm->qmp = NULL;
		vm->resumes = &vm->no_resumes;
		elfcore_release(&vm->core);
		vm->has_core = 0;
		vm->via_libvirt = 0;
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

void vms_vm_event_name(struct vms_vm *vm, char *buf, size_t len)
{
	struct vms_vm_info info;

	if (vm->name[0])
		snprintf(buf, len, "%s", vm->name);
	else if (!vms_vm_query_info(vm, &info))
		snprintf(buf, len, "%s", info.name);
	else if (len)
		buf[0] = 0;
}

int vms_vm_query_info(struct vms_vm *vm, struct vms_vm_info *ret_info)
{
	struct vms_vm_info info = { .vcpus = -1, .qemu_pid = -1 };
	int err;

	if (!vm->qmp && !vm->mem.nr_segs)
		return vm_error(vm, -ENOTCONN, "not attached to a VM");
	if (!vm->qmp) {
		snprintf(info.state, sizeof(info.state), vm->has_core ? "dump" : "image");
		info.ram_bytes = mem_map_total(&vm->mem);
		if (vm->has_core)
			info.vcpus = vm->core.nr_regs;
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

int vm_lend_to_qemu(struct vms_vm *vm, const char *path)
{
	int pid = vm->qmp ? qmp_peer_pid(vm->qmp) : -1;
	char proc[32];
	struct stat st;

	snprintf(proc, sizeof(proc), "/proc/%d", pid);
	if (pid <= 0 || stat(proc, &st) || st.st_uid == geteuid())
		return 0;
	if (chown(path, st.st_uid, st.st_gid))
		return vm_error(vm, -errno, "QEMU runs as uid %u: cannot give it %s: %s",
				(unsigned int)st.st_uid, path, strerror(errno));
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

int vms_vm_pause(struct vms_vm *vm)
{
	json_t *status = NULL;
	int running, err;

	if (!vm->qmp || vm->pause_depth++)
		return 0;
	err = qmp_execute(vm->qmp, "query-status", NULL, &status);
	running = json_is_true(json_object_get(status, "running"));
	json_decref(status);
	if (!err && running)
		err = qmp_execute(vm->qmp, "stop", NULL, NULL);
	if (err) {
		vm->pause_depth--;
		return vm_error(vm, err, "cannot pause the VM: %s", qmp_error(vm->qmp));
	}
	vm->paused_by_us = running;
	return 0;
}

int vms_vm_resume(struct vms_vm *vm)
{
	int err = 0;

	if (!vm->qmp || !vm->pause_depth || --vm->pause_depth)
		return 0;
	if (vm->paused_by_us)
		err = qmp_execute(vm->qmp, "cont", NULL, NULL);
	vm->paused_by_us = 0;
	vms_vm_flush_caches(vm);
	if (err)
		return vm_error(vm, err, "cannot resume the VM: %s", qmp_error(vm->qmp));
	return 0;
}

static int get_regs(struct vms_vm *vm, int with_kernel_gs_base, struct vms_vcpu_regs **ret_regs,
		    int *ret_count)
{
	struct vms_vcpu_regs *copy;

	if (vm->qmp)
		return regs_read_live(vm, with_kernel_gs_base, ret_regs, ret_count);
	if (!vm->has_core || !vm->core.nr_regs)
		return vm_error(vm, -ENODATA, "this target holds no vCPU state (raw image)");
	copy = malloc((size_t)vm->core.nr_regs * sizeof(*copy));
	if (!copy)
		return vm_error(vm, -ENOMEM, "out of memory");
	memcpy(copy, vm->core.regs, (size_t)vm->core.nr_regs * sizeof(*copy));
	*ret_regs = copy;
	*ret_count = vm->core.nr_regs;
	return 0;
}

int vms_vcpu_get_regs(struct vms_vm *vm, struct vms_vcpu_regs **ret_regs, int *ret_count)
{
	return get_regs(vm, 1, ret_regs, ret_count);
}

int vms_vcpu_get_cr3(struct vms_vm *vm, int vcpu, uint64_t *ret_cr3)
{
	struct vms_vcpu_regs *regs;
	int count, err = get_regs(vm, 0, &regs, &count);

	if (err)
		return err;
	if (vcpu < 0 || vcpu >= count)
		err = vm_error(vm, -ENOENT, "no vCPU %d: the VM has %d", vcpu, count);
	else
		*ret_cr3 = regs[vcpu].cr3;
	free(regs);
	return err;
}
