// SPDX-License-Identifier: MIT
/*
 * Making, changing and journaling real ext4 images with e2fsprogs, for the
 * engine's tests and benchmark. Fixed UUID, hash seed and clock, so that
 * images come out the same every time.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "disk/ext4/engine.h"
#include "ext4_image.h"
#include "run_command.h"

#define JBD2_MAGIC 0xc03b3998u

/* Transactions committed into the last image's log: each takes the next sequence, as in jbd2. */
static uint32_t committed;

int ext4_image_make(struct ext4_image *img, const char *features, int big_dir)
{
	char tree[128];
	FILE *names;

	committed = 0;
	snprintf(img->dir, sizeof(img->dir), "/tmp/vmscope-test-ext4.XXXXXX");
	if (!mkdtemp(img->dir))
		return -1;
	snprintf(img->path, sizeof(img->path), "%s/fs.img", img->dir);
	snprintf(tree, sizeof(tree), "%s/tree", img->dir);
	if (run_command("mkdir -p %s/etc %s/docs/deep/er %s/emptydir %s/big && echo motd >%s/etc/motd && "
		"seq 1 3000 >%s/docs/numbers.txt && echo x >%s/docs/deep/er/leaf && "
		"echo gone >%s/docs/old.txt",
		tree, tree, tree, tree, tree, tree, tree, tree))
		return -1;
	snprintf(tree + strlen(tree), sizeof(tree) - strlen(tree), "/big/names");
	names = fopen(tree, "w");
	if (!names)
		return -1;
	for (int i = 0; i < big_dir; i++)
		fprintf(names, "a-long-enough-name-to-fill-blocks-%04d\n", i);
	fclose(names);
	tree[strlen(tree) - strlen("/big/names")] = 0;
	if (run_command("cd %s/big && xargs -r touch <names && rm names", tree) ||
	    run_command("E2FSPROGS_FAKE_TIME=1000 mke2fs -q -F -t ext4 -b %d -O %s "
		"-U 5c0d1e55-0000-4000-8000-000000000001 -E hash_seed=5c0d1e55-0000-4000-8000-"
		"000000000002 -d %s %s 32M >/dev/null",
		EXT4_IMAGE_BLOCK, features, tree, img->path))
		return -1;
	img->fd = open(img->path, O_RDWR);
	if (img->fd < 0)
		return -1;
	img->size = (uint64_t)lseek(img->fd, 0, SEEK_END);
	return 0;
}

void ext4_image_drop(struct ext4_image *img)
{
	if (img->fd >= 0)
		close(img->fd);
	run_command("rm -rf %s", img->dir);
}

int ext4_image_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
	struct ext4_image *img = ctx;

	return pread(img->fd, buf, len, (off_t)offset) == (ssize_t)len ? 0 : -EIO;
}

long ext4_image_change(struct ext4_image *img, const char *commands, uint64_t **ret_blocks,
		       uint8_t **ret_data)
{
	const uint32_t bs = EXT4_IMAGE_BLOCK;
	size_t nr = 0, n = (size_t)(img->size / bs);
	char before[128], script[128];
	uint8_t *a = malloc(bs), *b = malloc(bs);
	FILE *cmd;
	int old;

	snprintf(before, sizeof(before), "%s/before.img", img->dir);
	snprintf(script, sizeof(script), "%s/commands", img->dir);
	cmd = fopen(script, "w");
	if (!a || !b || !cmd || run_command("cp %s %s", img->path, before))
		goto fail;
	fputs(commands, cmd);
	fclose(cmd);
	cmd = NULL;
	if (run_command("cd %s && E2FSPROGS_FAKE_TIME=2000 debugfs -w -f %s %s >/dev/null 2>&1", img->dir,
		script, img->path))
		goto fail;
	old = open(before, O_RDONLY);
	*ret_blocks = malloc(n * sizeof(**ret_blocks));
	*ret_data = malloc(n * bs);
	if (old < 0 || !*ret_blocks || !*ret_data)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (pread(old, a, bs, (off_t)i * bs) != bs || pread(img->fd, b, bs, (off_t)i * bs) != bs)
			goto fail;
		if (memcmp(a, b, bs)) {
			(*ret_blocks)[nr] = i;
			memcpy(*ret_data + nr * bs, b, bs);
			nr++;
		}
	}
	close(old);
	free(a);
	free(b);
	return (long)nr;
fail:
	if (cmd)
		fclose(cmd);
	free(a);
	free(b);
	return -1;
}

/* The last journal's CRC32C seed (jbd2: of its superblock's UUID), for CSUM_V3 logs. */
static uint32_t jsum_seed;

uint64_t ext4_image_journal_start(struct ext4_image *img)
{
	char command[256];
	uint64_t block = 0;
	uint8_t uuid[16];
	FILE *p;

	snprintf(command, sizeof(command), "debugfs -R 'bmap <8> 0' %s 2>/dev/null", img->path);
	p = popen(command, "r");
	if (!p)
		return 0;
	if (fscanf(p, "%" SCNu64, &block) != 1)
		block = 0;
	pclose(p);
	if (block && pread(img->fd, uuid, sizeof(uuid), (off_t)(block * EXT4_IMAGE_BLOCK + 48)) ==
			     (ssize_t)sizeof(uuid))
		jsum_seed = ext2fs_crc32c_le(~0u, uuid, sizeof(uuid));
	return block;
}

int ext4_image_journal_features(struct ext4_image *img, uint32_t incompat)
{
	uint64_t at = ext4_image_journal_start(img) * EXT4_IMAGE_BLOCK + 40;
	uint32_t v;

	if (pread(img->fd, &v, 4, (off_t)at) != 4)
		return -1;
	v = htobe32(be32toh(v) | incompat);
	return pwrite(img->fd, &v, 4, (off_t)at) == 4 ? 0 : -1;
}

uint32_t ext4_image_journal_sequence(struct ext4_image *img)
{
	uint64_t at = ext4_image_journal_start(img) * EXT4_IMAGE_BLOCK + 24;
	uint32_t seq = 0;

	if (pread(img->fd, &seq, 4, (off_t)at) != 4)
		return 0;
	return be32toh(seq) + committed;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

/* CSUM_V3: the block's CRC32C, the 4 bytes at `at` (where it goes) taken as zero. */
static void put_csum(uint8_t *block, size_t at)
{
	memset(block + at, 0, 4);
	put_be32(block + at, ext2fs_crc32c_le(jsum_seed, block, EXT4_IMAGE_BLOCK));
}

static uint32_t tag_csum(const uint8_t *copy, uint32_t seq)
{
	uint32_t be_seq = htobe32(seq);

	return ext2fs_crc32c_le(ext2fs_crc32c_le(jsum_seed, (const uint8_t *)&be_seq, 4), copy,
				EXT4_IMAGE_BLOCK);
}

static void header(uint8_t *block, uint32_t type, uint32_t seq)
{
	memset(block, 0, EXT4_IMAGE_BLOCK);
	put_be32(block, JBD2_MAGIC);
	put_be32(block + 4, type);
	put_be32(block + 8, seq);
}

typedef int (*write_fn)(void *ctx, uint64_t block, const uint8_t *content);

static int to_engine(void *e, uint64_t block, const uint8_t *content)
{
	return ext4_engine_write(e, block * EXT4_IMAGE_BLOCK, EXT4_IMAGE_BLOCK, content, 0, 1);
}

static int to_image(void *img, uint64_t block, const uint8_t *content)
{
	struct ext4_image *i = img;

	return pwrite(i->fd, content, EXT4_IMAGE_BLOCK, (off_t)(block * EXT4_IMAGE_BLOCK)) ==
			       EXT4_IMAGE_BLOCK
		       ? 0
		       : -EIO;
}

/* One transaction from journal position *pos, which is left after it. */
static int log_blocks(write_fn write_block, void *e, uint64_t jstart, uint32_t seq, int csum_v3,
		      const uint64_t *blocks, const uint8_t *data, size_t nr, int commit,
		      uint32_t *at)
{
	const uint32_t bs = EXT4_IMAGE_BLOCK, tag = csum_v3 ? 16 : 12;
	const uint32_t per_desc = (bs - 12 - 16 - (csum_v3 ? 4 : 0)) / tag;
	uint8_t block[EXT4_IMAGE_BLOCK];
	uint32_t pos = *at;
	int err = 0;

	for (size_t first = 0; !err && first < nr; first += per_desc) {
		size_t count = nr - first < per_desc ? nr - first : per_desc, off = 12;

		header(block, 1, seq);
		for (size_t i = 0; i < count; i++) {
			const uint8_t *copy = data + (first + i) * bs;
			uint32_t flags = (i ? 0x2 : 0) | (i == count - 1 ? 0x8 : 0), magic;

			memcpy(&magic, copy, 4);
			if (be32toh(magic) == JBD2_MAGIC)
				flags |= 0x1;
			put_be32(block + off, (uint32_t)blocks[first + i]);
			if (csum_v3) {
				uint8_t logged[EXT4_IMAGE_BLOCK]; /* as written: escaped */

				memcpy(logged, copy, bs);
				if (flags & 0x1)
					memset(logged, 0, 4);
				put_be32(block + off + 4, flags);
				put_be32(block + off + 12, tag_csum(logged, seq));
			} else {
				uint16_t be = htobe16((uint16_t)flags);

				memcpy(block + off + 6, &be, 2);
			}
			put_be32(block + off + 8, (uint32_t)(blocks[first + i] >> 32));
			off += tag + (i ? 0 : 16);
		}
		if (csum_v3)
			put_csum(block, bs - 4);
		err = write_block(e, jstart + pos++, block);
		for (size_t i = 0; !err && i < count; i++) {
			uint32_t magic;

			memcpy(block, data + (first + i) * bs, bs);
			memcpy(&magic, block, 4);
			if (be32toh(magic) == JBD2_MAGIC)
				memset(block, 0, 4);
			err = write_block(e, jstart + pos++, block);
		}
	}
	if (err || !commit)
		return err;
	header(block, 2, seq);
	if (csum_v3)
		put_csum(block, 16);
	*at = pos + 1;
	committed++;
	return write_block(e, jstart + pos, block);
}

int ext4_image_commit(struct ext4_engine *e, uint64_t jstart, uint32_t pos, uint32_t seq,
		      int damaged)
{
	uint8_t block[EXT4_IMAGE_BLOCK];

	header(block, 2, seq);
	put_csum(block, 16);
	if (damaged)
		block[100] ^= 1;
	committed++;
	return to_engine(e, jstart + pos, block);
}

int ext4_image_log(struct ext4_engine *e, uint64_t jstart, uint32_t seq, int csum_v3,
		   const uint64_t *blocks, const uint8_t *data, size_t nr, int commit)
{
	uint32_t pos = 1;

	return log_blocks(to_engine, e, jstart, seq, csum_v3, blocks, data, nr, commit, &pos);
}

int ext4_image_log_to_disk(struct ext4_image *img, int csum_v3, const uint64_t *blocks,
			   const uint8_t *data, size_t nr, const uint64_t *revoke)
{
	uint64_t jstart = ext4_image_journal_start(img);
	uint32_t seq = ext4_image_journal_sequence(img), start = htobe32(1), be_seq = htobe32(seq);
	uint8_t block[EXT4_IMAGE_BLOCK];
	uint32_t pos = 1;

	if (!jstart || log_blocks(to_image, img, jstart, seq, csum_v3, blocks, data, nr, 1, &pos))
		return -1;
	if (revoke) { /* a second transaction revoking one block: 64bit records */
		header(block, 5, seq + 1);
		put_be32(block + 12, 16 + 8);
		put_be32(block + 16, (uint32_t)(*revoke >> 32));
		put_be32(block + 20, (uint32_t)*revoke);
		if (csum_v3)
			put_csum(block, EXT4_IMAGE_BLOCK - 4);
		if (to_image(img, jstart + pos++, block))
			return -1;
		header(block, 2, seq + 1);
		if (csum_v3)
			put_csum(block, 16);
		if (to_image(img, jstart + pos, block))
			return -1;
	}
	if (
	    pwrite(img->fd, &start, 4, (off_t)(jstart * EXT4_IMAGE_BLOCK + 28)) != 4 ||
	    pwrite(img->fd, &be_seq, 4, (off_t)(jstart * EXT4_IMAGE_BLOCK + 24)) != 4)
		return -1;
	committed = revoke ? 2 : 1; /* past the superblock's sequence, now the log's first */
	return ext4_image_journal_features(img, 0x2u | (csum_v3 ? 0x10u : 0));
}

int ext4_image_restore(struct ext4_image *img)
{
	return run_command("cp %s/before.img %s", img->dir, img->path);
}
