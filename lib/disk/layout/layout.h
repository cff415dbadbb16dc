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

#include <vmscope/disk.h>

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

/*
 * LVM2 on a physical volume: its label, the newest metadata copy that
 * checks (CRCs, bounds), and from the metadata each logical volume as
 * segments of the PV. Only linear volumes (every segment "striped" with one
 * stripe, on this PV) can be read from this disk; the others are listed
 * with why not.
 */
#define LAYOUT_MAX_VOLUMES  64
#define LAYOUT_MAX_SEGMENTS 16
#define LAYOUT_LVM_NAME	    128 /* LVM's own limit on VG and LV names, with the NUL */

struct layout_segment {
	uint64_t lv_offset, pv_offset, len; /* bytes */
};

struct layout_volume {
	char name[LAYOUT_LVM_NAME];
	char uuid[40];
	uint64_t size;
	char refused[96]; /* "" when linear on this PV */
	size_t nr_segments;
	struct layout_segment seg[LAYOUT_MAX_SEGMENTS];
};

struct layout_lvm {
	char vg[LAYOUT_LVM_NAME];
	char vg_uuid[40];
	uint64_t seqno;
	int partial;
	char why[160];
	size_t n;
	struct layout_volume vols[LAYOUT_MAX_VOLUMES];
};

/*
 * The LVM2 PV in the `space` bytes at offset: 1 and *ret filled, 0 when
 * there is no PV label, <0 with ret->why when there is one but no copy of
 * its metadata can be used.
 */
int layout_lvm(layout_read_fn read, void *ctx, uint64_t offset, uint64_t space,
	       struct layout_lvm *ret);

/*
 * Read from a volume made of segments (in order, contiguous from 0, as
 * layout_lvm() gives them once placed on the disk): -EIO past its end.
 */
int layout_read_mapped(layout_read_fn read, void *ctx, const struct vms_disk_segment *seg,
		       size_t n, uint64_t offset, void *buf, size_t len);

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
