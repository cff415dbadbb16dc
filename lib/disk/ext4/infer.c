// SPDX-License-Identifier: MIT
/*
 * Turning changed blocks into file events. A transaction's blocks are
 * applied together: inode-table slots are diffed against the model, extent
 * trees re-walked where an inode or one of its tree nodes changed, and every
 * directory block that changed (or joined or left a directory) is diffed as
 * a set of name -> inode entries. Across all of them, a name that left one
 * place and reappeared elsewhere with the same inode is a rename; one that
 * appeared for a newly allocated inode is a create (mkdir, symlink); for an
 * existing inode, a link; one that only left is a delete (rmdir). Inodes that
 * stay keep their identity: mode, owner and size changes become chmod,
 * chown and truncate. (Data writes: write.c.)
 */
#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "disk/ext4/model.h"

enum dirblk_kind { DB_CHANGED, DB_GONE, DB_ADDED };

struct change {
	uint32_t ino;
	int had, created;
	struct ext4_inode_info before, after;
};

struct dirblk {
	uint64_t block;
	uint32_t dir;
	int kind;
};

struct entry {
	uint32_t dir, ino;
	char *name, *path;
	int paired;
};

struct entries {
	struct entry *v;
	size_t nr, cap;
};

struct commit {
	struct change *changes;
	size_t nr_changes, cap_changes;
	uint32_t *rewalk;
	size_t nr_rewalk, cap_rewalk;
	struct dirblk *dirblks;
	size_t nr_dirblks, cap_dirblks;
	struct entries removed, added;
};

static int by_ino(const void *a, const void *b)
{
	const struct change *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int by_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int by_dirblk(const void *a, const void *b)
{
	const struct dirblk *x = a, *y = b;

	if (x->block != y->block)
		return x->block < y->block ? -1 : 1;
	return x->kind - y->kind;
}

static int by_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	if (c)
		return c;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int by_block(const void *a, const void *b)
{
	const struct fs_block *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

static struct change *find_change(struct commit *c, uint32_t ino)
{
	struct change key = { .ino = ino };

	return c->nr_changes ? bsearch(&key, c->changes, c->nr_changes, sizeof(key), by_ino) : NULL;
}

/* -- phase 1: what the transaction touched -- */

static int diff_inode_block(struct ext4_engine *e, struct commit *c, const struct fs_block *b,
			    uint32_t g)
{
	uint32_t per_block = e->l.block_size / e->l.inode_size;
	uint64_t first = (b->block - e->l.group[g].inode_table) * per_block;
	int err = 0;

	for (uint32_t s = 0; !err && s < per_block; s++) {
		uint64_t idx = first + s, ino = (uint64_t)g * e->l.inodes_per_group + idx + 1;
		struct change ch = { .ino = (uint32_t)ino };
		struct fs_inode *n;

		if (idx >= e->l.inodes_per_group || ino > e->l.inodes)
			break;
		if (ino < e->l.first_ino && ino != EXT4_ROOT_INO)
			continue;
		if (e->l.metadata_csum && !ext4_inode_csum_ok(b->data + (size_t)s * e->l.inode_size,
							      e->l.inode_size, (uint32_t)ino,
							      e->l.csum_seed)) {
			e->st.checksum_failures++; /* damaged: no change is believed */
			continue;
		}
		ext4_inode_decode(b->data + (size_t)s * e->l.inode_size, e->l.inode_size, &ch.after);
		n = model_inode(e, ch.ino);
		if (n ? !ext4_inode_differs(&n->info, &ch.after) : !ext4_inode_live(&ch.after))
			continue;
		if (n) {
			ch.before = n->info;
			ch.had = ext4_inode_live(&n->info);
		}
		ch.created = ext4_inode_live(&ch.after) &&
			     (!ch.had || ch.before.generation != ch.after.generation ||
			      ch.before.crtime != ch.after.crtime);
		err = PUSH(c->changes, c->nr_changes, c->cap_changes, ch);
	}
	return err;
}

static int scan_batch(struct ext4_engine *e, struct commit *c)
{
	int err = 0;

	for (size_t i = 0; !err && i < e->nr_batch; i++) {
		const struct fs_block *b = &e->batch[i];
		const struct fs_owner *o;
		struct fs_inode *n;
		uint32_t g;

		switch (ext4_classify(&e->l, b->block, &g)) {
		case EXT4_BLOCK_INODE_TABLE:
			err = diff_inode_block(e, c, b, g);
			break;
		case EXT4_BLOCK_DATA:
			o = model_owner(e, b->block);
			n = o ? model_inode(e, o->ino) : NULL;
			if (n && o->kind == OWNER_NODE)
				err = PUSH(c->rewalk, c->nr_rewalk, c->cap_rewalk, o->ino);
			else if (n && model_is_dir(&n->info))
				err = PUSH(c->dirblks, c->nr_dirblks, c->cap_dirblks,
					   ((struct dirblk){ b->block, o->ino, DB_CHANGED }));
			break;
		default:
			break; /* bitmaps, superblock, descriptors: implied by the rest */
		}
	}
	sort_array(c->changes, c->nr_changes, sizeof(*c->changes), by_ino);
	return err;
}

/* -- phase 2: inodes and their block maps -- */

static int block_in(const struct ext4_extent_list *l, uint64_t block)
{
	for (size_t i = 0; i < l->nr; i++)
		if (block >= l->map[i].physical && block - l->map[i].physical < l->map[i].len)
			return 1;
	return 0;
}

static int node_in(const struct ext4_extent_list *l, uint64_t block)
{
	for (size_t i = 0; i < l->nr_nodes; i++)
		if (l->nodes[i] == block)
			return 1;
	return 0;
}

/* Directory blocks in from and not in to, as dirblks of kind. */
static int dir_blocks_moved(struct commit *c, uint32_t dir, const struct ext4_extent_list *from,
			    const struct ext4_extent_list *to, int kind)
{
	int err = 0;

	for (size_t i = 0; !err && i < from->nr; i++)
		for (uint32_t b = 0; !err && b < from->map[i].len; b++) {
			uint64_t block = from->map[i].physical + b;

			if (!to || !block_in(to, block))
				err = PUSH(c->dirblks, c->nr_dirblks, c->cap_dirblks,
					   ((struct dirblk){ block, dir, kind }));
		}
	return err;
}

struct collect {
	struct entries *out;
	uint32_t dir;
};

static int collect_entry(void *ctx, const struct ext4_dirent *d)
{
	struct collect *c = ctx;
	struct entry en = { .dir = c->dir, .ino = d->ino };

	en.name = strndup(d->name, d->name_len);
	if (!en.name)
		return -ENOMEM;
	if (PUSH(c->out->v, c->out->nr, c->out->cap, en)) {
		free(en.name);
		return -ENOMEM;
	}
	return 0;
}

static void entries_free(struct entries *l)
{
	for (size_t i = 0; i < l->nr; i++) {
		free(l->v[i].name);
		free(l->v[i].path);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Entries in old and not in new go to removed, the reverse to added. */
static int diff_entries(struct commit *c, struct entries *old, struct entries *new)
{
	size_t i = 0, j = 0;
	int err = 0;

	sort_array(old->v, old->nr, sizeof(*old->v), by_entry);
	sort_array(new->v, new->nr, sizeof(*new->v), by_entry);
	while (!err && (i < old->nr || j < new->nr)) {
		int cmp = i == old->nr ? 1 : j == new->nr ? -1 : by_entry(&old->v[i], &new->v[j]);

		if (!cmp) {
			i++, j++;
			continue;
		}
		if (cmp < 0) {
			err = PUSH(c->removed.v, c->removed.nr, c->removed.cap, old->v[i]);
			if (!err)
				old->v[i++].name = NULL;
		} else {
			err = PUSH(c->added.v, c->added.nr, c->added.cap, new->v[j]);
			if (!err)
				new->v[j++].name = NULL;
		}
	}
	entries_free(old);
	entries_free(new);
	return err;
}

static int diff_inline_dir(struct commit *c, uint32_t dir, const struct ext4_inode_info *before,
			   const struct ext4_inode_info *after)
{
	struct entries old = { 0 }, new = { 0 };
	struct collect co = { &old, dir }, cn = { &new, dir };

	if (before && model_is_dir(before) && (before->flags & EXT4_INLINE_DATA_FL) &&
	    ext4_dir_inline_walk(before->i_block, collect_entry, &co) == -ENOMEM)
		goto oom;
	if (after && model_is_dir(after) && (after->flags & EXT4_INLINE_DATA_FL) &&
	    ext4_inode_live(after) && ext4_dir_inline_walk(after->i_block, collect_entry, &cn) == -ENOMEM)
		goto oom;
	return diff_entries(c, &old, &new);
oom:
	entries_free(&old);
	entries_free(&new);
	return -ENOMEM;
}

static int rewalk(struct ext4_engine *e, struct commit *c, struct fs_inode *n)
{
	struct change *ch = find_change(c, n->ino);
	const struct ext4_inode_info *before = ch ? (ch->had ? &ch->before : NULL) : &n->info;
	int was_dir = before && model_is_dir(before), live = ext4_inode_live(&n->info);
	int is_dir = live && model_is_dir(&n->info), err = 0;
	struct ext4_extent_list fresh = { 0 };

	if (live && model_has_blocks(&n->info))
		err = model_walk_extents(e, n, &fresh);
	if (!err && was_dir)
		err = dir_blocks_moved(c, n->ino, &n->ext, is_dir ? &fresh : NULL, DB_GONE);
	if (!err && is_dir)
		err = dir_blocks_moved(c, n->ino, &fresh, was_dir ? &n->ext : NULL, DB_ADDED);
	if (!err && ((before && (before->flags & EXT4_INLINE_DATA_FL)) ||
		     (n->info.flags & EXT4_INLINE_DATA_FL)) && (was_dir || is_dir))
		err = diff_inline_dir(c, n->ino, before, &n->info);
	for (size_t i = 0; !err && i < n->ext.nr_nodes; i++)
		if (!node_in(&fresh, n->ext.nodes[i]))
			model_uncache(e, n->ext.nodes[i]);
	for (size_t i = 0; !err && i < fresh.nr_nodes; i++)
		if (!model_block(e, fresh.nodes[i], e->scratch))
			err = model_cache(e, fresh.nodes[i], e->scratch);
	if (err) {
		ext4_extents_release(&fresh);
		return err;
	}
	model_unmap(e, n);
	ext4_extents_release(&n->ext);
	n->ext = fresh;
	return model_map(e, n);
}

static int apply_inodes(struct ext4_engine *e, struct commit *c)
{
	int err = 0;

	for (size_t i = 0; !err && i < c->nr_changes; i++) {
		struct fs_inode *n = model_inode_add(e, c->changes[i].ino);

		if (!n)
			return -ENOMEM;
		n->info = c->changes[i].after;
		err = PUSH(c->rewalk, c->nr_rewalk, c->cap_rewalk, n->ino);
	}
	sort_array(c->rewalk, c->nr_rewalk, sizeof(*c->rewalk), by_u32);
	for (size_t i = 0; !err && i < c->nr_rewalk; i++) {
		struct fs_inode *n;

		if (i && c->rewalk[i] == c->rewalk[i - 1])
			continue;
		n = model_inode(e, c->rewalk[i]);
		if (n)
			err = rewalk(e, c, n);
	}
	return err;
}

/* -- phase 3: directories as sets of names -- */

int dir_block_checks(struct ext4_engine *e, uint32_t dir, const uint8_t *block)
{
	const struct fs_inode *n = model_inode(e, dir);

	if (!e->l.metadata_csum || !n ||
	    ext4_dir_block_csum_ok(block, e->l.block_size, e->l.csum_seed, dir, n->info.generation))
		return 1;
	e->st.checksum_failures++;
	return 0;
}

static int diff_dir_block(struct ext4_engine *e, struct commit *c, const struct dirblk *d)
{
	struct entries old = { 0 }, new = { 0 };
	struct collect co = { &old, d->dir }, cn = { &new, d->dir };
	const struct fs_block *cached = d->kind == DB_ADDED ? NULL : model_cached(e, d->block);
	int err = 0;

	if (cached && ext4_dir_block_walk(cached->data, e->l.block_size, collect_entry, &co) ==
			      -ENOMEM)
		err = -ENOMEM;
	if (!err && d->kind != DB_GONE) {
		err = model_block(e, d->block, e->scratch);
		if (!err && !dir_block_checks(e, d->dir, e->scratch)) {
			entries_free(&old);
			return 0; /* damaged: the names it held before stand */
		}
		if (!err && ext4_dir_block_walk(e->scratch, e->l.block_size, collect_entry, &cn) ==
				    -ENOMEM)
			err = -ENOMEM;
		err = err ?: model_cache(e, d->block, e->scratch);
	} else if (!err) {
		model_uncache(e, d->block);
	}
	if (err) {
		entries_free(&old);
		entries_free(&new);
		return err;
	}
	return diff_entries(c, &old, &new);
}

/* A name that moved between blocks of one directory (an htree split) is no change. */
static void cancel_moves(struct commit *c)
{
	size_t i = 0, j = 0;

	sort_array(c->removed.v, c->removed.nr, sizeof(struct entry), by_entry);
	sort_array(c->added.v, c->added.nr, sizeof(struct entry), by_entry);
	while (i < c->removed.nr && j < c->added.nr) {
		int cmp = by_entry(&c->removed.v[i], &c->added.v[j]);

		if (!cmp) {
			c->removed.v[i++].paired = -1;
			c->added.v[j++].paired = -1;
		} else if (cmp < 0) {
			i++;
		} else {
			j++;
		}
	}
}

static int diff_directories(struct ext4_engine *e, struct commit *c)
{
	int err = 0;

	sort_array(c->dirblks, c->nr_dirblks, sizeof(*c->dirblks), by_dirblk);
	for (size_t i = 0; !err && i < c->nr_dirblks; i++) {
		if (i && !by_dirblk(&c->dirblks[i], &c->dirblks[i - 1]))
			continue;
		err = diff_dir_block(e, c, &c->dirblks[i]);
	}
	if (!err)
		cancel_moves(c);
	return err;
}

/* -- phase 4: events -- */

static void emit(struct ext4_engine *e, enum ext4_action action, uint32_t ino, const char *path,
		 const char *old_path, const struct ext4_inode_info *info)
{
	struct ext4_fs_event ev = { action, ino, path, old_path, NULL, info, 0, 0,
				    e->batch_seen_ns };
	char target[EXT4_IBLOCK_BYTES + 1];

	if (action == EXT4_SYMLINK && info->size < sizeof(target) && !model_has_blocks(info)) {
		memcpy(target, info->i_block, (size_t)info->size);
		target[info->size] = 0;
		ev.target = target;
	}
	if (e->emit)
		e->emit(e->emit_ctx, &ev);
}

static char *entry_path(struct ext4_engine *e, const struct entry *en)
{
	char dir[PATH_BYTES], *path;
	const char *d = model_path(e, en->dir, dir);

	if (asprintf(&path, "%s/%s", strcmp(d, "/") ? d : "", en->name) < 0)
		return NULL;
	return path;
}

static int depth(const char *path)
{
	int n = 0;

	for (; path && *path; path++)
		n += *path == '/';
	return n;
}

static int deeper_first(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return depth(y->path) - depth(x->path);
}

static int shallower_first(const void *a, const void *b)
{
	return deeper_first(b, a);
}

static int name_paths(struct ext4_engine *e, struct entries *l)
{
	for (size_t i = 0; i < l->nr; i++)
		if (l->v[i].paired >= 0 && !(l->v[i].path = entry_path(e, &l->v[i])))
			return -ENOMEM;
	return 0;
}

static int relink(struct ext4_engine *e, struct commit *c)
{
	for (size_t i = 0; i < c->removed.nr; i++) {
		const struct entry *r = &c->removed.v[i];
		struct fs_inode *n = model_inode(e, r->ino);

		if (r->paired >= 0 && n && n->parent == r->dir && n->name &&
		    !strcmp(n->name, r->name)) {
			free(n->name);
			n->name = NULL;
			n->parent = 0;
		}
	}
	for (size_t i = 0; i < c->added.nr; i++) {
		const struct entry *a = &c->added.v[i];
		struct fs_inode *n = model_inode(e, a->ino);

		/* A new hard link leaves the name events already use for the file. */
		if (a->paired < 0 || !n || (!a->paired && n->name && n->parent))
			continue;
		if (model_set_name(n, a->dir, a->name, strlen(a->name)))
			return -ENOMEM;
	}
	return 0;
}

static void pair_renames(struct commit *c)
{
	for (size_t i = 0; i < c->removed.nr; i++) {
		struct entry *r = &c->removed.v[i];
		struct change *ch = find_change(c, r->ino);

		if (r->paired || (ch && ch->created))
			continue;
		for (size_t j = 0; j < c->added.nr; j++) {
			struct entry *a = &c->added.v[j];

			if (!a->paired && a->ino == r->ino) {
				r->paired = 1;
				a->paired = (int)i + 1;
				break;
			}
		}
	}
}

static void emit_names(struct ext4_engine *e, struct commit *c)
{
	sort_array(c->removed.v, c->removed.nr, sizeof(struct entry), deeper_first);
	for (size_t i = 0; i < c->removed.nr; i++) {
		const struct entry *r = &c->removed.v[i];
		struct change *ch = find_change(c, r->ino);
		struct fs_inode *n = model_inode(e, r->ino);
		const struct ext4_inode_info *info = ch && ch->had ? &ch->before
						     : n		? &n->info
									: NULL;

		if (!r->paired && info)
			emit(e, model_is_dir(info) ? EXT4_RMDIR : EXT4_DELETE, r->ino, r->path, NULL,
			     info);
	}
	for (size_t i = 0; i < c->added.nr; i++) {
		const struct entry *a = &c->added.v[i];
		struct fs_inode *n = model_inode(e, a->ino);

		if (a->paired > 0 && n) {
			for (size_t k = 0; k < c->removed.nr; k++)
				if (c->removed.v[k].paired == 1 && c->removed.v[k].ino == a->ino &&
				    c->removed.v[k].path) {
					emit(e, EXT4_RENAME, a->ino, a->path, c->removed.v[k].path,
					     &n->info);
					c->removed.v[k].paired = 2; /* reported */
					break;
				}
		}
	}
	sort_array(c->added.v, c->added.nr, sizeof(struct entry), shallower_first);
	for (size_t i = 0; i < c->added.nr; i++) {
		const struct entry *a = &c->added.v[i];
		struct change *ch = find_change(c, a->ino);
		struct fs_inode *n = model_inode(e, a->ino);
		enum ext4_action action = EXT4_LINK;

		if (a->paired || !n || !ext4_inode_live(&n->info))
			continue;
		if (ch && ch->created)
			action = model_is_dir(&n->info)	      ? EXT4_MKDIR
				 : S_ISLNK(n->info.mode) ? EXT4_SYMLINK
							  : EXT4_CREATE;
		emit(e, action, a->ino, a->path, NULL, &n->info);
	}
}

static void emit_attributes(struct ext4_engine *e, struct commit *c)
{
	char path[PATH_BYTES];

	for (size_t i = 0; i < c->nr_changes; i++) {
		const struct change *ch = &c->changes[i];
		const struct ext4_inode_info *b = &ch->before, *a = &ch->after;

		if (!ch->had || ch->created || !ext4_inode_live(a))
			continue;
		if ((b->mode ^ a->mode) & 07777)
			emit(e, EXT4_CHMOD, ch->ino, model_path(e, ch->ino, path), NULL, a);
		if (b->uid != a->uid || b->gid != a->gid)
			emit(e, EXT4_CHOWN, ch->ino, model_path(e, ch->ino, path), NULL, a);
		if (S_ISREG(a->mode) && a->size < b->size)
			emit(e, EXT4_TRUNCATE, ch->ino, model_path(e, ch->ino, path), NULL, a);
	}
}

static void forget_freed(struct ext4_engine *e, struct commit *c)
{
	for (size_t i = 0; i < c->nr_changes; i++) {
		struct fs_inode *n;

		if (ext4_inode_live(&c->changes[i].after))
			continue;
		n = model_inode(e, c->changes[i].ino);
		if (n)
			model_inode_drop(e, n);
	}
}

static void commit_free(struct ext4_engine *e, struct commit *c)
{
	free(c->changes);
	free(c->rewalk);
	free(c->dirblks);
	entries_free(&c->removed);
	entries_free(&c->added);
	for (size_t i = 0; i < e->nr_batch; i++)
		free(e->batch[i].data);
	e->nr_batch = 0;
}

/* Later copies of a block in one batch win (no-journal replays may repeat one). */
static void sort_batch(struct ext4_engine *e)
{
	size_t out = 0;

	sort_array(e->batch, e->nr_batch, sizeof(*e->batch), by_block);
	for (size_t i = 0; i < e->nr_batch; i++) {
		if (out && e->batch[out - 1].block == e->batch[i].block) {
			free(e->batch[out - 1].data);
			e->batch[out - 1] = e->batch[i];
			continue;
		}
		e->batch[out++] = e->batch[i];
	}
	e->nr_batch = out;
}

int infer_commit(struct ext4_engine *e)
{
	struct commit c = { 0 };
	int err;

	if (!e->nr_batch)
		return 0;
	e->st.batches++;
	e->st.blocks_applied += e->nr_batch;
	sort_batch(e);
	err = scan_batch(e, &c);
	err = err ?: apply_inodes(e, &c);
	err = err ?: diff_directories(e, &c);
	err = err ?: name_paths(e, &c.removed);
	if (!err)
		pair_renames(&c);
	err = err ?: relink(e, &c);
	err = err ?: name_paths(e, &c.added);
	if (!err) {
		emit_names(e, &c);
		emit_attributes(e, &c);
		forget_freed(e, &c);
	}
	commit_free(e, &c);
	return err ?: write_retry_pending(e);
}

int infer_batch_add(struct ext4_engine *e, uint64_t block, const uint8_t *data)
{
	struct fs_block b = { block, malloc(e->l.block_size) };

	if (!b.data)
		return -ENOMEM;
	memcpy(b.data, data, e->l.block_size);
	if (PUSH(e->batch, e->nr_batch, e->cap_batch, b)) {
		free(b.data);
		return -ENOMEM;
	}
	return 0;
}
