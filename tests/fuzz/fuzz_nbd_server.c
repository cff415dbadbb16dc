// SPDX-License-Identifier: MIT
/* libFuzzer target: the NBD server's handshake and requests, the input being what a client sends. */
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "disk/nbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore(void *ctx, const struct nbd_request *req, const void *payload)
{
	(void)ctx;
	(void)req;
	(void)payload;
}

/* Half the payloads read, half skipped in the kernel: both paths see hostile lengths. */
static int want_odd(void *ctx, const struct nbd_request *req)
{
	(void)ctx;
	return (int)(req->offset & 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct timeval quick = { 0, 100000 };
	int buffer = 1 << 20, fds[2];

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
		return 0;
	setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
	setsockopt(fds[0], SOL_SOCKET, SO_SNDTIMEO, &quick, sizeof(quick)); /* replies nobody reads */
	if (write(fds[1], data, size) == (ssize_t)size) {
		shutdown(fds[1], SHUT_WR);
		nbd_serve_fd(fds[0], 64 << 20, ignore, want_odd, NULL);
	}
	close(fds[0]);
	close(fds[1]);
	return 0;
}
