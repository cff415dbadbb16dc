// SPDX-License-Identifier: MIT
/*
 * Mounts of init's mount namespace, as /proc/mounts lists them: device,
 * mount point, filesystem type, read-only or not; and the filesystem's UUID
 * (super_block.s_uuid), by which a disk's filesystem is found among them. The namespace keeps its
 * mounts in a list (mnt_namespace.list, mount.mnt_list) up to Linux 6.7 and
 * in a red-black tree (mnt_namespace.mounts, mount.mnt_node) since; BTF says
 * which. Tree walks keep an explicit, bounded stack. Like /proc/mounts, only
 * mounts at or below init's root are listed (since 7.0 the namespace's first
 * mount is a "nullfs" above the rootfs that init sees).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"
#include "os/linux/list.h"

#define MAX_MOUNTS    65536
#define MAX_RB_DEPTH  128
#define MAX_MNT_DEPTH 256
#define SB_RDONLY     1
#define MNT_READONLY  0x40

struct mounts_layout {
	struct kfield task_nsproxy, nsproxy_mnt_ns, ns_list, ns_mounts, mnt_list, mnt_node;
	struct kfield rb_left, rb_right, devname, mnt, mnt_sb, mnt_flags, mnt_root, sb_type,
		sb_flags, type_name, task_tasks, task_fs, fs_root, mnt_parent, sb_uuid;
	uint64_t init_task;
};

struct mount_walk {
	struct linux_kernel *k;
	const struct mounts_layout *l;
	struct vms_mount *mounts;
	size_t n, cap;
	uint64_t *addrs; /* each listed mount's address, to cut a cycle's repeats */
	size_t addrs_cap;
	uint64_t root; /* init's root mount (0: unknown, list all) */
};

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct mounts_layout *l = layout;
	if (kfield_require(k, "task_struct", "nsproxy", &l->task_nsproxy) ||
	    kfield_require(k, "nsproxy", "mnt_ns", &l->nsproxy_mnt_ns) ||
	    kfield_require(k, "mount", "mnt_devname", &l->devname) ||
	    kfield_require(k, "mount", "mnt", &l->mnt) ||
	    kfield_require(k, "vfsmount", "mnt_sb", &l->mnt_sb) ||
	    kfield_require(k, "vfsmount", "mnt_flags", &l->mnt_flags) ||
	    kfield_require(k, "vfsmount", "mnt_root", &l->mnt_root) ||
	    kfield_require(k, "super_block", "s_type", &l->sb_type) ||
	    kfield_require(k, "super_block", "s_flags", &l->sb_flags) ||
	    kfield_require(k, "file_system_type", "name", &l->type_name) ||
	    ksym_require(k, "init_task", &l->init_task))
		return -ENOENT;
	/* What init's root is, to leave out mounts above it; without it, all are listed. */
	kbtf_member(k->btf, "task_struct", "tasks", &l->task_tasks);
	kbtf_member(k->btf, "task_struct", "fs", &l->task_fs);
	kbtf_member(k->btf, "fs_struct", "root.mnt", &l->fs_root);
	kbtf_member(k->btf, "mount", "mnt_parent", &l->mnt_parent);
	kbtf_member(k->btf, "super_block", "s_uuid", &l->sb_uuid);
	/* (Before 6.8, "mounts" is a count; the list is what tells the old layout.) */
	if (!kbtf_member(k->btf, "mnt_namespace", "list", &l->ns_list))
		return kfield_require(k, "mount", "mnt_list", &l->mnt_list);
	if (kfield_require(k, "mnt_namespace", "mounts", &l->ns_mounts) ||
	    kfield_require(k, "mount", "mnt_node", &l->mnt_node) ||
	    kfield_require(k, "rb_node", "rb_left", &l->rb_left) ||
	    kfield_require(k, "rb_node", "rb_right", &l->rb_right))
		return -ENOENT;
	return 0;
}

static struct mounts_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->mounts_layout, sizeof(struct mounts_layout), find_layout);
}

/* The root mount of init (pid 1, the first task after init_task), or 0. */
static uint64_t init_root(struct linux_kernel *k, const struct mounts_layout *l)
{
	uint64_t next = 0, fs = 0, vfs = 0;

	if (!l->task_tasks.found || !l->task_fs.found || !l->fs_root.found ||
	    !l->mnt_parent.found ||
	    kread_u64(k, l->init_task + l->task_tasks.offset, &next) ||
	    kread_u64(k, next - l->task_tasks.offset + l->task_fs.offset, &fs) || !fs ||
	    kread_u64(k, fs + l->fs_root.offset, &vfs) || !vfs)
		return 0;
	return linux_mount_of_vfsmount(k, vfs);
}

/* Is mount at or below the root (its parents lead there, bounded)? */
static int reachable(const struct mount_walk *w, uint64_t mount)
{
	if (!w->root)
		return 1;
	for (int depth = 0; depth < MAX_MNT_DEPTH; depth++) {
		uint64_t parent;

		if (mount == w->root)
			return 1;
		if (kread_u64(w->k, mount + w->l->mnt_parent.offset, &parent) || parent == mount)
			return 0;
		mount = parent;
	}
	return 0;
}

/* s_uuid (16 bytes) as text; all zero (a filesystem without one) is "". */
static void add_uuid(struct linux_kernel *k, const struct mounts_layout *l, uint64_t sb,
		     struct vms_mount *m)
{
	uint8_t u[16], any = 0;

	if (!l->sb_uuid.found || kread(k, sb + l->sb_uuid.offset, u, sizeof(u)))
		return;
	for (size_t i = 0; i < sizeof(u); i++)
		any |= u[i];
	if (any)
		uuid_text(u, m->uuid);
}

static int add_mount(struct mount_walk *w, uint64_t mount)
{
	const struct mounts_layout *l = w->l;
	uint64_t vfs = mount + l->mnt.offset, devname = 0, sb = 0, type = 0, name = 0, root = 0;
	uint64_t sb_flags = 0;
	uint32_t mnt_flags = 0;
	struct vms_mount *m;

	uint64_t *addrs;

	if (!reachable(w, mount))
		return 0;
	m = array_grow(w->mounts, &w->cap, w->n, sizeof(*m));
	if (!m)
		return vm_error(w->k->vm, -ENOMEM, "out of memory");
	w->mounts = m;
	addrs = array_grow(w->addrs, &w->addrs_cap, w->n, sizeof(*addrs));
	if (!addrs)
		return vm_error(w->k->vm, -ENOMEM, "out of memory");
	w->addrs = addrs;
	m = &w->mounts[w->n];
	memset(m, 0, sizeof(*m));
	if (kread_u64(w->k, mount + l->devname.offset, &devname) ||
	    kread_u64(w->k, vfs + l->mnt_sb.offset, &sb) ||
	    kread_u64(w->k, vfs + l->mnt_root.offset, &root) ||
	    kread_u32(w->k, vfs + l->mnt_flags.offset, &mnt_flags) ||
	    kread_u64(w->k, sb + l->sb_type.offset, &type) ||
	    kread_u64(w->k, sb + l->sb_flags.offset, &sb_flags) ||
	    kread_u64(w->k, type + l->type_name.offset, &name)) {
		view_partial(w->k->vm, "a mount is unreadable and left out");
		return 0;
	}
	w->addrs[w->n] = mount;
	if (kread_string(w->k, devname, m->device, sizeof(m->device)))
		snprintf(m->device, sizeof(m->device), "?");
	if (kread_string(w->k, name, m->fstype, sizeof(m->fstype)))
		snprintf(m->fstype, sizeof(m->fstype), "?");
	if (linux_path(w->k, mount, root, m->mountpoint, sizeof(m->mountpoint)))
		snprintf(m->mountpoint, sizeof(m->mountpoint), "?");
	m->read_only = (mnt_flags & MNT_READONLY) || (sb_flags & SB_RDONLY);
	add_uuid(w->k, l, sb, m);
	w->n++;
	return 0;
}

static int walk_list(struct mount_walk *w, uint64_t ns)
{
	struct list_walk lw;
	uint64_t node;
	int more, err = 0;

	if (list_walk_start(&lw, w->k, ns + w->l->ns_list.offset, MAX_MOUNTS))
		return vm_error(w->k->vm, -EFAULT, "the mount list is unreadable");
	while (!err && (more = list_walk_next(&lw, &node)) > 0)
		err = add_mount(w, node - w->l->mnt_list.offset);
	if (!err && more < 0) {
		if (more == -ELOOP)
			w->n = list_first_repeat(w->addrs, w->n);
		view_partial(w->k->vm, "the mount list %s: %zu listed",
			     more == -ELOOP ? "does not end (a cycle?)" : "breaks", w->n);
	}
	return err;
}

/* A tree that breaks: what was read in order stands, each mount once. */
static int tree_partial(struct mount_walk *w, const char *how)
{
	w->n = list_first_repeat(w->addrs, w->n);
	view_partial(w->k->vm, "the mount tree %s: %zu listed", how, w->n);
	return 0;
}

/* In-order walk of the tree, so mounts come out in the order /proc lists them. */
static int walk_tree(struct mount_walk *w, uint64_t ns)
{
	uint64_t stack[MAX_RB_DEPTH], node = 0;
	size_t depth = 0, visited = 0;
	int err = 0;

	if (kread_u64(w->k, ns + w->l->ns_mounts.offset, &node))
		return vm_error(w->k->vm, -EFAULT, "the mount tree is unreadable");
	while (!err && (node || depth)) {
		if (node) {
			if (depth == MAX_RB_DEPTH || ++visited > MAX_MOUNTS)
				return tree_partial(w, "is malformed (too deep, or a cycle)");
			stack[depth++] = node;
			if (kread_u64(w->k, node + w->l->rb_left.offset, &node))
				return tree_partial(w, "breaks");
			continue;
		}
		node = stack[--depth];
		err = add_mount(w, node - w->l->mnt_node.offset);
		if (!err && kread_u64(w->k, node + w->l->rb_right.offset, &node))
			return tree_partial(w, "breaks");
	}
	return err;
}

int vms_os_mounts(struct vms_vm *vm, struct vms_mount **ret_mounts, size_t *ret_count)
{
	struct mount_walk w = { 0 };
	uint64_t nsproxy = 0, ns = 0;
	int err = linux_kernel_get(vm, &w.k);

	if (err)
		return err;
	w.l = layout(w.k);
	if (!w.l)
		return -ENOENT;
	if (kread_u64(w.k, w.l->init_task + w.l->task_nsproxy.offset, &nsproxy) ||
	    kread_u64(w.k, nsproxy + w.l->nsproxy_mnt_ns.offset, &ns))
		return vm_error(vm, -EFAULT, "init's mount namespace is unreadable");
	w.root = init_root(w.k, w.l);
	err = w.l->ns_list.found ? walk_list(&w, ns) : walk_tree(&w, ns);
	if (!err && list_first_repeat(w.addrs, w.n) < w.n) { /* a tree whose nodes share children */
		w.n = list_first_repeat(w.addrs, w.n);
		view_partial(vm, "a mount is reached twice: %zu listed", w.n);
	}
	free(w.addrs);
	if (err) {
		free(w.mounts);
		return err;
	}
	*ret_mounts = w.mounts;
	*ret_count = w.n;
	return 0;
}
