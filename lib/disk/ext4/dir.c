// SPDX-License-Identifier: MIT
/*
 * Directory blocks: a chain of ext4_dir_entry_2 records (inode, rec_len,
 * name_len, file_type, name) filling the block. A deleted entry has inode 0
 * or was merged into its predecessor's rec_len; the checksum tail is a
 * record with inode 0; htree interior nodes are one record with inode 0
 * spanning the block. So a walk that keeps entries with a non-zero inode
 * sees exactly the names the directory holds.
 */
#include <endian.h>
#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <string.h>

#include "disk/ext4/inode.h"

#define DIRENT_HEADER 8

static int dot_or_dotdot(const struct ext4_dirent *e)
{
	return (e->name_len == 1 && e->name[0] == '.') ||
	       (e->name_len == 2 && e->name[0] == '.' && e->name[1] == '.');
}

static int walk_records(const uint8_t *p, size_t len, ext4_dirent_fn fn, void *ctx)
{
	size_t off = 0;

	while (off + DIRENT_HEADER <= len) {
		uint32_t ino;
		uint16_t rec_len;
		struct ext4_dirent e;
		int ret;

		memcpy(&ino, p + off, 4);
		memcpy(&rec_len, p + off + 4, 2);
		e.ino = ino;
		e.name_len = p[off + 6];
		e.file_type = p[off + 7];
		e.name = (const char *)p + off + DIRENT_HEADER;
		/* rec_len 0 encodes 65536 in 64 KiB blocks only; elsewhere it is damage. */
		if (rec_len < DIRENT_HEADER || (rec_len & 3) || rec_len > len - off ||
		    DIRENT_HEADER + (size_t)e.name_len > rec_len)
			return -EINVAL;
		if (e.ino && e.name_len && !dot_or_dotdot(&e) && !memchr(e.name, '/', e.name_len) &&
		    !memchr(e.name, 0, e.name_len)) {
			ret = fn(ctx, &e);
			if (ret)
				return ret;
		}
		off += rec_len;
	}
	return 0;
}

int ext4_dir_block_walk(const uint8_t *block, size_t len, ext4_dirent_fn fn, void *ctx)
{
	return walk_records(block, len, fn, ctx);
}

int ext4_dir_inline_walk(const uint8_t *i_block, ext4_dirent_fn fn, void *ctx)
{
	return walk_records(i_block + 4, EXT4_IBLOCK_BYTES - 4, fn, ctx);
}

/*
 * metadata_csum on a directory leaf block: its last 12 bytes are a record
 * of inode 0, rec_len 12, file type 0xde, then the CRC32C of everything
 * before it, seeded from the filesystem's seed, the directory's inode
 * number and generation. The tail counts only where the chain of records
 * from the block's start ends exactly at it, as the kernel finds it: an
 * htree root keeps a leaf's old tail in its last bytes (its ".." record
 * spans them), and its checksum, like an interior node's, lives elsewhere.
 */
#define DIRENT_TAIL 12

int ext4_dir_block_csum_ok(const uint8_t *block, size_t len, uint32_t seed, uint32_t dir_ino,
			   uint32_t generation)
{
	uint32_t zero, le_ino = htole32(dir_ino), le_gen = htole32(generation), want, c;
	size_t off = 0, top = len - DIRENT_TAIL;
	const uint8_t *t = block + top;
	uint16_t rec_len;

	if (len < DIRENT_TAIL)
		return 1;
	while (off < top) {
		memcpy(&rec_len, block + off + 4, 2);
		rec_len = le16toh(rec_len);
		if (rec_len < DIRENT_HEADER || rec_len > len - off)
			return 1; /* not a leaf's chain: the walk will judge it */
		off += rec_len;
	}
	memcpy(&zero, t, 4);
	memcpy(&rec_len, t + 4, 2);
	if (off != top || zero || le16toh(rec_len) != DIRENT_TAIL || t[6] || t[7] != 0xde)
		return 1;
	memcpy(&want, t + 8, 4);
	c = ext2fs_crc32c_le(seed, (const uint8_t *)&le_ino, 4);
	c = ext2fs_crc32c_le(c, (const uint8_t *)&le_gen, 4);
	return ext2fs_crc32c_le(c, block, top) == le32toh(want);
}
