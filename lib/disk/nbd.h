/* SPDX-License-Identifier: MIT */
/*
 * A write-only NBD server for one client: QEMU's NBD block driver, used as
 * the target of an active mirror. Every request is handed to a callback and
 * acknowledged at once; nothing is stored here.
 */
#ifndef VMSCOPE_DISK_NBD_H
#define VMSCOPE_DISK_NBD_H

#include <stddef.h>
#include <stdint.h>

#define NBD_CMD_READ	     0
#define NBD_CMD_WRITE	     1
#define NBD_CMD_DISC	     2
#define NBD_CMD_FLUSH	     3
#define NBD_CMD_TRIM	     4
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_MAX_PAYLOAD	     (32u << 20)

struct nbd_request {
	uint16_t type, flags;
	uint64_t cookie, offset;
	uint32_t length;
};

/*
 * Called on the server thread for every write-like request, with the
 * payload for WRITE (NULL otherwise), before the reply is sent. It must be
 * quick: the guest's write waits for the reply.
 */
typedef void (*nbd_request_fn)(void *ctx, const struct nbd_request *req, const void *payload);

struct nbd_server;

/* Listen on a unix socket at path for an export of size bytes; serve in a thread. */
int nbd_server_start(const char *path, uint64_t size, nbd_request_fn fn, void *ctx,
		     struct nbd_server **ret);
/* Serve one already connected client on fd until it leaves (tests, fuzzing). */
int nbd_serve_fd(int fd, uint64_t size, nbd_request_fn fn, void *ctx);

/* Close the socket, end the thread, remove the socket file. */
void nbd_server_stop(struct nbd_server *server);

/* -- client (nbd_client.c): reading an export of QEMU's own NBD server -- */

struct nbd_client;

int nbd_client_open(const char *path, const char *export_name, struct nbd_client **ret);
uint64_t nbd_client_size(const struct nbd_client *client);
int nbd_client_read(struct nbd_client *client, uint64_t offset, void *buf, size_t len);
void nbd_client_close(struct nbd_client *client);

#endif
