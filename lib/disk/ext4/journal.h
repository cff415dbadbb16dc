/* SPDX-License-Identifier: MIT */
/*
 * jbd2, the ext4 journal, read as it is written. Transactions are logged as
 * a descriptor block (tags naming the home block of each following copy),
 * the copies, perhaps revoke blocks, then a commit block; all of it
 * big-endian, in a circular area of the journal inode. A transaction counts
 * once its commit block is on disk: that is when its copies are handed to
 * the caller, well before they are written back to their home locations.
 */
#ifndef VMSCOPE_DISK_EXT4_JOURNAL_H
#define VMSCOPE_DISK_EXT4_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "disk/ext4/inode.h"

#define JBD2_MAGIC	      0xc03b3998u
#define JBD2_DESCRIPTOR_BLOCK 1
#define JBD2_COMMIT_BLOCK     2
#define JBD2_SUPERBLOCK_V1    3
#define JBD2_SUPERBLOCK_V2    4
#define JBD2_REVOKE_BLOCK     5

struct jbd2_revoke {
	uint64_t block;
	uint32_t seq;
};

struct jbd2_journal {
	uint32_t block_size, maxlen, first, incompat, implied, tag_bytes, tags_end;
	uint32_t start, sequence; /* the oldest live transaction, from the superblock */
	uint64_t *phys;		  /* journal block -> filesystem block */
	struct ext4_extent_map *runs; /* the journal's extents, for the reverse map */
	size_t nr_runs;
	/* Blocks logged since the last commit, by journal position. */
	uint32_t *slot; /* position -> index + 1 into data, 0 for none */
	uint8_t *data;
	uint32_t *pos_of;
	size_t nr, cap;
	uint64_t commits, incomplete;
	/*
	 * With CSUM_V2/V3, every descriptor, revoke and commit block and every
	 * logged copy carries a CRC32C seeded from the journal's UUID: one that
	 * does not check is counted here and not used (a bad commit or
	 * descriptor drops its transaction, a bad copy that copy), as the
	 * kernel's recovery does.
	 */
	uint32_t csum_seed;
	uint64_t damaged;
	/*
	 * Where the next transaction starts and its sequence, once known (after
	 * the bootstrap's replay, or the first commit seen): a commit older than
	 * that was applied already and is not applied again.
	 */
	uint32_t head, next_seq;
	int have_head;
	uint64_t missed; /* transactions skipped over: a gap in the sequence numbers */
	struct jbd2_revoke *revokes; /* during replay only */
	size_t nr_revokes;
};

/* The home block of one logged copy and the copy, escapes undone. */
typedef int (*jbd2_apply_fn)(void *ctx, uint64_t home, const uint8_t *content);

/*
 * Check the journal superblock (sb: its first block) and map the journal
 * through its inode's extents; fs_blocks bounds every home block. implied:
 * incompatible features the kernel sets when it mounts the filesystem
 * (64BIT, CSUM_V3), which the superblock on disk may not show yet: jbd2
 * writes its superblock lazily.
 */
#define JBD2_INCOMPAT_64BIT   0x2u
#define JBD2_INCOMPAT_CSUM_V3 0x10u
int jbd2_open(struct jbd2_journal *j, const uint8_t *sb, uint32_t block_size,
	      const struct ext4_extent_list *extents, uint64_t fs_blocks, uint32_t implied);
void jbd2_close(struct jbd2_journal *j);

/* The journal position of filesystem block, or -1 if it is not in the journal. */
int64_t jbd2_position(const struct jbd2_journal *j, uint64_t block);

/*
 * One block written at a journal position. A commit block hands every copy
 * of its transaction to apply, in log order; a copy not seen in this stream
 * is fetched with read (journal position -> content) and counted incomplete.
 * Returns what apply returned, 0, or a negative errno.
 */
int jbd2_log_block(struct jbd2_journal *j, uint32_t pos, const uint8_t *content,
		   ext4_block_fn read, void *ctx, jbd2_apply_fn apply, void *apply_ctx);

/*
 * The next committed transaction past the head, read from the disk (read:
 * filesystem blocks) and applied as if its blocks had been captured; 1
 * when one was, 0 when the disk holds none yet. For a capture that gets
 * blocks out of order (a background mirror): a data write copied now was
 * made after every transaction the disk already has, so those come first.
 */
int jbd2_catch_up(struct jbd2_journal *j, ext4_block_fn read, void *ctx, jbd2_apply_fn apply,
		  void *apply_ctx);

/*
 * Replay what the journal on disk holds past its tail (committed
 * transactions not yet written home), oldest first, through apply: how the
 * filesystem looks right now, before the first captured write. As in
 * recovery, a copy is skipped when a later committed transaction revoked
 * its block (freed, perhaps reused as file data). read fetches filesystem
 * blocks.
 */
int jbd2_replay(struct jbd2_journal *j, ext4_block_fn read, void *ctx, jbd2_apply_fn apply,
		void *apply_ctx);

#endif
