// SPDX-License-Identifier: MIT
/*
 * vCPU registers: HMP "info registers -a" text as QEMU 7.2 prints it
 * (recorded from a test guest), and ELF cores built here with QEMU's and
 * vmscope's notes, well-formed and not.
 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "access/elfcore.h"
#include "access/regs.h"

static const char hmp_two_cpus[] =
	"\r\nCPU#0\r\n"
	"RAX=000000000001ad40 RBX=0000000000000000 RCX=ff37f79202841bd0 RDX=4000000000000000\r\n"
	"RSI=0000000000000000 RDI=000000000000229c RBP=ffffffff9b81aa40 RSP=ffffffff9b803e98\r\n"
	"R8 =ffffffffffc52e17 R9 =0000000037a6f1b2 R10=00000000fffffffb R11=0000000000000000\r\n"
	"R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000014790\r\n"
	"RIP=ffffffff9a817a0b RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
	"ES =0000 0000000000000000 00000000 00000000\r\n"
	"CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]\r\n"
	"SS =0018 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\r\n"
	"DS =0000 0000000000000000 00000000 00000000\r\n"
	"FS =0000 00007f0011112222 00000000 00000000\r\n"
	"GS =0000 ff37f7920f600000 00000000 00000000\r\n"
	"LDT=0000 0000000000000000 00000000 00008200 DPL=0 LDT\r\n"
	"TR =0040 fffffe0000003000 00004087 00008900 DPL=0 TSS64-avl\r\n"
	"GDT=     fffffe0000001000 0000007f\r\n"
	"IDT=     fffffe0000000000 00000fff\r\n"
	"CR0=80050033 CR2=000000000909c730 CR3=0000000002888000 CR4=00751eb0\r\n"
	"DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 \r\n"
	"DR6=00000000ffff0ff0 DR7=0000000000000400\r\n"
	"EFER=0000000000000d01\r\n"
	"FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80\r\n"
	"YMM00=0000000000000000 0000000000000000 000000000909cae0 2e3d007065656c73\r\n"
	"\r\nCPU#1\r\n"
	"RAX=0000000000000001 RBX=0000000000000002 RCX=0000000000000003 RDX=0000000000000004\r\n"
	"RIP=0000000000455198 RFL=00000202 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0\r\n"
	"CS =0033 0000000000000000 ffffffff 00a0fb00 DPL=3 CS64 [-RA]\r\n"
	"SS =002b 0000000000000000 ffffffff 00c0f300 DPL=3 DS   [-WA]\r\n"
	"CR0=80050033 CR2=00000000005794a9 CR3=00000000029ca000 CR4=00750ea0\r\n"
	"EFER=0000000000000d01\r\n";

static void test_hmp_listing(void **state)
{
	struct vms_vcpu_regs *regs;
	int count;

	(void)state;
	assert_int_equal(regs_parse_hmp(hmp_two_cpus, &regs, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(regs[0].index, 0);
	assert_int_equal(regs[0].rax, 0x1ad40);
	assert_int_equal(regs[0].r8, 0xffffffffffc52e17ull);
	assert_int_equal(regs[0].r15, 0x14790);
	assert_int_equal(regs[0].rip, 0xffffffff9a817a0bull);
	assert_int_equal(regs[0].rsp, 0xffffffff9b803e98ull);
	assert_int_equal(regs[0].rflags, 0x246);
	assert_int_equal(regs[0].cr0, 0x80050033);
	assert_int_equal(regs[0].cr3, 0x2888000);
	assert_int_equal(regs[0].cr4, 0x751eb0);
	assert_int_equal(regs[0].efer, 0xd01);
	assert_int_equal(regs[0].fs_base, 0x7f0011112222ull);
	assert_int_equal(regs[0].gs_base, 0xff37f7920f600000ull);
	assert_int_equal(regs[0].cs, 0x10);
	assert_int_equal(regs[0].ss, 0x18);
	assert_int_equal(regs[0].cpl, 0);
	assert_true(regs[0].flags & VMS_REGS_HALTED);
	assert_true(regs[0].flags & VMS_REGS_EFER);
	assert_false(regs[0].flags & VMS_REGS_KERNEL_GS_BASE);
	assert_int_equal(regs[1].index, 1);
	assert_int_equal(regs[1].cpl, 3);
	assert_int_equal(regs[1].cs, 0x33);
	assert_int_equal(regs[1].cr3, 0x29ca000);
	assert_false(regs[1].flags & VMS_REGS_HALTED);
	free(regs);
}

static void test_hmp_nonsense(void **state)
{
	struct vms_vcpu_regs *regs;
	int count;

	(void)state;
	assert_int_equal(regs_parse_hmp("", &regs, &count), -EPROTO);
	assert_int_equal(regs_parse_hmp("unknown command: 'info'\r\n", &regs, &count), -EPROTO);
	/* Junk values are ignored, not half-parsed. */
	assert_int_equal(regs_parse_hmp("CPU#0\nRIP=xyz CR3=12g4 =5 RSP=\nCR4=20\n", &regs, &count),
			 0);
	assert_int_equal(regs[0].rip, 0);
	assert_int_equal(regs[0].cr3, 0);
	assert_int_equal(regs[0].cr4, 0x20);
	free(regs);
}

/* -- ELF cores ------------------------------------------------------------ */

struct core_builder {
	uint8_t buf[8192];
	size_t notes_len;
	uint8_t notes[4096];
};

static void add_note(struct core_builder *b, const char *name, uint32_t type, const void *desc,
		     uint32_t desc_len)
{
	Elf64_Nhdr nh = { (uint32_t)strlen(name) + 1, desc_len, type };
	size_t name_room = (nh.n_namesz + 3) & ~3u, desc_room = (desc_len + 3) & ~3u;

	memcpy(b->notes + b->notes_len, &nh, sizeof(nh));
	memcpy(b->notes + b->notes_len + sizeof(nh), name, nh.n_namesz);
	memcpy(b->notes + b->notes_len + sizeof(nh) + name_room, desc, desc_len);
	b->notes_len += sizeof(nh) + name_room + desc_room;
}

/* QEMU's x86-64 note, version 1, with kernel_gs_base (440 bytes). */
static void add_qemu_note(struct core_builder *b, uint64_t seed, uint32_t size)
{
	uint8_t desc[440] = { 0 };
	uint32_t version = 1, cs_flags = 0x00af9b00;

	memcpy(desc, &version, 4);
	memcpy(desc + 4, &size, 4);
	for (int i = 0; i < 18; i++) { /* 16 GPRs, rip, rflags */
		uint64_t v = seed + (uint64_t)i;

		memcpy(desc + 8 + 8 * i, &v, 8);
	}
	memcpy(desc + 152 + 8, &cs_flags, 4);			   /* cs.flags: L */
	memcpy(desc + 152 + 4 * 24 + 16, &(uint64_t){ seed << 8 }, 8); /* gs.base */
	memcpy(desc + 392, &(uint64_t){ 0x80050033 }, 8);	   /* cr0 */
	memcpy(desc + 392 + 24, &(uint64_t){ seed << 12 }, 8);	   /* cr3 */
	memcpy(desc + 392 + 32, &(uint64_t){ 0x1000 }, 8);	   /* cr4: LA57 */
	memcpy(desc + 432, &(uint64_t){ seed << 16 }, 8);	   /* kernel_gs_base */
	add_note(b, "QEMU", 0, desc, size);
}

/* Lay out: header, 2 program headers (notes, one load of 4 KiB RAM), notes, RAM. */
static size_t build_core(struct core_builder *b)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph[2] = { 0 };
	size_t notes_at = sizeof(eh) + sizeof(ph), ram_at = 4096;

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 2;
	ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = notes_at, .p_filesz = b->notes_len };
	ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = ram_at, .p_paddr = 0x100000,
			      .p_filesz = 4096, .p_memsz = 4096 };
	memcpy(b->buf, &eh, sizeof(eh));
	memcpy(b->buf + sizeof(eh), ph, sizeof(ph));
	memcpy(b->buf + notes_at, b->notes, b->notes_len);
	memset(b->buf + ram_at, 0xab, 4096);
	return ram_at + 4096;
}

static void test_core_notes(void **state)
{
	struct core_builder *b = calloc(1, sizeof(*b));
	uint8_t efer_desc[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x0d };
	struct elfcore core;
	struct mem_map map;
	char err[128];
	uint8_t byte;
	size_t size;

	(void)state;
	add_qemu_note(b, 0x1000, 440);
	add_qemu_note(b, 0x2000, 432); /* an older QEMU: no kernel_gs_base */
	add_note(b, VMSCOPE_NOTE_NAME, VMSCOPE_NOTE_EFER, efer_desc, 16);
	add_note(b, VMSCOPE_NOTE_NAME, 99, efer_desc, 16); /* unknown kind: skipped */
	size = build_core(b);
	mem_map_init(&map);
	assert_int_equal(elfcore_parse(&core, b->buf, size, &map, err, sizeof(err)), 0);
	assert_int_equal(core.nr_regs, 2);
	assert_int_equal(core.regs[0].rax, 0x1000);
	assert_int_equal(core.regs[0].r15, 0x100f);
	assert_int_equal(core.regs[0].rip, 0x1010);
	assert_int_equal(core.regs[0].rflags, 0x1011);
	assert_int_equal(core.regs[0].gs_base, 0x100000);
	assert_int_equal(core.regs[0].cr3, 0x1000000);
	assert_int_equal(core.regs[0].kernel_gs_base, 0x10000000);
	assert_true(core.regs[0].flags & VMS_REGS_KERNEL_GS_BASE);
	/* vCPU 0 has no vmscope note: EFER derived from CS.L and CR0.PG. */
	assert_true(core.regs[0].flags & VMS_REGS_EFER_DERIVED);
	assert_int_equal(core.regs[0].efer, 0x500);
	/* vCPU 1: EFER from the vmscope note, no kernel GS base. */
	assert_int_equal(core.regs[1].efer, 0xd01);
	assert_true(core.regs[1].flags & VMS_REGS_EFER);
	assert_false(core.regs[1].flags & VMS_REGS_EFER_DERIVED);
	assert_false(core.regs[1].flags & VMS_REGS_KERNEL_GS_BASE);
	assert_int_equal(map.nr_segs, 1);
	assert_int_equal(mem_map_read(&map, 0x100fff, &byte, 1), 0);
	assert_int_equal(byte, 0xab);
	assert_int_equal(mem_map_read(&map, 0x101000, &byte, 1), -EFAULT);
	elfcore_release(&core);
	mem_map_release(&map);
	free(b);
}

static int parse_mutated(struct core_builder *b, size_t size, size_t at, const void *bytes,
			 size_t len, char *err)
{
	uint8_t *copy = malloc(size);
	struct elfcore core;
	struct mem_map map;
	int ret;

	memcpy(copy, b->buf, size);
	memcpy(copy + at, bytes, len);
	mem_map_init(&map);
	ret = elfcore_parse(&core, copy, size, &map, err, 128);
	if (!ret)
		elfcore_release(&core);
	mem_map_release(&map);
	free(copy);
	return ret;
}

static void test_hostile_cores(void **state)
{
	struct core_builder *b = calloc(1, sizeof(*b));
	uint64_t huge = 1ull << 40;
	uint32_t huge32 = 0xfffffff0u;
	char err[128];
	size_t size, ph0 = sizeof(Elf64_Ehdr), ph1 = ph0 + sizeof(Elf64_Phdr);
	size_t note0 = ph1 + sizeof(Elf64_Phdr);

	(void)state;
	add_qemu_note(b, 0x1000, 440);
	size = build_core(b);
	assert_int_equal(parse_mutated(b, size, 0, "\x7f" "ELG", 4, err), -EINVAL);
	assert_string_equal(err, "not an ELF file");
	assert_int_equal(parse_mutated(b, size, offsetof(Elf64_Ehdr, e_machine), "\x03\x00", 2, err),
			 -EINVAL);
	/* Program headers beyond the end of the file. */
	assert_int_equal(parse_mutated(b, size, offsetof(Elf64_Ehdr, e_phnum), "\xff\xfe", 2, err),
			 -EINVAL);
	assert_string_equal(err, "program headers lie outside the file");
	/* A memory segment past the end of the file (a truncated dump). */
	assert_int_equal(parse_mutated(b, size, ph1 + offsetof(Elf64_Phdr, p_filesz), &huge, 8, err),
			 -EINVAL);
	assert_non_null(strstr(err, "outside the file"));
	/* Notes with absurd sizes. */
	assert_int_equal(parse_mutated(b, size, note0 + 4, &huge32, 4, err), -EPROTO);
	assert_int_equal(parse_mutated(b, size, ph0 + offsetof(Elf64_Phdr, p_filesz), &huge, 8, err),
			 -EINVAL);
	/* A QEMU note too short to hold the registers. */
	assert_int_equal(parse_mutated(b, size, note0 + 4, &(uint32_t){ 100 }, 4, err), -EPROTO);
	/* Two segments claiming the same guest memory. */
	assert_int_equal(parse_mutated(b, size, ph0 + offsetof(Elf64_Phdr, p_type),
				       &(uint32_t){ PT_LOAD }, 4, err),
			 0); /* the note segment now loads at 0: no overlap yet */
	{
		uint64_t paddr = 0x100800;
		uint8_t *copy = malloc(size);
		Elf64_Phdr ph;

		memcpy(copy, b->buf, size);
		memcpy(&ph, copy + ph1, sizeof(ph));
		ph.p_paddr = paddr;
		memcpy(copy + ph0, &ph, sizeof(ph));
		memcpy(b->buf, copy, size);
		free(copy);
		assert_int_equal(parse_mutated(b, size, 0, b->buf, 4, err), -EEXIST);
		assert_non_null(strstr(err, "overlapping"));
	}
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmp_listing),
		cmocka_unit_test(test_hmp_nonsense),
		cmocka_unit_test(test_core_notes),
		cmocka_unit_test(test_hostile_cores),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
