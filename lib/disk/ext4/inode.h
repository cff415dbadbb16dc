/* SPDX-License-Identifier: MIT */
/*
 * ext4 inodes, extent trees and directory blocks: decoding what the disk
 * holds into the few facts the inference engine compares. Every decoder
 * takes untrusted bytes and checks each count and offset against the buffer.
 */
#ifndef VMSCOPE_DISK_EXT4_INODE_H
#define VMSCOPE_DISK_EXT4_INODE_H

#include <stddef.h>
#include <stdint.h>

#define EXT4_ROOT_INO	     2
#define EXT4_IBLOCK_BYTES    60
#define EXT4_MAX_EXTENT_DEPTH 5

struct ext4_inode_info {
	uint16_t mode, links;
	uint32_t uid, gid, flags, generation;
	uint64_t size;
	int64_t mtime, ctime; /* seconds since the epoch */
	uint32_t dtime, crtime; /* crtime, with generation, tells a reused inode number */
	uint8_t i_block[EXT4_IBLOCK_BYTES]; /* extent root, inline data or fast symlink */
};

/* Decode one on-disk inode of inode_size bytes (128 or more). */
void ext4_inode_decode(const uint8_t *raw, uint32_t inode_size, struct ext4_inode_info *ret);

/* In use: linked somewhere and not deleted (what the inode bitmap would say). */
static inline int ext4_inode_live(const struct ext4_inode_info *i)
{
	return i->mode && i->links && !i->dtime;
}

/* Everything a listing would show changed (mode, owner, size, times, links, content map). */
int ext4_inode_differs(const struct ext4_inode_info *a, const struct ext4_inode_info *b);

/* -- extent trees (extent.c) -- */

struct ext4_extent_map {
	uint32_t logical, len;
	uint64_t physical;
	int unwritten;
};

/* Read one filesystem block (number block) into buf; 0 or a negative errno. */
typedef int (*ext4_block_fn)(void *ctx, uint64_t block, void *buf);

struct ext4_extent_list {
	struct ext4_extent_map *map; /* in tree order */
	size_t nr, cap;
	uint64_t *nodes; /* blocks holding index and leaf nodes of the tree */
	size_t nr_nodes, cap_nodes;
};

/*
 * Walk the extent tree rooted in the inode's i_block, reading interior
 * blocks with read (block_size bytes each). Bounded by depth, entries per
 * node and max_blocks (physical blocks must lie below it). The list is reset
 * first; -EINVAL on a malformed tree (the list then holds what was valid).
 */
int ext4_extents_walk(const struct ext4_inode_info *inode, uint32_t block_size,
		      uint64_t max_blocks, ext4_block_fn read, void *ctx,
		      struct ext4_extent_list *list);
void ext4_extents_release(struct ext4_extent_list *list);

/* -- directory blocks (dir.c) -- */

struct ext4_dirent {
	uint32_t ino;
	uint8_t name_len, file_type;
	const char *name; /* not NUL-terminated; points into the block */
};

typedef int (*ext4_dirent_fn)(void *ctx, const struct ext4_dirent *entry);

/*
 * Call fn for each live entry of a directory block (linear or an htree leaf;
 * htree interior nodes hold none), "." and ".." excluded. Stops at the first
 * malformed record (-EINVAL) or at a non-zero return of fn.
 */
int ext4_dir_block_walk(const uint8_t *block, size_t len, ext4_dirent_fn fn, void *ctx);
/* The same for an inline directory: i_block after its 4-byte parent number. */
int ext4_dir_inline_walk(const uint8_t *i_block, ext4_dirent_fn fn, void *ctx);

/* Whether a directory block's metadata_csum tail checks (1 too when it has none). */
int ext4_dir_block_csum_ok(const uint8_t *block, size_t len, uint32_t seed, uint32_t dir_ino,
			   uint32_t generation);
/* Whether the inode's metadata_csum checks (raw: inode_size bytes of inode ino). */
int ext4_inode_csum_ok(const uint8_t *raw, uint32_t inode_size, uint32_t ino, uint32_t seed);

#endif
