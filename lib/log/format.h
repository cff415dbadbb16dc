/* SPDX-License-Identifier: MIT */
/*
 * The vlog's bytes (docs/log-format.md says the same for other tools): all
 * integers little-endian, every checksum XXH3-64 (libxxhash).
 *
 *   DIR/SEQ.vlog   segment: a header, then frames back to back
 *   DIR/SEQ.vidx   its index, written when the segment is sealed
 *   DIR/LOCK       flock()ed by the one writer
 *
 * SEQ is 16 decimal digits, so names sort in writing order.
 */
#ifndef VMSCOPE_LOG_FORMAT_H
#define VMSCOPE_LOG_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vmscope/event.h>
#include <vmscope/log.h>

#define SEG_MAGIC	"VMSLOG\r\n"
#define IDX_MAGIC	"VMSIDX\r\n"
#define SEG_HDR_BYTES	40 /* magic[8] ver:2 hdr_len:2 flags:4 seq:8 created_ns:8 hash:8 */
#define FRAME_MAGIC	0x52464d56u /* "VMFR" */
#define FRAME_HDR_BYTES 64
/* No frame is bigger than this, raw or stored: a header that says more is damaged. */
#define FRAME_MAX_RAW	(8u << 20)
#define IDX_HDR_BYTES	64
#define IDX_ENTRY_BYTES 48
#define IDX_MAX_FRAMES	(1u << 22)
#define IDX_MAX_NAMES	4096

struct frame_hdr {
	uint32_t stored_len; /* zstd payload bytes after the header */
	uint32_t raw_len;    /* record bytes it decompresses to */
	uint32_t count;	     /* records */
	uint64_t min_ns, max_ns;
	uint64_t type_mask, vm_mask; /* bit (hash(name) % 64) for each name present */
	uint64_t payload_hash;
};

/* One frame as the index lists it. */
struct idx_entry {
	uint64_t offset; /* of the frame header in the segment */
	uint64_t min_ns, max_ns;
	uint32_t count;
	uint64_t type_mask, vm_mask;
};

struct name_count {
	char name[VMS_EVENT_VM_MAX];
	uint8_t kind; /* NAME_TYPE or NAME_VM */
	uint64_t count;
};

enum { NAME_TYPE, NAME_VM };

struct seg_index {
	uint64_t seg_size, events, raw_bytes, min_ns, max_ns;
	struct idx_entry *entries;
	size_t nr_entries, cap_entries;
	struct name_count *names;
	size_t nr_names, cap_names;
};

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static inline void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static inline uint16_t get16(const uint8_t *p)
{
	return p[0] | (uint16_t)p[1] << 8;
}

static inline uint32_t get32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* error.c: keep the sentence for vms_log_last_error(); returns err. */
int log_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

uint64_t log_hash(const void *data, size_t len);
uint64_t log_name_bit(const char *name);

/* record.c: one event as bytes, and back. */
size_t log_record_size(const struct vms_event *ev);
size_t log_record_encode(const struct vms_event *ev, uint8_t *out);
/* Decode the record at raw[*pos]; advances *pos. -EBADMSG on anything malformed. */
int log_record_decode(const uint8_t *raw, size_t len, size_t *pos, struct vms_event *ev);

/* frame.c */
/* len bytes at off; -EBADMSG if the file ends first. */
int log_read_exact(int fd, void *buf, size_t len, uint64_t off);
void log_frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_BYTES]);
/* -EBADMSG: bad magic, checksum or lengths. */
int log_frame_hdr_decode(const uint8_t in[FRAME_HDR_BYTES], struct frame_hdr *h);
/* Read and check the frame at off of fd; *raw (malloc'd) gets raw_len bytes. */
int log_frame_load(int fd, uint64_t off, const struct frame_hdr *h, uint8_t **raw);

/* segment.c */
int log_seg_hdr_write(int fd, uint64_t seq, uint64_t created_ns);
int log_seg_hdr_check(int fd, uint64_t *ret_seq);
/* The segments of dir by sequence number; *ret_seqs malloc'd. */
int log_seg_list(const char *dir, uint64_t **ret_seqs, size_t *ret_count);
void log_seg_path(char *buf, size_t len, const char *dir, uint64_t seq, const char *ext);

/*
 * Walk a segment's frames from the start, checking each fully (payload
 * included) when deep, else on its header. frame() gets each good frame (raw
 * only when deep); returning 1 or -EBADMSG makes it bad. bad() gets each
 * stretch that is not a good frame: from off to next, the next good frame
 * header, or to the end when next is 0 (a torn tail when it is the last
 * thing in the segment). Either returning 1 stops the walk, a negative errno
 * ends it with that error.
 */
struct seg_scan {
	int (*frame)(void *ctx, uint64_t off, const struct frame_hdr *h, const uint8_t *raw);
	int (*bad)(void *ctx, uint64_t off, uint64_t next);
	void *ctx;
	int deep;
};

int log_seg_scan(int fd, uint64_t size, const struct seg_scan *scan);
/* The next offset after off at which a frame header checks, or 0. */
uint64_t log_seg_resync(int fd, uint64_t size, uint64_t off);

/* index.c */
void log_index_reset(struct seg_index *idx);
int log_index_add_frame(struct seg_index *idx, uint64_t off, const struct frame_hdr *h);
int log_index_count(struct seg_index *idx, int kind, const char *name, uint64_t n);
/* Fold the records of raw (a checked frame) into idx's name counts. */
int log_index_count_raw(struct seg_index *idx, const uint8_t *raw, size_t len);
int log_index_write(const char *path, const struct seg_index *idx);
int log_index_read(const char *path, struct seg_index *idx);
/* Every record of a loaded frame decodes, and they are what its header says. */
int log_frame_check(const uint8_t *raw, const struct frame_hdr *h);
/* Index of a segment's good frames up to the first bad stretch (payloads
 * checked and counted): *ret_end is where they end, *ret_damaged whether a
 * good frame follows (damage, not a torn tail). */
int log_index_build(int fd, uint64_t size, struct seg_index *idx, uint64_t *ret_end,
		    int *ret_damaged);

/* recover.c: make dir's segments whole after a crash (a torn tail cut off,
 * an unsealed segment sealed); *ret_next_seq is the next segment's number. */
int log_recover(const char *dir, uint64_t *ret_next_seq, uint64_t *ret_torn_frames,
		uint64_t *ret_torn_bytes);

/* retention.c: remove the oldest sealed segments (never current_seq or later)
 * while the log exceeds max_bytes, or while their newest event is older than
 * max_age_s (0: no limit). */
void log_retention(const char *dir, uint64_t current_seq, uint64_t max_bytes, uint64_t max_age_s,
		   uint64_t *ret_removed);

#endif
