// SPDX-License-Identifier: MIT
/* The event ring: order, wrap-around, full-ring refusal and a two-thread run. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <vmscope/ring.h>

static void make_event(struct vms_event *ev, uint64_t seq)
{
	vms_event_init(ev, "vm0", VMS_SOURCE_TRACE, "exec");
	assert_int_equal(vms_event_add_uint(ev, "seq", seq), 0);
	assert_int_equal(vms_event_add_str(ev, "path", "/usr/bin/true"), 0);
}

static uint64_t seq_of(const struct vms_event *ev)
{
	const struct vms_attr *a = vms_event_find(ev, "seq");

	assert_non_null(a);
	return a->v.u;
}

static void test_capacity_rounds_up(void **state)
{
	struct vms_ring *ring;
	struct vms_ring_stats st;

	(void)state;
	assert_int_equal(vms_ring_new(5, &ring), 0);
	vms_ring_get_stats(ring, &st);
	assert_int_equal(st.capacity, 8);
	vms_ring_free(ring);
	assert_int_equal(vms_ring_new((size_t)1 << 30, &ring), -EINVAL);
	vms_ring_free(NULL);
}

static void test_empty_ring_gives_nothing(void **state)
{
	struct vms_ring *ring;

	(void)state;
	assert_int_equal(vms_ring_new(4, &ring), 0);
	assert_null(vms_ring_peek(ring));
	vms_ring_free(ring);
}

/* Push and pop far more events than slots: every one comes out, in order. */
static void test_wraps_around_in_order(void **state)
{
	struct vms_ring *ring;
	struct vms_ring_stats st;
	struct vms_event ev;
	uint64_t next_in = 0, next_out = 0;

	(void)state;
	assert_int_equal(vms_ring_new(4, &ring), 0);
	while (next_out < 1000) {
		/* Vary the fill level: 1, 2 or 3 in, then drain some. */
		for (unsigned int i = 0; i < 1 + next_in % 3; i++) {
			make_event(&ev, next_in);
			if (vms_ring_push(ring, &ev) == 0)
				next_in++;
		}
		for (unsigned int i = 0; i < 2; i++) {
			const struct vms_event *got = vms_ring_peek(ring);

			if (!got)
				break;
			assert_int_equal(seq_of(got), next_out);
			assert_string_equal(got->vm, "vm0");
			assert_string_equal(got->type, "exec");
			vms_ring_release(ring);
			next_out++;
		}
	}
	vms_ring_get_stats(ring, &st);
	assert_int_equal(st.released, next_out);
	assert_int_equal(st.committed, next_in);
	assert_int_equal(st.used, next_in - next_out);
	vms_ring_free(ring);
}

/* A full ring refuses and counts; it never overwrites the oldest event. */
static void test_full_ring_refuses_and_counts(void **state)
{
	struct vms_ring *ring;
	struct vms_ring_stats st;
	struct vms_event ev;

	(void)state;
	assert_int_equal(vms_ring_new(4, &ring), 0);
	for (uint64_t i = 0; i < 4; i++) {
		make_event(&ev, i);
		assert_int_equal(vms_ring_push(ring, &ev), 0);
	}
	make_event(&ev, 99);
	assert_int_equal(vms_ring_push(ring, &ev), -ENOBUFS);
	assert_null(vms_ring_reserve(ring));
	vms_ring_get_stats(ring, &st);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.used, 4);
	assert_int_equal(seq_of(vms_ring_peek(ring)), 0);

	/* One slot freed: exactly one more fits, placed after the others. */
	vms_ring_release(ring);
	assert_int_equal(vms_ring_push(ring, &ev), 0);
	assert_int_equal(vms_ring_push(ring, &ev), -ENOBUFS);
	for (uint64_t want = 1; want <= 3; want++) {
		assert_int_equal(seq_of(vms_ring_peek(ring)), want);
		vms_ring_release(ring);
	}
	assert_int_equal(seq_of(vms_ring_peek(ring)), 99);
	vms_ring_get_stats(ring, &st);
	assert_int_equal(st.dropped, 3);
	vms_ring_free(ring);
}

/* Filling a reserved slot in place, then committing, publishes it. */
static void test_reserve_commit_in_place(void **state)
{
	struct vms_ring *ring;
	struct vms_event *slot;

	(void)state;
	assert_int_equal(vms_ring_new(2, &ring), 0);
	slot = vms_ring_reserve(ring);
	assert_non_null(slot);
	make_event(slot, 7);
	assert_null(vms_ring_peek(ring)); /* not yet committed */
	vms_ring_commit(ring);
	assert_int_equal(seq_of(vms_ring_peek(ring)), 7);
	vms_ring_free(ring);
}

#define STRESS_EVENTS 200000

static void *produce(void *arg)
{
	struct vms_ring *ring = arg;
	uint64_t seq = 0;

	while (seq < STRESS_EVENTS) {
		struct vms_event *slot = vms_ring_reserve(ring);

		if (!slot)
			continue; /* full: try again (counted as dropped) */
		vms_event_init(slot, "vm0", VMS_SOURCE_POLL, "tick");
		vms_event_add_uint(slot, "seq", seq);
		vms_ring_commit(ring);
		seq++;
	}
	return NULL;
}

/* One producer thread, one consumer thread: nothing lost, duplicated or reordered. */
static void test_two_threads_keep_order(void **state)
{
	struct vms_ring *ring;
	struct vms_ring_stats st;
	pthread_t producer;
	uint64_t expect = 0;

	(void)state;
	assert_int_equal(vms_ring_new(64, &ring), 0);
	assert_int_equal(pthread_create(&producer, NULL, produce, ring), 0);
	while (expect < STRESS_EVENTS) {
		const struct vms_event *ev = vms_ring_peek(ring);

		if (!ev)
			continue;
		assert_int_equal(seq_of(ev), expect);
		vms_ring_release(ring);
		expect++;
	}
	pthread_join(producer, NULL);
	vms_ring_get_stats(ring, &st);
	assert_int_equal(st.committed, STRESS_EVENTS);
	assert_int_equal(st.released, STRESS_EVENTS);
	assert_null(vms_ring_peek(ring));
	vms_ring_free(ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity_rounds_up),
		cmocka_unit_test(test_empty_ring_gives_nothing),
		cmocka_unit_test(test_wraps_around_in_order),
		cmocka_unit_test(test_full_ring_refuses_and_counts),
		cmocka_unit_test(test_reserve_commit_in_place),
		cmocka_unit_test(test_two_threads_keep_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
