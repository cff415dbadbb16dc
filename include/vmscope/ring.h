/* SPDX-License-Identifier: MIT */
/*
 * vmscope: a bounded, lock-free, single-producer/single-consumer ring of
 * events whose slots are reused.
 *
 * One thread produces, one consumes. The producer fills a slot in place
 * (vms_ring_reserve, then vms_ring_commit) or copies an event in
 * (vms_ring_push). When the ring is full nothing is overwritten: the producer
 * gets NULL / -ENOBUFS and the event is counted as dropped, so a consumer can
 * always report how much it missed.
 */
#ifndef VMSCOPE_RING_H
#define VMSCOPE_RING_H

#include <stddef.h>
#include <stdint.h>

#include <vmscope/event.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vms_ring;

struct vms_ring_stats {
	size_t capacity;    /* slots */
	size_t used;	    /* committed, not yet released */
	uint64_t committed; /* events accepted since creation */
	uint64_t released;  /* events consumed since creation */
	uint64_t dropped;   /* events refused because the ring was full */
};

/* capacity is rounded up to a power of two; at least 2, at most 2^24 slots. */
int vms_ring_new(size_t capacity, struct vms_ring **ret_ring);
void vms_ring_free(struct vms_ring *ring);

/* Producer: a free slot to fill, or NULL when full (the event counts as dropped). */
struct vms_event *vms_ring_reserve(struct vms_ring *ring);
/* Producer: publish the slot returned by the last vms_ring_reserve(). */
void vms_ring_commit(struct vms_ring *ring);
/* Producer: copy ev in; -ENOBUFS when full (counted as dropped). */
int vms_ring_push(struct vms_ring *ring, const struct vms_event *ev);

/* Consumer: the oldest event, or NULL when empty. Valid until vms_ring_release(). */
const struct vms_event *vms_ring_peek(struct vms_ring *ring);
/* Consumer: hand the slot of the event from vms_ring_peek() back to the producer. */
void vms_ring_release(struct vms_ring *ring);

/* Either side, any time; figures may be a moment old. */
void vms_ring_get_stats(const struct vms_ring *ring, struct vms_ring_stats *ret_stats);

#ifdef __cplusplus
}
#endif
#endif
