// SPDX-License-Identifier: MIT
/*
 * NBD server, fixed newstyle, as far as a mirror target needs it.
 *
 * Handshake: NBDMAGIC, IHAVEOPT, flags (FIXED_NEWSTYLE, NO_ZEROES); then
 * options until NBD_OPT_GO (or the older EXPORT_NAME) enters transmission.
 * We accept structured replies (and send errors as structured error chunks
 * then) but acknowledge writes with simple replies, which the protocol
 * allows for every command but READ. The export is write-only: nothing is
 * stored, so READ and unknown commands get EINVAL. Every field from the
 * client is checked: option lengths and payloads are bounded.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sockio.h"
#include "disk/nbd.h"

#define NBD_REPLY_TYPE_ERROR	((1u << 15) + 1)
#define NBD_REPLY_FLAG_DONE	1u
#define TRANSMISSION_FLAGS	(1u | (1u << 2) | (1u << 3) | (1u << 5) | (1u << 6)) /* HAS_FLAGS, FLUSH, FUA, TRIM, WRITE_ZEROES */
#define MAX_OPTION_BYTES	4096
#define NBD_EINVAL		22

struct nbd_server {
	int listen_fd;
	_Atomic int client_fd; /* set by the server thread, shut down by stop */
	char path[108];
	uint64_t size;
	nbd_request_fn fn;
	nbd_want_fn want;
	void *ctx;
	pthread_t thread;
	int structured;
	uint8_t *payload; /* allocated at the first WRITE */
	int pipe[2], null_fd; /* for discarding payloads; -1 until needed, or if splice fails */
	int no_splice;
};

static void release_discard(struct nbd_server *s)
{
	if (s->pipe[0] >= 0)
		close(s->pipe[0]);
	if (s->pipe[1] >= 0)
		close(s->pipe[1]);
	if (s->null_fd >= 0)
		close(s->null_fd);
	s->pipe[0] = s->pipe[1] = s->null_fd = -1;
}

static int receive_payload(struct nbd_server *s, uint32_t len)
{
	if (!s->payload && !(s->payload = malloc(NBD_MAX_PAYLOAD)))
		return -ENOMEM;
	return sock_recv_all(s->client_fd, s->payload, len) ? -EPIPE : 0;
}

/*
 * Skip a payload without copying it to user space: socket -> pipe -> /dev/null.
 * Falls back to reading it when splice is not possible here.
 */
static int discard_payload(struct nbd_server *s, uint32_t len)
{
	if (!s->no_splice && s->null_fd < 0) {
		s->null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (s->null_fd < 0 || pipe2(s->pipe, O_CLOEXEC)) {
			release_discard(s);
			s->no_splice = 1;
		} else {
			fcntl(s->pipe[1], F_SETPIPE_SZ, 1 << 20);
		}
	}
	while (!s->no_splice && len) {
		ssize_t in = splice(s->client_fd, NULL, s->pipe[1], NULL, len, SPLICE_F_MOVE);

		if (in < 0 && errno == EINTR)
			continue;
		if (in < 0 && errno == EINVAL && s->pipe[0] >= 0) {
			s->no_splice = 1; /* a socket splice cannot read from */
			break;
		}
		if (in <= 0)
			return -EPIPE;
		len -= (uint32_t)in;
		while (in > 0) {
			ssize_t out = splice(s->pipe[0], NULL, s->null_fd, NULL, (size_t)in,
					     SPLICE_F_MOVE);

			if (out < 0 && errno == EINTR)
				continue;
			if (out <= 0)
				return -EPIPE;
			in -= out;
		}
	}
	return len ? receive_payload(s, len) : 0;
}

static int option_reply(int fd, uint32_t option, uint32_t type, const void *data, uint32_t len)
{
	uint8_t head[20];
	uint64_t magic = htobe64(NBD_REP_MAGIC);
	uint32_t v;

	memcpy(head, &magic, 8);
	v = htobe32(option);
	memcpy(head + 8, &v, 4);
	v = htobe32(type);
	memcpy(head + 12, &v, 4);
	v = htobe32(len);
	memcpy(head + 16, &v, 4);
	if (sock_send_all(fd, head, sizeof(head)))
		return -EPIPE;
	return len ? sock_send_all(fd, data, len) : 0;
}

static int send_info(struct nbd_server *s, uint32_t option)
{
	uint8_t export_info[12], block_info[14];
	uint16_t type = htobe16(NBD_INFO_EXPORT), flags = htobe16(TRANSMISSION_FLAGS);
	uint64_t size = htobe64(s->size);
	uint32_t sizes[3] = { htobe32(512), htobe32(4096), htobe32(NBD_MAX_PAYLOAD) };

	memcpy(export_info, &type, 2);
	memcpy(export_info + 2, &size, 8);
	memcpy(export_info + 10, &flags, 2);
	type = htobe16(NBD_INFO_BLOCK_SIZE);
	memcpy(block_info, &type, 2);
	memcpy(block_info + 2, sizes, 12);
	if (option_reply(s->client_fd, option, NBD_REP_INFO, export_info, sizeof(export_info)) ||
	    option_reply(s->client_fd, option, NBD_REP_INFO, block_info, sizeof(block_info)))
		return -EPIPE;
	return option_reply(s->client_fd, option, NBD_REP_ACK, NULL, 0);
}

/* Options until transmission: 1 to go on, 0 when transmission starts, <0 to drop. */
static int one_option(struct nbd_server *s)
{
	uint8_t head[16], data[MAX_OPTION_BYTES];
	uint64_t magic;
	uint32_t option, len;

	if (sock_recv_all(s->client_fd, head, sizeof(head)))
		return -EPIPE;
	memcpy(&magic, head, 8);
	memcpy(&option, head + 8, 4);
	memcpy(&len, head + 12, 4);
	option = be32toh(option);
	len = be32toh(len);
	if (be64toh(magic) != NBD_OPTS_MAGIC || len > sizeof(data) ||
	    sock_recv_all(s->client_fd, data, len))
		return -EPROTO;
	switch (option) {
	case NBD_OPT_GO:
	case NBD_OPT_INFO:
		if (send_info(s, option))
			return -EPIPE;
		return option == NBD_OPT_GO ? 0 : 1;
	case NBD_OPT_EXPORT_NAME: {
		uint8_t reply[10];
		uint64_t size = htobe64(s->size);
		uint16_t flags = htobe16(TRANSMISSION_FLAGS);

		memcpy(reply, &size, 8);
		memcpy(reply + 8, &flags, 2);
		return sock_send_all(s->client_fd, reply, sizeof(reply)) ? -EPIPE : 0;
	}
	case NBD_OPT_STRUCTURED:
		s->structured = len == 0;
		return option_reply(s->client_fd, option, len ? NBD_REP_ERR_INVALID : NBD_REP_ACK,
				    NULL, 0)
			       ? -EPIPE
			       : 1;
	case NBD_OPT_ABORT:
		option_reply(s->client_fd, option, NBD_REP_ACK, NULL, 0);
		return -ECONNRESET;
	default:
		return option_reply(s->client_fd, option, NBD_REP_ERR_UNSUP, NULL, 0) ? -EPIPE : 1;
	}
}

static int handshake(struct nbd_server *s)
{
	uint8_t hello[18];
	uint64_t magic = htobe64(NBD_MAGIC), opts = htobe64(NBD_OPTS_MAGIC);
	uint16_t flags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	uint32_t client_flags;
	int ret;

	memcpy(hello, &magic, 8);
	memcpy(hello + 8, &opts, 8);
	memcpy(hello + 16, &flags, 2);
	if (sock_send_all(s->client_fd, hello, sizeof(hello)) ||
	    sock_recv_all(s->client_fd, &client_flags, sizeof(client_flags)))
		return -EPIPE;
	while ((ret = one_option(s)) > 0)
		;
	return ret;
}

static int reply(struct nbd_server *s, uint64_t cookie, uint32_t error)
{
	uint8_t buf[32];

	if (!error || !s->structured) {
		uint32_t magic = htobe32(NBD_SIMPLE_REPLY_MAGIC), err = htobe32(error);

		memcpy(buf, &magic, 4);
		memcpy(buf + 4, &err, 4);
		memcpy(buf + 8, &cookie, 8); /* the cookie goes back as it came */
		return sock_send_all(s->client_fd, buf, 16);
	} else {
		uint32_t magic = htobe32(NBD_STRUCT_REPLY_MAGIC), len = htobe32(6),
			 err = htobe32(error);
		uint16_t flags = htobe16(NBD_REPLY_FLAG_DONE), type = htobe16(NBD_REPLY_TYPE_ERROR),
			 msg_len = 0;

		memcpy(buf, &magic, 4);
		memcpy(buf + 4, &flags, 2);
		memcpy(buf + 6, &type, 2);
		memcpy(buf + 8, &cookie, 8);
		memcpy(buf + 16, &len, 4);
		memcpy(buf + 20, &err, 4);
		memcpy(buf + 24, &msg_len, 2);
		return sock_send_all(s->client_fd, buf, 26);
	}
}

/* One request: 0 to go on, 1 after DISC, <0 when the connection is unusable. */
static int one_request(struct nbd_server *s)
{
	uint8_t head[28];
	struct nbd_request req;
	uint32_t magic, error = 0;
	uint64_t cookie_raw;
	int wanted = 0;

	if (sock_recv_all(s->client_fd, head, sizeof(head)))
		return -EPIPE;
	memcpy(&magic, head, 4);
	memcpy(&req.flags, head + 4, 2);
	memcpy(&req.type, head + 6, 2);
	memcpy(&cookie_raw, head + 8, 8);
	memcpy(&req.offset, head + 16, 8);
	memcpy(&req.length, head + 24, 4);
	req.flags = be16toh(req.flags);
	req.type = be16toh(req.type);
	req.cookie = cookie_raw;
	req.offset = be64toh(req.offset);
	req.length = be32toh(req.length);
	if (be32toh(magic) != NBD_REQUEST_MAGIC)
		return -EPROTO;
	if (req.type == NBD_CMD_DISC)
		return 1;
	if (req.type == NBD_CMD_WRITE) {
		int err;

		if (req.length > NBD_MAX_PAYLOAD)
			return -EPROTO; /* we could not even skip it safely */
		wanted = !s->want || s->want(s->ctx, &req);
		err = wanted ? receive_payload(s, req.length) : discard_payload(s, req.length);
		if (err)
			return err;
	}
	if (req.offset > s->size || req.length > s->size - req.offset)
		error = NBD_EINVAL;
	else if (req.type == NBD_CMD_WRITE || req.type == NBD_CMD_WRITE_ZEROES ||
		 req.type == NBD_CMD_TRIM || req.type == NBD_CMD_FLUSH)
		s->fn(s->ctx, &req, req.type == NBD_CMD_WRITE && wanted ? s->payload : NULL);
	else
		error = NBD_EINVAL; /* READ, CACHE, BLOCK_STATUS: nothing is stored here */
	return reply(s, cookie_raw, error) ? -EPIPE : 0;
}

/* The conversation with one connected client, until it leaves or misbehaves. */
static void converse(struct nbd_server *s)
{
	if (!handshake(s))
		while (!one_request(s))
			;
}

static void *serve(void *arg)
{
	struct nbd_server *s = arg;
	int buffer = 4 << 20;

	s->client_fd = accept(s->listen_fd, NULL, NULL);
	if (s->client_fd < 0)
		return NULL;
	/* Room for a whole large write in flight: fewer wake-ups per request. */
	setsockopt(s->client_fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
	converse(s);
	return NULL;
}

int nbd_serve_fd(int fd, uint64_t size, nbd_request_fn fn, nbd_want_fn want, void *ctx)
{
	struct nbd_server s = { .listen_fd = -1, .size = size, .fn = fn, .want = want, .ctx = ctx,
				.pipe = { -1, -1 }, .null_fd = -1 };

	s.client_fd = fd;
	converse(&s);
	release_discard(&s);
	free(s.payload);
	return 0;
}

int nbd_server_start(const char *path, uint64_t size, nbd_request_fn fn, nbd_want_fn want,
		     void *ctx, struct nbd_server **ret)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct nbd_server *s;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->client_fd = -1;
	s->size = size;
	s->fn = fn;
	s->want = want;
	s->ctx = ctx;
	s->pipe[0] = s->pipe[1] = s->null_fd = -1;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	memcpy(s->path, path, strlen(path) + 1);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 ||
	    bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(s->listen_fd, 1) ||
	    pthread_create(&s->thread, NULL, serve, s)) {
		int err = errno ? -errno : -ENOMEM;

		if (s->listen_fd >= 0)
			close(s->listen_fd);
		unlink(path);
		free(s->payload);
		free(s);
		return err;
	}
	*ret = s;
	return 0;
}

void nbd_server_stop(struct nbd_server *s)
{
	if (!s)
		return;
	shutdown(s->listen_fd, SHUT_RDWR);
	if (s->client_fd >= 0)
		shutdown(s->client_fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	if (s->client_fd >= 0)
		close(s->client_fd);
	unlink(s->path);
	release_discard(s);
	free(s->payload);
	free(s);
}
