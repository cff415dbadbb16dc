/* SPDX-License-Identifier: MIT */
/*
 * vmscope: the durable event log (a "vlog"). A directory of segment files,
 * each a run of zstd-compressed, checksummed frames of events, with a small
 * index per sealed segment; docs/log-format.md describes the bytes.
 *
 * Writing: vms_log_open() starts a writer thread fed through an event ring;
 * vms_log_append() copies an event in from one producer thread. The writer
 * closes a frame when it is large or a sync is due, and syncs (fdatasync)
 * every sync_ms or sync_events, and on close. On open, a segment a crashed
 * writer left unsealed is cut back to its last whole frame and sealed; what
 * was cut is counted. One writer per directory (a lock file says so).
 *
 * Reading needs no writer and takes nothing on trust: every frame's header
 * and payload are checksummed, records are bounds-checked, and a damaged
 * frame is skipped and counted instead of read.
 */
#ifndef VMSCOPE_LOG_H
#define VMSCOPE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <vmscope/event.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMS_LOG_FORMAT_VERSION 1

/* The sentence naming the cause of this thread's last failed log call. */
const char *vms_log_last_error(void);

struct vms_log;

struct vms_log_opts {
	size_t sz;
	unsigned int sync_ms;	  /* sync at least this often while events come; 0: 1000 */
	unsigned int sync_events; /* and once this many are unsynced; 0: no count limit */
	uint64_t segment_bytes;	  /* start a new segment beyond this; 0: 64 MiB */
	uint64_t max_bytes;	  /* retention: drop the oldest segments beyond this; 0: keep */
	uint64_t max_age_s;	  /* retention: drop segments whose newest event is older; 0: keep */
	int level;		  /* zstd level; 0: 3 */
	size_t ring_slots;	  /* the writer's ring; 0: 4096 */
	/* Called from the writer thread after each sync, with the number of
	 * events appended so far that are now on stable storage. */
	void (*on_sync)(void *ctx, uint64_t durable_events);
	void *ctx;
};

struct vms_log_stats {
	uint64_t appended;	   /* events given to vms_log_append */
	uint64_t durable;	   /* of those, synced to disk */
	uint64_t frames;	   /* frames written by this writer */
	uint64_t raw_bytes;	   /* record bytes before compression */
	uint64_t stored_bytes;	   /* frame bytes written (headers included) */
	uint64_t waits;		   /* appends that waited for room in the ring */
	uint64_t segments_removed; /* by retention */
	uint64_t torn_frames;	   /* cut from a crashed writer's segment on open */
	uint64_t torn_bytes;
	int error;		   /* the writer's first error (negative errno), or 0 */
};

/* dir is created if missing (its parent must exist). -EBUSY: another writer has it. */
int vms_log_open(const char *dir, const struct vms_log_opts *opts, struct vms_log **ret_log);
/*
 * Copy ev into the log. Waits while the writer's ring is full (the log never
 * drops an event it accepted); returns the writer's error once it has failed.
 */
int vms_log_append(struct vms_log *log, const struct vms_event *ev);
/* Wait until every event appended so far is synced. */
int vms_log_sync(struct vms_log *log);
void vms_log_get_stats(struct vms_log *log, struct vms_log_stats *ret_stats);
/* Write what is left, sync, seal the segment, stop the thread; the writer's error or 0. */
int vms_log_close(struct vms_log *log);

/* Reading: the events of a log in order of appending, filtered by the index first. */
struct vms_log_filter {
	size_t sz;
	uint64_t since_ns;	  /* 0: from the start */
	uint64_t until_ns;	  /* 0: to the end (inclusive) */
	const char *const *types; /* event types to keep; NULL: all */
	size_t nr_types;
	const char *vm;		  /* NULL: every VM */
};

struct vms_log_reader;

struct vms_log_read_stats {
	uint64_t segments;	  /* segment files looked at */
	uint64_t frames_read;	  /* decompressed */
	uint64_t frames_skipped;  /* skipped on their index entry or header alone */
	uint64_t events_scanned;  /* decoded */
	uint64_t events_matched;
	uint64_t damaged_frames;  /* failed a checksum or did not decode: skipped */
	uint64_t torn_bytes;	  /* an unsealed segment's incomplete last frame */
};

int vms_log_reader_open(const char *dir, const struct vms_log_filter *filter,
			struct vms_log_reader **ret_reader);
/* The next matching event into *ev: 1, or 0 at the end, or a negative errno. */
int vms_log_next(struct vms_log_reader *reader, struct vms_event *ev);
void vms_log_reader_get_stats(const struct vms_log_reader *reader,
			      struct vms_log_read_stats *ret_stats);
void vms_log_reader_free(struct vms_log_reader *reader);

/* What a log holds, from its indexes where segments are sealed. */
struct vms_log_count {
	char name[VMS_EVENT_TYPE_MAX > VMS_EVENT_VM_MAX ? VMS_EVENT_TYPE_MAX : VMS_EVENT_VM_MAX];
	uint64_t events;
};

struct vms_log_summary {
	uint64_t segments, sealed, frames, events;
	uint64_t raw_bytes, stored_bytes; /* records before compression; files on disk */
	uint64_t first_ns, last_ns;	  /* 0 when empty */
	uint64_t damaged_frames, torn_bytes;
	struct vms_log_count *types, *vms; /* by event count, most first */
	size_t nr_types, nr_vms;
};

int vms_log_summarize(const char *dir, struct vms_log_summary **ret_summary);
void vms_log_summary_free(struct vms_log_summary *summary);

/*
 * Check every segment: headers, every frame's checksums, that every payload
 * decodes to the events its header counts, and each index against its
 * frames. Each problem is passed to report (one line, naming the file and
 * offset) with fatal set for damage and clear for what a crash leaves (an
 * unsealed segment's torn tail). Returns the number of fatal problems, or a
 * negative errno when dir cannot be read.
 */
int vms_log_verify(const char *dir, void (*report)(void *ctx, int fatal, const char *line),
		   void *ctx);

#ifdef __cplusplus
}
#endif
#endif
