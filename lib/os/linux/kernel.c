// SPDX-License-Identifier: MIT
/*
 * The discovered kernel as the views use it: reads of kernel virtual memory
 * through the kernel's own page tables, symbol and BTF member lookups, the
 * views' layouts, and the handle's lifetime. Discovery itself is discover.c;
 * the result lives on the VM handle until it is freed.
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
		if (kread(k, va + done, buf + done, part)) {
			buf[done] = '\0'; /* what was read, cut where the mapping ends */
			return done ? 0 : -EFAULT;
		}
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

/* Kernel lines rename symbols: name may list alternatives, "new|old". */
int ksym_require(struct linux_kernel *k, const char *name, uint64_t *ret)
{
	const char *p = name;

	for (;;) {
		size_t len = strcspn(p, "|");
		char one[128];

		if (len < sizeof(one)) {
			memcpy(one, p, len);
			one[len] = '\0';
			*ret = kallsyms_lookup(&k->ksyms, one);
			if (*ret)
				return 0;
		}
		if (!p[len])
			break;
		p += len + 1;
	}
	return vm_error(k->vm, -ENOENT, "the guest kernel has no symbol %s", name);
}

int kfield_require(struct linux_kernel *k, const char *type, const char *path,
		   struct kfield *ret)
{
	int err = kbtf_member(k->btf, type, path, ret);

	if (err == -EPROTO)
		return vm_error(k->vm, -EPROTO, "the guest's BTF places %s.%s outside the struct",
				type, path);
	if (err)
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

struct find_va {
	uint64_t gpa, va;
};

static int match_gpa(uint64_t va, const struct vms_translation *t, void *ctx)
{
	struct find_va *f = ctx;

	if (f->gpa < t->gpa || f->gpa - t->gpa >= t->page_bytes)
		return 0;
	f->va = va + (f->gpa - t->gpa);
	return 1;
}

int linux_image_va(struct linux_kernel *k, uint64_t gpa, uint64_t *ret_va)
{
	struct find_va f = { gpa, 0 };

	if (vms_for_each_mapping(k->vm, k->root, LINUX_IMAGE_LOW, LINUX_IMAGE_HIGH, 4096,
				 match_gpa, &f) != 1)
		return -ENOENT;
	*ret_va = f.va;
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

void linux_kernel_free(void *kernel)
{
	struct linux_kernel *k = kernel;

	if (!k)
		return;
	kallsyms_release(&k->ksyms);
	btf__free(k->btf);
	linux_layouts_forget(k);
	free(k);
}

void linux_layouts_forget(struct linux_kernel *k)
{
	void **plain[] = { &k->tasks_layout, &k->modules_layout, &k->sysinfo_layout,
			   &k->stats_layout,  &k->path_layout,	  &k->dmesg_layout,
			   &k->files_layout,  &k->mounts_layout,  &k->sockets_layout,
			   &k->probes_layout, &k->crosscheck_layout };

	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		free(*plain[i]);
		*plain[i] = NULL;
	}
	linux_netdev_layout_free(k->netdev_layout);
	k->netdev_layout = NULL;
}

int linux_kernel_get(struct vms_vm *vm, struct linux_kernel **ret)
{
	struct linux_kernel *k;
	int err;

	view_begin(vm); /* every view starts here */
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
	err = linux_discover(k);
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
