// SPDX-License-Identifier: MIT
/*
 * How captured writes reach the engine. Journal blocks go to the jbd2
 * parser, whose commits become transactions for infer.c. Other writes are
 * file data: mapped through the model to a file and offset at once, or, for
 * blocks nobody owns yet, held until the commit that allocates them (ext4
 * writes data before the metadata that makes it reachable). Metadata
 * written to its home location is a checkpoint of what the journal already
 * said, except on a filesystem without a journal, where it is all there is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "disk/ext4/model.h"

#define PENDING_MAX    65536
#define PENDING_TTL_NS (120ull * 1000000000ull)

static int apply_logged(void *engine, uint64_t home, const uint8_t *content)
{
	struct ext4_engine *e = engine;

	return home < e->l.blocks ? infer_batch_add(e, home, content) : 0;
}

int ext4_engine_apply(struct ext4_engine *e, const uint64_t *blocks, const uint8_t *data,
		      size_t nr, uint64_t seen_ns)
{
	int err = 0;

	e->batch_seen_ns = seen_ns;
	for (size_t i = 0; !err && i < nr; i++)
		err = apply_logged(e, blocks[i], data + i * e->l.block_size);
	return err ?: infer_commit(e);
}

static void emit_write(struct ext4_engine *e, struct fs_inode *n, uint64_t offset,
		       uint64_t length, uint64_t seen_ns)
{
	char path[PATH_BYTES];
	struct ext4_fs_event ev = { EXT4_WRITE, n->ino, model_path(e, n->ino, path), NULL, NULL,
				    &n->info, offset, length, seen_ns };

	ev.seen_ns = e->batch_seen_ns; /* the latest write: a pending one waited for its commit */
	e->st.data_writes++;
	e->st.data_bytes += length;
	if (e->emit)
		e->emit(e->emit_ctx, &ev);
}

static int pend(struct ext4_engine *e, uint64_t offset, uint64_t length, uint64_t seen_ns)
{
	struct pending_write p = { offset, length, seen_ns };

	if (e->nr_pending >= PENDING_MAX) {
		e->st.unmapped++;
		return 0; /* the oldest stay: they are closest to their commit */
	}
	return PUSH(e->pending, e->nr_pending, e->cap_pending, p);
}

/* A home-location write of metadata, on a filesystem without a journal. */
static int apply_home(struct ext4_engine *e, uint64_t block, uint64_t offset, uint64_t length,
		      const uint8_t *payload)
{
	uint64_t bs = e->l.block_size, at = block * bs;

	if (e->journaled)
		return 0; /* a checkpoint of what the journal already told us */
	if (payload && at >= offset && at + bs <= offset + length)
		return infer_batch_add(e, block, payload + (at - offset));
	return model_device_block(e, block, e->scratch) ?: infer_batch_add(e, block, e->scratch);
}

/*
 * Out of order capture (a background mirror): before a data write is
 * attributed, every transaction the disk's journal holds past the last one
 * applied, one commit at a time as if captured (CATCH_UP_MAX bounds one
 * write's share of the work).
 */
#define CATCH_UP_MAX 64

static int catch_up(struct ext4_engine *e)
{
	for (int i = 0; e->out_of_order && e->journaled && i < CATCH_UP_MAX; i++) {
		int r = jbd2_catch_up(&e->j, model_device_block, e, apply_logged, e);

		if (r <= 0)
			return r;
		r = infer_commit(e);
		if (r)
			return r;
	}
	return 0;
}

static int data_write(struct ext4_engine *e, uint64_t offset, uint64_t length,
		      const uint8_t *payload, uint64_t seen_ns)
{
	uint64_t bs = e->l.block_size, end = offset + length, b = offset / bs;
	uint64_t last = (end - 1) / bs;
	int err = catch_up(e);

	while (!err && b <= last) {
		const struct fs_owner *o;
		struct fs_inode *n;
		uint64_t stop, from = b * bs > offset ? b * bs : offset, to;

		if (ext4_classify(&e->l, b, NULL) != EXT4_BLOCK_DATA) {
			err = apply_home(e, b++, offset, length, payload);
			continue;
		}
		o = model_owner(e, b);
		if (!o) {
			for (stop = b + 1; stop <= last && !model_owner(e, stop) &&
					   ext4_classify(&e->l, stop, NULL) == EXT4_BLOCK_DATA;
			     stop++)
				;
			to = stop * bs < end ? stop * bs : end;
			err = pend(e, from, to - from, seen_ns);
			b = stop;
			continue;
		}
		stop = o->start + o->len <= last + 1 ? o->start + o->len : last + 1;
		to = stop * bs < end ? stop * bs : end;
		n = model_inode(e, o->ino);
		if (n && (o->kind == OWNER_NODE || model_is_dir(&n->info))) {
			for (uint64_t k = b; !err && k < stop; k++)
				err = apply_home(e, k, offset, length, payload);
		} else if (n && S_ISREG(n->info.mode)) {
			emit_write(e, n, (o->logical + (b - o->start)) * bs + (from - b * bs),
				   to - from, seen_ns);
		}
		b = stop;
	}
	return err;
}

int write_retry_pending(struct ext4_engine *e)
{
	struct pending_write *old = e->pending;
	size_t nr = e->nr_pending;
	int err = 0;

	if (!nr)
		return 0;
	e->pending = NULL;
	e->nr_pending = e->cap_pending = 0;
	for (size_t i = 0; !err && i < nr; i++) {
		if (e->batch_seen_ns > old[i].seen_ns + PENDING_TTL_NS) {
			e->st.unmapped++; /* freed blocks, or data of a file gone before commit */
			continue;
		}
		err = data_write(e, old[i].offset, old[i].length, NULL, old[i].seen_ns);
	}
	free(old);
	return err;
}

int ext4_engine_wants_payload(const struct ext4_engine *e, uint64_t offset, uint64_t length)
{
	uint64_t bs = e->l.block_size;

	if (!e->journaled)
		return 1;
	for (size_t i = 0; i < e->j.nr_runs; i++) {
		uint64_t from = e->j.runs[i].physical * bs, to = from + (uint64_t)e->j.runs[i].len * bs;

		if (offset < to && offset + length > from)
			return 1;
	}
	return 0;
}

static int journal_write(struct ext4_engine *e, uint64_t block, const uint8_t *content)
{
	uint64_t before = e->j.commits;
	int64_t pos = jbd2_position(&e->j, block);
	int err = jbd2_log_block(&e->j, (uint32_t)pos, content, model_device_block, e,
				 apply_logged, e);

	if (!err && e->j.commits != before)
		err = infer_commit(e);
	return err;
}

int ext4_engine_write(struct ext4_engine *e, uint64_t offset, uint64_t length,
		      const void *payload, int zeroes, uint64_t seen_ns)
{
	uint64_t bs = e->l.block_size, b, data_from = offset;
	const uint8_t *p = payload;
	int err = 0;

	if (!length || offset >= e->l.blocks * bs)
		return 0;
	if (length > e->l.blocks * bs - offset)
		length = e->l.blocks * bs - offset;
	e->batch_seen_ns = seen_ns;
	if (zeroes && !p && ext4_engine_wants_payload(e, offset, length)) {
		uint8_t *z = calloc(1, length);

		if (!z)
			return -ENOMEM;
		err = ext4_engine_write(e, offset, length, z, 0, seen_ns);
		free(z);
		return err;
	}
	/*
	 * Journal blocks go to the journal parser; runs of other blocks are
	 * data. Only a write that touches the journal is looked at block by block.
	 */
	b = e->journaled && ext4_engine_wants_payload(e, offset, length) ? offset / bs
									   : UINT64_MAX;
	for (; !err && b != UINT64_MAX && b * bs < offset + length; b++) {
		uint64_t at = b * bs;

		if (jbd2_position(&e->j, b) < 0)
			continue;
		if (data_from < at)
			err = data_write(e, data_from, at - data_from, p ? p + (data_from - offset) : NULL,
					 seen_ns);
		data_from = at + bs;
		if (!err && p && at >= offset && at + bs <= offset + length)
			err = journal_write(e, b, p + (at - offset));
		else if (!err)
			e->st.errors++; /* a partial or unkept journal block */
	}
	if (!err && data_from < offset + length)
		err = data_write(e, data_from, offset + length - data_from,
				 p ? p + (data_from - offset) : NULL, seen_ns);
	return err ?: (e->journaled ? 0 : infer_commit(e));
}

void ext4_engine_set_out_of_order(struct ext4_engine *e, int out_of_order)
{
	e->out_of_order = out_of_order;
}
