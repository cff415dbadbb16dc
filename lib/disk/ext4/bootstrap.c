// SPDX-License-Identifier: MIT
/*
 * Building the model: probe (layout, where the journal lies), then
 * bootstrap: replay the journal's committed tail into the block cache, read
 * the group descriptors again through it, every used inode-table slot, each
 * inode's extent tree, each directory. Also the engine's lifetime and
 * figures. Everything read is disk data from a guest we do not trust.
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

#define SCAN_CHUNK     (1u << 20)
#define MAX_DIR_BLOCKS (1u << 20)

static int read_inode_raw(struct ext4_engine *e, uint32_t ino, uint8_t *raw)
{
	uint32_t g = (ino - 1) / e->l.inodes_per_group, idx = (ino - 1) % e->l.inodes_per_group;
	uint32_t per_block = e->l.block_size / e->l.inode_size;
	uint64_t block = e->l.group[g].inode_table + idx / per_block;
	int err = model_block(e, block, e->scratch);

	if (!err)
		memcpy(raw, e->scratch + (idx % per_block) * e->l.inode_size, e->l.inode_size);
	return err;
}

static int open_journal(struct ext4_engine *e)
{
	struct fs_inode probe = { .ino = e->l.journal_inode };
	uint8_t *raw = malloc(e->l.inode_size);
	int err = raw ? 0 : -ENOMEM;

	if (!e->l.has_journal || !e->l.journal_inode ||
	    e->l.journal_inode > e->l.groups * e->l.inodes_per_group)
		err = -ENOENT; /* none, or an external journal device we cannot see */
	err = err ?: read_inode_raw(e, e->l.journal_inode, raw);
	if (!err) {
		ext4_inode_decode(raw, e->l.inode_size, &probe.info);
		err = ext4_extents_walk(&probe.info, e->l.block_size, e->l.blocks, model_block, e,
					&probe.ext);
	}
	if (!err && probe.ext.nr)
		err = model_device_block(e, probe.ext.map[0].physical, e->scratch);
	if (!err && probe.ext.nr && !probe.ext.map[0].logical)
		err = jbd2_open(&e->j, e->scratch, e->l.block_size, &probe.ext, e->l.blocks,
				(e->l.has_64bit ? JBD2_INCOMPAT_64BIT : 0) |
					(e->l.metadata_csum ? JBD2_INCOMPAT_CSUM_V3 : 0));
	else if (!err)
		err = -EINVAL;
	ext4_extents_release(&probe.ext);
	free(raw);
	return err;
}

int ext4_engine_probe(struct ext4_engine **ret, uint64_t size, ext4_read_fn read, void *ctx,
		      char *errbuf, size_t errbuf_len)
{
	struct ext4_engine *e = calloc(1, sizeof(*e));
	int err;

	if (!e)
		return -ENOMEM;
	e->size = size;
	e->read = read;
	e->read_ctx = ctx;
	err = ext4_layout_load(&e->l, size, read, ctx, errbuf, errbuf_len);
	if (!err && !e->l.extents)
		err = -EOPNOTSUPP, snprintf(errbuf, errbuf_len,
					    "ext4: only extent-mapped filesystems are supported "
					    "(this one maps blocks the ext2/ext3 way)");
	if (!err && (e->l.inodes > (uint64_t)e->l.groups * e->l.inodes_per_group ||
		     e->l.first_ino < EXT4_ROOT_INO + 1))
		err = -EINVAL, snprintf(errbuf, errbuf_len, "ext4: implausible inode count");
	if (!err && !(e->scratch = malloc(e->l.block_size)))
		err = -ENOMEM;
	if (!err)
		e->journaled = !open_journal(e);
	if (err) {
		ext4_engine_free(e);
		return err;
	}
	*ret = e;
	return 0;
}

static int replay_into_cache(void *engine, uint64_t home, const uint8_t *content)
{
	struct ext4_engine *e = engine;

	return home < e->l.blocks ? model_cache(e, home, content) : 0;
}

static int add_scanned_inode(struct ext4_engine *e, uint32_t ino, const uint8_t *raw)
{
	struct ext4_inode_info info;
	struct fs_inode *n;

	if (e->l.metadata_csum && !ext4_inode_csum_ok(raw, e->l.inode_size, ino, e->l.csum_seed)) {
		e->st.checksum_failures++; /* the kernel would not read it either */
		return 0;
	}
	ext4_inode_decode(raw, e->l.inode_size, &info);
	if (!ext4_inode_live(&info) || (ino < e->l.first_ino && ino != EXT4_ROOT_INO))
		return 0;
	n = model_inode_add(e, ino);
	if (!n)
		return -ENOMEM;
	n->info = info;
	return model_walk_extents(e, n, &n->ext) ?: model_map(e, n);
}

/* One group's inode table, as far as it was ever used, journal replay applied. */
static int scan_group(struct ext4_engine *e, uint32_t g, uint8_t *chunk)
{
	const struct ext4_group *grp = &e->l.group[g];
	uint32_t used = e->l.inodes_per_group - grp->itable_unused;
	uint32_t per_block = e->l.block_size / e->l.inode_size, blocks_per_chunk;
	uint64_t blocks = ((uint64_t)used + per_block - 1) / per_block;
	int err = 0;

	if ((e->l.metadata_csum || e->l.gdt_csum) && (grp->flags & EXT2_BG_INODE_UNINIT))
		return 0;
	blocks_per_chunk = SCAN_CHUNK / e->l.block_size;
	for (uint64_t b = 0; !err && b < blocks; b += blocks_per_chunk) {
		uint32_t n = (uint32_t)(blocks - b < blocks_per_chunk ? blocks - b : blocks_per_chunk);

		err = e->read(e->read_ctx, (grp->inode_table + b) * e->l.block_size, chunk,
			      (size_t)n * e->l.block_size);
		for (uint32_t i = 0; !err && i < n; i++) {
			const struct fs_block *c = model_cached(e, grp->inode_table + b + i);

			if (c)
				memcpy(chunk + (size_t)i * e->l.block_size, c->data,
				       e->l.block_size);
		}
		for (uint32_t s = 0; !err && s < n * per_block; s++) {
			uint64_t ino = (uint64_t)g * e->l.inodes_per_group + b * per_block + s + 1;

			if (ino > e->l.inodes || (b * per_block + s) >= used)
				break;
			err = add_scanned_inode(e, (uint32_t)ino, chunk + (size_t)s * e->l.inode_size);
		}
	}
	return err;
}

struct name_ctx {
	struct ext4_engine *e;
	uint32_t dir;
};

static int learn_name(void *ctx, const struct ext4_dirent *d)
{
	struct name_ctx *c = ctx;
	struct fs_inode *n = model_inode(c->e, d->ino);

	/* Keep the first name seen: a hard-linked file needs just one. */
	if (!n || (n->name && n->parent))
		return 0;
	return model_set_name(n, c->dir, d->name, d->name_len) == -ENOMEM ? -ENOMEM : 0;
}

static int read_directory(struct ext4_engine *e, struct fs_inode *dir, uint8_t *block)
{
	struct name_ctx c = { e, dir->ino };
	uint64_t done = 0;
	int err = 0;

	e->st.directories++;
	if (dir->info.flags & EXT4_INLINE_DATA_FL)
		return ext4_dir_inline_walk(dir->info.i_block, learn_name, &c) == -ENOMEM ? -ENOMEM
											: 0;
	for (size_t i = 0; !err && i < dir->ext.nr; i++) {
		const struct ext4_extent_map *m = &dir->ext.map[i];

		for (uint32_t b = 0; !err && b < m->len && done < MAX_DIR_BLOCKS; b++, done++) {
			if (m->unwritten)
				continue;
			err = model_block(e, m->physical + b, block);
			err = err ?: model_cache(e, m->physical + b, block);
			if (!err && dir_block_checks(e, dir->ino, block) &&
			    ext4_dir_block_walk(block, e->l.block_size, learn_name, &c) == -ENOMEM)
				err = -ENOMEM;
		}
	}
	return err;
}

struct walk_ctx {
	struct ext4_engine *e;
	uint8_t *block;
	int err;
	struct fs_inode **dirs;
	size_t nr, cap;
};

static void collect_dirs(const void *node, VISIT which, void *ctx)
{
	struct walk_ctx *w = ctx;
	struct fs_inode *n = *(struct fs_inode *const *)node;
	struct fs_inode **grown;

	if ((which != postorder && which != leaf) || w->err || !model_is_dir(&n->info))
		return;
	grown = array_grow(w->dirs, &w->cap, w->nr, sizeof(*grown));
	if (!grown) {
		w->err = -ENOMEM;
		return;
	}
	w->dirs = grown;
	w->dirs[w->nr++] = n;
}

/* Keep only the cached blocks the model needs: directory blocks and extent nodes. */
static void prune_cache(const void *node, VISIT which, void *ctx)
{
	struct walk_ctx *w = ctx;
	const struct fs_block *b = *(const struct fs_block *const *)node;
	const struct fs_owner *o;
	struct fs_inode *n;
	uint64_t *grown;

	if (which != postorder && which != leaf)
		return;
	o = model_owner(w->e, b->block);
	n = o ? model_inode(w->e, o->ino) : NULL;
	if (o && n && (o->kind == OWNER_NODE || model_is_dir(&n->info)))
		return;
	grown = array_grow(w->dirs, &w->cap, w->nr, sizeof(*grown));
	if (!grown) {
		w->err = -ENOMEM;
		return;
	}
	w->dirs = (struct fs_inode **)grown;
	grown[w->nr++] = b->block;
}

/* Device bytes with the replayed journal laid over them. */
static int read_replayed(void *engine, uint64_t offset, void *buf, size_t len)
{
	struct ext4_engine *e = engine;
	uint64_t bs = e->l.block_size;
	int err = e->read(e->read_ctx, offset, buf, len);

	for (uint64_t b = offset / bs; !err && b * bs < offset + len; b++) {
		const struct fs_block *c = model_cached(e, b);
		uint64_t from = b * bs > offset ? b * bs : offset;
		uint64_t to = (b + 1) * bs < offset + len ? (b + 1) * bs : offset + len;

		if (c)
			memcpy((uint8_t *)buf + (from - offset), c->data + (from - b * bs), to - from);
	}
	return err;
}

/*
 * The group descriptors again, as the replayed journal has them: the copy at
 * home may predate files created since mount (bg_itable_unused, flags).
 */
static int reload_layout(struct ext4_engine *e, char *errbuf, size_t errbuf_len)
{
	struct ext4_layout fresh;
	int err = ext4_layout_load(&fresh, e->size, read_replayed, e, errbuf, errbuf_len);

	if (err)
		return err;
	/* The geometry cannot change under a mounted filesystem; the descriptors can. */
	if (fresh.blocks != e->l.blocks || fresh.groups != e->l.groups ||
	    fresh.block_size != e->l.block_size) {
		ext4_layout_release(&fresh);
		snprintf(errbuf, errbuf_len, "ext4: the journal changes the filesystem's geometry");
		return -EINVAL;
	}
	ext4_layout_release(&e->l);
	e->l = fresh;
	return 0;
}

int ext4_engine_bootstrap(struct ext4_engine *e, char *errbuf, size_t errbuf_len)
{
	struct walk_ctx w = { .e = e };
	uint8_t *chunk = malloc(SCAN_CHUNK);
	int err = chunk ? 0 : -ENOMEM;

	if (!err && e->journaled)
		err = jbd2_replay(&e->j, model_block, e, replay_into_cache, e);
	if (!err && e->journaled)
		err = reload_layout(e, errbuf, errbuf_len);
	for (uint32_t g = 0; !err && g < e->l.groups; g++)
		err = scan_group(e, g, chunk);
	if (!err && !model_inode(e, EXT4_ROOT_INO))
		err = -EINVAL, snprintf(errbuf, errbuf_len, "ext4: the root directory is not in use");
	if (!err) {
		twalk_r(e->inodes, collect_dirs, &w);
		err = w.err;
	}
	for (size_t i = 0; !err && i < w.nr; i++)
		err = read_directory(e, w.dirs[i], chunk);
	w.nr = 0;
	if (!err) {
		twalk_r(e->blocks, prune_cache, &w);
		err = w.err;
	}
	for (size_t i = 0; !err && i < w.nr; i++)
		model_uncache(e, ((uint64_t *)w.dirs)[i]);
	free(w.dirs);
	free(chunk);
	if (err && !errbuf[0])
		snprintf(errbuf, errbuf_len, "ext4: cannot read the filesystem: %s", strerror(-err));
	return err;
}

void ext4_engine_set_emit(struct ext4_engine *e, ext4_event_fn emit, void *ctx)
{
	e->emit = emit;
	e->emit_ctx = ctx;
}

static void free_inode(void *p)
{
	struct fs_inode *n = p;

	ext4_extents_release(&n->ext);
	free(n->name);
	free(n);
}

void ext4_engine_free(struct ext4_engine *e)
{
	if (!e)
		return;
	tdestroy(e->inodes, free_inode);
	tdestroy(e->owners, free);
	tdestroy(e->blocks, free);
	for (size_t i = 0; i < e->nr_batch; i++)
		free(e->batch[i].data);
	free(e->batch);
	free(e->pending);
	free(e->scratch);
	jbd2_close(&e->j);
	ext4_layout_release(&e->l);
	free(e);
}

uint32_t ext4_engine_block_size(const struct ext4_engine *e)
{
	return e->l.block_size;
}

int ext4_engine_journaled(const struct ext4_engine *e)
{
	return e->journaled;
}

void ext4_engine_get_stats(const struct ext4_engine *e, struct ext4_engine_stats *ret)
{
	*ret = e->st;
	ret->pending = e->nr_pending;
	ret->transactions = e->j.commits;
	ret->incomplete = e->j.incomplete;
	ret->checksum_failures += e->j.damaged;
	ret->missed_transactions = e->j.missed;
}

int ext4_engine_read_file(struct ext4_engine *e, uint32_t ino, void *buf, size_t max,
			  size_t *ret_len)
{
	struct fs_inode *n = model_inode(e, ino);
	uint64_t bs = e->l.block_size;
	size_t len;

	if (!n || !S_ISREG(n->info.mode))
		return -ENOENT;
	len = n->info.size < max ? (size_t)n->info.size : max;
	memset(buf, 0, len);
	if (n->info.flags & EXT4_INLINE_DATA_FL) {
		if (len > EXT4_IBLOCK_BYTES)
			return -EOPNOTSUPP; /* the rest lives in an extended attribute */
		memcpy(buf, n->info.i_block, len);
	}
	for (size_t i = 0; i < n->ext.nr; i++) {
		const struct ext4_extent_map *m = &n->ext.map[i];
		uint64_t from = m->logical * bs, to = from + (uint64_t)m->len * bs;
		int err;

		if (m->unwritten || from >= len)
			continue;
		if (to > len)
			to = len;
		err = e->read(e->read_ctx, m->physical * bs, (uint8_t *)buf + from, to - from);
		if (err)
			return err;
	}
	*ret_len = len;
	return 0;
}
