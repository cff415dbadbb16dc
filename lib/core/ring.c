// SPDX-License-Identifier: MIT
/*
 * Single-producer/single-consumer event ring.
 *
 * head counts slots ever committed (written by the producer only), tail
 * counts slots ever released (written by the consumer only); both only grow,
 * and slot i lives at index i & mask. The producer publishes a slot with a
 * release store of head after filling it; the consumer's acquire load of head
 * makes the slot's contents visible, and symmetrically for tail. Each side
 * keeps a cached copy of the other's counter so the shared cache line is read
 * only when the ring looks full (or empty).
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/ring.h>

#define CACHELINE 64
#define MAX_SLOTS (1u << 24)

struct vms_ring {
	struct vms_event *slots;
	size_t mask;

	/* written by the producer */
	alignas(CACHELINE) _Atomic size_t head;
	size_t tail_seen;
	_Atomic uint64_t dropped;

	/* written by the consumer */
	alignas(CACHELINE) _Atomic size_t tail;
	size_t head_seen;
};

int vms_ring_new(size_t capacity, struct vms_ring **ret_ring)
{
	struct vms_ring *ring;
	size_t slots = 2;

	if (capacity > MAX_SLOTS)
		return -EINVAL;
	while (slots < capacity)
		slots <<= 1;
	ring = aligned_alloc(CACHELINE, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	memset(ring, 0, sizeof(*ring));
	/* calloc: untouched slots cost no memory until first used. */
	ring->slots = calloc(slots, sizeof(*ring->slots));
	if (!ring->slots) {
		free(ring);
		return -ENOMEM;
	}
	ring->mask = slots - 1;
	*ret_ring = ring;
	return 0;
}

void vms_ring_free(struct vms_ring *ring)
{
	if (!ring)
		return;
	free(ring->slots);
	free(ring);
}

struct vms_event *vms_ring_reserve(struct vms_ring *ring)
{
	size_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);

	if (head - ring->tail_seen > ring->mask) {
		ring->tail_seen = atomic_load_explicit(&ring->tail, memory_order_acquire);
		if (head - ring->tail_seen > ring->mask) {
			atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
			return NULL;
		}
	}
	return &ring->slots[head & ring->mask];
}

void vms_ring_commit(struct vms_ring *ring)
{
	size_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);

	atomic_store_explicit(&ring->head, head + 1, memory_order_release);
}

int vms_ring_push(struct vms_ring *ring, const struct vms_event *ev)
{
	struct vms_event *slot = vms_ring_reserve(ring);

	if (!slot)
		return -ENOBUFS;
	vms_event_copy(slot, ev);
	vms_ring_commit(ring);
	return 0;
}

const struct vms_event *vms_ring_peek(struct vms_ring *ring)
{
	size_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);

	if (tail == ring->head_seen) {
		ring->head_seen = atomic_load_explicit(&ring->head, memory_order_acquire);
		if (tail == ring->head_seen)
			return NULL;
	}
	return &ring->slots[tail & ring->mask];
}

void vms_ring_release(struct vms_ring *ring)
{
	size_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);

	atomic_store_explicit(&ring->tail, tail + 1, memory_order_release);
}

void vms_ring_get_stats(const struct vms_ring *ring, struct vms_ring_stats *ret_stats)
{
	size_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
	size_t head = atomic_load_explicit(&ring->head, memory_order_acquire);

	ret_stats->capacity = ring->mask + 1;
	ret_stats->committed = head;
	ret_stats->released = tail;
	ret_stats->used = head - tail;
	ret_stats->dropped = atomic_load_explicit(&ring->dropped, memory_order_relaxed);
}
