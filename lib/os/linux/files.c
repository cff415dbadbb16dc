// SPDX-License-Identifier: MIT
/*
 * Open files of every process (lsof): task->files->fdt->fd[] gives each
 * descriptor's struct file; its path comes from f_path the way d_path()
 * builds it. Files of pseudo filesystems have names made by their dentry's
 * d_dname operation, which we recognise by address (kallsyms):
 * "socket:[INODE]", "pipe:[INODE]", "anon_inode:NAME". The descriptor table
 * is guest data: its size is capped and read in pieces.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"

#define MAX_FDS	      (1u << 20)
#define FD_CHUNK      512
#define MAX_OPEN_FILES (4u << 20)
#define MAX_SLOTS      (64u << 20) /* descriptor slots read in one view */
#define PATH_BUDGET    (256u << 20) /* bytes of paths in one view */

struct files_layout {
	struct kfield task_files, files_fdt, fdt_max, fdt_fd;
	struct kfield f_mnt, f_dentry, f_inode, f_flags, f_pos, f_private, i_ino, d_op, d_dname,
		d_name;
	uint64_t sockfs_dname, pipefs_dname, anon_dname;
};

struct files_walk {
	struct linux_kernel *k;
	const struct files_layout *l;
	struct vms_open_file *files;
	size_t n, cap;
	size_t path_bytes; /* of the view's budget, PATH_BUDGET */
	uint64_t slots;	   /* descriptor slots read, of MAX_SLOTS */
};

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct files_layout *l = layout;
	const struct kfield_want want[] = {
		{ &l->task_files, "task_struct", "files" },
		{ &l->files_fdt, "files_struct", "fdt" },
		{ &l->fdt_max, "fdtable", "max_fds" },
		{ &l->fdt_fd, "fdtable", "fd" },
		{ &l->f_mnt, "file", "f_path.mnt" },
		{ &l->f_dentry, "file", "f_path.dentry" },
		{ &l->f_inode, "file", "f_inode" },
		{ &l->f_flags, "file", "f_flags" },
		{ &l->f_pos, "file", "f_pos" },
		{ &l->f_private, "file", "private_data" },
		{ &l->i_ino, "inode", "i_ino" },
		{ &l->d_op, "dentry", "d_op" },
		{ &l->d_dname, "dentry_operations", "d_dname" },
		{ &l->d_name, "dentry", "d_name.name" },
	};

	if (kfields_require(k, want, ARRAY_SIZE(want)))
		return -ENOENT;
	l->sockfs_dname = kallsyms_lookup(&k->ksyms, "sockfs_dname");
	l->pipefs_dname = kallsyms_lookup(&k->ksyms, "pipefs_dname");
	l->anon_dname = kallsyms_lookup(&k->ksyms, "anon_inodefs_dname");
	return 0;
}

static struct files_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->files_layout, sizeof(struct files_layout), find_layout);
}

/* The name /proc/PID/fd shows for a file whose dentry names itself, or 0. */
static int pseudo_name(struct files_walk *w, uint64_t dentry, uint64_t ino, char *out,
		       size_t len)
{
	const struct files_layout *l = w->l;
	uint64_t ops = 0, dname = 0, name_ptr = 0;
	char name[256];

	if (kread_u64(w->k, dentry + l->d_op.offset, &ops) || !ops ||
	    kread_u64(w->k, ops + l->d_dname.offset, &dname) || !dname)
		return 0;
	if (dname == l->sockfs_dname)
		snprintf(out, len, "socket:[%llu]", (unsigned long long)ino);
	else if (dname == l->pipefs_dname)
		snprintf(out, len, "pipe:[%llu]", (unsigned long long)ino);
	else if (dname == l->anon_dname && !kread_u64(w->k, dentry + l->d_name.offset, &name_ptr) &&
		 !kread_string(w->k, name_ptr, name, sizeof(name)))
		snprintf(out, len, "anon_inode:%s", name);
	else
		snprintf(out, len, "?");
	return 1;
}

static struct vms_open_file *grow(struct files_walk *w)
{
	struct vms_open_file *f;

	f = array_grow(w->files, &w->cap, w->n, sizeof(*f));
	if (!f)
		return NULL;
	w->files = f;
	memset(&w->files[w->n], 0, sizeof(w->files[0]));
	return &w->files[w->n++];
}

static int add_file(struct files_walk *w, int pid, int fd, uint64_t file)
{
	const struct files_layout *l = w->l;
	uint64_t mnt = 0, dentry = 0, inode = 0, pos = 0, priv = 0;
	uint32_t flags = 0;
	struct vms_open_file *f;
	char path[4096];

	if (kread_u64(w->k, file + l->f_mnt.offset, &mnt) ||
	    kread_u64(w->k, file + l->f_dentry.offset, &dentry) ||
	    kread_u64(w->k, file + l->f_inode.offset, &inode) ||
	    kread_u32(w->k, file + l->f_flags.offset, &flags))
		return 0; /* a descriptor being torn down: not an open file any more */
	kread_u64(w->k, file + l->f_pos.offset, &pos);
	kread_u64(w->k, file + l->f_private.offset, &priv);
	if (w->n == MAX_OPEN_FILES || w->path_bytes >= PATH_BUDGET) {
		view_partial(w->k->vm, "more open files than the view lists: %zu listed", w->n);
		return -E2BIG;
	}
	f = grow(w);
	if (!f)
		return vm_error(w->k->vm, -ENOMEM, "out of memory");
	f->pid = pid;
	f->fd = fd;
	f->flags = flags;
	f->pos = pos;
	f->file = file;
	f->private_data = priv;
	if (inode)
		kread_u64(w->k, inode + l->i_ino.offset, &f->inode);
	if (!pseudo_name(w, dentry, f->inode, path, sizeof(path)) &&
	    linux_path(w->k, linux_mount_of_vfsmount(w->k, mnt), dentry, path, sizeof(path)))
		snprintf(path, sizeof(path), "?");
	f->path = strdup(path);
	if (!f->path)
		return vm_error(w->k->vm, -ENOMEM, "out of memory");
	w->path_bytes += strlen(path) + 1;
	return 0;
}

/* A process whose descriptors cannot be read is left out; the others are listed. */
static int partial_process(struct files_walk *w, const struct vms_process *p, const char *what)
{
	view_partial(w->k->vm, "the %s of pid %d are unreadable: its files are left out", what,
		     p->tgid);
	return 0;
}

static int process_files(struct files_walk *w, const struct vms_process *p)
{
	const struct files_layout *l = w->l;
	uint64_t files = 0, fdt = 0, array = 0, chunk[FD_CHUNK];
	uint32_t max = 0;

	if (kread_u64(w->k, p->task + l->task_files.offset, &files) || !files)
		return 0; /* exiting, or a kernel thread */
	if (kread_u64(w->k, files + l->files_fdt.offset, &fdt) ||
	    kread_u32(w->k, fdt + l->fdt_max.offset, &max) ||
	    kread_u64(w->k, fdt + l->fdt_fd.offset, &array))
		return partial_process(w, p, "descriptor table");
	if (max > MAX_FDS)
		max = MAX_FDS;
	for (uint32_t base = 0; base < max; base += FD_CHUNK) {
		uint32_t count = max - base < FD_CHUNK ? max - base : FD_CHUNK;

		w->slots += count;
		if (w->slots > MAX_SLOTS) {
			view_partial(w->k->vm, "the descriptor tables take more reads than the "
				     "view's budget: %zu files listed", w->n);
			return -E2BIG;
		}
		if (kread(w->k, array + 8ull * base, chunk, 8ull * count))
			return partial_process(w, p, "descriptors");
		for (uint32_t i = 0; i < count; i++) {
			int err = chunk[i] ? add_file(w, p->tgid, (int)(base + i), chunk[i]) : 0;

			if (err)
				return err;
		}
	}
	return 0;
}

void vms_open_files_free(struct vms_open_file *files, size_t count)
{
	for (size_t i = 0; files && i < count; i++)
		free(files[i].path);
	free(files);
}

int vms_os_open_files(struct vms_vm *vm, int pid, struct vms_open_file **ret_files,
		      size_t *ret_count)
{
	struct files_walk w = { 0 };
	struct vms_process *procs = NULL;
	size_t nprocs = 0;
	int err = linux_kernel_get(vm, &w.k);

	if (!err && !(w.l = layout(w.k)))
		err = -ENOENT;
	/* After the kernel (which starts a view afresh): a partial task list's warning stands. */
	if (!err)
		err = vms_os_processes(vm, LINUX_PS_NO_CMDLINE, &procs, &nprocs);
	if (err)
		return err;
	for (size_t i = 0; !err && i < nprocs; i++)
		if (pid < 0 || procs[i].tgid == pid)
			err = process_files(&w, &procs[i]);
	vms_processes_free(procs, nprocs);
	if (err == -E2BIG)
		err = 0; /* the budget: what was read stands, and was said so */
	if (err) {
		vms_open_files_free(w.files, w.n);
		return err;
	}
	*ret_files = w.files;
	*ret_count = w.n;
	return 0;
}
