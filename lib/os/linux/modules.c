// SPDX-License-Identifier: MIT
/*
 * Loaded modules: the "modules" list, read as /proc/modules prints it. The
 * layout changed in Linux 6.4 (core_layout/init_layout became the mem[]
 * array of struct module_memory); BTF says which one this kernel has.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"
#include "os/linux/list.h"

#define MAX_MODULES 65536
#define MODULE_REF_BASE 1

struct module_layout {
	struct kfield list, name, state, refcnt;
	/* Linux < 6.4 */
	struct kfield core_base, core_size, init_size;
	/* Linux >= 6.4 */
	struct kfield mem, memory_base, memory_size;
	uint32_t memory_bytes, memory_types;
	uint32_t span;
	uint64_t head;
};

#define MAX_MEMORY_TYPES 16 /* 7 in 6.4 to 7.x */

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct module_layout *l = layout;
	int64_t types;

	if (kfield_require(k, "module", "list", &l->list) ||
	    kfield_require(k, "module", "name", &l->name) ||
	    kfield_require(k, "module", "state", &l->state) || ksym_require(k, "modules", &l->head))
		return -ENOENT;
	kbtf_member(k->btf, "module", "refcnt.counter", &l->refcnt);
	if (!kbtf_member(k->btf, "module", "mem", &l->mem)) {
		if (kfield_require(k, "module_memory", "base", &l->memory_base) ||
		    kfield_require(k, "module_memory", "size", &l->memory_size))
			return -ENOENT;
		l->memory_bytes = kbtf_size(k->btf, "module_memory");
		if (kbtf_enum_value(k->btf, "MOD_MEM_NUM_TYPES", &types) || !l->memory_bytes)
			return vm_error(k->vm, -ENOENT, "the guest kernel's module layout is unknown");
		/* fill() reads every module_memory of the array, all inside module.mem. */
		if (types <= 0 || types > MAX_MEMORY_TYPES ||
		    (uint64_t)types * l->memory_bytes > l->mem.size)
			return vm_error(k->vm, -EPROTO,
					"the guest's BTF gives module.mem %" PRId64
					" types that do not fit it", types);
		l->memory_types = (uint32_t)types;
	} else if (kfield_require(k, "module", "core_layout.base", &l->core_base) ||
		   kfield_require(k, "module", "core_layout.size", &l->core_size) ||
		   kfield_require(k, "module", "init_layout.size", &l->init_size)) {
		return -ENOENT;
	}
	l->span = kbtf_size(k->btf, "module");
	return l->span ? 0 : vm_error(k->vm, -ENOENT, "the guest kernel has no struct module");
}

static const struct module_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->modules_layout, sizeof(struct module_layout), find_layout);
}

static const char *state_name(uint64_t state)
{
	static const char *const names[] = { "Live", "Loading", "Unloading", "Unformed" };

	return state < 4 ? names[state] : "Unknown";
}

static void fill(const struct module_layout *l, const uint8_t *mod, struct vms_module *m)
{
	memcpy(m->name, mod + l->name.offset, l->name.size < sizeof(m->name) ? l->name.size
										: sizeof(m->name) - 1);
	m->name[sizeof(m->name) - 1] = '\0';
	snprintf(m->state, sizeof(m->state), "%s", state_name(kfield_get(&l->state, mod)));
	if (l->refcnt.found) {
		int64_t refs = (int64_t)(int32_t)kfield_get(&l->refcnt, mod) - MODULE_REF_BASE;

		m->refcount = refs < INT32_MIN ? INT32_MIN : (int)refs; /* no overflow */
	} else {
		m->refcount = -1;
	}
	if (l->memory_types) {
		for (uint32_t t = 0; t < l->memory_types; t++) {
			const uint8_t *mem = mod + l->mem.offset + t * l->memory_bytes;

			m->size += kfield_get(&l->memory_size, mem);
		}
		m->base = kfield_get(&l->memory_base, mod + l->mem.offset); /* MOD_TEXT */
	} else {
		m->size = kfield_get(&l->core_size, mod) + kfield_get(&l->init_size, mod);
		m->base = kfield_get(&l->core_base, mod);
	}
}

static int append(struct vms_module **mods, size_t *n, size_t *cap)
{
	struct vms_module *grown = array_grow(*mods, cap, *n, sizeof(**mods));

	if (!grown)
		return -ENOMEM;
	*mods = grown;
	memset(&grown[*n], 0, sizeof(*grown));
	return 0;
}

/* Keep what was read of a list that broke or did not end, each module once. */
static size_t module_list_partial(struct vms_vm *vm, int more, const uint64_t *addrs, size_t n)
{
	if (more == -ELOOP)
		n = list_first_repeat(addrs, n);
	view_partial(vm, "the module list %s: %zu listed",
		     more == -ELOOP ? "does not end (a cycle, or too long)"
				    : "breaks (a link or a module is unreadable)", n);
	return n;
}

int vms_os_modules(struct vms_vm *vm, struct vms_module **ret_mods, size_t *ret_count)
{
	struct vms_module *mods = NULL;
	uint64_t *addrs = NULL, node;
	const struct module_layout *l;
	struct linux_kernel *k;
	struct list_walk lw;
	size_t n = 0, cap = 0, addr_cap = 0;
	uint8_t *mod;
	int more = 0, err = linux_kernel_get(vm, &k);

	if (err)
		return err;
	l = layout(k);
	if (!l)
		return -ENOENT;
	mod = malloc(l->span);
	if (!mod)
		return vm_error(vm, -ENOMEM, "out of memory");
	if (list_walk_start(&lw, k, l->head, MAX_MODULES))
		err = vm_error(vm, -EFAULT, "the module list is unreadable");
	while (!err && (more = list_walk_next(&lw, &node)) > 0) {
		uint64_t addr = node - l->list.offset, *grown;

		if (kread(k, addr, mod, l->span)) {
			more = -EFAULT; /* its next link is in what we cannot read */
			break;
		}
		if (kfield_get(&l->state, mod) == 3) /* Unformed: not yet a module */
			continue;
		grown = array_grow(addrs, &addr_cap, n, sizeof(*addrs));
		if (!grown || append(&mods, &n, &cap)) {
			free(grown ? grown : addrs);
			addrs = NULL;
			err = vm_error(vm, -ENOMEM, "out of memory");
			break;
		}
		addrs = grown;
		addrs[n] = addr;
		fill(l, mod, &mods[n++]);
	}
	if (!err && more < 0)
		n = module_list_partial(vm, more, addrs, n);
	free(addrs);
	free(mod);
	if (err) {
		free(mods);
		return err;
	}
	*ret_mods = mods;
	*ret_count = n;
	return 0;
}

int linux_module_read(struct linux_kernel *k, uint64_t addr, struct vms_module *ret)
{
	const struct module_layout *l = layout(k);
	uint8_t *mod;
	int err = 0;

	if (!l)
		return -ENOENT;
	mod = malloc(l->span);
	if (!mod)
		return vm_error(k->vm, -ENOMEM, "out of memory");
	memset(ret, 0, sizeof(*ret));
	if (kread(k, addr, mod, l->span))
		err = vm_error(k->vm, -EFAULT, "module at 0x%llx is unreadable",
			       (unsigned long long)addr);
	else
		fill(l, mod, ret);
	free(mod);
	return err;
}

/* The struct module of the loaded module called name (a bounded walk); -ENOENT if none. */
int linux_module_find(struct linux_kernel *k, const char *name, uint64_t *ret_addr)
{
	const struct module_layout *l = layout(k);
	struct list_walk lw;
	uint64_t node;
	char buf[64];

	if (!l || list_walk_start(&lw, k, l->head, MAX_MODULES))
		return -ENOENT;
	while (list_walk_next(&lw, &node) > 0) {
		uint64_t addr = node - l->list.offset;

		if (!kread_string(k, addr + l->name.offset, buf,
				  l->name.size < sizeof(buf) ? l->name.size + 1 : sizeof(buf)) &&
		    !strcmp(buf, name)) {
			*ret_addr = addr;
			return 0;
		}
	}
	return -ENOENT;
}
