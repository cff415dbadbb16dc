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

/* Protocol constants (NBD's doc/proto.md). */
#define NBD_MAGIC		0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC		0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC	0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698u
#define NBD_STRUCT_REPLY_MAGIC	0x668e33efu
#define NBD_FLAG_FIXED_NEWSTYLE 1u
#define NBD_FLAG_NO_ZEROES	2u
#define NBD_OPT_EXPORT_NAME	1
#define NBD_OPT_ABORT		2
#define NBD_OPT_INFO		6
#define NBD_OPT_GO		7
#define NBD_OPT_STRUCTURED	8
#define NBD_REP_ACK		1u
#define NBD_REP_INFO		3u
#define NBD_REP_ERR_UNSUP	(1u | (1u << 31))
#define NBD_REP_ERR_INVALID	(3u | (1u << 31))
#define NBD_INFO_EXPORT		0
#define NBD_INFO_BLOCK_SIZE	3

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
/*
 * Asked, when set, before a WRITE's payload is read: 0 when the callback
 * has no use for it. The server then moves the bytes from the socket to
 * /dev/null inside the kernel (splice) instead of copying them out, and
 * the callback gets a NULL payload.
 */
typedef int (*nbd_want_fn)(void *ctx, const struct nbd_request *req);

struct nbd_server;

/* Listen on a unix socket at path for an export of size bytes; serve in a thread. */
int nbd_server_start(const char *path, uint64_t size, nbd_request_fn fn, nbd_want_fn want,
		     void *ctx, struct nbd_server **ret);
/* Serve one already connected client on fd until it leaves (tests, fuzzing). */
int nbd_serve_fd(int fd, uint64_t size, nbd_request_fn fn, nbd_want_fn want, void *ctx);

/* Close the socket, end the thread, remove the socket file. */
void nbd_server_stop(struct nbd_server *server);


/* -- client (nbd_client.c): reading an export of QEMU's own NBD server -- */

struct nbd_client;

int nbd_client_open(const char *path, const char *export_name, struct nbd_client **ret);
uint64_t nbd_client_size(const struct nbd_client *client);
int nbd_client_read(struct nbd_client *client, uint64_t offset, void *buf, size_t len);
void nbd_client_close(struct nbd_client *client);

#endif
