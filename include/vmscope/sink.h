/* SPDX-License-Identifier: MIT */
/*
 * vmscope: sinks consume events. A sink knows no source and a source knows no
 * sink; vms_sink_drain() joins a ring to a sink.
 */
#ifndef VMSCOPE_SINK_H
#define VMSCOPE_SINK_H

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
 * out stays the caller's.
 */
int vms_sink_jsonl_new(FILE *out, struct vms_sink **ret_sink);

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
