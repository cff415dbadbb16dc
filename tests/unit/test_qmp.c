// SPDX-License-Identifier: MIT
/*
 * The QMP client against a scripted peer on a socketpair, as libvirt tests its
 * monitor code: lines recorded from QEMU 7.2, then the ways a peer can go
 * wrong. The live QEMU is exercised by the integration tests.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "access/qmp.h"

#define GREETING                                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "         \
	"\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n"

/* The peer: sends each step's text after reading one command line (NULL: send at once). */
struct script {
	int fd;
	const char *steps[8];
	int read_before[8];
	int close_at_end;
	char received[4096];
};

static void read_line(int fd, char *into, size_t room)
{
	size_t used = strlen(into);
	char c;

	while (read(fd, &c, 1) == 1) {
		if (used + 1 < room) {
			into[used++] = c;
			into[used] = '\0';
		}
		if (c == '\n')
			return;
	}
}

static void *peer(void *arg)
{
	struct script *s = arg;

	for (int i = 0; i < 8 && s->steps[i]; i++) {
		if (s->read_before[i])
			read_line(s->fd, s->received, sizeof(s->received));
		if (send(s->fd, s->steps[i], strlen(s->steps[i]), MSG_NOSIGNAL) < 0)
			break;
	}
	if (s->close_at_end)
		shutdown(s->fd, SHUT_RDWR);
	return NULL;
}

struct session {
	struct script script;
	pthread_t thread;
	struct qmp *qmp;
	char err[512];
	int ret;
};

static void start(struct session *s, int timeout_ms)
{
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	s->script.fd = fds[1];
	assert_int_equal(pthread_create(&s->thread, NULL, peer, &s->script), 0);
	s->qmp = NULL;
	s->ret = qmp_connect_fd(fds[0], "test.sock", timeout_ms, &s->qmp, s->err, sizeof(s->err));
}

static void finish(struct session *s)
{
	shutdown(s->script.fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->script.fd);
	qmp_close(s->qmp);
}

static void test_command_skips_events_and_returns(void **state)
{
	struct session s = { .script = {
				     .steps = { GREETING, "{\"return\": {}}\r\n",
						"{\"timestamp\": {\"seconds\": 1, "
						"\"microseconds\": 2}, \"event\": \"STOP\"}\r\n"
						"{\"return\": {\"status\": \"paused\", ",
						"\"running\": false}}\r\n" },
				     .read_before = { 0, 1, 1, 0 },
			     } };
	json_t *ret = NULL;

	(void)state;
	start(&s, 2000);
	assert_int_equal(s.ret, 0);
	assert_int_equal(qmp_execute(s.qmp, "query-status", NULL, &ret), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "paused");
	json_decref(ret);
	assert_non_null(strstr(s.script.received, "{\"execute\":\"qmp_capabilities\",\"id\":1}\n"));
	assert_non_null(strstr(s.script.received, "{\"execute\":\"query-status\",\"id\":2}\n"));
	finish(&s);
}

/* The late reply to a command that timed out must not answer the next one. */
static void test_reply_is_matched_by_id(void **state)
{
	struct session s = { .script = {
				     .steps = { GREETING, "{\"return\": {}, \"id\": 1}\r\n",
						"{\"return\": {\"status\": \"stale\"}, \"id\": 1}\r\n"
						"{\"return\": {\"status\": \"paused\"}, \"id\": 2}\r\n" },
				     .read_before = { 0, 1, 1 },
			     } };
	json_t *ret = NULL;

	(void)state;
	start(&s, 2000);
	assert_int_equal(s.ret, 0);
	assert_int_equal(qmp_execute(s.qmp, "query-status", NULL, &ret), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "paused");
	json_decref(ret);
	finish(&s);
}

static void test_hmp_returns_text(void **state)
{
	struct session s = { .script = {
				     .steps = { GREETING, "{\"return\": {}}\r\n",
						"{\"return\": \"Host virtual address for 0x100000 "
						"(pc.ram) is 0x7f0bb3f00000\\r\\n\"}\r\n" },
				     .read_before = { 0, 1, 1 },
			     } };
	char *text = NULL;

	(void)state;
	start(&s, 2000);
	assert_int_equal(s.ret, 0);
	assert_int_equal(qmp_hmp(s.qmp, "gpa2hva 0x100000", &text), 0);
	assert_string_equal(text,
			    "Host virtual address for 0x100000 (pc.ram) is 0x7f0bb3f00000\r\n");
	assert_non_null(strstr(s.script.received, "\"command-line\":\"gpa2hva 0x100000\""));
	free(text);
	finish(&s);
}

static void test_error_reply_names_the_cause(void **state)
{
	struct session
		s = { .script = {
			      .steps = { GREETING, "{\"return\": {}}\r\n",
					 "{\"error\": {\"class\": \"GenericError\", \"desc\": "
					 "\"Device 'x' not found\"}}\r\n",
					 "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
					 "\"The command foo has not been found\"}}\r\n" },
			      .read_before = { 0, 1, 1, 1 },
		      } };

	(void)state;
	start(&s, 2000);
	assert_int_equal(s.ret, 0);
	assert_int_equal(qmp_execute(s.qmp, "qom-get", NULL, NULL), -EIO);
	assert_string_equal(qmp_error(s.qmp), "QMP command qom-get failed: Device 'x' not found");
	assert_int_equal(qmp_execute(s.qmp, "foo", NULL, NULL), -EOPNOTSUPP);
	finish(&s);
}

static void test_silent_peer_times_out(void **state)
{
	struct session s = { 0 };

	(void)state;
	start(&s, 200);
	assert_int_equal(s.ret, -ETIMEDOUT);
	assert_null(s.qmp);
	assert_non_null(strstr(s.err, "no QMP greeting within 200 ms"));
	finish(&s);
}

static void test_peer_that_is_not_qmp(void **state)
{
	struct session s = { .script = { .steps = { "SSH-2.0-OpenSSH_9.2\r\n" } } };

	(void)state;
	start(&s, 2000);
	assert_int_equal(s.ret, -EPROTO);
	assert_string_equal(s.err, "test.sock: does not speak QMP (got \"SSH-2.0-OpenSSH_9.2..\")");
	finish(&s);
}

static void test_json_that_is_not_a_greeting(void **state)
{
	struct session s = { .script = { .steps = { "{\"hello\": 1}\n" } } };

	(void)state;
	start(&s, 2000);
	assert_int_equal(s.ret, -EPROTO);
	assert_non_null(strstr(s.err, "no greeting"));
	finish(&s);
}

static void test_peer_closing_mid_command(void **state)
{
	struct session s = { .script = {
				     .steps = { GREETING, "{\"return\": {}}\r\n", "{\"return\": " },
				     .read_before = { 0, 1, 1 },
				     .close_at_end = 1,
			     } };

	(void)state;
	start(&s, 2000);
	assert_int_equal(s.ret, 0);
	assert_int_equal(qmp_execute(s.qmp, "query-name", NULL, NULL), -ECONNRESET);
	assert_non_null(strstr(qmp_error(s.qmp), "connection closed"));
	finish(&s);
}

/* A peer that never ends its line is cut off at the size bound, not followed forever. */
static void *flood(void *arg)
{
	int fd = *(int *)arg;
	static char junk[65536];

	memset(junk, ' ', sizeof(junk));
	junk[0] = '{';
	for (size_t sent = 0; sent < QMP_MAX_MESSAGE_BYTES + sizeof(junk);) {
		ssize_t n = send(fd, sent ? junk + 1 : junk, sizeof(junk) - 1, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	return NULL;
}

static void test_endless_line_is_bounded(void **state)
{
	struct qmp *qmp = NULL;
	pthread_t thread;
	char err[512];
	int fds[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(pthread_create(&thread, NULL, flood, &fds[1]), 0);
	assert_int_equal(qmp_connect_fd(fds[0], "flood.sock", 10000, &qmp, err, sizeof(err)),
			 -EMSGSIZE);
	assert_non_null(strstr(err, "message too long"));
	shutdown(fds[1], SHUT_RDWR);
	pthread_join(thread, NULL);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_skips_events_and_returns),
		cmocka_unit_test(test_reply_is_matched_by_id),
		cmocka_unit_test(test_hmp_returns_text),
		cmocka_unit_test(test_error_reply_names_the_cause),
		cmocka_unit_test(test_silent_peer_times_out),
		cmocka_unit_test(test_peer_that_is_not_qmp),
		cmocka_unit_test(test_json_that_is_not_a_greeting),
		cmocka_unit_test(test_peer_closing_mid_command),
		cmocka_unit_test(test_endless_line_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
