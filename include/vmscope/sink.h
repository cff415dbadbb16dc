/* SPDX-License-Identifier: MIT */
/*
 * vmscope: sinks consume events. A sink knows no source and a source knows no
 * sink; vms_sink_drain() joins a ring to a sink.
 */
#ifndef VMSCOPE_SINK_H
#define VMSCOPE_SINK_H

#include <stdint.h>
#include <stdio.h>

#include <vmscope/event.h>
#include <vmscope/ring.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vms_sink;

/*
 * JSON lines: one object per event, keys "time" (RFC 3339, UTC, ns),
 * "time_ns", "vm", "source", "type", then the event's attributes. Strings are
 * escaped as JSON requires; bytes that are not UTF-8 become U+FFFD.
 * out stays the caller's; NULL makes a sink for vms_sink_jsonl_format() only.
 */
int vms_sink_jsonl_new(FILE *out, struct vms_sink **ret_sink);
/*
 * The line a JSON-lines sink would write for ev, without the newline
 * (malloc'd; NULL for another kind of sink, or out of memory). One thread
 * at a time per sink: it uses the sink's scratch space. out may be NULL
 * for a sink used only for this.
 */
char *vms_sink_jsonl_format(struct vms_sink *sink, const struct vms_event *ev, size_t *ret_len);

/*
 * Redis Streams: url is redis://HOST:PORT/STREAM; "{vm}" in STREAM becomes
 * the event's VM name (one stream per VM). Each event is an XADD capped with
 * MAXLEN ~ maxlen; while Redis is unreachable, up to backlog_events events
 * wait (the oldest dropped and counted beyond that) and reconnection is
 * tried once a second. -EINVAL for a malformed url.
 */
struct vms_redis_opts {
	size_t sz;
	unsigned long maxlen;	/* 0: 100000 */
	size_t backlog_events;	/* 0: 10000 */
};

int vms_sink_redis_new(const char *url, const struct vms_redis_opts *opts,
		       struct vms_sink **ret_sink);

/*
 * NATS JetStream: url is nats://HOST:PORT, or several, comma-separated (a
 * cluster; libnats moves between them). Each event is a message on
 * PREFIX.HOST.VM.TYPE (characters a subject cannot hold become "_"),
 * its payload the JSON-lines object, with a Nats-Msg-Id unique to it so
 * that a publish tried again is stored once. The stream is made when
 * missing (subjects PREFIX.>, file storage, the replicas asked for). An
 * event waits in a bounded backlog until JetStream acknowledged it; beyond
 * the bound the oldest is dropped and counted. A write blocks for at most
 * one publish's wait (2 s) or connect attempt (1 s, once a second); stats:
 * sent = acknowledged, buffered = waiting. -EINVAL for a malformed url or
 * option.
 */
struct vms_nats_opts {
	size_t sz;
	const char *subject_prefix; /* NULL: "vmscope" */
	const char *host;	    /* NULL: this host's name */
	const char *stream;	    /* NULL: "VMSCOPE" */
	int replicas;		    /* 0: 1; at most 5 */
	size_t backlog_events;	    /* 0: 10000 */
};

int vms_sink_nats_new(const char *url, const struct vms_nats_opts *opts,
		      struct vms_sink **ret_sink);

/*
 * The durable log (vmscope/log.h) as a sink: every write is a
 * vms_log_append(); freeing the sink closes the log (syncs and seals it).
 * Its stats: sent = synced to disk, buffered = appended, not yet synced.
 */
struct vms_log_opts;
struct vms_log;
int vms_sink_log_new(const char *dir, const struct vms_log_opts *opts, struct vms_sink **ret_sink);
/* The log under a sink from vms_sink_log_new(), or NULL for other sinks. */
struct vms_log *vms_sink_log_get(struct vms_sink *sink);

/*
 * Both a and b as one sink (owning both): each event is written to a, then
 * to b, whatever a said; stats are a's.
 */
int vms_sink_tee_new(struct vms_sink *a, struct vms_sink *b, struct vms_sink **ret_sink);

struct vms_sink_stats {
	uint64_t sent;		/* delivered (network sinks) */
	uint64_t buffered;	/* waiting for the destination */
	uint64_t dropped;	/* lost, counted: the backlog was full */
	uint64_t reconnects;
};

/* Delivery figures; all zero for sinks that write locally. */
void vms_sink_get_stats(struct vms_sink *sink, struct vms_sink_stats *ret_stats);

int vms_sink_write(struct vms_sink *sink, const struct vms_event *ev);
int vms_sink_flush(struct vms_sink *sink);
void vms_sink_free(struct vms_sink *sink);

/*
 * Move up to max events (0: all there are) from ring to sink. *ret_moved (may
 * be NULL) counts them. Stops at the first sink error, leaving that event in
 * the ring.
 */
int vms_sink_drain(struct vms_sink *sink, struct vms_ring *ring, size_t max, size_t *ret_moved);

#ifdef __cplusplus
}
#endif
#endif
