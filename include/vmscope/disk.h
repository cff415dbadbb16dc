/* SPDX-License-Identifier: MIT */
/*
 * vmscope: capturing a live VM's disk writes.
 *
 * vms_capture_start() mirrors every write the guest makes to one of its disks
 * (a block node, e.g. "disk0") to an NBD server inside vmscope, through
 * QEMU's mirror (blockdev-mirror, sync none, in one of the capture modes
 * below), or polls a dirty bitmap on the node: nothing to change in the VM,
 * no restart. Each write is
 * acknowledged at once and turned into an event on the caller's ring
 * ("disk_write", "disk_zero", "disk_trim" with offset and length); what
 * does not fit in the ring is counted, never waited for. The mirror does not
 * pass the guest's flushes on (it flushes its target on its own schedule), so
 * flushes are counted in the stats but are not events.
 * vms_capture_stop() cancels the job and removes the NBD node: the VM and its
 * disk carry on untouched, as they do if vmscope dies.
 */
#ifndef VMSCOPE_DISK_H
#define VMSCOPE_DISK_H

#include <stdint.h>

#include <vmscope/ring.h>
#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vms_capture;

/*
 * How the guest's writes reach vmscope (docs/fswatch.md, "Capture modes").
 * BLOCKING: each write as the guest made it, before the guest sees it
 * complete (the mirror's write-blocking copy mode): nothing is missed, and
 * every write waits for vmscope's acknowledgement. BACKGROUND: the
 * guest's write completes at once; the mirror copies what changed soon
 * after, in blocks of its granularity (4 KiB), reading the disk's content
 * then: a block overwritten before it was copied is seen once, with its
 * newest content, and blocks come in the mirror's order, not the guest's.
 * BITMAP: the guest's write completes at once and only sets bits in a
 * dirty bitmap QEMU keeps on the node; every poll interval vmscope swaps
 * the bitmap for a fresh one (atomically, in a QMP transaction) and reads
 * the blocks the old one marked through QEMU's NBD export of it: what
 * BACKGROUND can miss, per interval, and extents instead of the guest's
 * requests ("writes" count dirty extents). It runs a thread of its own, and
 * shares the VM's QMP connection with the caller's thread (every exchange
 * takes the connection's lock).
 */
enum vms_capture_mode {
	VMS_CAPTURE_BLOCKING,
	VMS_CAPTURE_BACKGROUND,
	VMS_CAPTURE_BITMAP,
};

#define VMS_CAPTURE_INTERVAL_MIN_MS 10u
#define VMS_CAPTURE_INTERVAL_MAX_MS 60000u

struct vms_capture_options {
	enum vms_capture_mode mode; /* 0: BLOCKING */
	uint32_t interval_ms;	    /* BITMAP: between polls; 0: 100 ms */
};

/* "blocking", "background", "bitmap" <-> the mode; parse: 0, or -EINVAL for another name. */
int vms_capture_mode_parse(const char *name, enum vms_capture_mode *ret);
const char *vms_capture_mode_name(enum vms_capture_mode mode);

struct vms_capture_stats {
	uint64_t writes, write_bytes, zeroes, trims;
	uint64_t flushes; /* the mirror's flushes of its target: not the guest's */
	uint64_t dropped; /* requests acknowledged but not queued: the ring was full */
	/* BITMAP: polls made, bytes marked dirty, bytes read back, the longest poll */
	uint64_t polls, dirty_bytes, read_bytes, poll_us_max;
	/*
	 * BITMAP: polls that failed (each is tried again at the next); failed:
	 * 5 in a row did, the capture has ended (vms_capture_stop() says why)
	 */
	uint64_t poll_failures;
	int failed;
};

/*
 * Start capturing the block node's writes into ring (single producer: the
 * capture). opts NULL: blocking.
 */
int vms_capture_start(struct vms_vm *vm, const char *node, const struct vms_capture_options *opts,
		      struct vms_ring *ring, struct vms_capture **ret_capture);
void vms_capture_get_stats(const struct vms_capture *capture, struct vms_capture_stats *ret);
/* Detach cleanly; NULL is allowed. Returns the first error of the detach, if any. */
int vms_capture_stop(struct vms_capture *capture);

/*
 * Reading a live VM's disk as the guest sees it, through a read-only export
 * of QEMU's own NBD server (whatever the image format). The VM keeps running.
 */
struct vms_disk_reader;

int vms_disk_open(struct vms_vm *vm, const char *node, struct vms_disk_reader **ret_reader);
uint64_t vms_disk_size(const struct vms_disk_reader *reader);
int vms_disk_read(struct vms_disk_reader *reader, uint64_t offset, void *buf, size_t len);
/* Remove the export and stop QEMU's NBD server; NULL is allowed. */
int vms_disk_close(struct vms_disk_reader *reader);

/*
 * The VM's disks as the guest sees them: each guest block device's root
 * node, and on it the partition table (GPT, MBR with logical partitions, or
 * none: a whole-disk filesystem) and what each partition holds. All of it
 * is read from the disk, which the guest may have forged: tables are
 * checked (GPT's CRC32s, its backup header), walks are bounded, and what
 * had to be left out is said (partial, why).
 */
struct vms_disk_node {
	char node[64];	 /* the block node the device reads, for --disk */
	char device[64]; /* the guest device's id (its -device id=) */
};

/* Every guest block device with a medium; free *ret with free(). */
int vms_disk_nodes(struct vms_vm *vm, struct vms_disk_node **ret, size_t *ret_n);

struct vms_disk_fs {
	char type[16]; /* "ext4", "ext3", "ext2", "xfs", "btrfs", "swap", "lvm2_member"; "" unknown */
	char label[64];
	char uuid[40];
	uint64_t size; /* bytes, where the format says (ext*); 0 otherwise */
};

struct vms_disk_partition {
	unsigned int number; /* as Linux numbers them (MBR logical from 5) */
	uint64_t offset, size;
	char type[40]; /* GPT type GUID, or MBR type as "0x83" */
	char uuid[40]; /* GPT partition GUID */
	char name[72]; /* GPT name */
	struct vms_disk_fs fs;
};

/*
 * An LVM2 logical volume on a physical volume of this disk. Only linear
 * ones (every segment one run of the PV's extents) can be read here;
 * striped, thin, mirrored, RAID, cached or snapshot volumes, and volumes
 * with a segment on another PV, are listed with why not (refused).
 */
struct vms_disk_segment {
	uint64_t lv_offset, disk_offset, len; /* bytes: where the volume's bytes are on the disk */
};

struct vms_disk_volume {
	unsigned int partition; /* the PV's partition; 0: the whole disk is the PV */
	char vg[128], lv[128];
	char uuid[40]; /* the LV's LVM UUID */
	uint64_t size;
	char refused[96]; /* "" when vmscope can read it */
	size_t nr_segments;
	struct vms_disk_segment seg[16];
	struct vms_disk_fs fs;
};

struct vms_disk_layout {
	char table[8]; /* "gpt", "mbr", or "none" */
	char uuid[40]; /* GPT disk GUID */
	uint64_t size;
	struct vms_disk_fs fs; /* table "none": what the whole disk holds */
	int partial;
	char why[160];
	size_t n;
	struct vms_disk_partition parts[128];
	size_t nr_volumes; /* LVM2 logical volumes on the PVs above */
	struct vms_disk_volume volumes[64];
};

/* The layout of the disk behind reader (free it with free()); on failure, why says why. */
int vms_disk_layout(struct vms_disk_reader *reader, struct vms_disk_layout **ret, char *why,
		    size_t why_len);

/*
 * File events from disk writes (ext4): vms_fswatch_start() reads the
 * filesystem on the node through QEMU (its layout, every inode, extent tree
 * and directory, and what the journal holds), attaches a capture, and from
 * then on turns every committed change into events on ring: "create",
 * "mkdir", "symlink", "link", "write" (with the file offset and length),
 * "truncate", "rename", "delete", "rmdir", "chmod", "chown". Inference runs
 * on its own thread; the guest's writes are acknowledged at once.
 */
struct vms_fswatch;

struct vms_fswatch_options {
	const char *const *paths; /* fnmatch(3) globs, "*" crossing "/"; none: everything */
	size_t nr_paths;
	/*
	 * Where the guest mounts the filesystem: prefixed to every path ("/":
	 * none). NULL: each filesystem's mount point is looked up in the
	 * guest's own mount table (vms_os_mounts(), by UUID and device name);
	 * one not found there keeps paths from its root.
	 */
	const char *mount;
	int hash;		   /* add "sha256" of small regular files' content */
	uint64_t hash_max;	   /* bytes; 0: 1 MiB */
	/*
	 * On a partitioned disk, the one partition to watch (its number, as
	 * vms_disk_layout() gives it); 0: every ext2/3/4 partition, or the whole
	 * disk when it has no table. Events name their partition ("partition").
	 */
	unsigned int partition;
	enum vms_capture_mode mode; /* how writes are captured; 0: BLOCKING */
	uint32_t interval_ms;	    /* BITMAP: between polls; 0: 100 ms */
	/*
	 * Bytes between the capture and inference (docs/fswatch.md,
	 * "Back-pressure"): a power of two from 1 MiB to 1 GiB; 0: 64 MiB.
	 */
	uint64_t spool_bytes;
	/*
	 * An LVM2 logical volume to watch, "VG/LV" (vms_disk_layout() lists
	 * them); NULL: as above, with every readable ext2/3/4 volume too. Its
	 * events name it ("volume").
	 */
	const char *volume;
};

struct vms_fswatch_stats {
	uint64_t events, filtered, dropped;	  /* emitted; left out by --path; ring full */
	uint64_t writes, write_bytes, spool_dropped; /* captured; not queued for inference */
	/*
	 * Back-pressure: the spool's bytes, the most it held at once, and how
	 * long the capture waited for inference to make room (blocking mode:
	 * the guest waited with it, for at most 200 ms a write)
	 */
	uint64_t spool_size, spool_peak, spool_waited_us;
	uint64_t polls;				  /* bitmap mode: polls of the dirty bitmap */
	int capture_failed; /* the capture has ended on an error (vms_fswatch_stop() says which) */
	uint64_t transactions, unmapped, errors;  /* commits; data never owned; damage seen */
	uint64_t checksum_failures; /* journal blocks and inodes whose CRC32C is wrong: not used */
	uint64_t missed_transactions; /* journal transactions never seen (a gap in sequence) */
	uint64_t pending;			  /* data writes still waiting for their commit */
	uint64_t inodes, directories;		  /* in the model now */
	uint64_t latency_p50_us, latency_p99_us, latency_max_us; /* arrival to event */
	double infer_cpu_s;			  /* inference thread CPU time */
	int journaled;
};

int vms_fswatch_start(struct vms_vm *vm, const char *node, const struct vms_fswatch_options *opts,
		      struct vms_ring *ring, struct vms_fswatch **ret);
/*
 * The i-th filesystem watched: its name ("disk0 partition 1") and the
 * prefix its paths get ("" none), found: 1 when that came from the guest's
 * mount table. -ENOENT past the last. The strings live as long as fw.
 */
int vms_fswatch_filesystem(const struct vms_fswatch *fw, size_t i, const char **ret_name,
			   const char **ret_mount, int *ret_found);
void vms_fswatch_get_stats(struct vms_fswatch *fw, struct vms_fswatch_stats *ret);
/*
 * Inference never drops an event for a full ring: it waits, and the
 * capture's spool absorbs the guest's writes meanwhile. To end without
 * losing anything: vms_fswatch_detach() (no more writes are captured: it
 * returns at once and the capture ends on a thread of its own, as its last
 * writes may wait for inference, which waits for the ring), keep draining
 * the ring until vms_fswatch_idle() (the capture ended, everything it
 * captured applied), then vms_fswatch_stop(), which returns the detach's
 * error if any. vms_fswatch_stop() alone ends at once: what the capture
 * still held is counted as dropped.
 */
int vms_fswatch_detach(struct vms_fswatch *fw);
int vms_fswatch_idle(struct vms_fswatch *fw);
/* Detach if still attached, end inference (what is left is dropped and counted), free. */
int vms_fswatch_stop(struct vms_fswatch *fw);

#ifdef __cplusplus
}
#endif
#endif
