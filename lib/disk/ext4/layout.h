/* SPDX-License-Identifier: MIT */
/*
 * Where an ext4 filesystem keeps what: superblock and its backups, group
 * descriptors (32- or 64-byte), reserved GDT blocks, bitmaps and inode
 * tables, wherever flex_bg packed them. The inference engine asks, for each
 * captured write, which kind of block it hit.
 */
#ifndef VMSCOPE_DISK_EXT4_LAYOUT_H
#define VMSCOPE_DISK_EXT4_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

enum ext4_block_kind {
	EXT4_BLOCK_DATA, /* anything else: file data, directories, extents, journal */
	EXT4_BLOCK_SUPER,
	EXT4_BLOCK_GDT,
	EXT4_BLOCK_RESERVED_GDT,
	EXT4_BLOCK_BLOCK_BITMAP,
	EXT4_BLOCK_INODE_BITMAP,
	EXT4_BLOCK_INODE_TABLE,
	EXT4_BLOCK_OUTSIDE, /* beyond the filesystem */
};

struct ext4_group {
	uint64_t block_bitmap, inode_bitmap, inode_table;
	uint32_t itable_unused; /* trailing never-used inodes, when checksums vouch for it */
	uint16_t flags;		/* EXT2_BG_INODE_UNINIT, ... */
};

struct ext4_extent_of_kind {
	uint64_t start, blocks;
	uint32_t group;
	uint8_t kind;
};

struct ext4_layout {
	uint32_t block_size, blocks_per_group, inodes_per_group, inode_size, desc_size;
	uint32_t first_data_block, groups, itable_blocks, gdt_blocks, reserved_gdt_blocks;
	uint64_t blocks;
	int has_64bit, flex_bg, sparse_super, meta_bg, metadata_csum, gdt_csum, has_journal;
	int inline_data, extents;
	uint32_t journal_inode, first_ino, inodes;
	uint32_t csum_seed; /* metadata_csum: CRC32C of the UUID, or the superblock's own seed */
	struct ext4_group *group;
	struct ext4_extent_of_kind *meta; /* sorted, non-overlapping */
	size_t nr_meta;
};

/* Read len bytes at byte offset of the device; 0 or a negative errno. */
typedef int (*ext4_read_fn)(void *ctx, uint64_t offset, void *buf, size_t len);

/*
 * Read and check the superblock and group descriptors of the filesystem on
 * the device (size bytes); errbuf says why on failure. Disk data is
 * untrusted: every count and location is checked against the device.
 */
int ext4_layout_load(struct ext4_layout *l, uint64_t size, ext4_read_fn read, void *ctx,
		     char *errbuf, size_t errbuf_len);
void ext4_layout_release(struct ext4_layout *l);

/* What block holds; *ret_group (may be NULL) is the group it belongs to. */
enum ext4_block_kind ext4_classify(const struct ext4_layout *l, uint64_t block,
				   uint32_t *ret_group);

#endif
