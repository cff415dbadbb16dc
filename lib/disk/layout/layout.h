/* SPDX-License-Identifier: MIT */
/*
 * Partition tables on a guest's disk (GPT, MBR with its extended chain),
 * read through a callback so that any disk reader serves (QEMU's NBD export,
 * an image file in tests). Everything on the disk is the guest's to forge:
 * every table is checked (GPT by its CRC32s, with the backup header when the
 * primary fails), every partition must lie on the disk, and the walks are
 * bounded.
 */
#ifndef VMSCOPE_DISK_LAYOUT_H
#define VMSCOPE_DISK_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define LAYOUT_MAX_PARTITIONS 128

enum layout_kind { LAYOUT_WHOLE_DISK, LAYOUT_MBR, LAYOUT_GPT };

struct layout_partition {
	unsigned int number;   /* as Linux numbers them: GPT entries 1.., MBR logical from 5 */
	uint64_t offset, size; /* bytes */
	char type[40];	       /* GPT: the type GUID; MBR: "0x83" and the like */
	char uuid[40];	       /* GPT: the partition's own GUID; MBR: "" */
	char name[72];	       /* GPT: its name (UTF-8); MBR: "" */
};

struct layout {
	enum layout_kind kind;
	unsigned int sector; /* bytes per logical sector the table was found with */
	char disk_uuid[40];  /* GPT */
	int partial;	     /* some entries left out: why says which */
	char why[160];	     /* for partial, or a table that is there but unusable */
	size_t n;
	struct layout_partition parts[LAYOUT_MAX_PARTITIONS];
};

typedef int (*layout_read_fn)(void *ctx, uint64_t offset, void *buf, size_t len);

struct layout_fs {
	char type[16]; /* "ext4", "xfs", "swap", "lvm2_member", ...; "" when unknown */
	char label[64];
	char uuid[40];
	uint64_t size; /* bytes, where the format says (ext*), else 0 */
};

/* What the space of `space` bytes at offset holds (fs->type "" for nothing known). */
void layout_probe_fs(layout_read_fn read, void *ctx, uint64_t offset, uint64_t space,
		     struct layout_fs *fs);

/*
 * The disk's partitions. A disk with no partition table is LAYOUT_WHOLE_DISK
 * with none. Returns 0, or a negative errno with why set: a read failed, or
 * the table is there (a GPT signature, an MBR with entries) but every copy
 * is damaged.
 */
int layout_read(layout_read_fn read, void *ctx, uint64_t disk_size, struct layout *ret);
const char *layout_kind_name(enum layout_kind kind);

/* Per table: 1 and *ret filled when the disk has one, 0 when not, <0 on error. */
int layout_gpt(layout_read_fn read, void *ctx, uint64_t disk_size, struct layout *ret);
int layout_mbr(layout_read_fn read, void *ctx, uint64_t disk_size, struct layout *ret);

#endif
