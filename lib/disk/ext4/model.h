/* SPDX-License-Identifier: MIT */
/*
 * The engine's model of a filesystem (model.c) shared with the diffing
 * (infer.c). Three indexes, all glibc search trees: inodes by number,
 * block runs by physical block (who owns them), and the last known bytes of
 * every directory block and extent-tree node (what a change is diffed
 * against, and what may not have reached its home location yet).
 */
#ifndef VMSCOPE_DISK_EXT4_MODEL_H
#define VMSCOPE_DISK_EXT4_MODEL_H

#include "disk/ext4/engine.h"

#define MAX_PATH_DEPTH 256
#define PATH_BYTES     4096

struct fs_inode {
	uint32_t ino;
	uint32_t parent; /* a directory holding a name for it; 0 if none is known */
	char *name;
	struct ext4_inode_info info;
	struct ext4_extent_list ext;
};

enum owner_kind { OWNER_DATA, OWNER_NODE };

struct fs_owner {
	uint64_t start;
	uint32_t len, ino, logical;
	uint8_t kind;
};

struct fs_block {
	uint64_t block;
	uint8_t *data;
};

struct pending_write {
	uint64_t offset, length, seen_ns;
};

struct ext4_engine {
	struct ext4_layout l;
	struct jbd2_journal j;
	int journaled;
	int out_of_order; /* writes come in a background mirror's order, not the guest's */
	uint64_t size;
	ext4_read_fn read;
	void *read_ctx;
	ext4_event_fn emit;
	void *emit_ctx;
	void *inodes, *owners, *blocks; /* tsearch roots */
	/* the transaction being applied, sorted by block once complete */
	struct fs_block *batch;
	size_t nr_batch, cap_batch;
	uint64_t batch_seen_ns;
	struct pending_write *pending;
	size_t nr_pending, cap_pending;
	struct ext4_engine_stats st;
	uint8_t *scratch;
};

/* model.c */
struct fs_inode *model_inode(struct ext4_engine *e, uint32_t ino);
struct fs_inode *model_inode_add(struct ext4_engine *e, uint32_t ino);
void model_inode_drop(struct ext4_engine *e, struct fs_inode *n);
const struct fs_owner *model_owner(struct ext4_engine *e, uint64_t block);
int model_map(struct ext4_engine *e, struct fs_inode *n);
void model_unmap(struct ext4_engine *e, struct fs_inode *n);
struct fs_block *model_cached(struct ext4_engine *e, uint64_t block);
int model_cache(struct ext4_engine *e, uint64_t block, const uint8_t *data);
void model_uncache(struct ext4_engine *e, uint64_t block);
/* A block as the model knows it: this transaction, the cache, then the device. */
int model_block(void *engine, uint64_t block, void *buf);
/* A block as the device holds it. */
int model_device_block(void *engine, uint64_t block, void *buf);
const struct fs_block *model_batch_find(const struct ext4_engine *e, uint64_t block);
int model_walk_extents(struct ext4_engine *e, struct fs_inode *n,
		       struct ext4_extent_list *list);
int model_set_name(struct fs_inode *n, uint32_t parent, const char *name, size_t len);
/* The path of an inode from its name links ("/" for the root), into buf of PATH_BYTES. */
const char *model_path(struct ext4_engine *e, uint32_t ino, char *buf);
int model_is_dir(const struct ext4_inode_info *i);
int model_has_blocks(const struct ext4_inode_info *i);

/* Append value to a growing array: 0 or -ENOMEM (the array then unchanged). */
#define PUSH(arr, nr, cap, value)                                                  \
	({                                                                         \
		__typeof__(arr) grown_ = array_grow(arr, &(cap), nr, sizeof(*(arr))); \
		int err_ = grown_ ? 0 : -ENOMEM;                                   \
		if (grown_) {                                                      \
			(arr) = grown_;                                            \
			(arr)[(nr)++] = (value);                                   \
		}                                                                  \
		err_;                                                              \
	})

/* infer.c: apply the blocks gathered in e->batch as one transaction, emitting events. */
int infer_commit(struct ext4_engine *e);
int infer_batch_add(struct ext4_engine *e, uint64_t block, const uint8_t *data);

/* write.c: data writes held for their commit, tried again after each. */
int write_retry_pending(struct ext4_engine *e);

/* A directory block's metadata_csum, for directory dir: 1 if it checks (or has none); 0 counted. */
int dir_block_checks(struct ext4_engine *e, uint32_t dir, const uint8_t *block);

#endif
