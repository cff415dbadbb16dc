// SPDX-License-Identifier: MIT
/*
 * The ext4 block map, from the superblock (at byte 1024) and the group
 * descriptor table (the block after the superblock's), using e2fsprogs'
 * on-disk structure definitions.
 *
 * Group g's superblock and descriptor backups sit at the start of the group
 * when the group has them (all groups, or with sparse_super only 0, 1 and
 * powers of 3, 5 and 7). Bitmaps and inode tables lie where the descriptors
 * say: with flex_bg, packed together in the first group of a flex group.
 * Every such region becomes one entry of a sorted table; classifying a block
 * is one binary search.
 */
#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/ext4/layout.h"
#include "core/util.h"

#define SUPERBLOCK_OFFSET 1024
#define MAX_GROUPS	  (1u << 24)

static int fail(char *errbuf, size_t len, int err, const char *why)
{
	snprintf(errbuf, len, "ext4: %s", why);
	return err;
}

static int is_power_of(uint32_t n, uint32_t base)
{
	while (n > 1 && n % base == 0)
		n /= base;
	return n == 1;
}

static int group_has_super(const struct ext4_layout *l, uint32_t g)
{
	if (!l->sparse_super || g <= 1)
		return 1;
	return is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7);
}

static int read_super(struct ext4_layout *l, uint64_t size, ext4_read_fn read, void *ctx,
		      char *errbuf, size_t len)
{
	struct ext2_super_block sb;

	if (size < SUPERBLOCK_OFFSET + sizeof(sb) || read(ctx, SUPERBLOCK_OFFSET, &sb, sizeof(sb)))
		return fail(errbuf, len, -EIO, "cannot read the superblock");
	if (sb.s_magic != EXT2_SUPER_MAGIC)
		return fail(errbuf, len, -EINVAL, "no ext2/3/4 superblock");
	if (sb.s_log_block_size > 6)
		return fail(errbuf, len, -EINVAL, "implausible block size");
	l->block_size = 1024u << sb.s_log_block_size;
	l->has_64bit = !!(sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_64BIT);
	l->flex_bg = !!(sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_FLEX_BG);
	l->meta_bg = !!(sb.s_feature_incompat & EXT2_FEATURE_INCOMPAT_META_BG);
	l->sparse_super = !!(sb.s_feature_ro_compat & EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER);
	l->metadata_csum = !!(sb.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_METADATA_CSUM);
	l->gdt_csum = !!(sb.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_GDT_CSUM);
	l->csum_seed = sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_CSUM_SEED
			       ? sb.s_checksum_seed
			       : ext2fs_crc32c_le(~0u, sb.s_uuid, sizeof(sb.s_uuid));
	l->has_journal = !!(sb.s_feature_compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL);
	l->inline_data = !!(sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_INLINE_DATA);
	l->extents = !!(sb.s_feature_incompat & EXT3_FEATURE_INCOMPAT_EXTENTS);
	l->blocks = sb.s_blocks_count | (l->has_64bit ? (uint64_t)sb.s_blocks_count_hi << 32 : 0);
	l->blocks_per_group = sb.s_blocks_per_group;
	l->inodes_per_group = sb.s_inodes_per_group;
	l->inode_size = sb.s_rev_level ? sb.s_inode_size : 128;
	l->first_data_block = sb.s_first_data_block;
	l->desc_size = l->has_64bit ? sb.s_desc_size : 32;
	l->reserved_gdt_blocks = sb.s_reserved_gdt_blocks;
	l->journal_inode = sb.s_journal_inum;
	l->first_ino = sb.s_rev_level ? sb.s_first_ino : EXT2_GOOD_OLD_FIRST_INO;
	l->inodes = sb.s_inodes_count;
	if (!l->blocks_per_group || l->blocks_per_group > 8 * l->block_size ||
	    !l->inodes_per_group || l->inodes_per_group > 8 * l->block_size ||
	    l->inode_size < 128 || l->inode_size > l->block_size ||
	    (l->inode_size & (l->inode_size - 1)) || l->desc_size < 32 || l->desc_size > 1024 ||
	    (l->desc_size & (l->desc_size - 1)) || l->first_data_block >= l->blocks ||
	    l->blocks > size / l->block_size)
		return fail(errbuf, len, -EINVAL, "implausible superblock geometry");
	l->groups = (uint32_t)((l->blocks - l->first_data_block + l->blocks_per_group - 1) /
			       l->blocks_per_group);
	if (!l->groups || l->groups > MAX_GROUPS)
		return fail(errbuf, len, -EINVAL, "implausible group count");
	l->itable_blocks = (uint32_t)(((uint64_t)l->inodes_per_group * l->inode_size +
				       l->block_size - 1) / l->block_size);
	l->gdt_blocks = (uint32_t)(((uint64_t)l->groups * l->desc_size + l->block_size - 1) /
				   l->block_size);
	if (l->meta_bg)
		return fail(errbuf, len, -EOPNOTSUPP, "meta_bg filesystems are not supported yet");
	return 0;
}

static uint64_t desc_field(const uint8_t *d, size_t lo, size_t hi, int wide)
{
	uint32_t low, high = 0;

	memcpy(&low, d + lo, 4);
	if (wide)
		memcpy(&high, d + hi, 4);
	return low | (uint64_t)high << 32;
}

static int read_descriptors(struct ext4_layout *l, ext4_read_fn read, void *ctx, char *errbuf,
			    size_t len)
{
	uint64_t gdt = ((uint64_t)l->first_data_block + 1) * l->block_size;
	size_t bytes = (size_t)l->gdt_blocks * l->block_size;
	int wide = l->desc_size >= EXT2_MIN_DESC_SIZE_64BIT;
	uint8_t *table = malloc(bytes);

	l->group = calloc(l->groups, sizeof(*l->group));
	if (!table || !l->group) {
		free(table);
		return -ENOMEM;
	}
	if (read(ctx, gdt, table, bytes)) {
		free(table);
		return fail(errbuf, len, -EIO, "cannot read the group descriptors");
	}
	for (uint32_t g = 0; g < l->groups; g++) {
		const uint8_t *d = table + (size_t)g * l->desc_size;
		struct ext4_group *grp = &l->group[g];

		grp->block_bitmap = desc_field(d, offsetof(struct ext4_group_desc, bg_block_bitmap),
					       offsetof(struct ext4_group_desc, bg_block_bitmap_hi),
					       wide);
		grp->inode_bitmap = desc_field(d, offsetof(struct ext4_group_desc, bg_inode_bitmap),
					       offsetof(struct ext4_group_desc, bg_inode_bitmap_hi),
					       wide);
		grp->inode_table = desc_field(d, offsetof(struct ext4_group_desc, bg_inode_table),
					      offsetof(struct ext4_group_desc, bg_inode_table_hi),
					      wide);
		grp->flags = (uint16_t)desc_field(d, offsetof(struct ext4_group_desc, bg_flags), 0, 0);
		if (l->metadata_csum || l->gdt_csum) {
			uint16_t lo, hi = 0;

			memcpy(&lo, d + offsetof(struct ext4_group_desc, bg_itable_unused), 2);
			if (wide)
				memcpy(&hi, d + offsetof(struct ext4_group_desc, bg_itable_unused_hi),
				       2);
			grp->itable_unused = lo | (uint32_t)hi << 16;
			if (grp->itable_unused > l->inodes_per_group)
				grp->itable_unused = 0; /* damage: read the whole table */
		}
		if (grp->block_bitmap >= l->blocks || grp->inode_bitmap >= l->blocks ||
		    grp->inode_table + l->itable_blocks > l->blocks) {
			free(table);
			return fail(errbuf, len, -EINVAL, "a group descriptor points outside the "
				    "filesystem");
		}
	}
	free(table);
	return 0;
}

static int add_meta(struct ext4_layout *l, size_t *cap, uint64_t start, uint64_t blocks,
		    uint32_t group, enum ext4_block_kind kind)
{
	struct ext4_extent_of_kind *m;

	if (!blocks)
		return 0;
	m = array_grow(l->meta, cap, l->nr_meta, sizeof(*m));
	if (!m)
		return -ENOMEM;
	l->meta = m;
	l->meta[l->nr_meta++] = (struct ext4_extent_of_kind){ start, blocks, group, (uint8_t)kind };
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct ext4_extent_of_kind *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int build_map(struct ext4_layout *l, char *errbuf, size_t len)
{
	size_t cap = 0;
	int err = 0;

	for (uint32_t g = 0; !err && g < l->groups; g++) {
		uint64_t first = l->first_data_block + (uint64_t)g * l->blocks_per_group;
		const struct ext4_group *grp = &l->group[g];

		/* With 1 KiB blocks, block 0 is the boot block before the superblock's. */
		if (g == 0 && l->first_data_block)
			err = add_meta(l, &cap, 0, 1, 0, EXT4_BLOCK_SUPER);
		if (!err && group_has_super(l, g)) {
			err = add_meta(l, &cap, first, 1, g, EXT4_BLOCK_SUPER);
			err = err ?: add_meta(l, &cap, first + 1, l->gdt_blocks, g, EXT4_BLOCK_GDT);
			err = err ?: add_meta(l, &cap, first + 1 + l->gdt_blocks,
					      l->reserved_gdt_blocks, g, EXT4_BLOCK_RESERVED_GDT);
		}
		err = err ?: add_meta(l, &cap, grp->block_bitmap, 1, g, EXT4_BLOCK_BLOCK_BITMAP);
		err = err ?: add_meta(l, &cap, grp->inode_bitmap, 1, g, EXT4_BLOCK_INODE_BITMAP);
		err = err ?: add_meta(l, &cap, grp->inode_table, l->itable_blocks, g,
				      EXT4_BLOCK_INODE_TABLE);
	}
	if (err)
		return err;
	qsort(l->meta, l->nr_meta, sizeof(*l->meta), by_start);
	for (size_t i = 1; i < l->nr_meta; i++)
		if (l->meta[i - 1].start + l->meta[i - 1].blocks > l->meta[i].start)
			return fail(errbuf, len, -EINVAL, "metadata regions overlap");
	return 0;
}

int ext4_layout_load(struct ext4_layout *l, uint64_t size, ext4_read_fn read, void *ctx,
		     char *errbuf, size_t errbuf_len)
{
	int err;

	memset(l, 0, sizeof(*l));
	err = read_super(l, size, read, ctx, errbuf, errbuf_len);
	if (!err)
		err = read_descriptors(l, read, ctx, errbuf, errbuf_len);
	if (!err)
		err = build_map(l, errbuf, errbuf_len);
	if (err)
		ext4_layout_release(l);
	return err;
}

void ext4_layout_release(struct ext4_layout *l)
{
	free(l->group);
	free(l->meta);
	memset(l, 0, sizeof(*l));
}

enum ext4_block_kind ext4_classify(const struct ext4_layout *l, uint64_t block,
				   uint32_t *ret_group)
{
	size_t lo = 0, hi = l->nr_meta;

	if (block >= l->blocks)
		return EXT4_BLOCK_OUTSIDE;
	if (ret_group)
		*ret_group = block < l->first_data_block
				     ? 0
				     : (uint32_t)((block - l->first_data_block) / l->blocks_per_group);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ext4_extent_of_kind *m = &l->meta[mid];

		if (block < m->start) {
			hi = mid;
		} else if (block - m->start >= m->blocks) {
			lo = mid + 1;
		} else {
			if (ret_group)
				*ret_group = m->group;
			return (enum ext4_block_kind)m->kind;
		}
	}
	return EXT4_BLOCK_DATA;
}
