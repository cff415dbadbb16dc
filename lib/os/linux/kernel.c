// SPDX-License-Identifier: MIT
/*
 * Discovering a Linux kernel in guest RAM, with no profile:
 *   1. vmcoreinfo gives the KASLR offset, phys_base, init_top_pgt, the paging
 *      depth and where the kallsyms tables are;
 *   2. init_top_pgt's physical address (virtual - __START_KERNEL_map +
 *      phys_base) is the root of the kernel's own page tables, used for every
 *      kernel read, whatever the vCPUs are running;
 *   3. kallsyms decodes to every symbol, checked against vmcoreinfo;
 *   4. the .BTF section (between __start_BTF and __stop_BTF) goes to libbpf.
 * The result lives on the VM handle until it is freed.
 */
#include <bpf/btf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define START_KERNEL_MAP 0xffffffff80000000ull
#define MAX_BTF_BYTES	 (64u << 20)

int kread(struct linux_kernel *k, uint64_t va, void *buf, size_t len)
{
	return vms_virt_read(k->vm, k->root, va, buf, len);
}

int kread_u64(struct linux_kernel *k, uint64_t va, uint64_t *ret)
{
	return kread(k, va, ret, sizeof(*ret));
}

int kread_u32(struct linux_kernel *k, uint64_t va, uint32_t *ret)
{
	return kread(k, va, ret, sizeof(*ret));
}

int kread_string(struct linux_kernel *k, uint64_t va, char *buf, size_t len)
{
	size_t done = 0;

	if (!len)
		return -EINVAL;
	/* Page by page, so a string at the end of a mapping still reads. */
	while (done < len - 1) {
		size_t part = 4096 - ((va + done) & 4095);
		char *nul;

		if (part > len - 1 - done)
			part = len - 1 - done;
		if (kread(k, va + done, buf + done, part))
			return done ? 0 : -EFAULT;
		nul = memchr(buf + done, '\0', part);
		done += part;
		if (nul)
			return 0;
	}
	buf[len - 1] = '\0';
	return 0;
}

uint64_t kfield_get(const struct kfield *f, const void *obj)
{
	uint64_t v = 0;

	memcpy(&v, (const uint8_t *)obj + f->offset, f->size < 8 ? f->size : 8);
	if (f->bit_size)
		v = (v >> f->bit_offset) & (f->bit_size < 64 ? (1ull << f->bit_size) - 1 : ~0ull);
	return v;
}

int ksym_require(struct linux_kernel *k, const char *name, uint64_t *ret)
{
	*ret = kallsyms_lookup(&k->ksyms, name);
	if (!*ret)
		return vm_error(k->vm, -ENOENT, "the guest kernel has no symbol %s", name);
	return 0;
}

int kfield_require(struct linux_kernel *k, const char *type, const char *path,
		   struct kfield *ret)
{
	if (kbtf_member(k->btf, type, path, ret))
		return vm_error(k->vm, -ENOENT, "the guest kernel's struct %s has no member %s",
				type, path);
	return 0;
}

int kfields_require(struct linux_kernel *k, const struct kfield_want *want, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (kfield_require(k, want[i].type, want[i].path, want[i].field))
			return -ENOENT;
	return 0;
}

void *linux_layout(struct linux_kernel *k, void **slot, size_t size,
		   int (*find)(struct linux_kernel *k, void *layout))
{
	void *layout = *slot;

	if (layout)
		return layout;
	layout = calloc(1, size);
	if (!layout) {
		vm_error(k->vm, -ENOMEM, "out of memory");
		return NULL;
	}
	if (find(k, layout)) {
		free(layout);
		return NULL;
	}
	*slot = layout;
	return layout;
}

static int read_for_kallsyms(void *ctx, uint64_t va, void *buf, size_t len)
{
	return kread(ctx, va, buf, len);
}

static int place_kernel(struct linux_kernel *k, const char *info)
{
	char offset[32];
	uint64_t top_pgt;
	int64_t l5 = 0;

	if (vmcoreinfo_symbol(info, "init_top_pgt", &top_pgt) ||
	    vmcoreinfo_number(info, "phys_base", &k->phys_base) || top_pgt < START_KERNEL_MAP)
		return vm_error(k->vm, -EPROTO, "vmcoreinfo lacks init_top_pgt or phys_base");
	vmcoreinfo_number(info, "pgtable_l5_enabled", &l5);
	vmcoreinfo_string(info, "OSRELEASE", k->release, sizeof(k->release));
	if (!vmcoreinfo_string(info, "KERNELOFFSET", offset, sizeof(offset)))
		k->kaslr_offset = strtoull(offset, NULL, 16);
	k->root = top_pgt - START_KERNEL_MAP + (uint64_t)k->phys_base;
	k->levels = l5 ? 5 : 4;
	if (!k->vm->paging_levels)
		k->vm->detected_levels = k->levels;
	return 0;
}

static int load_kallsyms(struct linux_kernel *k, const char *info)
{
	struct kallsyms_tables t = { .check_name = "_stext" };
	char why[128];
	int err;

	if (vmcoreinfo_symbol(info, "kallsyms_num_syms", &t.num_syms) ||
	    vmcoreinfo_symbol(info, "kallsyms_names", &t.names) ||
	    vmcoreinfo_symbol(info, "kallsyms_token_table", &t.token_table) ||
	    vmcoreinfo_symbol(info, "kallsyms_token_index", &t.token_index) ||
	    vmcoreinfo_symbol(info, "kallsyms_offsets", &t.offsets) ||
	    vmcoreinfo_symbol(info, "kallsyms_relative_base", &t.relative_base) ||
	    vmcoreinfo_symbol(info, "_stext", &t.check_addr))
		return vm_error(k->vm, -EPROTO, "vmcoreinfo does not locate the kallsyms tables");
	err = kallsyms_load(&k->ksyms, &t, read_for_kallsyms, k, why, sizeof(why));
	if (err)
		return vm_error(k->vm, err, "cannot decode the guest's symbols: %s", why);
	return 0;
}

/* The header must describe a blob that fits: a guest can plant anything. */
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
				"the guest kernel carries no BTF (built without "
				"CONFIG_DEBUG_INFO_BTF): vmscope needs its type information");
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

	if (!*dir || !banner || kread_string(k, banner, text, sizeof(text)))
		return;
	text[strcspn(text, "\n")] = '\0';
	if (linux_banner_length(text, strlen(text)) == 0 && strncmp(text, "Linux version ", 14))
		return;
	linux_cache_store(k, dir, text);
}

static int discover(struct linux_kernel *k)
{
	_cleanup_free_ char *info = NULL;
	char dir[4096];
	int err;

	cache_dir(dir, sizeof(dir));
	if (!linux_cache_load(k, dir))
		return 0;
	err = vmcoreinfo_find(k->vm, &info);
	if (!err)
		err = place_kernel(k, info);
	if (!err)
		err = load_kallsyms(k, info);
	if (!err)
		err = load_btf(k);
	if (!err)
		remember(k, dir);
	return err;
}

void linux_kernel_free(void *kernel)
{
	struct linux_kernel *k = kernel;

	if (!k)
		return;
	kallsyms_release(&k->ksyms);
	btf__free(k->btf);
	free(k->tasks_layout);
	free(k->modules_layout);
	free(k->sysinfo_layout);
	free(k->path_layout);
	free(k->dmesg_layout);
	free(k->files_layout);
	free(k->mounts_layout);
	free(k->sockets_layout);
	free(k->probes_layout);
	free(k);
}

int linux_kernel_get(struct vms_vm *vm, struct linux_kernel **ret)
{
	struct linux_kernel *k;
	int err;

	if (vm->os_state) {
		*ret = vm->os_state;
		return 0;
	}
	if (!vm->mem.nr_segs)
		return vm_error(vm, -ENOTCONN, "not attached to a VM");
	k = calloc(1, sizeof(*k));
	if (!k)
		return vm_error(vm, -ENOMEM, "out of memory");
	k->vm = vm;
	err = discover(k);
	if (err) {
		linux_kernel_free(k);
		return err;
	}
	vm->os_state = k;
	vm->os_state_free = linux_kernel_free;
	*ret = k;
	return 0;
}

int vms_linux_kernel(struct vms_vm *vm, struct vms_kernel_info *ret_info)
{
	struct linux_kernel *k;
	int err = linux_kernel_get(vm, &k);

	if (err)
		return err;
	memset(ret_info, 0, sizeof(*ret_info));
	snprintf(ret_info->release, sizeof(ret_info->release), "%s", k->release);
	ret_info->kaslr_offset = k->kaslr_offset;
	ret_info->page_table_root = k->root;
	ret_info->paging_levels = k->levels;
	ret_info->symbols = k->ksyms.nr_syms;
	ret_info->from_cache = k->from_cache;
	return 0;
}

int vms_linux_symbol(struct vms_vm *vm, const char *name, uint64_t *ret_addr)
{
	struct linux_kernel *k;
	int err = linux_kernel_get(vm, &k);

	if (err)
		return err;
	return ksym_require(k, name, ret_addr);
}
