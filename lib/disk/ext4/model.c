// SPDX-License-Identifier: MIT
/*
 * The engine's model of the filesystem: inodes, who owns which blocks, the
 * cached bytes of directory blocks and extent-tree nodes, and paths from
 * name links. Blocks are read through the transaction being applied, then
 * the cache, then the device; walks are bounded and damaged structures are
 * skipped and counted, never followed.
 */
#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "disk/ext4/model.h"

static int by_ino(const void *a, const void *b)
{
	const struct fs_inode *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Runs never overlap, so "overlaps" is equality: a point finds the run holding it. */
static int by_range(const void *a, const void *b)
{
	const struct fs_owner *x = a, *y = b;

	if (x->start + x->len <= y->start)
		return -1;
	return y->start + y->len <= x->start ? 1 : 0;
}

static int by_block(const void *a, const void *b)
{
	const struct fs_block *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

int model_is_dir(const struct ext4_inode_info *i)
{
	return S_ISDIR(i->mode);
}

int model_has_blocks(const struct ext4_inode_info *i)
{
	return (i->flags & EXT4_EXTENTS_FL) && !(i->flags & EXT4_INLINE_DATA_FL);
}

struct fs_inode *model_inode(struct ext4_engine *e, uint32_t ino)
{
	struct fs_inode key = { .ino = ino };
	void *found = tfind(&key, &e->inodes, by_ino);

	return found ? *(struct fs_inode **)found : NULL;
}

struct fs_inode *model_inode_add(struct ext4_engine *e, uint32_t ino)
{
	struct fs_inode *n = model_inode(e, ino);
	void *slot;

	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->ino = ino;
	slot = tsearch(n, &e->inodes, by_ino);
	if (!slot) {
		free(n);
		return NULL;
	}
	e->st.inodes++;
	return n;
}

void model_inode_drop(struct ext4_engine *e, struct fs_inode *n)
{
	model_unmap(e, n);
	tdelete(n, &e->inodes, by_ino);
	ext4_extents_release(&n->ext);
	free(n->name);
	free(n);
	e->st.inodes--;
}

const struct fs_owner *model_owner(struct ext4_engine *e, uint64_t block)
{
	struct fs_owner key = { .start = block, .len = 1 };
	void *found = tfind(&key, &e->owners, by_range);

	return found ? *(struct fs_owner **)found : NULL;
}

static void owner_remove(struct ext4_engine *e, uint64_t start, uint32_t ino)
{
	struct fs_owner key = { .start = start, .len = 1 };
	void *found = tfind(&key, &e->owners, by_range);
	struct fs_owner *o = found ? *(struct fs_owner **)found : NULL;

	if (o && o->ino == ino && o->start == start) {
		tdelete(o, &e->owners, by_range);
		free(o);
	}
}

/* Claim a run; a stale claim by another inode (damage, or a free we missed) gives way. */
static int owner_add(struct ext4_engine *e, uint64_t start, uint32_t len, uint32_t ino,
		     uint32_t logical, enum owner_kind kind)
{
	struct fs_owner *o = malloc(sizeof(*o));

	if (!o)
		return -ENOMEM;
	*o = (struct fs_owner){ start, len, ino, logical, (uint8_t)kind };
	for (int tries = 0; tries < 64; tries++) {
		void *slot = tsearch(o, &e->owners, by_range);
		struct fs_owner *old;

		if (!slot)
			break;
		old = *(struct fs_owner **)slot;
		if (old == o)
			return 0;
		tdelete(old, &e->owners, by_range);
		free(old);
	}
	free(o);
	return -ENOMEM;
}

int model_map(struct ext4_engine *e, struct fs_inode *n)
{
	int err = 0;

	for (size_t i = 0; !err && i < n->ext.nr; i++) {
		const struct ext4_extent_map *m = &n->ext.map[i];

		err = owner_add(e, m->physical, m->len, n->ino, m->logical, OWNER_DATA);
	}
	for (size_t i = 0; !err && i < n->ext.nr_nodes; i++)
		err = owner_add(e, n->ext.nodes[i], 1, n->ino, 0, OWNER_NODE);
	return err;
}

void model_unmap(struct ext4_engine *e, struct fs_inode *n)
{
	for (size_t i = 0; i < n->ext.nr; i++)
		owner_remove(e, n->ext.map[i].physical, n->ino);
	for (size_t i = 0; i < n->ext.nr_nodes; i++)
		owner_remove(e, n->ext.nodes[i], n->ino);
}

struct fs_block *model_cached(struct ext4_engine *e, uint64_t block)
{
	struct fs_block key = { .block = block };
	void *found = tfind(&key, &e->blocks, by_block);

	return found ? *(struct fs_block **)found : NULL;
}

int model_cache(struct ext4_engine *e, uint64_t block, const uint8_t *data)
{
	struct fs_block *b = model_cached(e, block);

	if (!b) {
		b = malloc(sizeof(*b) + e->l.block_size);
		if (!b)
			return -ENOMEM;
		b->block = block;
		b->data = (uint8_t *)(b + 1);
		if (!tsearch(b, &e->blocks, by_block)) {
			free(b);
			return -ENOMEM;
		}
	}
	memcpy(b->data, data, e->l.block_size);
	return 0;
}

void model_uncache(struct ext4_engine *e, uint64_t block)
{
	struct fs_block *b = model_cached(e, block);

	if (b) {
		tdelete(b, &e->blocks, by_block);
		free(b);
	}
}

const struct fs_block *model_batch_find(const struct ext4_engine *e, uint64_t block)
{
	struct fs_block key = { .block = block };

	return e->nr_batch ? bsearch(&key, e->batch, e->nr_batch, sizeof(*e->batch), by_block)
			   : NULL;
}

int model_device_block(void *engine, uint64_t block, void *buf)
{
	struct ext4_engine *e = engine;

	if (block >= e->l.blocks)
		return -EINVAL;
	return e->read(e->read_ctx, block * e->l.block_size, buf, e->l.block_size);
}

int model_block(void *engine, uint64_t block, void *buf)
{
	struct ext4_engine *e = engine;
	const struct fs_block *b = model_batch_find(e, block);

	if (!b)
		b = model_cached(e, block);
	if (b) {
		memcpy(buf, b->data, e->l.block_size);
		return 0;
	}
	return model_device_block(e, block, buf);
}

int model_walk_extents(struct ext4_engine *e, struct fs_inode *n, struct ext4_extent_list *list)
{
	int err = ext4_extents_walk(&n->info, e->l.block_size, e->l.blocks, model_block, e, list);

	if (err == -EINVAL)
		e->st.errors++; /* keep what was valid */
	return err == -ENOMEM ? err : 0;
}

int model_set_name(struct fs_inode *n, uint32_t parent, const char *name, size_t len)
{
	char *copy = strndup(name, len);

	if (!copy)
		return -ENOMEM;
	free(n->name);
	n->name = copy;
	n->parent = parent;
	return 0;
}

const char *model_path(struct ext4_engine *e, uint32_t ino, char *buf)
{
	const char *parts[MAX_PATH_DEPTH];
	size_t nr = 0, used = 0;

	while (ino != EXT4_ROOT_INO && nr < MAX_PATH_DEPTH) {
		struct fs_inode *n = model_inode(e, ino);

		if (!n || !n->name || !n->parent) {
			parts[nr++] = "?"; /* a name we never saw: say so, do not guess */
			break;
		}
		parts[nr++] = n->name;
		ino = n->parent;
	}
	if (!nr)
		return strcpy(buf, "/");
	while (nr--) {
		int w = snprintf(buf + used, PATH_BYTES - used, "/%s", parts[nr]);

		if (w < 0 || (size_t)w >= PATH_BYTES - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

const char *ext4_action_name(enum ext4_action action)
{
	static const char *const names[] = {
		[EXT4_CREATE] = "create", [EXT4_MKDIR] = "mkdir",	[EXT4_SYMLINK] = "symlink",
		[EXT4_LINK] = "link",	  [EXT4_WRITE] = "write",	[EXT4_TRUNCATE] = "truncate",
		[EXT4_RENAME] = "rename", [EXT4_DELETE] = "delete",	[EXT4_RMDIR] = "rmdir",
		[EXT4_CHMOD] = "chmod",	  [EXT4_CHOWN] = "chown",
	};

	return (unsigned int)action < sizeof(names) / sizeof(*names) ? names[action] : "unknown";
}
