/* SPDX-License-Identifier: MIT */
/*
 * The ext4 inference engine: a model of one filesystem (live inodes, which
 * block belongs to which file, the names in every directory) built from the
 * disk, then kept current from the writes the guest makes, each change
 * reported as a file event.
 *
 * With a journal, metadata changes are taken from committed transactions
 * (jbd2), never from the later write-back of the same blocks to their home
 * locations; file data, which ext4 does not journal in its default mode, is
 * mapped through the model, and data that reaches blocks no file owns yet
 * waits until the transaction that allocates them commits. Without a
 * journal every write is applied as it comes.
 *
 * Single-threaded; ext4_engine_wants_payload() alone may be called from
 * another thread once ext4_engine_probe() has returned.
 */
#ifndef VMSCOPE_DISK_EXT4_ENGINE_H
#define VMSCOPE_DISK_EXT4_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "disk/ext4/inode.h"
#include "disk/ext4/journal.h"
#include "disk/ext4/layout.h"

enum ext4_action {
	EXT4_CREATE,
	EXT4_MKDIR,
	EXT4_SYMLINK,
	EXT4_LINK,
	EXT4_WRITE,
	EXT4_TRUNCATE,
	EXT4_RENAME,
	EXT4_DELETE,
	EXT4_RMDIR,
	EXT4_CHMOD,
	EXT4_CHOWN,
};

const char *ext4_action_name(enum ext4_action action);

struct ext4_fs_event {
	enum ext4_action action;
	uint32_t ino;
	const char *path;
	const char *old_path;	/* rename */
	const char *target;	/* symlink, when readable */
	const struct ext4_inode_info *info; /* the inode after the change (before, for deletes) */
	uint64_t offset, length; /* write */
	uint64_t seen_ns;	 /* when the write that revealed it reached vmscope */
};

typedef void (*ext4_event_fn)(void *ctx, const struct ext4_fs_event *event);

struct ext4_engine_stats {
	uint64_t transactions, batches, blocks_applied, inodes, directories;
	uint64_t data_writes, data_bytes, pending, unmapped, incomplete, errors;
	uint64_t checksum_failures; /* journal blocks, copies and inodes not used: CRC32C wrong */
	uint64_t missed_transactions; /* gaps in the journal's sequence numbers */
};

struct ext4_engine;

/*
 * First step, cheap: the superblock, group descriptors and where the
 * journal lies. read fetches bytes of the device (size bytes).
 */
int ext4_engine_probe(struct ext4_engine **ret, uint64_t size, ext4_read_fn read, void *ctx,
		      char *errbuf, size_t errbuf_len);
/*
 * Second step: read every inode table, extent tree and directory (after
 * replaying what the journal holds), so that later writes can be diffed.
 */
int ext4_engine_bootstrap(struct ext4_engine *e, char *errbuf, size_t errbuf_len);
void ext4_engine_set_emit(struct ext4_engine *e, ext4_event_fn emit, void *ctx);
void ext4_engine_free(struct ext4_engine *e);

/* Whether the payload of a write at [offset, offset+length) is needed (thread-safe). */
int ext4_engine_wants_payload(const struct ext4_engine *e, uint64_t offset, uint64_t length);

/*
 * One captured write; payload NULL when it was not kept (or for zeroes:
 * zeroes is 1). seen_ns is when it reached vmscope.
 */
int ext4_engine_write(struct ext4_engine *e, uint64_t offset, uint64_t length,
		      const void *payload, int zeroes, uint64_t seen_ns);

/* Apply whole blocks as one transaction (what a commit does; tests, no-journal replays). */
int ext4_engine_apply(struct ext4_engine *e, const uint64_t *blocks, const uint8_t *data,
		      size_t nr, uint64_t seen_ns);

void ext4_engine_get_stats(const struct ext4_engine *e, struct ext4_engine_stats *ret);
uint32_t ext4_engine_block_size(const struct ext4_engine *e);
/*
 * Writes will not come in the guest's order (a background mirror copies
 * what changed in its own order, later): before a data write is
 * attributed to a file, the journal on disk is caught up.
 */
void ext4_engine_set_out_of_order(struct ext4_engine *e, int out_of_order);
/* Whether metadata comes from the journal (1) or from home-location writes (0). */
int ext4_engine_journaled(const struct ext4_engine *e);

/* Read a regular file's first max bytes as the model maps them (holes and unwritten: zeroes). */
int ext4_engine_read_file(struct ext4_engine *e, uint32_t ino, void *buf, size_t max,
			  size_t *ret_len);

#endif
