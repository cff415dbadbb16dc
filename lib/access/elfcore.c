// SPDX-License-Identifier: MIT
/*
 * Reading QEMU ELF cores. The file is untrusted: every offset and size is
 * checked against the file before use, note walks advance by checked,
 * aligned sizes, and the number of vCPUs is bounded.
 *
 * QEMU's x86-64 note (QEMUCPUState, version 1) is: u32 version, u32 size,
 * the 16 general registers, rip, rflags, then ten segments (cs ds es fs gs ss
 * ldt tr gdt idt; each u32 selector, limit, flags, pad and u64 base), cr[0..4]
 * and, since QEMU 4.2, kernel_gs_base. Later fields are optional: "size"
 * tells which are present.
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access/elfcore.h"

#define QEMU_NOTE_GPRS	   8
#define QEMU_NOTE_RIP	   136
#define QEMU_NOTE_RFLAGS   144
#define QEMU_NOTE_SEGMENTS 152
#define QEMU_NOTE_SEG_SIZE 24
#define QEMU_NOTE_CR	   392
#define QEMU_NOTE_KGS	   432
#define QEMU_NOTE_MIN	   QEMU_NOTE_KGS
#define SEG_CS 0
#define SEG_FS 3
#define SEG_GS 4
#define SEG_SS 5
#define SEG_FLAG_L (1u << 21) /* the descriptor's 64-bit code bit */

#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define CR0_PG	 (1ull << 31)

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int grow_regs(struct elfcore *core, int index)
{
	struct vms_vcpu_regs *regs;

	if (index < core->nr_regs)
		return 0;
	if (index >= ELFCORE_MAX_VCPUS)
		return -E2BIG;
	regs = realloc(core->regs, (size_t)(index + 1) * sizeof(*regs));
	if (!regs)
		return -ENOMEM;
	memset(regs + core->nr_regs, 0, (size_t)(index + 1 - core->nr_regs) * sizeof(*regs));
	for (int i = core->nr_regs; i <= index; i++)
		regs[i].index = i;
	core->regs = regs;
	core->nr_regs = index + 1;
	return 0;
}

/* EFER is not in QEMU's note: infer long mode from CS.L and paging. */
static void derive_efer(struct vms_vcpu_regs *r, uint32_t cs_flags)
{
	if ((cs_flags & SEG_FLAG_L) && (r->cr0 & CR0_PG))
		r->efer = EFER_LME | EFER_LMA;
	r->flags |= VMS_REGS_EFER_DERIVED;
}

static int parse_qemu_note(struct elfcore *core, int index, const uint8_t *desc, uint32_t len)
{
	static const size_t gpr_order[16] = {
		offsetof(struct vms_vcpu_regs, rax), offsetof(struct vms_vcpu_regs, rbx),
		offsetof(struct vms_vcpu_regs, rcx), offsetof(struct vms_vcpu_regs, rdx),
		offsetof(struct vms_vcpu_regs, rsi), offsetof(struct vms_vcpu_regs, rdi),
		offsetof(struct vms_vcpu_regs, rsp), offsetof(struct vms_vcpu_regs, rbp),
		offsetof(struct vms_vcpu_regs, r8),  offsetof(struct vms_vcpu_regs, r9),
		offsetof(struct vms_vcpu_regs, r10), offsetof(struct vms_vcpu_regs, r11),
		offsetof(struct vms_vcpu_regs, r12), offsetof(struct vms_vcpu_regs, r13),
		offsetof(struct vms_vcpu_regs, r14), offsetof(struct vms_vcpu_regs, r15),
	};
	const uint8_t *seg = desc + QEMU_NOTE_SEGMENTS;
	struct vms_vcpu_regs *r;
	uint32_t size;
	int err;

	if (len < QEMU_NOTE_MIN || get32(desc) != 1)
		return -EPROTO;
	size = get32(desc + 4) < len ? get32(desc + 4) : len;
	err = grow_regs(core, index);
	if (err)
		return err;
	r = &core->regs[index];
	for (int i = 0; i < 16; i++) {
		uint64_t v = get64(desc + QEMU_NOTE_GPRS + 8 * i);

		memcpy((uint8_t *)r + gpr_order[i], &v, sizeof(v));
	}
	r->rip = get64(desc + QEMU_NOTE_RIP);
	r->rflags = get64(desc + QEMU_NOTE_RFLAGS);
	r->cs = (uint16_t)get32(seg + SEG_CS * QEMU_NOTE_SEG_SIZE);
	r->ss = (uint16_t)get32(seg + SEG_SS * QEMU_NOTE_SEG_SIZE);
	r->cpl = r->cs & 3;
	r->fs_base = get64(seg + SEG_FS * QEMU_NOTE_SEG_SIZE + 16);
	r->gs_base = get64(seg + SEG_GS * QEMU_NOTE_SEG_SIZE + 16);
	r->cr0 = get64(desc + QEMU_NOTE_CR);
	r->cr2 = get64(desc + QEMU_NOTE_CR + 16);
	r->cr3 = get64(desc + QEMU_NOTE_CR + 24);
	r->cr4 = get64(desc + QEMU_NOTE_CR + 32);
	if (size >= QEMU_NOTE_KGS + 8) {
		r->kernel_gs_base = get64(desc + QEMU_NOTE_KGS);
		r->flags |= VMS_REGS_KERNEL_GS_BASE;
	}
	if (!(r->flags & VMS_REGS_EFER))
		derive_efer(r, get32(seg + SEG_CS * QEMU_NOTE_SEG_SIZE + 8));
	return 0;
}

static int parse_vmscope_note(struct elfcore *core, uint32_t type, const uint8_t *desc,
			      uint32_t len)
{
	uint32_t index;
	int err;

	if (type != VMSCOPE_NOTE_EFER || len < 16)
		return 0; /* a note of a later version: skip it */
	index = get32(desc);
	if (index >= ELFCORE_MAX_VCPUS)
		return -E2BIG;
	err = grow_regs(core, (int)index);
	if (err)
		return err;
	core->regs[index].efer = get64(desc + 8);
	core->regs[index].flags |= VMS_REGS_EFER;
	core->regs[index].flags &= ~VMS_REGS_EFER_DERIVED;
	return 0;
}

static uint32_t align4(uint32_t n)
{
	return (n + 3u) & ~3u;
}

/* Walk one PT_NOTE segment; QEMU notes count vCPUs in the order they appear. */
static int parse_notes(struct elfcore *core, const uint8_t *p, size_t len, int *qemu_seen)
{
	while (len >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		const uint8_t *name, *desc;
		size_t need;
		int err = 0;

		memcpy(&nh, p, sizeof(nh));
		need = sizeof(nh) + (size_t)align4(nh.n_namesz) + (size_t)align4(nh.n_descsz);
		if (nh.n_namesz > len || nh.n_descsz > len || need > len)
			return -EPROTO;
		name = p + sizeof(nh);
		desc = name + align4(nh.n_namesz);
		if (nh.n_namesz == 5 && !memcmp(name, "QEMU", 5))
			err = parse_qemu_note(core, (*qemu_seen)++, desc, nh.n_descsz);
		else if (nh.n_namesz == sizeof(VMSCOPE_NOTE_NAME) &&
			 !memcmp(name, VMSCOPE_NOTE_NAME, sizeof(VMSCOPE_NOTE_NAME)))
			err = parse_vmscope_note(core, nh.n_type, desc, nh.n_descsz);
		if (err)
			return err;
		p += need;
		len -= need;
	}
	return 0;
}

static int check_header(const uint8_t *file, size_t size, const Elf64_Ehdr **ret_eh,
			char *errbuf, size_t errbuf_len)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG)) {
		snprintf(errbuf, errbuf_len, "not an ELF file");
		return -EINVAL;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_type != ET_CORE || eh->e_machine != EM_X86_64) {
		snprintf(errbuf, errbuf_len, "not a 64-bit little-endian x86-64 ELF core");
		return -EINVAL;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum) {
		snprintf(errbuf, errbuf_len, "program headers lie outside the file");
		return -EINVAL;
	}
	*ret_eh = eh;
	return 0;
}

static int add_load(const Elf64_Phdr *ph, const uint8_t *file, size_t size, struct mem_map *map,
		    char *errbuf, size_t errbuf_len)
{
	struct mem_segment seg = { .gpa = ph->p_paddr, .size = ph->p_filesz };
	int err;

	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset) {
		snprintf(errbuf, errbuf_len, "a memory segment lies outside the file (truncated?)");
		return -EINVAL;
	}
	if (!ph->p_filesz)
		return 0;
	seg.host = file + ph->p_offset;
	err = mem_map_add(map, &seg);
	if (err)
		snprintf(errbuf, errbuf_len, "bad memory segment at 0x%llx (overlapping or wrapping)",
			 (unsigned long long)ph->p_paddr);
	return err;
}

static int parse_phdr(struct elfcore *core, const Elf64_Phdr *ph, struct mem_map *map,
		      int *qemu_seen, char *errbuf, size_t errbuf_len)
{
	int err;

	if (ph->p_type == PT_LOAD)
		return map ? add_load(ph, core->file, core->size, map, errbuf, errbuf_len) : 0;
	if (ph->p_type != PT_NOTE)
		return 0;
	if (ph->p_offset > core->size || ph->p_filesz > core->size - ph->p_offset) {
		snprintf(errbuf, errbuf_len, "notes lie outside the file");
		return -EINVAL;
	}
	err = parse_notes(core, core->file + ph->p_offset, ph->p_filesz, qemu_seen);
	if (err)
		snprintf(errbuf, errbuf_len, "malformed vCPU notes (%s)", strerror(-err));
	return err;
}

int elfcore_parse(struct elfcore *core, const uint8_t *file, size_t size, struct mem_map *map,
		  char *errbuf, size_t errbuf_len)
{
	const Elf64_Ehdr *eh;
	int qemu_seen = 0, err;

	memset(core, 0, sizeof(*core));
	core->file = file;
	core->size = size;
	err = check_header(file, size, &eh, errbuf, errbuf_len);
	for (unsigned int i = 0; !err && i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, file + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		err = parse_phdr(core, &ph, map, &qemu_seen, errbuf, errbuf_len);
	}
	if (err)
		elfcore_release(core);
	return err;
}

void elfcore_release(struct elfcore *core)
{
	free(core->regs);
	core->regs = NULL;
	core->nr_regs = 0;
}
