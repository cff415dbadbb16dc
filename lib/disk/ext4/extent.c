// SPDX-License-Identifier: MIT
/*
 * Walking an extent tree (e2fsprogs' ext3_extents.h): a 12-byte header
 * (magic 0xF30A, entries, max, depth) then index entries (depth > 0) or
 * extents (depth 0). The root sits in the inode's i_block; deeper nodes fill
 * a block each, with a checksum tail we do not need. An extent longer than
 * 32768 blocks is an unwritten (preallocated) one of len - 32768.
 */
#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext3_extents.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "disk/ext4/inode.h"

#define INIT_MAX_LEN 32768u
#define MAX_NODES    (1u << 20) /* per file: 4 GiB of 4 KiB extent blocks is far beyond real */

struct walk {
	uint32_t block_size;
	uint64_t max_blocks;
	ext4_block_fn read;
	void *ctx;
	struct ext4_extent_list *list;
};

static int add_extent(struct ext4_extent_list *list, const struct ext3_extent *e,
		      uint64_t max_blocks)
{
	struct ext4_extent_map *m;
	uint32_t len = e->ee_len;
	uint64_t start = e->ee_start | (uint64_t)e->ee_start_hi << 32;
	int unwritten = len > INIT_MAX_LEN;

	if (unwritten)
		len -= INIT_MAX_LEN;
	if (!len || start >= max_blocks || len > max_blocks - start)
		return -EINVAL;
	m = array_grow(list->map, &list->cap, list->nr, sizeof(*m));
	if (!m)
		return -ENOMEM;
	list->map = m;
	list->map[list->nr++] = (struct ext4_extent_map){ e->ee_block, len, start, unwritten };
	return 0;
}

static int add_node(struct ext4_extent_list *list, uint64_t block)
{
	uint64_t *n;

	if (list->nr_nodes >= MAX_NODES)
		return -EINVAL;
	n = array_grow(list->nodes, &list->cap_nodes, list->nr_nodes, sizeof(*n));
	if (!n)
		return -ENOMEM;
	list->nodes = n;
	list->nodes[list->nr_nodes++] = block;
	return 0;
}

static int walk_node(struct walk *w, const uint8_t *node, size_t bytes, int expect_depth)
{
	struct ext3_extent_header h;
	uint8_t *child = NULL;
	int err = 0;

	memcpy(&h, node, sizeof(h));
	if (h.eh_magic != EXT3_EXT_MAGIC || h.eh_entries > h.eh_max ||
	    sizeof(h) + (size_t)h.eh_max * sizeof(struct ext3_extent) > bytes ||
	    (expect_depth >= 0 && h.eh_depth != expect_depth) ||
	    h.eh_depth > EXT4_MAX_EXTENT_DEPTH)
		return -EINVAL;
	for (unsigned int i = 0; !err && i < h.eh_entries; i++) {
		const uint8_t *entry = node + sizeof(h) + i * sizeof(struct ext3_extent);
		struct ext3_extent_idx idx;
		struct ext3_extent e;
		uint64_t leaf;

		if (!h.eh_depth) {
			memcpy(&e, entry, sizeof(e));
			err = add_extent(w->list, &e, w->max_blocks);
			continue;
		}
		memcpy(&idx, entry, sizeof(idx));
		leaf = idx.ei_leaf | (uint64_t)idx.ei_leaf_hi << 32;
		if (leaf >= w->max_blocks)
			return -EINVAL;
		if (!child && !(child = malloc(w->block_size)))
			return -ENOMEM;
		err = add_node(w->list, leaf);
		err = err ?: w->read(w->ctx, leaf, child);
		err = err ?: walk_node(w, child, w->block_size, h.eh_depth - 1);
	}
	free(child);
	return err;
}

int ext4_extents_walk(const struct ext4_inode_info *inode, uint32_t block_size,
		      uint64_t max_blocks, ext4_block_fn read, void *ctx,
		      struct ext4_extent_list *list)
{
	struct walk w = { block_size, max_blocks, read, ctx, list };

	list->nr = 0;
	list->nr_nodes = 0;
	if (!(inode->flags & EXT4_EXTENTS_FL) || (inode->flags & EXT4_INLINE_DATA_FL))
		return 0; /* no blocks of its own we can map (inline data, fast symlink) */
	return walk_node(&w, inode->i_block, EXT4_IBLOCK_BYTES, -1);
}

void ext4_extents_release(struct ext4_extent_list *list)
{
	free(list->map);
	free(list->nodes);
	memset(list, 0, sizeof(*list));
}
