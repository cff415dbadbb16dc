// SPDX-License-Identifier: MIT
/*
 * Guest RAM of a live QEMU.
 *
 * Which guest-physical ranges are RAM, and where each lies inside which memory
 * backend, comes from QEMU's flat memory view (HMP "info mtree -f"): every
 * line of the "system" view whose region is a memory backend (query-memdev)
 * is a segment, "@offset" being its place inside the backend. Below-4G and
 * above-4G RAM, the PAM holes and hot-plugged DIMMs all come out of that one
 * table.
 *
 * Each backend is then read one of two ways: a memory-backend-file (e.g. in
 * /dev/shm) is mapped read-only and read zero copy where the guest has memory
 * (ramfile.c: holes are read without allocating them); any other backend is read from
 * QEMU's /proc/PID/mem at the host address HMP "gpa2hva" reports, which needs
 * nothing from how the VM was started (libvirt, no shared memory).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access/qmp.h"
#include "access/ram.h"
#include "access/ramfile.h"
#include "core/internal.h"

#define MAX_MEMDEVS    64
#define MAX_RAM_RANGES 1024

struct memdev {
	char id[128];
	uint64_t size;
	char *mem_path;		/* NULL unless a memory-backend-file */
	struct ram_file *file;	/* the opened file, or NULL */
	uint64_t hva_base;   /* QEMU's address of offset 0, when host is NULL */
	int has_ranges;
};

struct ram_range {
	uint64_t gpa, size, offset;
	struct memdev *dev;
};

struct ram_probe {
	struct memdev devs[MAX_MEMDEVS];
	size_t nr_devs;
	struct ram_range ranges[MAX_RAM_RANGES];
	size_t nr_ranges;
	char file_error[256]; /* why a backend file could not be mapped */
};

static int qmp_fail(struct vms_vm *vm, int err)
{
	return vm_error(vm, err, "%s", qmp_error(vm->qmp));
}

static char *query_mem_path(struct vms_vm *vm, const char *id)
{
	char path[192];
	json_t *ret = NULL;
	char *mem_path = NULL;

	snprintf(path, sizeof(path), "/objects/%s", id);
	/* Only memory-backend-file has the property; an error just means "not a file". */
	if (qmp_execute(vm->qmp, "qom-get",
			json_pack("{s:s,s:s}", "path", path, "property", "mem-path"), &ret))
		return NULL;
	if (json_is_string(ret) && json_string_length(ret) > 0)
		mem_path = strdup(json_string_value(ret));
	json_decref(ret);
	return mem_path;
}

static int list_memdevs(struct vms_vm *vm, struct ram_probe *probe)
{
	json_t *list = NULL, *entry;
	size_t i;
	int err;

	err = qmp_execute(vm->qmp, "query-memdev", NULL, &list);
	if (err)
		return qmp_fail(vm, err);
	json_array_foreach(list, i, entry) {
		const char *id = json_string_value(json_object_get(entry, "id"));
		struct memdev *dev;

		if (!id || probe->nr_devs == MAX_MEMDEVS)
			continue;
		dev = &probe->devs[probe->nr_devs++];
		snprintf(dev->id, sizeof(dev->id), "%s", id);
		dev->size = (uint64_t)json_integer_value(json_object_get(entry, "size"));
		dev->mem_path = query_mem_path(vm, id);
	}
	json_decref(list);
	if (!probe->nr_devs)
		return vm_error(vm, -ENODEV, "QEMU reports no memory backend (query-memdev)");
	return 0;
}

static struct memdev *find_memdev(struct ram_probe *probe, const char *id)
{
	for (size_t i = 0; i < probe->nr_devs; i++)
		if (!strcmp(probe->devs[i].id, id))
			return &probe->devs[i];
	return NULL;
}

/*
 * One line of a flat view:
 *   "  0000000000100000-000000000fffffff (prio 0, ram): pc.ram @0000000000100000 KVM"
 */
static void parse_range_line(struct ram_probe *probe, const char *line)
{
	uint64_t first, last, offset = 0;
	char kind[8], name[128], at[32];
	struct ram_range *r;
	struct memdev *dev;
	int prio, n;

	n = sscanf(line, " %" SCNx64 "-%" SCNx64 " (prio %d, %7[a-z]): %127s %31s", &first, &last,
		   &prio, kind, name, at);
	if (n < 5 || (strcmp(kind, "ram") && strcmp(kind, "rom")) || last < first)
		return;
	dev = find_memdev(probe, name);
	if (!dev)
		return;
	if (n == 6 && at[0] == '@' && sscanf(at + 1, "%" SCNx64, &offset) != 1)
		return;
	if (offset > dev->size || last - first + 1 > dev->size - offset)
		return;
	for (size_t i = 0; i < probe->nr_ranges; i++)
		if (probe->ranges[i].gpa == first)
			return; /* the same range seen through another address space */
	if (probe->nr_ranges == MAX_RAM_RANGES)
		return;
	r = &probe->ranges[probe->nr_ranges++];
	*r = (struct ram_range){ first, last - first + 1, offset, dev };
	dev->has_ranges = 1;
}

static int read_ram_ranges(struct vms_vm *vm, struct ram_probe *probe)
{
	_cleanup_free_ char *mtree = NULL;
	char *line, *save = NULL;
	int in_system = 0, err;

	err = qmp_hmp(vm->qmp, "info mtree -f", &mtree);
	if (err)
		return qmp_fail(vm, err);
	for (line = strtok_r(mtree, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (!strncmp(line, "FlatView", 8))
			in_system = 0;
		else if (strstr(line, "Root memory region: system"))
			in_system = 1;
		else if (in_system)
			parse_range_line(probe, line);
	}
	if (!probe->nr_ranges)
		return vm_error(vm, -ENODEV, "no guest RAM in QEMU's memory map (info mtree -f)");
	return 0;
}

/* Open a memory-backend-file; on failure note why and leave file NULL. */
static void open_backend_file(struct vms_vm *vm, struct ram_probe *probe, struct memdev *dev)
{
	struct ram_file *file;

	if (ram_file_open(dev->mem_path, dev->size, &file, probe->file_error,
			  sizeof(probe->file_error)))
		return;
	if (mem_map_add_file(&vm->mem, file))
		return;
	dev->file = file;
}

static int open_proc_mem(struct vms_vm *vm, struct ram_probe *probe)
{
	int pid = qmp_peer_pid(vm->qmp);
	char path[64];

	if (vm->mem.proc_mem_fd >= 0)
		return 0;
	if (pid <= 0)
		return vm_error(vm, -ESRCH, "cannot read guest RAM: %s%sQEMU's pid is unknown",
				probe->file_error, probe->file_error[0] ? "; " : "");
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	vm->mem.proc_mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (vm->mem.proc_mem_fd < 0) {
		int err = -errno;

		return vm_error(vm, err, "cannot read guest RAM: %s%s%s: %s", probe->file_error,
				probe->file_error[0] ? "; " : "", path, strerror(-err));
	}
	return 0;
}

/* "Host virtual address for 0x100000 (pc.ram) is 0x7f0bb3f00000" */
static int locate_in_qemu(struct vms_vm *vm, struct memdev *dev, const struct ram_range *r)
{
	_cleanup_free_ char *answer = NULL;
	char command[64];
	const char *is;
	uint64_t hva;
	int err;

	snprintf(command, sizeof(command), "gpa2hva 0x%" PRIx64, r->gpa);
	err = qmp_hmp(vm->qmp, command, &answer);
	if (err)
		return qmp_fail(vm, err);
	is = strstr(answer, " is 0x");
	if (!is || sscanf(is + 4, "%" SCNx64, &hva) != 1 || hva < r->offset)
		return vm_error(vm, -EPROTO, "HMP %s: unexpected answer \"%.60s\"", command,
				answer);
	dev->hva_base = hva - r->offset;
	return 0;
}

static int place_backends(struct vms_vm *vm, struct ram_probe *probe)
{
	for (size_t i = 0; i < probe->nr_devs; i++) {
		struct memdev *dev = &probe->devs[i];
		int err;

		if (!dev->has_ranges)
			continue;
		if (dev->mem_path)
			open_backend_file(vm, probe, dev);
		if (dev->file)
			continue;
		err = open_proc_mem(vm, probe);
		for (size_t j = 0; !err && j < probe->nr_ranges; j++)
			if (probe->ranges[j].dev == dev) {
				err = locate_in_qemu(vm, dev, &probe->ranges[j]);
				break;
			}
		if (err)
			return err;
	}
	return 0;
}

static int add_segments(struct vms_vm *vm, struct ram_probe *probe)
{
	for (size_t i = 0; i < probe->nr_ranges; i++) {
		const struct ram_range *r = &probe->ranges[i];
		struct mem_segment seg = { .gpa = r->gpa, .size = r->size };
		int err;

		if (r->dev->file) {
			seg.file = r->dev->file;
			seg.file_offset = r->offset;
		} else {
			seg.hva = r->dev->hva_base + r->offset;
		}
		err = mem_map_add(&vm->mem, &seg);
		if (err)
			return vm_error(vm, err,
					"QEMU's memory map has overlapping RAM at 0x%" PRIx64,
					r->gpa);
	}
	return 0;
}

/* A first read proves the way in works before any view relies on it. */
static int check_readable(struct vms_vm *vm)
{
	uint8_t byte;
	int err = mem_map_read(&vm->mem, vm->mem.segs[0].gpa, &byte, 1);

	if (err)
		return vm_error(vm, err, "cannot read guest RAM at 0x%" PRIx64 ": %s",
				vm->mem.segs[0].gpa, strerror(-err));
	return 0;
}

int ram_attach_qemu(struct vms_vm *vm)
{
	struct ram_probe *probe = calloc(1, sizeof(*probe));
	int err;

	if (!probe)
		return vm_error(vm, -ENOMEM, "out of memory");
	err = list_memdevs(vm, probe);
	if (!err)
		err = read_ram_ranges(vm, probe);
	if (!err)
		err = place_backends(vm, probe);
	if (!err)
		err = add_segments(vm, probe);
	if (!err)
		err = check_readable(vm);
	for (size_t i = 0; i < probe->nr_devs; i++)
		free(probe->devs[i].mem_path);
	free(probe);
	return err;
}
