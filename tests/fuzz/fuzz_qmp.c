// SPDX-License-Identifier: MIT
/* libFuzzer target: the QMP client, the input being what the monitor sends. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int buffer = 1 << 20, fds[2];
	struct qmp *qmp = NULL;
	char err[512], *text = NULL;
	json_t *ret = NULL;

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
		return 0;
	setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
	setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
	if (write(fds[1], data, size) != (ssize_t)size) {
		close(fds[0]);
		close(fds[1]);
		return 0;
	}
	shutdown(fds[1], SHUT_WR); /* the monitor has said all it will say */
	if (!qmp_connect_fd(fds[0], "fuzz", 200, &qmp, err, sizeof(err))) {
		if (!qmp_execute(qmp, "query-status", NULL, &ret))
			json_decref(ret);
		if (!qmp_hmp(qmp, "info registers", &text))
			free(text);
		qmp_close(qmp);
	}
	close(fds[1]);
	return 0;
}
