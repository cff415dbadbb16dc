// SPDX-License-Identifier: MIT
/*
 * The gdbstub client's time limits against a peer on a socketpair: a reply is
 * read within one deadline, so a peer that answers with endless stop notices
 * or endless noise is a timeout, never a hang; a plain answer still works.
 * QEMU's own gdbstub is exercised by the integration tests (gdb_client.c).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "access/gdb.h"
#include "core/util.h"

struct peer {
	int fd;
	const char *chunk; /* sent again and again until the socket closes */
	const char *once;  /* or sent once, after the first request */
};

static void *run_peer(void *arg)
{
	struct peer *p = arg;
	char buf[512];

	if (p->once) {
		if (read(p->fd, buf, sizeof(buf)) > 0)
			(void)!write(p->fd, p->once, strlen(p->once));
		while (read(p->fd, buf, sizeof(buf)) > 0)
			;
		return NULL;
	}
	/* Flood, and drain what the client sends (its acks) so that neither side blocks. */
	for (;;) {
		ssize_t n = send(p->fd, p->chunk, strlen(p->chunk), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno != EAGAIN)
			return NULL;
		while (recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
		if (n < 0)
			usleep(100);
	}
}

static int attach_against(struct peer *p, long long *ret_ms)
{
	struct gdb_conn *g = NULL;
	pthread_t thread;
	long long start;
	int fds[2], err;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	p->fd = fds[1];
	assert_int_equal(pthread_create(&thread, NULL, run_peer, p), 0);
	start = monotonic_ms();
	err = gdb_attach_fd_timeout(fds[0], 200, &g);
	*ret_ms = monotonic_ms() - start;
	if (!err)
		gdb_detach(g);
	shutdown(fds[1], SHUT_RDWR);
	pthread_join(thread, NULL);
	close(fds[1]);
	return err;
}

static void test_endless_stop_notices_time_out(void **state)
{
	struct peer p = { .chunk = "$S05#b8" };
	long long ms;

	(void)state;
	assert_int_equal(attach_against(&p, &ms), -ETIMEDOUT);
	assert_true(ms < 2000);
}

static void test_endless_noise_times_out(void **state)
{
	struct peer p = { .chunk = "++++++++-------+++xyz" };
	long long ms;

	(void)state;
	assert_int_equal(attach_against(&p, &ms), -ETIMEDOUT);
	assert_true(ms < 2000);
}

static void test_plain_answer_attaches(void **state)
{
	struct peer p = { .once = "+$PacketSize=1000#f1" };
	long long ms;

	(void)state;
	assert_int_equal(attach_against(&p, &ms), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endless_stop_notices_time_out),
		cmocka_unit_test(test_endless_noise_times_out),
		cmocka_unit_test(test_plain_answer_attaches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
