// SPDX-License-Identifier: MIT
/*
 * jbd2 parsing. The on-disk structures are the kernel's
 * (include/linux/jbd2.h), not in e2fsprogs' public headers, so the few
 * offsets used are named here. Tags come in two shapes: CSUM_V3's
 * {blocknr, flags, blocknr_high, checksum} of 32-bit words, and the older
 * {blocknr, checksum16, flags16[, blocknr_high]}; a tag without SAME_UUID is
 * followed by a 16-byte UUID. With CSUM_V2/V3 a descriptor ends in a
 * 4-byte checksum tail.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2fs.h>

#include "core/util.h"
#include "disk/ext4/journal.h"

/* Journal superblock fields (after the 12-byte block header). */
#define JSB_BLOCKSIZE 12
#define JSB_MAXLEN    16
#define JSB_FIRST     20
#define JSB_SEQUENCE  24
#define JSB_START     28
#define JSB_INCOMPAT  40
#define JSB_UUID      48

#define COMMIT_CHKSUM 16 /* commit_header.h_chksum[0] */

#define INCOMPAT_64BIT	 0x2u
#define INCOMPAT_CSUM_V2 0x8u
#define INCOMPAT_CSUM_V3 0x10u

#define TAG_ESCAPE    0x1u
#define TAG_SAME_UUID 0x2u
#define TAG_LAST      0x8u

#define HEADER_BYTES 12
#define UUID_BYTES   16

static uint32_t be32_at(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return be32toh(v);
}

static uint16_t be16_at(const uint8_t *p, size_t off)
{
	uint16_t v;

	memcpy(&v, p + off, 2);
	return be16toh(v);
}

/* A journal block's type for this sequence, or 0 if it is not a header block of it. */
static uint32_t header_type(const uint8_t *block, uint32_t *ret_seq)
{
	if (be32_at(block, 0) != JBD2_MAGIC)
		return 0;
	*ret_seq = be32_at(block, 8);
	return be32_at(block, 4);
}

static int checksummed(const struct jbd2_journal *j)
{
	return !!(j->incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3));
}

/* jbd2's CRC32C: the kernel's crc32c, seeded, not inverted (e2fsprogs has the same). */
static uint32_t crc(uint32_t seed, const void *buf, size_t len)
{
	return ext2fs_crc32c_le(seed, buf, len);
}

/* The block's CRC32C with the 4 bytes at `at` taken as zero, against what they hold. */
static int sum_checks(const struct jbd2_journal *j, const uint8_t *block, size_t at)
{
	const uint8_t zero[4] = { 0 };
	uint32_t c = crc(j->csum_seed, block, at);

	c = crc(c, zero, 4);
	c = crc(c, block + at + 4, j->block_size - at - 4);
	return c == be32_at(block, at);
}

/* A descriptor or revoke block: its tail. Without checksums, nothing to check. */
static int block_checks(struct jbd2_journal *j, const uint8_t *block, uint32_t type)
{
	int ok = !checksummed(j) ||
		 sum_checks(j, block, type == JBD2_COMMIT_BLOCK ? COMMIT_CHKSUM : j->block_size - 4);

	j->damaged += !ok;
	return ok;
}

/* A logged copy against its tag's checksum (CSUM_V3: 32 bits; V2: the low 16). */
static int copy_checks(struct jbd2_journal *j, const uint8_t *copy, uint32_t tag_sum, uint32_t seq)
{
	uint32_t be_seq = htobe32(seq), c;

	if (!checksummed(j))
		return 1;
	c = crc(crc(j->csum_seed, &be_seq, 4), copy, j->block_size);
	if (!(j->incompat & INCOMPAT_CSUM_V3))
		c &= 0xffff;
	if (c == tag_sum)
		return 1;
	j->damaged++;
	return 0;
}

static uint32_t next_pos(const struct jbd2_journal *j, uint32_t pos)
{
	return pos + 1 >= j->maxlen ? j->first : pos + 1;
}

/* The tag format follows the features: CSUM_V3, or the older tags sized by CSUM_V2 and 64BIT. */
static void set_features(struct jbd2_journal *j, uint32_t incompat)
{
	j->incompat = incompat | j->implied;
	if (j->incompat & INCOMPAT_CSUM_V3)
		j->tag_bytes = 16;
	else
		j->tag_bytes = 8 + (j->incompat & INCOMPAT_CSUM_V2 ? 2 : 0) +
			       (j->incompat & INCOMPAT_64BIT ? 4 : 0);
	j->tags_end = j->block_size -
		      (j->incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) ? 4 : 0);
}

int jbd2_open(struct jbd2_journal *j, const uint8_t *sb, uint32_t block_size,
	      const struct ext4_extent_list *extents, uint64_t fs_blocks, uint32_t implied)
{
	uint32_t type, seq;

	memset(j, 0, sizeof(*j));
	type = header_type(sb, &seq);
	if (type != JBD2_SUPERBLOCK_V1 && type != JBD2_SUPERBLOCK_V2)
		return -EINVAL;
	j->block_size = block_size;
	j->maxlen = be32_at(sb, JSB_MAXLEN);
	j->first = be32_at(sb, JSB_FIRST);
	j->sequence = be32_at(sb, JSB_SEQUENCE);
	j->start = be32_at(sb, JSB_START);
	j->implied = implied;
	j->csum_seed = crc(~0u, sb + JSB_UUID, UUID_BYTES);
	set_features(j, type == JBD2_SUPERBLOCK_V2 ? be32_at(sb, JSB_INCOMPAT) : 0);
	if (be32_at(sb, JSB_BLOCKSIZE) != block_size || j->maxlen < 2 || !j->first ||
	    j->first >= j->maxlen || j->start >= j->maxlen || j->maxlen > (1u << 26))
		return -EINVAL;
	j->phys = calloc(j->maxlen, sizeof(*j->phys));
	j->slot = calloc(j->maxlen, sizeof(*j->slot));
	j->runs = malloc((extents->nr ? extents->nr : 1) * sizeof(*j->runs));
	if (!j->phys || !j->slot || !j->runs) {
		jbd2_close(j);
		return -ENOMEM;
	}
	memcpy(j->runs, extents->map, extents->nr * sizeof(*j->runs));
	j->nr_runs = extents->nr;
	for (size_t i = 0; i < extents->nr; i++) {
		const struct ext4_extent_map *m = &extents->map[i];

		for (uint32_t b = 0; b < m->len && (uint64_t)m->logical + b < j->maxlen; b++)
			j->phys[m->logical + b] = m->physical + b;
	}
	for (uint32_t pos = 0; pos < j->maxlen; pos++)
		if (!j->phys[pos] || j->phys[pos] >= fs_blocks) {
			jbd2_close(j);
			return -EINVAL; /* a journal with holes cannot be read */
		}
	return 0;
}

void jbd2_close(struct jbd2_journal *j)
{
	free(j->revokes);
	free(j->phys);
	free(j->slot);
	free(j->runs);
	free(j->data);
	free(j->pos_of);
	memset(j, 0, sizeof(*j));
}

int64_t jbd2_position(const struct jbd2_journal *j, uint64_t block)
{
	for (size_t i = 0; i < j->nr_runs; i++) {
		const struct ext4_extent_map *m = &j->runs[i];

		if (block >= m->physical && block - m->physical < m->len &&
		    m->logical + (block - m->physical) < j->maxlen)
			return (int64_t)(m->logical + (block - m->physical));
	}
	return -1;
}

static void forget_logged(struct jbd2_journal *j)
{
	for (size_t i = 0; i < j->nr; i++)
		j->slot[j->pos_of[i]] = 0;
	j->nr = 0;
}

static int keep_logged(struct jbd2_journal *j, uint32_t pos, const uint8_t *content)
{
	size_t i = j->slot[pos];

	if (!i) {
		size_t cap = j->cap;
		uint32_t *pos_of = array_grow(j->pos_of, &cap, j->nr, sizeof(*pos_of));
		uint8_t *data;

		if (!pos_of)
			return -ENOMEM;
		j->pos_of = pos_of;
		if (cap != j->cap) {
			data = realloc(j->data, cap * j->block_size);
			if (!data)
				return -ENOMEM;
			j->data = data;
			j->cap = cap;
		}
		i = ++j->nr;
		j->pos_of[i - 1] = pos;
		j->slot[pos] = (uint32_t)i;
	}
	memcpy(j->data + (i - 1) * j->block_size, content, j->block_size);
	return 0;
}

struct tag {
	uint64_t home;
	uint32_t flags, sum;
};

/* The tags of a descriptor block; returns how many (at most max), -EINVAL if damaged. */
static int read_tags(const struct jbd2_journal *j, const uint8_t *desc, struct tag *tags,
		     size_t max)
{
	size_t off = HEADER_BYTES, n = 0;

	while (off + j->tag_bytes <= j->tags_end && n < max) {
		struct tag *t = &tags[n++];
		int v3 = j->incompat & INCOMPAT_CSUM_V3;

		t->flags = v3 ? be32_at(desc, off + 4) : be16_at(desc, off + 6);
		t->sum = v3 ? be32_at(desc, off + 12) : be16_at(desc, off + 4);
		t->home = be32_at(desc, off);
		if (j->incompat & INCOMPAT_64BIT)
			t->home |= (uint64_t)be32_at(desc, off + 8) << 32;
		off += j->tag_bytes;
		if (!(t->flags & TAG_SAME_UUID))
			off += UUID_BYTES;
		if (t->flags & TAG_LAST)
			return (int)n;
	}
	return n ? (int)n : -EINVAL;
}

struct apply_one {
	struct jbd2_journal *j;
	ext4_block_fn read;
	void *ctx;
	jbd2_apply_fn apply;
	void *apply_ctx;
	uint8_t *scratch;
	uint32_t seq; /* the transaction being applied */
};

static int by_revoked_block(const void *a, const void *b)
{
	const struct jbd2_revoke *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

/* Replay only: a later transaction revoked this block, so older copies must not land. */
static int revoked(const struct jbd2_journal *j, uint64_t block, uint32_t seq)
{
	struct jbd2_revoke key = { block, 0 };
	const struct jbd2_revoke *r;

	if (!j->nr_revokes)
		return 0;
	r = bsearch(&key, j->revokes, j->nr_revokes, sizeof(key), by_revoked_block);
	return r && (int32_t)(r->seq - seq) >= 0;
}

/* Hand over the copies one descriptor announces; returns the position after them. */
static int apply_descriptor(struct apply_one *a, uint32_t dpos, const uint8_t *desc)
{
	struct jbd2_journal *j = a->j;
	size_t max = j->block_size / 8;
	struct tag *tags = malloc(max * sizeof(*tags));
	uint32_t pos = dpos;
	int n, err = 0;

	if (!tags)
		return -ENOMEM;
	n = read_tags(j, desc, tags, max);
	for (int i = 0; i < n && !err; i++) {
		const uint8_t *copy;

		pos = next_pos(j, pos);
		if (j->slot[pos]) {
			copy = j->data + (size_t)(j->slot[pos] - 1) * j->block_size;
		} else {
			j->incomplete++;
			err = a->read(a->ctx, j->phys[pos], a->scratch);
			copy = a->scratch;
		}
		if (err)
			break;
		if (revoked(j, tags[i].home, a->seq) || !copy_checks(j, copy, tags[i].sum, a->seq))
			continue;
		if (tags[i].flags & TAG_ESCAPE) {
			uint32_t magic = htobe32(JBD2_MAGIC);

			if (copy != a->scratch)
				memcpy(a->scratch, copy, j->block_size);
			memcpy(a->scratch, &magic, 4);
			copy = a->scratch;
		}
		err = a->apply(a->apply_ctx, tags[i].home, copy);
	}
	free(tags);
	return n < 0 ? n : err;
}

struct desc_ref {
	uint32_t pos, age;
};

static int by_age(const void *a, const void *b)
{
	const struct desc_ref *x = a, *y = b;

	return x->age > y->age ? -1 : x->age < y->age;
}

/* Apply the transaction seq whose commit block sits at cpos: its descriptors, oldest first. */
static int apply_transaction(struct apply_one *a, uint32_t cpos, uint32_t seq)
{
	struct jbd2_journal *j = a->j;
	uint32_t area = j->maxlen - j->first;
	struct desc_ref *descs = malloc((j->nr ? j->nr : 1) * sizeof(*descs));
	size_t nr = 0;
	int err = 0;

	if (!descs)
		return -ENOMEM;
	for (size_t i = 0; i < j->nr; i++) {
		const uint8_t *b = j->data + i * j->block_size;
		uint32_t s;

		if (header_type(b, &s) == JBD2_DESCRIPTOR_BLOCK && s == seq)
			descs[nr++] = (struct desc_ref){ j->pos_of[i],
							 (cpos + area - j->pos_of[i]) % area };
	}
	sort_array(descs, nr, sizeof(*descs), by_age);
	/* A descriptor that does not check: its tags cannot be trusted, nor its transaction. */
	for (size_t i = 0; i < nr; i++)
		if (!block_checks(j, j->data + (size_t)(j->slot[descs[i].pos] - 1) * j->block_size,
				  JBD2_DESCRIPTOR_BLOCK))
			nr = 0;
	for (size_t i = 0; i < nr && !err; i++)
		err = apply_descriptor(a, descs[i].pos,
				       j->data + (size_t)(j->slot[descs[i].pos] - 1) * j->block_size);
	free(descs);
	j->commits++;
	return err;
}

int jbd2_log_block(struct jbd2_journal *j, uint32_t pos, const uint8_t *content,
		   ext4_block_fn read, void *ctx, jbd2_apply_fn apply, void *apply_ctx)
{
	struct apply_one a = { j, read, ctx, apply, apply_ctx, NULL, 0 };
	uint32_t seq;
	int err;

	if (pos < j->first || pos >= j->maxlen) {
		uint32_t type = header_type(content, &seq);

		/* The superblock: tail updates, and features the kernel set at mount. */
		if (type == JBD2_SUPERBLOCK_V2)
			set_features(j, be32_at(content, JSB_INCOMPAT));
		return 0;
	}
	if (header_type(content, &seq) != JBD2_COMMIT_BLOCK)
		return keep_logged(j, pos, content);
	if (!block_checks(j, content, JBD2_COMMIT_BLOCK) ||
	    (j->have_head && (int32_t)(seq - j->next_seq) < 0)) {
		forget_logged(j); /* a commit that does not check, or one applied already */
		return 0;
	}
	if (j->have_head && (int32_t)(seq - j->next_seq) > 0)
		j->missed += seq - j->next_seq; /* overwritten before they were seen */
	j->head = next_pos(j, pos);
	j->next_seq = seq + 1;
	j->have_head = 1;
	a.scratch = malloc(j->block_size);
	if (!a.scratch)
		return -ENOMEM;
	a.seq = seq;
	err = apply_transaction(&a, pos, seq);
	free(a.scratch);
	forget_logged(j);
	return err;
}

int jbd2_catch_up(struct jbd2_journal *j, ext4_block_fn read, void *ctx, jbd2_apply_fn apply,
		  void *apply_ctx)
{
	uint8_t *block = malloc(j->block_size);
	uint32_t pos = j->head, seq = j->next_seq, type, s;
	uint64_t before = j->commits;
	int err = block ? 0 : -ENOMEM;

	for (uint32_t walked = 0; !err && j->have_head && walked < j->maxlen; walked++) {
		err = read(ctx, j->phys[pos], block);
		type = err ? 0 : header_type(block, &s);
		if (!type || s != seq)
			break; /* not written yet */
		if (type == JBD2_COMMIT_BLOCK) {
			err = jbd2_log_block(j, pos, block, read, ctx, apply, apply_ctx);
			break;
		}
		if (type == JBD2_DESCRIPTOR_BLOCK) {
			struct tag *tags = malloc(j->block_size / 8 * sizeof(*tags));
			int n = tags ? read_tags(j, block, tags, j->block_size / 8) : -ENOMEM;

			free(tags);
			err = n < 0 ? 0 : keep_logged(j, pos, block);
			for (int i = 0; !err && i < n; i++, walked++) {
				pos = next_pos(j, pos);
				err = read(ctx, j->phys[pos], block) ?: keep_logged(j, pos, block);
			}
			if (n < 0)
				break;
		} else if (type != JBD2_REVOKE_BLOCK) {
			break; /* live, revokes need nothing */
		}
		pos = next_pos(j, pos);
	}
	free(block);
	return err ? err : j->commits != before;
}

/* The records of a revoke block: filesystem blocks whose older copies are void. */
static int note_revokes(struct jbd2_journal *j, const uint8_t *block, uint32_t seq,
			size_t *cap)
{
	size_t used = be32_at(block, HEADER_BYTES), width = j->incompat & INCOMPAT_64BIT ? 8 : 4;

	if (used > j->tags_end || !block_checks(j, block, JBD2_REVOKE_BLOCK))
		return 0; /* damaged: ignore it rather than trust its length */
	for (size_t off = HEADER_BYTES + 4; off + width <= used; off += width) {
		struct jbd2_revoke *grown = array_grow(j->revokes, cap, j->nr_revokes,
						       sizeof(*grown));
		uint64_t b = width == 8 ? (uint64_t)be32_at(block, off) << 32 | be32_at(block, off + 4)
					: be32_at(block, off);

		if (!grown)
			return -ENOMEM;
		j->revokes = grown;
		j->revokes[j->nr_revokes++] = (struct jbd2_revoke){ b, seq };
	}
	return 0;
}

/* Keep, per block, the latest transaction that revoked it; sorted for bsearch. */
static void settle_revokes(struct jbd2_journal *j)
{
	size_t out = 0;

	sort_array(j->revokes, j->nr_revokes, sizeof(*j->revokes), by_revoked_block);
	for (size_t i = 0; i < j->nr_revokes; i++) {
		if (out && j->revokes[out - 1].block == j->revokes[i].block) {
			if ((int32_t)(j->revokes[i].seq - j->revokes[out - 1].seq) > 0)
				j->revokes[out - 1].seq = j->revokes[i].seq;
			continue;
		}
		j->revokes[out++] = j->revokes[i];
	}
	j->nr_revokes = out;
}

/*
 * One walk of the log from its tail, as recovery does: pass 0 gathers the
 * revoke records of committed transactions, pass 1 applies the copies
 * they leave valid. Stops at the first block that does not continue the log.
 */
static int replay_pass(struct jbd2_journal *j, int pass, ext4_block_fn read, void *ctx,
		       jbd2_apply_fn apply, void *apply_ctx, uint8_t *block)
{
	uint32_t pos = j->start, seq = j->sequence;
	size_t cap = j->nr_revokes, committed = 0;
	int err = 0;

	/* Where the live log goes on: after the last commit found (head, next_seq). */
	j->head = j->start;
	j->next_seq = j->sequence;
	j->have_head = j->start != 0;
	/* s_start 0: the journal is empty, everything is home already. */
	for (uint32_t walked = 0; pos && !err && walked < j->maxlen; walked++) {
		uint32_t type, s;

		err = read(ctx, j->phys[pos], block);
		if (err)
			break;
		type = header_type(block, &s);
		if (!type || s != seq)
			break; /* the end of the log */
		if (type == JBD2_DESCRIPTOR_BLOCK) {
			struct tag *tags = malloc(j->block_size / 8 * sizeof(*tags));
			int n = tags ? read_tags(j, block, tags, j->block_size / 8) : -ENOMEM;

			free(tags);
			err = pass ? keep_logged(j, pos, block) : 0;
			for (int i = 0; !err && i < n; i++) {
				pos = next_pos(j, pos);
				walked++;
				if (pass) {
					err = read(ctx, j->phys[pos], block);
					err = err ?: keep_logged(j, pos, block);
				}
			}
			if (n < 0)
				break;
		} else if (type == JBD2_COMMIT_BLOCK) {
			if (pass)
				err = jbd2_log_block(j, pos, block, read, ctx, apply, apply_ctx);
			committed = j->nr_revokes;
			seq++;
		} else if (type == JBD2_REVOKE_BLOCK) {
			err = pass ? 0 : note_revokes(j, block, seq, &cap);
		} else {
			break;
		}
		pos = next_pos(j, pos);
	}
	if (!pass)
		j->nr_revokes = committed; /* an uncommitted tail revokes nothing */
	forget_logged(j);		   /* nor does it apply anything */
	return err;
}

int jbd2_replay(struct jbd2_journal *j, ext4_block_fn read, void *ctx, jbd2_apply_fn apply,
		void *apply_ctx)
{
	uint8_t *block = malloc(j->block_size);
	int err = block ? 0 : -ENOMEM;

	err = err ?: replay_pass(j, 0, read, ctx, apply, apply_ctx, block);
	if (!err)
		settle_revokes(j);
	err = err ?: replay_pass(j, 1, read, ctx, apply, apply_ctx, block);
	/* Live, transactions are applied in order as they commit: revokes need no memory. */
	free(j->revokes);
	j->revokes = NULL;
	j->nr_revokes = 0;
	free(block);
	return err;
}
