// SPDX-License-Identifier: MIT
/*
 * Discovering a Linux kernel in guest RAM, with no profile, on every kernel
 * with BTF (5.2 on). Two ways in, both ending in the same checks:
 *
 *   vmcoreinfo (fast): each note in RAM gives init_top_pgt and phys_base,
 *     hence the kernel's own page tables, and the KASLR offset; since 6.0 it
 *     also locates the kallsyms tables. Where it does not (5.x), or names no
 *     kallsyms_relative_base (7.x), the tables are found by their structure.
 *   the tables alone: kallsyms_search() finds them in physical RAM; their
 *     names and offsets give every symbol's place relative to the others, and
 *     probing where init_top_pgt must lie (PA, 2 MiB steps) or where it maps
 *     _text (VA) places the kernel both ways.
 *
 * A candidate is kept only when what it decodes to can be checked against
 * RAM itself: linux_banner holds a banner, the page tables map _text and
 * linux_banner where the image lies, init_task is "swapper" and its task
 * list links back to it, the BTF loads; and a vmcoreinfo note must be the one
 * the kernel's own vmcoreinfo_data points to (look-alikes that any process
 * can leave in free pages are passed over).
 */
#include <bpf/btf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>
#include <vmscope/vcpu.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define START_KERNEL_MAP 0xffffffff80000000ull
#define TEXT_LINK_ADDR	 0xffffffff81000000ull /* _text without KASLR */
#define KERNEL_ALIGN	 (2ull << 20)
#define MAX_IMAGE_BYTES	 (512ull << 20)
#define TABLES_WITHIN	 (128ull << 20) /* of _stext: kallsyms is in the image's rodata */
#define MAX_BTF_BYTES	 (64u << 20)

/* -- reading --------------------------------------------------------------- */

static int read_virt(void *ctx, uint64_t va, void *buf, size_t len)
{
	return kread(ctx, va, buf, len);
}

static int read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	struct linux_kernel *k = ctx;

	return mem_map_read(&k->vm->mem, gpa, buf, len);
}

static int translates_to(struct linux_kernel *k, uint64_t va, uint64_t gpa)
{
	struct vms_translation t;

	return !vms_translate(k->vm, k->root, va, &t) && t.gpa == gpa;
}

/* -- checks every candidate must pass ------------------------------------- */

/* linux_banner holds a well-formed banner; its release is the kernel's. */
static int check_banner(struct linux_kernel *k)
{
	uint64_t at = kallsyms_lookup(&k->ksyms, "linux_banner");
	char text[VMS_BANNER_MAX];
	size_t len;

	if (!at || kread(k, at, text, sizeof(text)))
		return -EPROTO;
	len = linux_banner_length(text, sizeof(text));
	if (!len)
		return -EPROTO;
	snprintf(k->release, sizeof(k->release), "%.*s",
		 (int)strcspn(text + 14, " "), text + 14);
	return 0;
}

/* init_task is the idle task "swapper" (or "swapper/0") and its task list links back. */
static int check_init_task(struct linux_kernel *k)
{
	uint64_t init = kallsyms_lookup(&k->ksyms, "init_task"), next, prev;
	struct kfield comm, tasks;
	char name[16];

	if (!init || kbtf_member(k->btf, "task_struct", "comm", &comm) ||
	    kbtf_member(k->btf, "task_struct", "tasks", &tasks) || comm.size < sizeof(name))
		return -EPROTO;
	if (kread(k, init + comm.offset, name, sizeof(name)) || memcmp(name, "swapper", 7) ||
	    (name[7] && name[7] != '/'))
		return -EPROTO;
	if (kread_u64(k, init + tasks.offset, &next) || kread_u64(k, next + 8, &prev) ||
	    prev != init + tasks.offset)
		return -EPROTO;
	return 0;
}

/* The .BTF section, between __start_BTF and __stop_BTF, through libbpf. */
static int check_btf_header(const uint8_t *blob, size_t size)
{
	uint16_t magic;
	uint32_t hdr_len, type_off, type_len, str_off, str_len;

	if (size < 24)
		return -EPROTO;
	memcpy(&magic, blob, 2);
	memcpy(&hdr_len, blob + 4, 4);
	memcpy(&type_off, blob + 8, 4);
	memcpy(&type_len, blob + 12, 4);
	memcpy(&str_off, blob + 16, 4);
	memcpy(&str_len, blob + 20, 4);
	if (magic != BTF_MAGIC || blob[2] != 1 || hdr_len < 24 || hdr_len > size)
		return -EPROTO;
	if ((uint64_t)hdr_len + type_off + type_len > size ||
	    (uint64_t)hdr_len + str_off + str_len > size)
		return -EPROTO;
	return 0;
}

static int load_btf(struct linux_kernel *k)
{
	uint64_t start = kallsyms_lookup(&k->ksyms, "__start_BTF");
	uint64_t stop = kallsyms_lookup(&k->ksyms, "__stop_BTF");
	uint8_t *blob;
	int err = 0;

	if (!start || stop <= start)
		return vm_error(k->vm, -ENOENT,
				"the guest kernel %s carries no BTF: vmscope needs Linux 5.2 or "
				"later built with CONFIG_DEBUG_INFO_BTF",
				k->release);
	if (stop - start > MAX_BTF_BYTES)
		return vm_error(k->vm, -EPROTO, "the guest's BTF claims %" PRIu64 " bytes",
				stop - start);
	blob = malloc(stop - start);
	if (!blob)
		return vm_error(k->vm, -ENOMEM, "out of memory");
	if (kread(k, start, blob, stop - start) || check_btf_header(blob, stop - start))
		err = vm_error(k->vm, -EPROTO, "the guest's BTF is unreadable or malformed");
	if (!err) {
		k->btf = btf__new(blob, (uint32_t)(stop - start));
		if (!k->btf || !kbtf_size(k->btf, "task_struct"))
			err = vm_error(k->vm, -EPROTO, "libbpf rejects the guest's BTF");
	}
	free(blob);
	return err;
}

/*
 * vCPU 0's page-table roots, from one read of its CR3: CR3 itself and, when
 * it is the user half of a KPTI pair, the kernel half 4 KiB below. Returns
 * how many (1 or 2), or 0 when the target has no vCPU state.
 */
static int cpu_roots(struct linux_kernel *k, uint64_t roots[2])
{
	uint64_t cr3;

	if (vms_vcpu_get_cr3(k->vm, 0, &cr3))
		return 0;
	roots[0] = cr3 & 0x000ffffffffff000ull; /* PCID off */
	roots[1] = roots[0] & ~0x1000ull;
	return roots[1] == roots[0] ? 1 : 2;
}

/*
 * The page tables found in RAM must map the kernel as the CPU's own do: a
 * root forged in a process's memory (its own "kernel" tables) maps _text and
 * linux_banner elsewhere than vCPU 0's CR3, which the guest cannot forge (it
 * comes from QEMU). Targets without registers (raw images) skip this. The
 * per-build cache checks it too: a cached placement is a candidate like any.
 */
int linux_check_cpu_mapping(struct linux_kernel *k)
{
	const uint64_t va[2] = { kallsyms_lookup(&k->ksyms, "_text"),
				 kallsyms_lookup(&k->ksyms, "linux_banner") };
	struct vms_translation ours, cpus;
	uint64_t roots[2];
	int nr = cpu_roots(k, roots);

	for (int i = 0; i < 2; i++) {
		int r = 0;

		/* A KPTI user half may map _text (the entry code's page) but not rodata. */
		while (r < nr && vms_translate(k->vm, roots[r], va[i], &cpus))
			r++;
		if (r == nr)
			return 0; /* the CPU maps no kernel now (early boot): nothing to compare */
		if (vms_translate(k->vm, k->root, va[i], &ours) || ours.gpa != cpus.gpa)
			return -EPROTO;
	}
	return 0;
}

/* Banner, BTF, init_task, the CPU's own page tables: what makes a candidate the kernel. */
static int verify(struct linux_kernel *k)
{
	int err;

	if (check_banner(k))
		return vm_error(k->vm, -EPROTO, "linux_banner holds no kernel banner");
	if (linux_check_cpu_mapping(k))
		return vm_error(k->vm, -EPROTO,
				"the page tables found in RAM map the kernel elsewhere than the "
				"vCPU's own");
	err = load_btf(k);
	if (!err && check_init_task(k))
		err = vm_error(k->vm, -EPROTO, "init_task is not the kernel's idle task");
	return err;
}

static void forget(struct linux_kernel *k)
{
	kallsyms_release(&k->ksyms);
	btf__free(k->btf);
	k->btf = NULL;
	k->root = 0;
	k->levels = 0;
	k->release[0] = '\0';
}

static void set_levels(struct linux_kernel *k, int levels)
{
	k->levels = levels;
	if (!k->vm->paging_levels)
		k->vm->detected_levels = levels;
}

/* Remember where names and offsets lie; to_va turns the tables' addresses virtual. */
static void record_tables(struct linux_kernel *k, const struct kallsyms_tables *t, uint64_t to_va)
{
	k->names_va = t->names + to_va;
	k->names_len = t->names_len;
	k->offsets_va = t->offsets + to_va;
	k->offsets_len = 4 * (uint64_t)k->ksyms.nr_syms;
}

/* -- placing the kernel from the tables alone ------------------------------ */

/* The image lies at PA text_gpa and VA text_va: do the page tables at root agree? */
static int try_place(struct linux_kernel *k, uint64_t text_gpa, uint64_t text_va,
		     uint64_t text_sym, int levels)
{
	uint64_t banner = kallsyms_lookup(&k->ksyms, "linux_banner");

	set_levels(k, levels);
	return translates_to(k, text_va, text_gpa) &&
	       translates_to(k, text_va + (banner - text_sym), text_gpa + (banner - text_sym)) &&
	       !check_banner(k);
}

static void placed(struct linux_kernel *k, uint64_t text_gpa, uint64_t text_va)
{
	k->phys_base = (int64_t)(text_gpa - (text_va - START_KERNEL_MAP));
	k->kaslr_offset = text_va - TEXT_LINK_ADDR;
}

/*
 * PC-relative tables: every symbol's PA is known (the image is contiguous),
 * so init_top_pgt is; the VA is where those tables map _text.
 */
static int place_pc_relative(struct linux_kernel *k, const struct kallsyms_tables *t)
{
	uint64_t text = kallsyms_lookup(&k->ksyms, "_text");
	uint64_t top = kallsyms_lookup(&k->ksyms, "init_top_pgt");
	uint64_t text_gpa = t->offsets + text;

	if (!text || !top)
		return -ENOENT;
	k->root = t->offsets + top;
	for (int levels = 4; levels <= 5; levels++) {
		uint64_t va;

		set_levels(k, levels);
		if (linux_image_va(k, text_gpa, &va))
			continue;
		kallsyms_rebase(&k->ksyms, va - text);
		if (try_place(k, text_gpa, va, va, levels)) {
			placed(k, text_gpa, va);
			return 0;
		}
		kallsyms_rebase(&k->ksyms, text - va);
	}
	return -ENOENT;
}

/*
 * Base-relative tables: every VA is known; the image starts at a 2 MiB
 * boundary below the tables, where init_top_pgt's offset from _text gives
 * page tables that map _text back to it.
 */
static int place_base_relative(struct linux_kernel *k, const struct kallsyms_tables *t)
{
	uint64_t text = kallsyms_lookup(&k->ksyms, "_text");
	uint64_t top = kallsyms_lookup(&k->ksyms, "init_top_pgt");
	uint64_t gpa = t->token_table & ~(KERNEL_ALIGN - 1);

	if (!text || !top || top < text)
		return -ENOENT;
	for (; t->token_table - gpa < MAX_IMAGE_BYTES; gpa -= KERNEL_ALIGN) {
		k->root = gpa + (top - text);
		for (int levels = 4; levels <= 5; levels++) {
			if (mem_map_avail(&k->vm->mem, k->root) >= 4096 &&
			    try_place(k, gpa, text, text, levels)) {
				placed(k, gpa, text);
				return 0;
			}
		}
		if (gpa < KERNEL_ALIGN)
			break;
	}
	return -ENOENT;
}

struct image_run {
	uint64_t va, gpa, end; /* the run's first VA, its PA, and the PA it reaches */
};

/* Extend the run while VA and PA advance together (the image is contiguous). */
static int extend_run(uint64_t va, const struct vms_translation *t, void *ctx)
{
	struct image_run *r = ctx;

	if (!r->end) {
		r->va = va;
		r->gpa = t->gpa;
	} else if (t->gpa - r->gpa != va - r->va) {
		return 1; /* modules, or anything else mapped beyond the image */
	}
	r->end = t->gpa + t->page_bytes;
	return r->end - r->gpa >= MAX_IMAGE_BYTES;
}

/*
 * The tables where vCPU 0's own page tables map the kernel image: the first
 * run of the kernel text mapping that is contiguous in both address spaces.
 * No guest process can write there, nor change what CR3 maps, so look-alike
 * tables planted in free pages or the page cache cannot hide the real ones.
 * Under KPTI in user mode, CR3 maps only part of the kernel (the entry code,
 * as whole 2 MiB pages when PCID is on): each half's run is searched in turn.
 */
static int search_cpu_image(struct linux_kernel *k, struct kallsyms_tables *t, char *why,
			    size_t len)
{
	uint64_t roots[2];
	int nr = cpu_roots(k, roots);

	for (int i = 0; i < nr; i++) {
		struct image_run r = { 0, 0, 0 };

		vms_for_each_mapping(k->vm, roots[i], LINUX_IMAGE_LOW, LINUX_IMAGE_HIGH - 1, 4096,
				     extend_run, &r);
		if (r.end - r.gpa >= KERNEL_ALIGN && !kallsyms_search(k->vm, r.gpa, r.end, t, why,
								     len))
			return 0;
	}
	return -ENOENT;
}

static int discover_by_search(struct linux_kernel *k)
{
	struct kallsyms_tables t;
	char why[160];
	/* The image the CPU maps first; all of RAM where there is no CPU (raw images). */
	int err = search_cpu_image(k, &t, why, sizeof(why));

	if (err)
		err = kallsyms_search(k->vm, 0, UINT64_MAX, &t, why, sizeof(why));
	if (!err)
		err = kallsyms_load(&k->ksyms, &t, read_phys, k, why, sizeof(why));
	if (err)
		return vm_error(k->vm, err, "no Linux kernel found in guest RAM: %s", why);
	err = t.encoding == KALLSYMS_PC_RELATIVE ? place_pc_relative(k, &t)
						   : place_base_relative(k, &t);
	if (err)
		return vm_error(k->vm, -EPROTO,
				"the guest's kallsyms tables do not match its page tables");
	record_tables(k, &t, START_KERNEL_MAP - (uint64_t)k->phys_base);
	return verify(k);
}

/* -- the vmcoreinfo fast path ----------------------------------------------- */

static int place_by_note(struct linux_kernel *k, const char *info)
{
	char offset[32];
	uint64_t top_pgt;
	int64_t l5 = 0;

	if (vmcoreinfo_symbol(info, "init_top_pgt", &top_pgt) ||
	    vmcoreinfo_number(info, "phys_base", &k->phys_base) || top_pgt < START_KERNEL_MAP)
		return -EPROTO;
	vmcoreinfo_number(info, "pgtable_l5_enabled", &l5);
	if (!vmcoreinfo_string(info, "KERNELOFFSET", offset, sizeof(offset)))
		k->kaslr_offset = strtoull(offset, NULL, 16);
	k->root = top_pgt - START_KERNEL_MAP + (uint64_t)k->phys_base;
	set_levels(k, l5 ? 5 : 4);
	return 0;
}

/* The tables as the note names them, when it names them all. */
static int note_tables(const char *info, struct kallsyms_tables *t)
{
	memset(t, 0, sizeof(*t));
	t->check_name = "_stext";
	if (vmcoreinfo_symbol(info, "kallsyms_num_syms", &t->num_syms) ||
	    vmcoreinfo_symbol(info, "kallsyms_names", &t->names) ||
	    vmcoreinfo_symbol(info, "kallsyms_token_table", &t->token_table) ||
	    vmcoreinfo_symbol(info, "kallsyms_token_index", &t->token_index) ||
	    vmcoreinfo_symbol(info, "kallsyms_offsets", &t->offsets) ||
	    vmcoreinfo_symbol(info, "_stext", &t->check_addr))
		return -ENOENT;
	if (vmcoreinfo_symbol(info, "kallsyms_relative_base", &t->relative_base))
		t->offsets_va = t->offsets; /* 6.15 on: offsets relative to themselves */
	return 0;
}

/* Symbols through the note's tables, or through the tables found in RAM. */
static int load_symbols(struct linux_kernel *k, const char *info, char *why, size_t len)
{
	struct kallsyms_tables t;
	int err;

	uint64_t stext, image = 0;

	if (!note_tables(info, &t)) {
		err = kallsyms_load(&k->ksyms, &t, read_virt, k, why, len);
		if (!err)
			record_tables(k, &t, 0);
		return err;
	}
	/* The note places the image, and the tables lie in it. */
	t.check_name = NULL;
	if (!vmcoreinfo_symbol(info, "_stext", &stext) && stext >= START_KERNEL_MAP)
		image = stext - START_KERNEL_MAP + (uint64_t)k->phys_base;
	err = kallsyms_search(k->vm, image, image ? image + TABLES_WITHIN : UINT64_MAX, &t, why,
			      len);
	if (err)
		return err;
	if (image) {
		t.check_name = "_stext";
		t.check_addr = stext;
	}
	/* The image is mapped linearly: VA = PA - phys_base + __START_KERNEL_map. */
	t.offsets_va = t.offsets - (uint64_t)k->phys_base + START_KERNEL_MAP;
	err = kallsyms_load(&k->ksyms, &t, read_phys, k, why, len);
	if (!err)
		record_tables(k, &t, START_KERNEL_MAP - (uint64_t)k->phys_base);
	return err;
}

/* Is the note at gpa the kernel's own (vmcoreinfo_data, or the ELF note's text)? */
static int note_is_kernels(struct linux_kernel *k, uint64_t gpa)
{
	uint64_t data = kallsyms_lookup(&k->ksyms, "vmcoreinfo_data");
	uint64_t note = kallsyms_lookup(&k->ksyms, "vmcoreinfo_note");
	uint64_t ptr;
	struct vms_translation t;

	if (data && !kread_u64(k, data, &ptr) && !vms_translate(k->vm, k->root, ptr, &t) &&
	    t.gpa == gpa)
		return 1;
	/* The note: a 12-byte header and "VMCOREINFO" padded to 12, then the text. */
	if (note && !kread_u64(k, note, &ptr) && !vms_translate(k->vm, k->root, ptr + 24, &t) &&
	    t.gpa == gpa)
		return 1;
	return 0;
}

struct note_try {
	struct linux_kernel *k;
	int err;
	char why[160];
};

static int try_note(const char *info, uint64_t gpa, void *ctx)
{
	struct note_try *n = ctx;
	struct linux_kernel *k = n->k;
	int err = place_by_note(k, info);

	if (!err)
		err = load_symbols(k, info, n->why, sizeof(n->why));
	if (!err)
		err = verify(k);
	if (!err && !note_is_kernels(k, gpa))
		err = -EPROTO;
	if (!err)
		return 1;
	n->err = err;
	forget(k);
	return 0;
}

/* -- both ----------------------------------------------------------------- */

static int discover_uncached(struct linux_kernel *k)
{
	struct note_try n = { k, 0, "" };
	int found = vmcoreinfo_each(k->vm, try_note, &n);

	if (found == 1)
		return 0;
	if (found < 0 && found != -ENOENT)
		return vm_error(k->vm, found, "cannot scan guest RAM: %s", strerror(-found));
	return discover_by_search(k);
}

/*
 * Where discovery results are kept between runs: $VMSCOPE_KERNEL_CACHE (empty:
 * none), else $VMSCOPE_CACHE/kernels, $XDG_CACHE_HOME/vmscope/kernels or
 * ~/.cache/vmscope/kernels.
 */
static void cache_dir(char *buf, size_t len)
{
	const char *v;

	buf[0] = '\0';
	if ((v = getenv("VMSCOPE_KERNEL_CACHE")))
		snprintf(buf, len, "%s", v);
	else if ((v = getenv("VMSCOPE_CACHE")) && *v)
		snprintf(buf, len, "%s/kernels", v);
	else if ((v = getenv("XDG_CACHE_HOME")) && *v)
		snprintf(buf, len, "%s/vmscope/kernels", v);
	else if ((v = getenv("HOME")) && *v)
		snprintf(buf, len, "%s/.cache/vmscope/kernels", v);
}

/* Remember this build for the next attach; failing to is no error. */
static void remember(struct linux_kernel *k, const char *dir)
{
	uint64_t banner = kallsyms_lookup(&k->ksyms, "linux_banner");
	char text[VMS_BANNER_MAX];

	if (!*dir || !banner || kread(k, banner, text, sizeof(text)))
		return;
	text[sizeof(text) - 1] = '\0';
	text[strcspn(text, "\n")] = '\0';
	linux_cache_store(k, dir, text);
}

int linux_discover(struct linux_kernel *k)
{
	char dir[4096];
	int err;

	cache_dir(dir, sizeof(dir));
	if (!linux_cache_load(k, dir))
		return 0;
	err = discover_uncached(k);
	if (!err)
		remember(k, dir);
	return err;
}
