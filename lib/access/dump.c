// SPDX-License-Identifier: MIT
/*
 * ELF cores: attaching to one (dump:PATH) and writing one from a live VM.
 *
 * Writing: the VM is paused so that registers and RAM are one instant; QEMU
 * writes the core into a file descriptor we pass it (it needs no access to
 * the path); then we append a note segment of our own carrying what QEMU's
 * notes lack (EFER). The ELF header may point its program header table
 * anywhere, so we append a new table (the old entries plus one PT_NOTE) after
 * our notes and repoint the header: nothing QEMU wrote moves.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access/dump.h"
#include "core/util.h"
#include "access/elfcore.h"
#include "access/qmp.h"
#include "access/regs.h"
#include "core/internal.h"

#define DUMP_FD_NAME	    "vmscope-dump"
#define DUMP_POLL_MS	    20
#define DUMP_STALL_LIMIT_MS 60000

int dump_attach(struct vms_vm *vm, const char *path)
{
	_cleanup_close_ int fd = -1;
	char why[256];
	struct stat st;
	void *file;
	int err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st))
		return vm_error(vm, -errno, "cannot open dump %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return vm_error(vm, -EINVAL, "dump %s is not a non-empty regular file", path);
	file = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		return vm_error(vm, -errno, "cannot map dump %s: %s", path, strerror(errno));
	err = mem_map_add_mapping(&vm->mem, file, (size_t)st.st_size);
	if (err) {
		munmap(file, (size_t)st.st_size);
		return vm_error(vm, err, "out of memory");
	}
	err = elfcore_parse(&vm->core, file, (size_t)st.st_size, &vm->mem, why, sizeof(why));
	if (err)
		return vm_error(vm, err, "dump %s: %s", path, why);
	if (!vm->mem.nr_segs)
		return vm_error(vm, -ENODATA, "dump %s holds no memory", path);
	vm->has_core = 1;
	return 0;
}

/* Poll query-dump until QEMU is done; fail if it stops making progress. */
static int wait_for_dump(struct vms_vm *vm)
{
	long long last_change = monotonic_ms();
	json_int_t last_completed = -1;

	for (;;) {
		json_t *ret = NULL;
		const char *status;
		json_int_t completed;
		int err = qmp_execute(vm->qmp, "query-dump", NULL, &ret);

		if (err)
			return vm_error(vm, err, "%s", qmp_error(vm->qmp));
		status = json_string_value(json_object_get(ret, "status"));
		completed = json_integer_value(json_object_get(ret, "completed"));
		err = !status ? -EPROTO : !strcmp(status, "completed") ? 1
					 : !strcmp(status, "failed")  ? -EIO
								      : 0;
		json_decref(ret);
		if (err == 1)
			return 0;
		if (err)
			return vm_error(vm, err, "QEMU could not write the dump");
		if (completed != last_completed) {
			last_completed = completed;
			last_change = monotonic_ms();
		} else if (monotonic_ms() - last_change > DUMP_STALL_LIMIT_MS) {
			return vm_error(vm, -ETIMEDOUT, "the dump made no progress for %d s",
					DUMP_STALL_LIMIT_MS / 1000);
		}
		usleep(DUMP_POLL_MS * 1000);
	}
}

static int qemu_dump_to_fd(struct vms_vm *vm, int fd)
{
	int err = qmp_pass_fd(vm->qmp, DUMP_FD_NAME, fd);

	if (!err)
		err = qmp_execute(vm->qmp, "dump-guest-memory",
				  json_pack("{s:b,s:s,s:b}", "paging", 0, "protocol",
					    "fd:" DUMP_FD_NAME, "detach", 1),
				  NULL);
	if (err)
		return vm_error(vm, err, "%s", qmp_error(vm->qmp));
	return wait_for_dump(vm);
}

/* 36 bytes, no padding: header, "VMSCOPE\0" (4-aligned already), descriptor. */
struct efer_note {
	Elf64_Nhdr nh;
	char name[8];
	uint8_t desc[16]; /* u32 vCPU index, u32 reserved, u64 EFER */
};

static int write_all_at(int fd, const void *buf, size_t len, off_t offset)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		offset += n;
	}
	return 0;
}

_Static_assert(sizeof(struct efer_note) == 36, "ELF notes must not be padded");

static int append_efer_notes(int fd, const struct vms_vcpu_regs *regs, int count)
{
	_cleanup_free_ struct efer_note *notes = calloc((size_t)count, sizeof(*notes));
	_cleanup_free_ Elf64_Phdr *phdrs = NULL;
	Elf64_Ehdr eh;
	off_t end, notes_at, phdrs_at;
	int err;

	if (!notes)
		return -ENOMEM;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || eh.e_phnum >= PN_XNUM - 1)
		return -EINVAL; /* extended numbering: leave QEMU's file as it is */
	phdrs = calloc(eh.e_phnum + 1u, sizeof(*phdrs));
	if (!phdrs)
		return -ENOMEM;
	if (pread(fd, phdrs, eh.e_phnum * sizeof(*phdrs), (off_t)eh.e_phoff) !=
	    (ssize_t)(eh.e_phnum * sizeof(*phdrs)))
		return -EIO;
	for (int i = 0; i < count; i++) {
		notes[i].nh = (Elf64_Nhdr){ sizeof(VMSCOPE_NOTE_NAME), 16, VMSCOPE_NOTE_EFER };
		memcpy(notes[i].name, VMSCOPE_NOTE_NAME, sizeof(VMSCOPE_NOTE_NAME));
		memcpy(notes[i].desc, &(uint32_t){ (uint32_t)regs[i].index }, 4);
		memcpy(notes[i].desc + 8, &regs[i].efer, 8);
	}
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	notes_at = (end + 7) & ~(off_t)7;
	phdrs_at = notes_at + (off_t)(count * sizeof(*notes));
	phdrs[eh.e_phnum] = (Elf64_Phdr){ .p_type = PT_NOTE,
					  .p_offset = (Elf64_Off)notes_at,
					  .p_filesz = count * sizeof(*notes),
					  .p_align = 4 };
	eh.e_phoff = (Elf64_Off)phdrs_at;
	eh.e_phnum++;
	err = write_all_at(fd, notes, count * sizeof(*notes), notes_at);
	if (!err)
		err = write_all_at(fd, phdrs, eh.e_phnum * sizeof(*phdrs), phdrs_at);
	if (!err)
		err = write_all_at(fd, &eh, sizeof(eh), 0);
	return err;
}

static int dump_paused(struct vms_vm *vm, int fd, const char *path)
{
	struct vms_vcpu_regs *regs = NULL;
	int count = 0, err;

	err = regs_read_live(vm, 0, &regs, &count);
	if (!err)
		err = qemu_dump_to_fd(vm, fd);
	if (!err && append_efer_notes(fd, regs, count))
		err = vm_error(vm, -EIO, "cannot add register notes to %s", path);
	free(regs);
	return err;
}

int vms_vm_dump(struct vms_vm *vm, const char *path)
{
	_cleanup_close_ int fd = -1;
	int err, resume_err;

	if (!vm->qmp)
		return vm_error(vm, -EOPNOTSUPP, "only a live VM (qmp:) can be dumped");
	if (vm->via_libvirt)
		return vm_error(vm, -EOPNOTSUPP, LIBVIRT_DUMP_REFUSAL);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return vm_error(vm, -errno, "cannot create %s: %s", path, strerror(errno));
	err = vms_vm_pause(vm);
	if (err)
		return err;
	err = dump_paused(vm, fd, path);
	resume_err = vms_vm_resume(vm);
	if (!err && fsync(fd))
		err = vm_error(vm, -errno, "cannot write %s: %s", path, strerror(errno));
	if (err)
		unlink(path);
	return err ? err : resume_err;
}
