// SPDX-License-Identifier: MIT
/*
 * A raw physical-memory image: the file's byte N is guest-physical address N.
 * Mapped read-only; the file is never written.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "access/ram.h"
#include "core/internal.h"

int raw_attach(struct vms_vm *vm, const char *path)
{
	_cleanup_close_ int fd = -1;
	struct mem_segment seg = { 0 };
	struct stat st;
	void *addr;
	int err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st))
		return vm_error(vm, -errno, "cannot open memory image %s: %s", path,
				strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return vm_error(vm, -EINVAL, "memory image %s is not a non-empty regular file",
				path);
	addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (addr == MAP_FAILED)
		return vm_error(vm, -errno, "cannot map memory image %s: %s", path,
				strerror(errno));
	err = mem_map_add_mapping(&vm->mem, addr, (size_t)st.st_size);
	if (err) {
		munmap(addr, (size_t)st.st_size);
		return vm_error(vm, err, "out of memory");
	}
	seg.host = addr;
	seg.size = (uint64_t)st.st_size;
	err = mem_map_add(&vm->mem, &seg);
	if (err)
		return vm_error(vm, err, "cannot add memory image %s", path);
	return 0;
}
