// SPDX-License-Identifier: MIT
/*
 * The spool between capture and inference: back-pressure. A producer far
 * faster than its consumer waits for room and loses nothing; with a bound it
 * gives up and counts; a record no spool could hold is refused at once.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "disk/spool.h"

#define SPOOL	(64u << 10)
#define PAYLOAD 4096u
#define RECORDS 400u /* 1.6 MB through a 64 KiB spool */

struct consumer {
	struct spool *s;
	uint64_t next, bad;
	_Atomic int stop;
};

/* Slow on purpose: a millisecond a record, so the producer outruns it. */
static void *consume(void *arg)
{
	struct consumer *c = arg;

	while (c->next < RECORDS && !c->stop) {
		const struct spool_record *r = spool_peek(c->s);
		uint8_t want[PAYLOAD];

		if (!r) {
			spool_wait(c->s, 10);
			continue;
		}
		memset(want, (int)(c->next & 0xff), sizeof(want));
		c->bad += r->offset != c->next * PAYLOAD || r->payload_len != PAYLOAD ||
			  memcmp(r->payload, want, PAYLOAD);
		spool_pop(c->s);
		c->next++;
		usleep(1000);
	}
	return NULL;
}

static void push(struct spool *s, uint64_t i, long long wait_ms, const _Atomic int *abandon,
		 int expect)
{
	struct spool_record r = {
		.offset = i * PAYLOAD, .length = PAYLOAD, .payload_len = PAYLOAD, .type = 1
	};
	uint8_t data[PAYLOAD];

	memset(data, (int)(i & 0xff), sizeof(data));
	assert_int_equal(spool_push_wait(s, &r, data, wait_ms, abandon), expect);
}

static void test_waits_and_loses_nothing(void **state)
{
	struct spool s;
	struct consumer c = { &s, 0, 0, 0 };
	_Atomic int abandon = 0;
	pthread_t t;

	(void)state;
	assert_int_equal(spool_init(&s, SPOOL), 0);
	assert_int_equal(pthread_create(&t, NULL, consume, &c), 0);
	for (uint64_t i = 0; i < RECORDS; i++)
		push(&s, i, -1, &abandon, 0);
	pthread_join(t, NULL);
	assert_int_equal(c.next, RECORDS);
	assert_int_equal(c.bad, 0);
	assert_int_equal(s.dropped, 0);
	assert_true(s.waited_us > 100000); /* ~385 ms of the consumer's sleeps at least */
	assert_true(s.peak > SPOOL / 2 && s.peak <= SPOOL);
	spool_destroy(&s);
}

static void test_bounded_wait_counts(void **state)
{
	struct spool s;
	_Atomic int abandon = 0;
	uint64_t i = 0;

	(void)state;
	assert_int_equal(spool_init(&s, SPOOL), 0);
	while (spool_push_wait(&s,
			       &(struct spool_record){
				       .offset = i, .length = PAYLOAD, .payload_len = PAYLOAD },
			       (uint8_t[PAYLOAD]){ 0 }, 0, &abandon) == 0)
		i++; /* nobody consumes: full after some 15 records */
	assert_true(i > 8 && i < SPOOL / PAYLOAD);
	assert_int_equal(s.dropped, 1);
	push(&s, i, 50, &abandon, -ENOBUFS); /* waits 50 ms, then gives up */
	assert_int_equal(s.dropped, 2);
	assert_true(s.waited_us >= 50000);
	abandon = 1;
	push(&s, i, -1, &abandon, -ENOBUFS); /* unbounded, but abandoned: at once */
	assert_int_equal(s.dropped, 3);
	spool_destroy(&s);
}

static void test_never_fits(void **state)
{
	static uint8_t big[SPOOL];
	struct spool s;
	_Atomic int abandon = 0;
	struct spool_record r = { .length = SPOOL, .payload_len = SPOOL, .type = 1 };

	(void)state;
	assert_int_equal(spool_init(&s, SPOOL), 0);
	/* Empty, and still no room: waiting could never help. */
	assert_int_equal(spool_push_wait(&s, &r, big, -1, &abandon), -ENOBUFS);
	assert_int_equal(s.dropped, 1);
	spool_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_waits_and_loses_nothing),
		cmocka_unit_test(test_bounded_wait_counts),
		cmocka_unit_test(test_never_fits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
