// SPDX-License-Identifier: MIT
/*
 * Events per second through the event ring and the JSON-lines sink, each
 * beside a baseline measured in the same run:
 *   copy      vms_event_copy() into a plain array of the ring's size (no ring at all)
 *   ring 1T   push + peek + release in one thread
 *   ring 2T   one producer thread, one consumer thread (the real use)
 *   sink      JSON lines straight to /dev/null, no ring
 *   ring+sink producer thread -> ring -> consumer thread -> JSON lines -> /dev/null
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vmscope/ring.h>
#include <vmscope/sink.h>

#define RING_SLOTS 4096

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A typical exec event: a few numbers, a path and a command line. */
static void sample_event(struct vms_event *ev, uint64_t seq)
{
	vms_event_init(ev, "web-1", VMS_SOURCE_TRACE, "exec");
	vms_event_add_uint(ev, "seq", seq);
	vms_event_add_int(ev, "pid", 4242);
	vms_event_add_int(ev, "ppid", 1);
	vms_event_add_int(ev, "uid", 0);
	vms_event_add_str(ev, "filename", "/usr/bin/python3");
	vms_event_add_str(ev, "argv", "python3 -m http.server 8080 --bind 127.0.0.1");
}

/* The same copies into an array as large as the ring, so both touch the same memory. */
static double bench_copy(uint64_t n)
{
	struct vms_event *slots = calloc(RING_SLOTS, sizeof(*slots));
	struct vms_event ev;
	double t0;

	if (!slots)
		return 0;
	sample_event(&ev, 0);
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		ev.time_ns = i;
		vms_event_copy(&slots[i & (RING_SLOTS - 1)], &ev);
	}
	__asm__ volatile("" : : "r"(slots) : "memory");
	t0 = now_s() - t0;
	free(slots);
	return (double)n / t0;
}

static double bench_ring_one_thread(uint64_t n)
{
	struct vms_ring *ring;
	struct vms_event ev;
	double t0;

	vms_ring_new(RING_SLOTS, &ring);
	sample_event(&ev, 0);
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		ev.time_ns = i;
		vms_ring_push(ring, &ev);
		vms_ring_peek(ring);
		vms_ring_release(ring);
	}
	t0 = now_s() - t0;
	vms_ring_free(ring);
	return (double)n / t0;
}

struct producer {
	struct vms_ring *ring;
	uint64_t n;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct vms_event ev;

	sample_event(&ev, 0);
	for (uint64_t i = 0; i < p->n;) {
		ev.time_ns = i;
		if (vms_ring_push(p->ring, &ev) == 0)
			i++;
	}
	return NULL;
}

/* Producer and consumer threads; the consumer writes to sink when given one. */
static double bench_two_threads(uint64_t n, struct vms_sink *sink, uint64_t *ret_refused)
{
	struct producer p = { .n = n };
	struct vms_ring_stats st;
	pthread_t thread;
	uint64_t got = 0;
	double t0;

	vms_ring_new(RING_SLOTS, &p.ring);
	t0 = now_s();
	pthread_create(&thread, NULL, produce, &p);
	while (got < n) {
		size_t moved = 0;

		if (sink) {
			vms_sink_drain(sink, p.ring, 0, &moved);
		} else {
			while (vms_ring_peek(p.ring)) {
				vms_ring_release(p.ring);
				moved++;
			}
		}
		got += moved;
	}
	pthread_join(thread, NULL);
	if (sink)
		vms_sink_flush(sink);
	t0 = now_s() - t0;
	vms_ring_get_stats(p.ring, &st);
	*ret_refused = st.dropped;
	vms_ring_free(p.ring);
	return (double)n / t0;
}

static double bench_sink(uint64_t n, struct vms_sink *sink)
{
	struct vms_event ev;
	double t0;

	sample_event(&ev, 0);
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		ev.time_ns = i;
		vms_sink_write(sink, &ev);
	}
	vms_sink_flush(sink);
	return (double)n / (now_s() - t0);
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 2000000, refused2, refused_sink;
	FILE *devnull = fopen("/dev/null", "w");
	struct vms_sink *sink;
	double copy, ring1, ring2, sink_only, ring_sink;

	if (!devnull || vms_sink_jsonl_new(devnull, &sink))
		return 1;
	copy = bench_copy(n);
	ring1 = bench_ring_one_thread(n);
	ring2 = bench_two_threads(n, NULL, &refused2);
	sink_only = bench_sink(n / 4, sink);
	ring_sink = bench_two_threads(n / 4, sink, &refused_sink);

	printf("events: %llu (sink runs: %llu); event size %zu bytes\n", (unsigned long long)n,
	       (unsigned long long)n / 4, vms_event_size(&(struct vms_event){ .arena_used = 0 }));
	printf("%-28s %14s %10s\n", "path", "events/s", "ratio");
	printf("%-28s %14.0f %10s\n", "copy (baseline)", copy, "1.00");
	printf("%-28s %14.0f %10.2f\n", "ring, one thread", ring1, ring1 / copy);
	printf("%-28s %14.0f %10.2f   (refusals while the producer spun: %llu)\n",
	       "ring, two threads", ring2, ring2 / copy, (unsigned long long)refused2);
	printf("%-28s %14.0f %10s\n", "jsonl sink (baseline)", sink_only, "1.00");
	printf("%-28s %14.0f %10.2f   (refusals while the producer spun: %llu)\n",
	       "ring + jsonl, two threads", ring_sink, ring_sink / sink_only,
	       (unsigned long long)refused_sink);
	vms_sink_free(sink);
	fclose(devnull);
	return 0;
}
