// SPDX-License-Identifier: MIT
/*
 * Decoding on-disk inodes (e2fsprogs' struct ext2_inode_large). The fields
 * past the first 128 bytes count only as far as i_extra_isize says they
 * exist; uid and gid have high halves in osd2.
 */
#include <endian.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <stddef.h>
#include <string.h>

#include "disk/ext4/inode.h"

static uint32_t le32_at(const uint8_t *raw, size_t offset)
{
	uint32_t v;

	memcpy(&v, raw + offset, sizeof(v));
	return v;
}

static uint16_t le16_at(const uint8_t *raw, size_t offset)
{
	uint16_t v;

	memcpy(&v, raw + offset, sizeof(v));
	return v;
}

/* Seconds with the two epoch bits of the *_extra field, when it exists. */
static int64_t inode_time(const uint8_t *raw, size_t field, size_t extra, uint32_t avail)
{
	int64_t t = (int32_t)le32_at(raw, field);

	if (extra + 4 <= avail)
		t += (int64_t)(le32_at(raw, extra) & EXT4_EPOCH_MASK) << 32;
	return t;
}

void ext4_inode_decode(const uint8_t *raw, uint32_t inode_size, struct ext4_inode_info *ret)
{
	uint32_t avail = EXT2_GOOD_OLD_INODE_SIZE;

	if (inode_size > EXT2_GOOD_OLD_INODE_SIZE) {
		uint32_t extra = le16_at(raw, offsetof(struct ext2_inode_large, i_extra_isize));

		if (extra <= inode_size - EXT2_GOOD_OLD_INODE_SIZE)
			avail += extra;
	}
	memset(ret, 0, sizeof(*ret));
	ret->mode = le16_at(raw, offsetof(struct ext2_inode_large, i_mode));
	ret->links = le16_at(raw, offsetof(struct ext2_inode_large, i_links_count));
	ret->uid = le16_at(raw, offsetof(struct ext2_inode_large, i_uid)) |
		   (uint32_t)le16_at(raw, offsetof(struct ext2_inode_large,
						   osd2.linux2.l_i_uid_high)) << 16;
	ret->gid = le16_at(raw, offsetof(struct ext2_inode_large, i_gid)) |
		   (uint32_t)le16_at(raw, offsetof(struct ext2_inode_large,
						   osd2.linux2.l_i_gid_high)) << 16;
	ret->size = le32_at(raw, offsetof(struct ext2_inode_large, i_size)) |
		    (uint64_t)le32_at(raw, offsetof(struct ext2_inode_large, i_size_high)) << 32;
	ret->flags = le32_at(raw, offsetof(struct ext2_inode_large, i_flags));
	ret->generation = le32_at(raw, offsetof(struct ext2_inode_large, i_generation));
	ret->dtime = le32_at(raw, offsetof(struct ext2_inode_large, i_dtime));
	ret->mtime = inode_time(raw, offsetof(struct ext2_inode_large, i_mtime),
				offsetof(struct ext2_inode_large, i_mtime_extra), avail);
	ret->ctime = inode_time(raw, offsetof(struct ext2_inode_large, i_ctime),
				offsetof(struct ext2_inode_large, i_ctime_extra), avail);
	if (offsetof(struct ext2_inode_large, i_crtime) + 4 <= avail)
		ret->crtime = le32_at(raw, offsetof(struct ext2_inode_large, i_crtime));
	memcpy(ret->i_block, raw + offsetof(struct ext2_inode_large, i_block), EXT4_IBLOCK_BYTES);
}

int ext4_inode_differs(const struct ext4_inode_info *a, const struct ext4_inode_info *b)
{
	return memcmp(a, b, sizeof(*a)) != 0;
}

/*
 * ext4's metadata_csum for an inode: CRC32C from the filesystem's seed over
 * the inode number and generation, then the whole inode with its checksum
 * fields taken as zero; the high half is kept only where i_extra_isize
 * makes room for it. An inode never written (all zero) has none to check.
 */
int ext4_inode_csum_ok(const uint8_t *raw, uint32_t inode_size, uint32_t ino, uint32_t seed)
{
	const size_t lo = offsetof(struct ext2_inode_large, i_checksum_lo);
	const size_t hi = offsetof(struct ext2_inode_large, i_checksum_hi);
	const uint8_t zero[2] = { 0 };
	uint32_t le_ino = htole32(ino), c, want;
	int large = inode_size >= hi + 2, has_hi = 0, any = 0;

	for (uint32_t i = 0; i < inode_size && !any; i++)
		any = raw[i];
	if (!any)
		return 1;
	if (large)
		has_hi = hi + 2 <= EXT2_GOOD_OLD_INODE_SIZE +
					   (size_t)le16_at(raw, offsetof(struct ext2_inode_large,
									 i_extra_isize));
	c = ext2fs_crc32c_le(seed, (const uint8_t *)&le_ino, 4);
	c = ext2fs_crc32c_le(c, raw + offsetof(struct ext2_inode_large, i_generation), 4);
	c = ext2fs_crc32c_le(c, raw, lo);
	c = ext2fs_crc32c_le(c, zero, 2);
	c = ext2fs_crc32c_le(c, raw + lo + 2, EXT2_GOOD_OLD_INODE_SIZE - lo - 2);
	if (large) {
		size_t from = has_hi ? hi + 2 : hi;

		c = ext2fs_crc32c_le(c, raw + EXT2_GOOD_OLD_INODE_SIZE, hi - EXT2_GOOD_OLD_INODE_SIZE);
		if (has_hi)
			c = ext2fs_crc32c_le(c, zero, 2);
		c = ext2fs_crc32c_le(c, raw + from, inode_size - from);
	}
	want = le16_at(raw, lo) | (has_hi ? (uint32_t)le16_at(raw, hi) << 16 : 0);
	return (has_hi ? c : c & 0xffff) == want;
}
