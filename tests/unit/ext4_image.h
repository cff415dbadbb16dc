/* SPDX-License-Identifier: MIT */
/*
 * Real ext4 filesystems for tests and benchmarks of the inference engine:
 * made by mke2fs -d from a small tree, changed by debugfs, with the blocks
 * that a change touched handed back as the writes a kernel would have made.
 */
#ifndef VMSCOPE_TESTS_EXT4_IMAGE_H
#define VMSCOPE_TESTS_EXT4_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define EXT4_IMAGE_BLOCK 1024

struct ext4_image {
	char dir[64], path[96];
	int fd;
	uint64_t size;
};

/*
 * mke2fs -b 1024 -O features of a 32 MiB image from a tree of nested
 * directories and files plus big_dir files in /big (an htree directory).
 */
int ext4_image_make(struct ext4_image *img, const char *features, int big_dir);
void ext4_image_drop(struct ext4_image *img);
/* ext4_read_fn over the image file. */
int ext4_image_read(void *img, uint64_t offset, void *buf, size_t len);
/*
 * Run debugfs commands (one per line) on the image; return how many blocks
 * changed, their numbers and new contents (the caller frees both), or -1.
 */
long ext4_image_change(struct ext4_image *img, const char *commands, uint64_t **ret_blocks,
		       uint8_t **ret_data);
/* The journal's first physical block (mke2fs lays it out in one piece), 0 on failure. */
uint64_t ext4_image_journal_start(struct ext4_image *img);
/* Set journal incompat features, as the kernel does at mount. */
int ext4_image_journal_features(struct ext4_image *img, uint32_t incompat);
/* The journal superblock's sequence: the next transaction's number. */
uint32_t ext4_image_journal_sequence(struct ext4_image *img);

/*
 * Feed blocks to the engine as jbd2 would log them as transaction seq from
 * journal position 1: descriptors (tags CSUM_V3 or 12-byte 64bit, a UUID
 * after the first, the last flagged), copies escaped when they begin with
 * the magic, then the commit block unless commit is 0. write is
 * ext4_engine_write's shape; returns its first failure.
 */
struct ext4_engine;
/* A CSUM_V3 commit block for seq at journal position pos; damaged: its checksum wrong. */
int ext4_image_commit(struct ext4_engine *e, uint64_t jstart, uint32_t pos, uint32_t seq,
		      int damaged);
int ext4_image_log(struct ext4_engine *e, uint64_t jstart, uint32_t seq, int csum_v3,
		   const uint64_t *blocks, const uint8_t *data, size_t nr, int commit);

/*
 * The same, written into the image's journal area as its live transactions
 * (the journal superblock's start and sequence point at them), the way a
 * crash or a lazy checkpoint leaves them; with revoke, a second transaction
 * revokes that block.
 */
int ext4_image_log_to_disk(struct ext4_image *img, int csum_v3, const uint64_t *blocks,
			   const uint8_t *data, size_t nr, const uint64_t *revoke);
/* Put back the image as it was before the last ext4_image_change(). */
int ext4_image_restore(struct ext4_image *img);

#endif
