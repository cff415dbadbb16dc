// SPDX-License-Identifier: MIT
/*
 * The dirty-bitmap capture mode: QEMU marks what the guest writes in a
 * dirty bitmap on the block node (block-dirty-bitmap-add), and vmscope,
 * every interval, swaps it for a fresh one and reads what the old one
 * marked. Nothing of vmscope's is on the guest's write path: setting a bit
 * is all a write costs.
 *
 * One poll: a QMP transaction adds the next bitmap and disables the current
 * one in the same instant, so that every write lands in exactly one of
 * them; the disabled bitmap is exported read-only on the NBD server the
 * disk reader started (a QEMU has one), with its qemu:dirty-bitmap:NAME
 * metadata context; NBD_CMD_BLOCK_STATUS (libnbd) gives its dirty extents,
 * and each becomes a write for the consumer, with the bytes read back from
 * the same export when the consumer wants them (journal blocks); then the
 * export and the bitmap go. What a poll misses, by construction: a block
 * written twice within one interval is seen once, with its newest content,
 * and blocks come in disk order, not the guest's.
 *
 * The poll runs on its own thread. Its QMP exchanges take the connection's
 * lock (qmp_call()), its errors stay here until bitmap_stop() reports them.
 */
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access/qmp.h"
#include "core/util.h"
#include "disk/bitmap.h"

#define READ_CHUNK	  (4u << 20)   /* bytes per read and per request handed on */
#define STATUS_CHUNK	  (1ull << 30) /* bytes per NBD_CMD_BLOCK_STATUS */
#define REMOVE_WAIT_MS	  5000	       /* for the export's end to release a bitmap */
#define DIRTY_MAX_EXTENTS (1u << 20)   /* per block status: 16 MiB of extents at most */
#define UNREAD_MAX	  4	       /* disabled bitmaps kept for another try */
#define FAILURES_MAX	  5	       /* polls in a row that fail: the capture has failed */
#define GRAPH_CHECK_MS	  1000	       /* how often a poll checks the device's node */

struct extent {
	uint64_t offset, length;
};

struct bitmap_poll {
	struct qmp *qmp;
	char node[64], socket[108], export_id[64], current[64];
	unsigned int generation;
	uint64_t size;
	uint32_t granularity, interval_ms;
	nbd_request_fn fn;
	nbd_want_fn want;
	void *ctx;
	uint8_t *buf;
	struct extent *dirty;
	size_t nr_dirty, cap_dirty;
	uint64_t status_end; /* where the last block status reply's extents ended */
	pthread_t thread;
	int thread_started, current_added;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	_Atomic int stopping;
	_Atomic uint64_t polls, dirty_bytes, read_bytes, poll_us_max, poll_failures;
	/* Disabled bitmaps not yet read and removed, oldest first; [0] read already? */
	char unread[UNREAD_MAX][64];
	size_t nr_unread;
	int first_read;
	unsigned int failures; /* in a row */
	char device[256];      /* the qdev whose top node is ours at the start, or "" */
	long long graph_checked_ms;
	_Atomic int failed;
	int err;
	char why[256];
};

static int fail(struct bitmap_poll *b, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct bitmap_poll *b, int err, const char *fmt, ...)
{
	va_list ap;

	/* The latest: a poll that fails is tried again, and only the failure that ends it counts.
	 */
	va_start(ap, fmt);
	vsnprintf(b->why, sizeof(b->why), fmt, ap);
	va_end(ap);
	b->err = err;
	return err;
}

static int qmp_do(struct bitmap_poll *b, const char *command, json_t *args)
{
	char why[200];
	int err = qmp_call(b->qmp, command, args, NULL, why, sizeof(why));

	return err ? fail(b, err, "%s: %s", command, why) : 0;
}

static void bitmap_name(unsigned int generation, char *out, size_t len)
{
	snprintf(out, len, "vmscope-dirty-%d-%u", (int)getpid(), generation);
}

static json_t *bitmap_add_args(struct bitmap_poll *b, const char *name)
{
	return json_pack("{s:s,s:s,s:i,s:b}", "node", b->node, "name", name, "granularity",
			 (json_int_t)b->granularity, "persistent", 0);
}

/* The next bitmap on, the current one off, in one transaction: no write falls between. */
static int rotate(struct bitmap_poll *b, char *old, size_t old_len)
{
	char next[64];
	int err;

	bitmap_name(b->generation + 1, next, sizeof(next));
	err = qmp_do(b, "transaction",
		     json_pack("{s:[{s:s,s:o},{s:s,s:{s:s,s:s}}]}", "actions", "type",
			       "block-dirty-bitmap-add", "data", bitmap_add_args(b, next), "type",
			       "block-dirty-bitmap-disable", "data", "node", b->node, "name",
			       b->current));
	if (err)
		return err;
	snprintf(old, old_len, "%s", b->current);
	snprintf(b->current, sizeof(b->current), "%s", next);
	b->generation++;
	return 0;
}

static int on_extents(void *ctx, const char *context, uint64_t offset, uint32_t *entries,
		      size_t nr_entries, int *error)
{
	struct bitmap_poll *b = ctx;

	(void)context;
	(void)error;
	for (size_t i = 0; i + 1 < nr_entries; i += 2) {
		uint64_t len = entries[i];
		struct extent *last = b->nr_dirty ? &b->dirty[b->nr_dirty - 1] : NULL;

		if (!len || offset > b->size || len > b->size - offset)
			return -1; /* QEMU would not say this: stop rather than read past the disk
				    */
		if (!(entries[i + 1] & 1)) {
			offset += len;
			continue;
		}
		if (last && last->offset + last->length == offset) {
			last->length += len;
		} else {
			if (b->nr_dirty == DIRTY_MAX_EXTENTS)
				return -1;
			if (b->nr_dirty == b->cap_dirty) {
				size_t cap = b->cap_dirty ? 2 * b->cap_dirty : 1024;
				struct extent *d = realloc(b->dirty, cap * sizeof(*d));

				if (!d)
					return -1;
				b->dirty = d;
				b->cap_dirty = cap;
			}
			b->dirty[b->nr_dirty++] = (struct extent){ offset, len };
		}
		offset += len;
	}
	b->status_end = offset;
	return 0;
}

/*
 * Each extent to the consumer in requests of at most READ_CHUNK, with the
 * bytes read back when it wants them: they may be newer than the bitmap's
 * instant, and then the next poll marks them again.
 */
static int hand_on(struct bitmap_poll *b, struct nbd_handle *h)
{
	for (size_t i = 0; i < b->nr_dirty; i++) {
		const struct extent *x = &b->dirty[i];

		b->dirty_bytes += x->length;
		for (uint64_t done = 0; done < x->length;) {
			uint64_t left = x->length - done;
			struct nbd_request req = { .type = NBD_CMD_WRITE,
						   .offset = x->offset + done };
			int want;

			req.length = left < READ_CHUNK ? (uint32_t)left : READ_CHUNK;
			want = b->want && b->want(b->ctx, &req);
			if (want && nbd_pread(h, b->buf, req.length, req.offset, 0))
				return fail(b, -EIO, "NBD read at %llu+%u: %s",
					    (unsigned long long)req.offset, req.length,
					    nbd_get_error());
			b->read_bytes += want ? req.length : 0;
			b->fn(b->ctx, &req, want ? b->buf : NULL);
			done += req.length;
		}
	}
	return 0;
}

/* The exported bitmap's dirty extents, a block status at a time, each batch handed on. */
static int read_dirty(struct bitmap_poll *b, struct nbd_handle *h)
{
	for (uint64_t at = 0; at < b->size;) {
		uint64_t count = b->size - at < STATUS_CHUNK ? b->size - at : STATUS_CHUNK;
		nbd_extent_callback cb = { .callback = on_extents, .user_data = b };
		int err;

		b->nr_dirty = 0;
		b->status_end = at;
		if (nbd_block_status(h, count, at, cb, 0))
			return fail(b, -EIO, "NBD block status at %llu: %s", (unsigned long long)at,
				    nbd_get_error());
		if (b->status_end <= at) /* a reply may cover less than asked, never nothing */
			return fail(b, -EPROTO, "NBD block status at %llu: no extents",
				    (unsigned long long)at);
		err = hand_on(b, h);
		if (err)
			return err;
		at = b->status_end;
	}
	return 0;
}

static int read_export(struct bitmap_poll *b, const char *bitmap)
{
	char context[96];
	struct nbd_handle *h = nbd_create();
	int err;

	if (!h)
		return fail(b, -ENOMEM, "libnbd: %s", nbd_get_error());
	snprintf(context, sizeof(context), "qemu:dirty-bitmap:%s", bitmap);
	if (nbd_set_export_name(h, b->export_id) || nbd_add_meta_context(h, context) ||
	    nbd_connect_unix(h, b->socket)) {
		err = fail(b, -EIO, "cannot read QEMU's export of bitmap %s: %s", bitmap,
			   nbd_get_error());
		goto out;
	}
	if (nbd_can_meta_context(h, context) != 1) {
		err = fail(b, -EOPNOTSUPP, "QEMU's NBD server does not offer %s", context);
		goto out;
	}
	err = read_dirty(b, h);
	nbd_shutdown(h, 0);
out:
	nbd_close(h);
	return err;
}

/* The export of a bitmap holds it busy until QEMU has taken the export down. */
static int remove_bitmap(struct bitmap_poll *b, const char *name)
{
	long long deadline = monotonic_ms() + REMOVE_WAIT_MS;
	char why[200];

	for (;;) {
		int err = qmp_call(b->qmp, "block-dirty-bitmap-remove",
				   json_pack("{s:s,s:s}", "node", b->node, "name", name), NULL, why,
				   sizeof(why));

		if (!err)
			return 0;
		if ((!strstr(why, "in use") && !strstr(why, "busy")) || monotonic_ms() >= deadline)
			return fail(b, err, "block-dirty-bitmap-remove %s: %s", name, why);
		usleep(2000);
	}
}

/* One disabled bitmap: exported, read, handed on, unexported. */
static int read_bitmap(struct bitmap_poll *b, const char *bitmap)
{
	int err = qmp_do(b, "block-export-add",
			 json_pack("{s:s,s:s,s:s,s:s,s:b,s:[s]}", "type", "nbd", "id", b->export_id,
				   "node-name", b->node, "name", b->export_id, "writable", 0,
				   "bitmaps", bitmap));

	if (err)
		return err;
	err = read_export(b, bitmap);
	/* "hard": our client has gone; no need to wait for the server to notice. */
	if (qmp_do(b, "block-export-del",
		   json_pack("{s:s,s:s}", "id", b->export_id, "mode", "hard")) &&
	    !err)
		err = b->err;
	return err;
}

/*
 * The next bitmap on, then every disabled one not yet done, oldest first. A
 * step that fails leaves its bitmap for the next poll (a bitmap read but not
 * removed is not read again); FAILURES_MAX polls in a row that fail end
 * the capture.
 */
/*
 * qdev == NULL: the device whose medium's top node is node, into out.
 * Else: that device's top node now, into out ("" without a medium).
 */
static int block_top(struct bitmap_poll *b, const char *qdev, const char *node, char *out,
		     size_t out_len)
{
	json_t *list = NULL, *dev;
	char why[200];
	size_t i;
	int err = qmp_call(b->qmp, "query-block", NULL, &list, why, sizeof(why));

	if (err)
		return fail(b, err, "query-block: %s", why);
	out[0] = '\0';
	json_array_foreach(list, i, dev) {
		const char *id = json_string_value(json_object_get(dev, "qdev"));
		const char *top = json_string_value(
			json_object_get(json_object_get(dev, "inserted"), "node-name"));

		if (id && (qdev ? !strcmp(id, qdev) : top && !strcmp(top, node))) {
			snprintf(out, out_len, "%s", qdev ? top ?: "" : id);
			break;
		}
	}
	json_decref(list);
	return 0;
}

/*
 * A bitmap sees the writes that pass through its node. A snapshot, a
 * commit or a mirror's completion (libvirt's, say) puts another node on
 * the device: the guest's writes bypass ours from then on, and the capture
 * would go silent. That ends it, saying so.
 */
static int check_graph(struct bitmap_poll *b)
{
	char top[128];
	int err;

	/* query-block holds QEMU's main loop: once a second, not at every poll */
	if (!b->device[0] || monotonic_ms() - b->graph_checked_ms < GRAPH_CHECK_MS)
		return 0;
	b->graph_checked_ms = monotonic_ms();
	err = block_top(b, b->device, NULL, top, sizeof(top));
	if (err || !strcmp(top, b->node))
		return err;
	b->failed = 1;
	return fail(b, -ESTALE,
		    "the guest's disk %s now writes through node %s, not %s (a snapshot or block "
		    "job changed the block graph): the dirty bitmap sees no more of its writes",
		    b->device, top[0] ? top : "(none: no medium)", b->node);
}

static int poll_once(struct bitmap_poll *b)
{
	long long start = monotonic_us();
	int err = 0;

	if (b->nr_unread < UNREAD_MAX) {
		err = rotate(b, b->unread[b->nr_unread], sizeof(b->unread[0]));
		b->nr_unread += !err;
	}
	while (!err && b->nr_unread) {
		if (!b->first_read)
			err = read_bitmap(b, b->unread[0]);
		b->first_read = !err;
		err = err ? err : remove_bitmap(b, b->unread[0]);
		if (err)
			break;
		memmove(b->unread[0], b->unread[1], (b->nr_unread - 1) * sizeof(b->unread[0]));
		b->nr_unread--;
		b->first_read = 0;
	}
	if (!err)
		err = check_graph(b); /* after the read: writes before the change still count */
	b->polls++;
	if ((uint64_t)(monotonic_us() - start) > b->poll_us_max)
		b->poll_us_max = (uint64_t)(monotonic_us() - start);
	if (!err) {
		b->failures = 0;
		return 0;
	}
	b->poll_failures++;
	if (++b->failures >= FAILURES_MAX)
		b->failed = 1;
	return err;
}

static void *poll_thread(void *arg)
{
	struct bitmap_poll *b = arg;

	pthread_mutex_lock(&b->wake_lock);
	while (!b->stopping) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += b->interval_ms / 1000;
		until.tv_nsec += (long)(b->interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&b->wake, &b->wake_lock, &until);
		if (b->stopping)
			break;
		pthread_mutex_unlock(&b->wake_lock);
		poll_once(b);
		if (b->failed)
			return NULL; /* the error waits for bitmap_stop(); its bitmaps stay */
		pthread_mutex_lock(&b->wake_lock);
	}
	pthread_mutex_unlock(&b->wake_lock);
	return NULL;
}

/*
 * A vmscope killed mid-capture leaves its bitmap on the node (QEMU keeps
 * marking it, a bit per block, until the VM ends): the next capture removes
 * those whose process is gone, and leaves a live one's alone.
 */
static void remove_stale(struct bitmap_poll *b)
{
	json_t *nodes = NULL, *node, *bm;
	char why[200];
	size_t i, k;

	if (qmp_call(b->qmp, "query-named-block-nodes", NULL, &nodes, why, sizeof(why)))
		return;
	json_array_foreach(nodes, i, node) {
		const char *name = json_string_value(json_object_get(node, "node-name"));

		if (!name || strcmp(name, b->node))
			continue;
		json_array_foreach(json_object_get(node, "dirty-bitmaps"), k, bm) {
			const char *bname = json_string_value(json_object_get(bm, "name"));
			int pid = 0, n = 0;
			unsigned int gen;

			if (bname && sscanf(bname, "vmscope-dirty-%d-%u%n", &pid, &gen, &n) == 2 &&
			    !bname[n] && pid_is_gone(pid))
				qmp_call(b->qmp, "block-dirty-bitmap-remove",
					 json_pack("{s:s,s:s}", "node", b->node, "name", bname),
					 NULL, why, sizeof(why));
		}
	}
	json_decref(nodes);
}

int bitmap_start(struct qmp *qmp, const char *node, uint64_t size, const struct bitmap_config *cfg,
		 struct bitmap_poll **ret, char *why, size_t why_len)
{
	struct bitmap_poll *b = calloc(1, sizeof(*b));
	int err;

	if (!b || !(b->buf = malloc(READ_CHUNK))) {
		free(b);
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	b->qmp = qmp;
	b->size = size;
	b->granularity = cfg->granularity;
	b->interval_ms = cfg->interval_ms ? cfg->interval_ms : BITMAP_INTERVAL_MS;
	b->fn = cfg->fn;
	b->want = cfg->want;
	b->ctx = cfg->ctx;
	pthread_mutex_init(&b->wake_lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	snprintf(b->node, sizeof(b->node), "%s", node);
	snprintf(b->socket, sizeof(b->socket), "%s", cfg->socket);
	snprintf(b->export_id, sizeof(b->export_id), "vmscope-bitmap-%d", (int)getpid());
	bitmap_name(0, b->current, sizeof(b->current));
	remove_stale(b);
	block_top(b, NULL, node, b->device, sizeof(b->device)); /* none found: nothing to watch */
	b->err = 0;
	err = qmp_do(b, "block-dirty-bitmap-add", bitmap_add_args(b, b->current));
	if (!err) {
		b->current_added = 1;
		err = -pthread_create(&b->thread, NULL, poll_thread, b);
		if (err)
			fail(b, err, "cannot start the bitmap's poll thread");
		b->thread_started = !err;
	}
	if (err) {
		snprintf(why, why_len, "%s", b->why);
		b->failed = 1;
		bitmap_stop(b, NULL, NULL, 0);
		return err;
	}
	*ret = b;
	return 0;
}

void bitmap_get_stats(const struct bitmap_poll *b, struct vms_capture_stats *ret)
{
	ret->polls = b->polls;
	ret->dirty_bytes = b->dirty_bytes;
	ret->read_bytes = b->read_bytes;
	ret->poll_us_max = b->poll_us_max;
	ret->poll_failures = b->poll_failures;
	ret->failed = b->failed;
}

/*
 * The thread ends; one last poll hands on what the guest wrote since the
 * one before; the bitmap goes. The first error of the capture's life is
 * the one returned.
 */
int bitmap_stop(struct bitmap_poll *b, struct vms_capture_stats *ret, char *why, size_t why_len)
{
	int err;

	if (!b)
		return 0;
	if (b->thread_started) {
		pthread_mutex_lock(&b->wake_lock);
		b->stopping = 1;
		pthread_cond_signal(&b->wake);
		pthread_mutex_unlock(&b->wake_lock);
		pthread_join(b->thread, NULL);
		while (!b->failed && poll_once(b))
			usleep(10000); /* what the guest wrote since the last poll, and anything
					  left */
	}
	if (b->current_added && remove_bitmap(b, b->current))
		b->failed = 1;
	for (size_t i = 0; i < b->nr_unread; i++)
		remove_bitmap(b, b->unread[i]); /* the capture has failed: its bitmaps go */
	if (ret)
		bitmap_get_stats(b, ret);
	err = b->failed ? b->err : 0;
	if (err && why)
		snprintf(why, why_len, "%s", b->why);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->wake_lock);
	free(b->dirty);
	free(b->buf);
	free(b);
	return err;
}
