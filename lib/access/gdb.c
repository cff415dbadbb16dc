// SPDX-License-Identifier: MIT
/*
 * The GDB remote serial protocol, client side, as QEMU's gdbstub speaks it.
 * A packet is "$" data "#" two hex digits of checksum; until no-ack mode is
 * on, each is acknowledged with "+". Replies are matched by order: every
 * request has exactly one, except continue, whose reply is the next stop.
 * QEMU also reports a stop when a debugger connects (the VM stops then):
 * stop replies ("T"/"S") that arrive while another reply is awaited are
 * noted and skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "access/gdb.h"
#include "core/sockio.h"
#include "core/util.h"

#define IO_TIMEOUT_MS 10000
/* QEMU's x86-64 'g' packet: 16 GPRs, rip, eflags, 6 segments, 3 bases, cr0-4, cr8, efer, ... */
#define REGS_MIN_BYTES 228

struct gdb_conn {
	int fd;
	int no_ack;
	int pending_stop, stop_signal;
	long stop_thread; /* from the last stop reply's "thread:" field, or -1 */
	uint8_t in[GDB_PACKET_MAX * 2];
	size_t in_len, in_pos;
	char packet[GDB_PACKET_MAX * 2 + 1];
	uint64_t round_trips;
	int io_timeout_ms; /* for a reply, stop notices and noise included */
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int send_packet(struct gdb_conn *g, const char *data)
{
	char frame[GDB_PACKET_MAX + 8];
	size_t len = strlen(data);
	unsigned int sum = 0;

	if (len > GDB_PACKET_MAX)
		return -EMSGSIZE;
	for (size_t i = 0; i < len; i++)
		sum += (uint8_t)data[i];
	snprintf(frame, sizeof(frame), "$%s#%02x", data, sum & 0xff);
	g->round_trips++;
	return sock_send_all(g->fd, frame, len + 4);
}

/* One byte of input; 1, 0 on timeout, <0 on error. */
static int next_byte(struct gdb_conn *g, int timeout_ms, uint8_t *ret)
{
	if (g->in_pos == g->in_len) {
		struct pollfd p = { g->fd, POLLIN, 0 };
		ssize_t n;
		int r = poll(&p, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			return 0;
		if (r <= 0)
			return r < 0 ? -errno : 0;
		n = recv(g->fd, g->in, sizeof(g->in), 0);
		if (n <= 0)
			return -EPIPE;
		g->in_len = (size_t)n;
		g->in_pos = 0;
	}
	*ret = g->in[g->in_pos++];
	return 1;
}

static int ms_until(long long deadline)
{
	long long left = deadline - monotonic_ms();

	return left > 0 ? (int)left : 0;
}

/*
 * The next packet's data into g->packet; 1, 0 on timeout, <0 on error. Noise
 * before the '$' is skipped until deadline (a peer that sends nothing else
 * cannot keep us here); a packet once started gets io_timeout_ms a byte,
 * and is bounded in length.
 */
static int read_packet(struct gdb_conn *g, long long deadline)
{
	size_t len = 0;
	uint8_t c, sum = 0;
	int r, hi, lo;

	do { /* skip acks and noise up to the start of a packet */
		r = next_byte(g, ms_until(deadline), &c);
		if (r <= 0)
			return r;
		if (c != '$' && monotonic_ms() >= deadline)
			return 0;
	} while (c != '$');
	for (;;) {
		if ((r = next_byte(g, g->io_timeout_ms, &c)) <= 0)
			return r ? r : -ETIMEDOUT;
		if (c == '#')
			break;
		if (len >= sizeof(g->packet) - 1)
			return -EMSGSIZE;
		g->packet[len++] = (char)c;
		sum += c;
	}
	g->packet[len] = 0;
	if ((r = next_byte(g, g->io_timeout_ms, &c)) <= 0 || (hi = hexval((char)c)) < 0 ||
	    (r = next_byte(g, g->io_timeout_ms, &c)) <= 0 || (lo = hexval((char)c)) < 0)
		return r < 0 ? r : -EPROTO;
	if (((hi << 4) | lo) != sum)
		return -EPROTO;
	if (!g->no_ack && sock_send_all(g->fd, "+", 1))
		return -EPIPE;
	return 1;
}

static int is_stop(const char *p, int *ret_signal)
{
	if ((p[0] != 'T' && p[0] != 'S') || hexval(p[1]) < 0 || hexval(p[2]) < 0)
		return 0;
	*ret_signal = hexval(p[1]) << 4 | hexval(p[2]);
	return 1;
}

/* The stopped thread ("thread:p1.2;" or "thread:2;"), or -1. */
static long stop_thread(const char *p)
{
	const char *t = strstr(p, "thread:");
	const char *dot;

	if (!t)
		return -1;
	t += 7;
	dot = strchr(t, '.');
	if (dot && dot < strchr(t, ';'))
		t = dot + 1;
	return strtol(t, NULL, 16);
}

/*
 * Read the reply to a request into g->packet (stop notices noted and
 * skipped), all of it within one io_timeout_ms: a peer that answers with
 * endless stop notices or noise is a timeout, not a hang.
 */
static int reply(struct gdb_conn *g)
{
	long long deadline = monotonic_ms() + g->io_timeout_ms;

	for (;;) {
		int sig, r = read_packet(g, deadline);

		if (r <= 0)
			return r ? r : -ETIMEDOUT;
		if (!is_stop(g->packet, &sig))
			return 0;
		g->pending_stop = 1;
		g->stop_signal = sig;
		g->stop_thread = stop_thread(g->packet);
		if (monotonic_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

/* Send a request and read its reply into g->packet. */
static int request(struct gdb_conn *g, const char *data)
{
	return send_packet(g, data) ?: reply(g);
}

static int expect_ok(struct gdb_conn *g, const char *data)
{
	int err = request(g, data);

	if (err)
		return err;
	if (!strcmp(g->packet, "OK"))
		return 0;
	return g->packet[0] == 'E' || !g->packet[0] ? -EINVAL : -EPROTO;
}

/* Read target.xml to its end ("l" marks the last part); the contents are not needed. */
static void read_target_xml(struct gdb_conn *g)
{
	char cmd[64];
	size_t offset = 0;

	for (int parts = 0; parts < 64; parts++) {
		snprintf(cmd, sizeof(cmd), "qXfer:features:read:target.xml:%zx,%x", offset,
			 GDB_PACKET_MAX / 2);
		if (request(g, cmd) || (g->packet[0] != 'm' && g->packet[0] != 'l'))
			return;
		if (g->packet[0] == 'l')
			return;
		offset += strlen(g->packet) - 1;
	}
}

int gdb_connect(const char *path, struct gdb_conn **ret)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		err = -errno;
		close(fd);
		return err;
	}
	return gdb_attach_fd(fd, ret);
}

int gdb_attach_fd(int fd, struct gdb_conn **ret)
{
	return gdb_attach_fd_timeout(fd, IO_TIMEOUT_MS, ret);
}

int gdb_attach_fd_timeout(int fd, int io_timeout_ms, struct gdb_conn **ret)
{
	struct gdb_conn *g = calloc(1, sizeof(*g));
	int err;

	if (!g) {
		close(fd);
		return -ENOMEM;
	}
	g->fd = fd;
	g->stop_thread = -1;
	g->io_timeout_ms = io_timeout_ms > 0 ? io_timeout_ms : IO_TIMEOUT_MS;
	err = request(g, "qSupported:swbreak+;hwbreak+");
	if (err)
		goto fail;
	/*
	 * Fetch the target description as gdb does: QEMU answers register
	 * writes ('P') only for a client that has read it.
	 */
	if (strstr(g->packet, "qXfer:features:read+"))
		read_target_xml(g);
	/* No-ack mode where the stub offers it (QEMU 7.2 does not: it answers ""). */
	if (strstr(g->packet, "QStartNoAckMode+")) {
		err = expect_ok(g, "QStartNoAckMode");
		if (err)
			goto fail;
		g->no_ack = 1;
	}
	*ret = g;
	return 0;
fail:
	close(g->fd);
	free(g);
	return err;
}

int gdb_detach(struct gdb_conn *g)
{
	int err;

	if (!g)
		return 0;
	err = expect_ok(g, "D");
	close(g->fd);
	free(g);
	return err;
}

int gdb_watchpoint(struct gdb_conn *g, int type, uint64_t addr, unsigned int len, int set)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "%c%d,%" PRIx64 ",%x", set ? 'Z' : 'z', type, addr, len);
	return expect_ok(g, cmd);
}

int gdb_breakpoint(struct gdb_conn *g, int type, uint64_t addr, int set)
{
	return gdb_watchpoint(g, type, addr, 1, set);
}

static uint64_t le_hex(const char *p, size_t bytes)
{
	uint64_t v = 0;

	for (size_t i = 0; i < bytes; i++)
		v |= (uint64_t)(hexval(p[2 * i]) << 4 | hexval(p[2 * i + 1])) << (8 * i);
	return v;
}

int gdb_parse_regs(const char *hex, size_t len, struct gdb_regs *r)
{
	uint64_t *gpr = &r->rax;

	if (len < 2 * REGS_MIN_BYTES)
		return -EPROTO;
	for (size_t i = 0; i < 2 * REGS_MIN_BYTES; i++)
		if (hexval(hex[i]) < 0 && hex[i] != 'x') /* 'x': unavailable, read as 0 */
			return -EPROTO;
	for (int i = 0; i < 16; i++)
		gpr[i] = le_hex(hex + 16 * i, 8);
	r->rip = le_hex(hex + 2 * 128, 8);
	r->eflags = (uint32_t)le_hex(hex + 2 * 136, 4);
	r->fs_base = le_hex(hex + 2 * 164, 8);
	r->gs_base = le_hex(hex + 2 * 172, 8);
	r->kernel_gs_base = le_hex(hex + 2 * 180, 8);
	r->cr0 = le_hex(hex + 2 * 188, 8);
	r->cr2 = le_hex(hex + 2 * 196, 8);
	r->cr3 = le_hex(hex + 2 * 204, 8);
	r->cr4 = le_hex(hex + 2 * 212, 8);
	return 0;
}

int gdb_read_regs(struct gdb_conn *g, struct gdb_regs *ret)
{
	int err = request(g, "g");

	return err ?: gdb_parse_regs(g->packet, strlen(g->packet), ret);
}

int gdb_write_reg(struct gdb_conn *g, unsigned int regnum, uint64_t value)
{
	char cmd[64];
	int n = snprintf(cmd, sizeof(cmd), "P%x=", regnum);

	for (int i = 0; i < 8; i++)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, "%02x",
			      (unsigned int)(value >> (8 * i)) & 0xff);
	return expect_ok(g, cmd);
}

int gdb_read_mem(struct gdb_conn *g, uint64_t addr, void *buf, size_t len)
{
	uint8_t *out = buf;

	while (len) {
		size_t chunk = len < GDB_PACKET_MAX / 2 ? len : GDB_PACKET_MAX / 2;
		char cmd[64];
		int err;

		snprintf(cmd, sizeof(cmd), "m%llx,%zx", (unsigned long long)addr, chunk);
		err = request(g, cmd);
		if (err)
			return err;
		if (strlen(g->packet) != 2 * chunk)
			return -EFAULT; /* "E14": not mapped */
		for (size_t i = 0; i < chunk; i++) {
			int hi = hexval(g->packet[2 * i]), lo = hexval(g->packet[2 * i + 1]);

			if (hi < 0 || lo < 0)
				return -EPROTO;
			out[i] = (uint8_t)(hi << 4 | lo);
		}
		out += chunk;
		addr += chunk;
		len -= chunk;
	}
	return 0;
}

int gdb_step(struct gdb_conn *g, int timeout_ms)
{
	int sig, r;

	g->pending_stop = 0;
	if (send_packet(g, "s"))
		return -EPIPE;
	r = gdb_wait_stop(g, timeout_ms, &sig);
	return r == 1 ? 0 : r < 0 ? r : -ETIMEDOUT;
}

int gdb_continue(struct gdb_conn *g)
{
	g->pending_stop = 0;
	return send_packet(g, "c");
}

int gdb_continue_at(struct gdb_conn *g, uint64_t addr)
{
	char cmd[24];

	g->pending_stop = 0;
	snprintf(cmd, sizeof(cmd), "c%" PRIx64, addr);
	return send_packet(g, cmd);
}

int gdb_wait_stop(struct gdb_conn *g, int timeout_ms, int *ret_signal)
{
	long long deadline = monotonic_ms() + timeout_ms;

	if (g->pending_stop) {
		g->pending_stop = 0;
		*ret_signal = g->stop_signal;
		return 1;
	}
	for (;;) {
		int r = read_packet(g, deadline);

		if (r <= 0)
			return r;
		if (is_stop(g->packet, ret_signal)) {
			g->stop_thread = stop_thread(g->packet);
			return 1;
		}
		/* "O" console output and the like: not a stop; endless of it is a timeout */
		if (monotonic_ms() >= deadline)
			return 0;
	}
}

int gdb_continue_thread(struct gdb_conn *g, long thread)
{
	char cmd[48];

	if (thread <= 0)
		return gdb_continue(g);
	g->pending_stop = 0;
	snprintf(cmd, sizeof(cmd), "vCont;c:%lx", thread);
	return send_packet(g, cmd);
}

/* "1,2" or "p1.1,p1.2": thread ids into ids[*n...max). */
static void parse_thread_list(const char *p, long *ids, int *n, int max)
{
	while (*p && *n < max) {
		const char *end = p + strcspn(p, ",");
		const char *dot = memchr(p, '.', (size_t)(end - p));

		ids[(*n)++] = strtol(dot ? dot + 1 : p, NULL, 16);
		p = *end ? end + 1 : end;
	}
}

int gdb_threads(struct gdb_conn *g, long *ids, int max)
{
	int n = 0, err = request(g, "qfThreadInfo");

	/* "m..." parts until "l"; the list is bounded by what we keep and by rounds. */
	for (int round = 0; !err && g->packet[0] == 'm' && round < GDB_MAX_THREADS; round++) {
		parse_thread_list(g->packet + 1, ids, &n, max);
		err = request(g, "qsThreadInfo");
	}
	if (err)
		return err;
	return g->packet[0] == 'l' ? n : -EPROTO;
}

int gdb_read_threads_regs(struct gdb_conn *g, const long *threads, int n, struct gdb_regs *ret)
{
	char cmd[32];
	int err = 0;

	/* Pipelined: every "Hg" and "g" goes out at once, the replies come back in order. */
	for (int i = 0; i < n && !err; i++) {
		snprintf(cmd, sizeof(cmd), "Hg%lx", threads[i]);
		err = send_packet(g, cmd) ?: send_packet(g, "g");
	}
	for (int i = 0; i < n && !err; i++) {
		err = reply(g);
		if (!err && strcmp(g->packet, "OK"))
			err = -EPROTO;
		err = err ?: reply(g);
		err = err ?: gdb_parse_regs(g->packet, strlen(g->packet), &ret[i]);
	}
	return err;
}

long gdb_stopped_thread(const struct gdb_conn *g)
{
	return g->stop_thread;
}

int gdb_interrupt(struct gdb_conn *g)
{
	return sock_send_all(g->fd, "\x03", 1);
}

uint64_t gdb_round_trips(const struct gdb_conn *g)
{
	return g->round_trips;
}
