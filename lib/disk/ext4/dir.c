// SPDX-License-Identifier: MIT
/*
 * Directory blocks: a chain of ext4_dir_entry_2 records (inode, rec_len,
 * name_len, file_type, name) filling the block. A deleted entry has inode 0
 * or was merged into its predecessor's rec_len; the checksum tail is a
 * record with inode 0; htree interior nodes are one record with inode 0
 * spanning the block. So a walk that keeps entries with a non-zero inode
 * sees exactly the names the directory holds.
 */
#include <errno.h>
#include <ext2fs/ext2_fs.h>
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

