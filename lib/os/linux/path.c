// SPDX-License-Identifier: MIT
/*
 * Paths from (mount, dentry) pairs, as the kernel's d_path() builds them:
 * climb d_parent from the dentry to the root of its mount, then continue
 * from that mount's mountpoint in its parent mount, until the mount that is
 * its own parent. Components come from dentry->d_name. Depth and length are
 * bounded; a guest that builds a cycle gets a truncated, marked path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define MAX_COMPONENTS 1024
#define NAME_MAX_BYTES 256

struct path_layout {
	struct kfield d_parent, d_name, mnt_parent, mnt_mountpoint, mnt_root, mnt_in_mount;
};

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct path_layout *l = layout;
	if (kfield_require(k, "dentry", "d_parent", &l->d_parent) ||
	    kfield_require(k, "dentry", "d_name.name", &l->d_name) ||
	    kfield_require(k, "mount", "mnt_parent", &l->mnt_parent) ||
	    kfield_require(k, "mount", "mnt_mountpoint", &l->mnt_mountpoint) ||
	    kfield_require(k, "mount", "mnt", &l->mnt_in_mount) ||
	    kfield_require(k, "vfsmount", "mnt_root", &l->mnt_root))
		return -ENOENT;
	return 0;
}

static const struct path_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->path_layout, sizeof(struct path_layout), find_layout);
}

uint64_t linux_mount_of_vfsmount(struct linux_kernel *k, uint64_t vfsmount)
{
	const struct path_layout *l = layout(k);

	return l ? vfsmount - l->mnt_in_mount.offset : 0;
}

/* Put name in front of the path being built at the end of buf. */
static int prepend(char *buf, size_t *start, const char *name)
{
	size_t len = strlen(name);

	if (len + 1 > *start)
		return -ENAMETOOLONG;
	*start -= len;
	memcpy(buf + *start, name, len);
	buf[--*start] = '/';
	return 0;
}

int linux_path(struct linux_kernel *k, uint64_t mount, uint64_t dentry, char *buf, size_t len)
{
	const struct path_layout *l = layout(k);
	size_t start = len - 1;
	int steps = 0;

	if (!l || len < 2)
		return -ENOENT;
	buf[start] = '\0';
	while (steps++ < MAX_COMPONENTS) {
		uint64_t root = 0, parent = 0, name_ptr = 0;
		char name[NAME_MAX_BYTES];

		if (kread_u64(k, mount + l->mnt_in_mount.offset + l->mnt_root.offset, &root))
			return -EFAULT;
		if (dentry == root) {
			if (kread_u64(k, mount + l->mnt_parent.offset, &parent) || !parent)
				return -EFAULT;
			if (parent == mount)
				break;
			if (kread_u64(k, mount + l->mnt_mountpoint.offset, &dentry))
				return -EFAULT;
			mount = parent;
			continue;
		}
		if (kread_u64(k, dentry + l->d_parent.offset, &parent) ||
		    kread_u64(k, dentry + l->d_name.offset, &name_ptr) ||
		    kread_string(k, name_ptr, name, sizeof(name)))
			return -EFAULT;
		if (parent == dentry) /* a root that is not its mount's root: detached */
			break;
		if (prepend(buf, &start, name))
			return -ENAMETOOLONG;
		dentry = parent;
	}
	if (steps > MAX_COMPONENTS)
		return -ELOOP;
	if (start == len - 1)
		buf[--start] = '/';
	memmove(buf, buf + start, len - start);
	return 0;
}
