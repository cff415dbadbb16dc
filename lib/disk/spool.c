// SPDX-License-Identifier: MIT
/*
 * A byte ring of records, each contiguous: one that would straddle the end
 * leaves a wrap marker and starts again at offset 0. head and tail count
 * bytes forever; their difference is what is in use. The producer wakes the
 * consumer only when it said it was going to sleep, so the acknowledgement
 * path costs a copy and, rarely, a futex wake.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "disk/spool.h"

#define ALIGN 8u

static size_t record_bytes(size_t payload_len)
{
	return (sizeof(struct spool_record) + payload_len + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

int spool_init(struct spool *s, size_t size)
{
	memset(s, 0, sizeof(*s));
	if (!size || (size & (size - 1)) || size < 2 * sizeof(struct spool_record))
		return -EINVAL;
	s->buf = malloc(size);
	if (!s->buf)
		return -ENOMEM;
	s->size = size;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	return 0;
}

void spool_destroy(struct spool *s)
{
	if (!s->buf)
		return;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s->buf);
	s->buf = NULL;
}

void spool_kick(struct spool *s)
{
	pthread_mutex_lock(&s->lock);
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static int try_push(struct spool *s, const struct spool_record *head, const void *payload)
{
	uint64_t h = atomic_load_explicit(&s->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&s->tail, memory_order_acquire);
	size_t need = record_bytes(head->payload_len), at = h & (s->size - 1);
	size_t to_end = s->size - at, pad = to_end < need ? to_end : 0;
	struct spool_record *r;

	if (need + pad > s->size - (h - t))
		return -ENOBUFS;
	if (h + need + pad - t > s->peak)
		s->peak = h + need + pad - t;
	if (pad) {
		/* A marker needs a header's room; the ring keeps ALIGN-sized slack for that. */
		if (to_end >= sizeof(struct spool_record))
			((struct spool_record *)(s->buf + at))->wrap = 1;
		h += pad;
		at = 0;
	}
	r = (struct spool_record *)(s->buf + at);
	*r = *head;
	r->wrap = 0;
	if (head->payload_len)
		memcpy(r->payload, payload, head->payload_len);
	atomic_store_explicit(&s->head, h + need, memory_order_release);
	if (atomic_load_explicit(&s->sleeping, memory_order_seq_cst))
		spool_kick(s);
	return 0;
}

int spool_push(struct spool *s, const struct spool_record *head, const void *payload)
{
	int err = try_push(s, head, payload);

	if (err)
		atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
	return err;
}

/*
 * Back-pressure: wait while the consumer makes room. It gives up (counted
 * as dropped) after wait_ms (< 0: no bound), when *abandon is set, or when
 * even an empty spool has no room for the record.
 */
int spool_push_wait(struct spool *s, const struct spool_record *head, const void *payload,
		    long long wait_ms, const _Atomic int *abandon)
{
	long long start, now;
	int err = try_push(s, head, payload);

	if (err != -ENOBUFS)
		return err; /* the usual case: room at once, no clock read on the write path */
	start = now = monotonic_us();
	while (!((wait_ms >= 0 && now - start >= wait_ms * 1000) || *abandon ||
		 atomic_load(&s->head) == atomic_load(&s->tail))) {
		usleep(500);
		err = try_push(s, head, payload);
		now = monotonic_us();
		if (err != -ENOBUFS)
			break;
	}
	s->waited_us += (uint64_t)(now - start);
	if (err)
		atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
	return err;
}

const struct spool_record *spool_peek(struct spool *s)
{
	for (;;) {
		uint64_t t = atomic_load_explicit(&s->tail, memory_order_relaxed);
		uint64_t h = atomic_load_explicit(&s->head, memory_order_acquire);
		size_t at = t & (s->size - 1), to_end = s->size - at;
		const struct spool_record *r = (const struct spool_record *)(s->buf + at);

		if (h == t)
			return NULL;
		/* Too little room for a header before the end, or a marker: wrap. */
		if (to_end < sizeof(struct spool_record) || r->wrap) {
			atomic_store_explicit(&s->tail, t + to_end, memory_order_release);
			continue;
		}
		return r;
	}
}

void spool_pop(struct spool *s)
{
	uint64_t t = atomic_load_explicit(&s->tail, memory_order_relaxed);
	const struct spool_record *r = (const struct spool_record *)(s->buf + (t & (s->size - 1)));

	atomic_store_explicit(&s->tail, t + record_bytes(r->payload_len), memory_order_release);
}

void spool_wait(struct spool *s, int timeout_ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)timeout_ms * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->sleeping, 1);
	if (atomic_load(&s->head) == atomic_load(&s->tail))
		pthread_cond_timedwait(&s->wake, &s->lock, &until);
	atomic_store(&s->sleeping, 0);
	pthread_mutex_unlock(&s->lock);
}
