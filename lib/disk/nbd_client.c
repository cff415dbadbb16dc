// SPDX-License-Identifier: MIT
/*
 * A minimal NBD client, to read a disk through QEMU's own NBD server (a
 * read-only export of the guest's block node), so that a bootstrap sees what
 * the guest sees, whatever the image format. Fixed newstyle, NBD_OPT_GO,
 * simple replies only (we never ask for structured ones). Replies are
 * checked against the request; the server is QEMU, but the data is the
 * guest's.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sockio.h"
#include "disk/nbd.h"

#define MAX_READ		(32u << 20)

struct nbd_client {
	int fd;
	uint64_t size;
	uint64_t cookie;
};

/* NBD_OPT_GO for the export name; the size arrives in an NBD_INFO_EXPORT reply. */
static int go(struct nbd_client *c, const char *name)
{
	uint32_t name_len = (uint32_t)strlen(name), be;
	uint64_t magic = htobe64(NBD_OPTS_MAGIC);
	uint8_t head[16], buf[512];
	uint16_t none = 0;

	if (name_len > 256)
		return -ENAMETOOLONG;
	memcpy(head, &magic, 8);
	be = htobe32(NBD_OPT_GO);
	memcpy(head + 8, &be, 4);
	be = htobe32(4 + name_len + 2);
	memcpy(head + 12, &be, 4);
	be = htobe32(name_len);
	if (sock_send_all(c->fd, head, 16) || sock_send_all(c->fd, &be, 4) ||
	    sock_send_all(c->fd, name, name_len) || sock_send_all(c->fd, &none, 2))
		return -EPIPE;
	for (int replies = 0; replies < 64; replies++) {
		uint32_t type, len;
		uint8_t rep[20];

		if (sock_recv_all(c->fd, rep, sizeof(rep)))
			return -EPIPE;
		memcpy(&type, rep + 12, 4);
		memcpy(&len, rep + 16, 4);
		type = be32toh(type);
		len = be32toh(len);
		if (len > sizeof(buf) || sock_recv_all(c->fd, buf, len))
			return -EPROTO;
		if (type == NBD_REP_ACK)
			return c->size ? 0 : -EPROTO;
		if (type == NBD_REP_INFO && len >= 12 && buf[0] == 0 && buf[1] == NBD_INFO_EXPORT) {
			memcpy(&c->size, buf + 2, 8);
			c->size = be64toh(c->size);
		} else if (type != NBD_REP_INFO) {
			return -ENOENT; /* an error reply: no such export */
		}
	}
	return -EPROTO;
}

static int handshake(struct nbd_client *c, const char *name)
{
	uint8_t hello[18];
	uint64_t magic, opts;
	uint32_t flags = htobe32(1 | 2); /* FIXED_NEWSTYLE, NO_ZEROES */

	if (sock_recv_all(c->fd, hello, sizeof(hello)))
		return -EPIPE;
	memcpy(&magic, hello, 8);
	memcpy(&opts, hello + 8, 8);
	if (be64toh(magic) != NBD_MAGIC || be64toh(opts) != NBD_OPTS_MAGIC)
		return -EPROTO;
	if (sock_send_all(c->fd, &flags, 4))
		return -EPIPE;
	return go(c, name);
}

int nbd_client_open(const char *path, const char *export_name, struct nbd_client **ret)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct nbd_client *c;
	int err;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof(addr))) {
		err = -errno;
		goto fail;
	}
	err = handshake(c, export_name);
	if (err)
		goto fail;
	*ret = c;
	return 0;
fail:
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return err;
}

uint64_t nbd_client_size(const struct nbd_client *c)
{
	return c->size;
}

int nbd_client_read(struct nbd_client *c, uint64_t offset, void *buf, size_t len)
{
	while (len) {
		size_t part = len < MAX_READ ? len : MAX_READ;
		uint8_t req[28], rep[16];
		uint32_t magic = htobe32(NBD_REQUEST_MAGIC), be_len = htobe32((uint32_t)part),
			 error, rmagic;
		uint64_t cookie = ++c->cookie, be_off = htobe64(offset), rcookie;
		uint16_t zero = 0, type = htobe16(NBD_CMD_READ);

		if (offset > c->size || part > c->size - offset)
			return -EINVAL;
		memcpy(req, &magic, 4);
		memcpy(req + 4, &zero, 2);
		memcpy(req + 6, &type, 2);
		memcpy(req + 8, &cookie, 8);
		memcpy(req + 16, &be_off, 8);
		memcpy(req + 24, &be_len, 4);
		if (sock_send_all(c->fd, req, sizeof(req)) || sock_recv_all(c->fd, rep, sizeof(rep)))
			return -EPIPE;
		memcpy(&rmagic, rep, 4);
		memcpy(&error, rep + 4, 4);
		memcpy(&rcookie, rep + 8, 8);
		if (be32toh(rmagic) != NBD_SIMPLE_REPLY_MAGIC || rcookie != cookie)
			return -EPROTO;
		if (error)
			return -(int)be32toh(error);
		if (sock_recv_all(c->fd, buf, part))
			return -EPIPE;
		buf = (uint8_t *)buf + part;
		offset += part;
		len -= part;
	}
	return 0;
}

void nbd_client_close(struct nbd_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}
