// SPDX-License-Identifier: MIT
/*
 * vCPU registers of a live QEMU.
 *
 * HMP "info registers -a" prints every register we need but the kernel GS
 * base, without stopping the VM. Its lines look like
 *     RAX=000000000001ad40 RBX=0000000000000000 ...
 *     R8 =ffffffffffc52e17 ...
 *     GS =0000 ff37f7920f600000 00000000 00000000
 *     CR0=80050033 CR2=000000000909c730 CR3=0000000002888000 CR4=00751eb0
 *     EFER=0000000000000d01
 * The kernel GS base comes from the QEMU notes of a dump-guest-memory limited
 * to one page and written into a memfd we hand to QEMU.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/elfcore.h"
#include "access/qmp.h"
#include "access/regs.h"
#include "core/internal.h"

#define HMP_MAX_VCPUS ELFCORE_MAX_VCPUS

struct reg_name {
	const char *name;
	size_t offset;
};

#define REG(n, field) { n, offsetof(struct vms_vcpu_regs, field) }

static const struct reg_name plain_regs[] = {
	REG("RAX", rax), REG("RBX", rbx), REG("RCX", rcx), REG("RDX", rdx), REG("RSI", rsi),
	REG("RDI", rdi), REG("RBP", rbp), REG("RSP", rsp), REG("R8", r8),   REG("R9", r9),
	REG("R10", r10), REG("R11", r11), REG("R12", r12), REG("R13", r13), REG("R14", r14),
	REG("R15", r15), REG("RIP", rip), REG("RFL", rflags), REG("CR0", cr0), REG("CR2", cr2),
	REG("CR3", cr3), REG("CR4", cr4), REG("EFER", efer),
};

/* "R8 =x" -> "R8=x": one shape for every KEY=VALUE token. */
static void squeeze(char *line)
{
	char *in = line, *out = line;

	for (; *in; in++) {
		if (*in == ' ' && in[1] == '=')
			continue;
		*out++ = *in;
	}
	*out = '\0';
}

static void set_reg(struct vms_vcpu_regs *r, const char *key, uint64_t value)
{
	for (size_t i = 0; i < ARRAY_SIZE(plain_regs); i++) {
		if (strcmp(key, plain_regs[i].name))
			continue;
		memcpy((uint8_t *)r + plain_regs[i].offset, &value, sizeof(value));
		if (!strcmp(key, "EFER"))
			r->flags |= VMS_REGS_EFER;
		return;
	}
	if (!strcmp(key, "CPL"))
		r->cpl = (int)(value & 3);
	else if (!strcmp(key, "HLT") && value)
		r->flags |= VMS_REGS_HALTED;
}

/* "FS=0000 0000000000000000 ..." : selector, then base. */
static int parse_segment(struct vms_vcpu_regs *r, const char *line)
{
	unsigned int selector;
	uint64_t base;
	char seg[3];

	if (sscanf(line, "%2[A-Z]=%x %" SCNx64, seg, &selector, &base) != 3 || line[2] != '=')
		return 0;
	if (!strcmp(seg, "FS"))
		r->fs_base = base;
	else if (!strcmp(seg, "GS"))
		r->gs_base = base;
	else if (!strcmp(seg, "CS"))
		r->cs = (uint16_t)selector;
	else if (!strcmp(seg, "SS"))
		r->ss = (uint16_t)selector;
	else
		return 0;
	return 1;
}

static void parse_line(struct vms_vcpu_regs *r, char *line)
{
	char *save = NULL, *token;

	squeeze(line);
	if (parse_segment(r, line))
		return;
	for (token = strtok_r(line, " \t", &save); token; token = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(token, '='), *end;
		uint64_t value;

		if (!eq || eq == token || !eq[1])
			continue;
		*eq = '\0';
		value = strtoull(eq + 1, &end, 16);
		if (*end == '\0')
			set_reg(r, token, value);
	}
}

int regs_parse_hmp(const char *text, struct vms_vcpu_regs **ret_regs, int *ret_count)
{
	_cleanup_free_ char *copy = strdup(text);
	struct vms_vcpu_regs *regs = NULL, *cur = NULL;
	char *save = NULL, *line;
	int count = 0;

	if (!copy)
		return -ENOMEM;
	for (line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		int index;

		if (sscanf(line, "CPU#%d", &index) == 1) {
			struct vms_vcpu_regs *grown;

			if (count == HMP_MAX_VCPUS || index < 0) {
				free(regs);
				return -E2BIG;
			}
			grown = realloc(regs, (size_t)(count + 1) * sizeof(*regs));
			if (!grown) {
				free(regs);
				return -ENOMEM;
			}
			regs = grown;
			cur = &regs[count++];
			memset(cur, 0, sizeof(*cur));
			cur->index = index;
		} else if (cur) {
			parse_line(cur, line);
		}
	}
	if (!count)
		return -EPROTO;
	*ret_regs = regs;
	*ret_count = count;
	return 0;
}

/* Fill in kernel_gs_base from a one-page dump; quietly leaves it unknown on failure. */
static void add_kernel_gs_base(struct vms_vm *vm, struct vms_vcpu_regs *regs, int count)
{
	_cleanup_close_ int fd = memfd_create("vmscope-regs", MFD_CLOEXEC);
	struct elfcore core;
	struct stat st;
	uint8_t *file;
	char err[128];

	if (vm->via_libvirt || fd < 0 || qmp_pass_fd(vm->qmp, "vmscope-regs", fd))
		return; /* libvirt: LIBVIRT_DUMP_REFUSAL */
	if (qmp_execute(vm->qmp, "dump-guest-memory",
			json_pack("{s:b,s:s,s:I,s:I}", "paging", 0, "protocol", "fd:vmscope-regs",
				  "begin", (json_int_t)vm->mem.segs[0].gpa, "length",
				  (json_int_t)4096),
			NULL))
		return;
	if (fstat(fd, &st) || st.st_size <= 0)
		return;
	file = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		return;
	if (!elfcore_parse(&core, file, (size_t)st.st_size, NULL, err, sizeof(err))) {
		for (int i = 0; i < count && i < core.nr_regs; i++) {
			if (!(core.regs[i].flags & VMS_REGS_KERNEL_GS_BASE))
				continue;
			regs[i].kernel_gs_base = core.regs[i].kernel_gs_base;
			regs[i].flags |= VMS_REGS_KERNEL_GS_BASE;
		}
		elfcore_release(&core);
	}
	munmap(file, (size_t)st.st_size);
}

int regs_read_live(struct vms_vm *vm, int with_kernel_gs_base, struct vms_vcpu_regs **ret_regs,
		   int *ret_count)
{
	_cleanup_free_ char *text = NULL;
	struct vms_vcpu_regs *regs;
	int count, err;

	err = qmp_hmp(vm->qmp, "info registers -a", &text);
	if (err)
		return vm_error(vm, err, "%s", qmp_error(vm->qmp));
	err = regs_parse_hmp(text, &regs, &count);
	if (err)
		return vm_error(vm, err, "cannot parse QEMU's register listing (info registers)");
	if (with_kernel_gs_base)
		add_kernel_gs_base(vm, regs, count);
	*ret_regs = regs;
	*ret_count = count;
	return 0;
}
