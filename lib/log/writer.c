// SPDX-License-Identifier: MIT
/*
 * The log writer: a thread that takes events from its ring, encodes them
 * into the current frame, compresses and appends the frame when it is large
 * or a sync is due, and syncs on the policy. A frame reaches the file in one
 * pwrite(), so a crash leaves whole frames and at most one torn one at the
 * end, which the next open cuts off.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include <vmscope/ring.h>

#include "log/format.h"

#define FRAME_RAW_TARGET (256u << 10) /* big enough for zstd to find the repeats */
#define IDLE_WAIT_MS	 100

struct vms_log {
	char *dir;
	struct vms_log_opts opts;
	int lock_fd, fd;
	uint64_t seq, seg_size;
	struct seg_index idx; /* of the open segment */

	struct vms_ring *ring;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake, done; /* the writer waits on wake; appenders on done */
	atomic_int stop, sync_now, writer_idle, appender_waiting;
	_Atomic uint64_t appended, durable, waits;
	atomic_int error;

	/* The frame being filled (writer thread only). */
	uint8_t *raw;
	size_t raw_len, raw_cap;
	struct frame_hdr frame;
	uint8_t *out;
	size_t out_cap;
	ZSTD_CCtx *zc;
	uint64_t written, unsynced_since_ms;

	struct vms_log_stats stats; /* the writer's counters; under lock when read */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

static int segment_create(struct vms_log *log)
{
	char path[4200];
	int err;

	log_seg_path(path, sizeof(path), log->dir, log->seq, "vlog");
	log->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (log->fd < 0)
		return -errno;
	err = log_seg_hdr_write(log->fd, log->seq, real_ns());
	if (!err)
		err = sync_dir(log->dir);
	log->seg_size = SEG_HDR_BYTES;
	log_index_reset(&log->idx);
	return err;
}

static int segment_seal(struct vms_log *log)
{
	char path[4200];
	int err = 0;

	if (log->fd < 0)
		return 0;
	if (fdatasync(log->fd))
		err = -errno;
	close(log->fd);
	log->fd = -1;
	log->idx.seg_size = log->seg_size;
	log_seg_path(path, sizeof(path), log->dir, log->seq, "vidx");
	if (!err)
		err = log_index_write(path, &log->idx);
	if (!err)
		err = sync_dir(log->dir);
	log_index_reset(&log->idx);
	return err;
}

static void fail(struct vms_log *log, int err)
{
	int none = 0;

	atomic_compare_exchange_strong(&log->error, &none, err);
	pthread_mutex_lock(&log->lock);
	pthread_cond_broadcast(&log->done);
	pthread_mutex_unlock(&log->lock);
}

static int frame_emit(struct vms_log *log)
{
	size_t bound = ZSTD_compressBound(log->raw_len) + FRAME_HDR_BYTES, n;
	struct frame_hdr *h = &log->frame;
	ssize_t w;

	if (!h->count)
		return 0;
	if (bound > log->out_cap) {
		free(log->out);
		log->out = malloc(bound);
		log->out_cap = log->out ? bound : 0;
		if (!log->out)
			return -ENOMEM;
	}
	n = ZSTD_compressCCtx(log->zc, log->out + FRAME_HDR_BYTES, bound - FRAME_HDR_BYTES,
			      log->raw, log->raw_len, log->opts.level);
	if (ZSTD_isError(n))
		return -EIO;
	h->stored_len = (uint32_t)n;
	h->raw_len = (uint32_t)log->raw_len;
	h->payload_hash = log_hash(log->out + FRAME_HDR_BYTES, n);
	log_frame_hdr_encode(h, log->out);
	w = pwrite(log->fd, log->out, FRAME_HDR_BYTES + n, (off_t)log->seg_size);
	if (w != (ssize_t)(FRAME_HDR_BYTES + n))
		return w < 0 ? -errno : -EIO;
	if (log_index_add_frame(&log->idx, log->seg_size, h))
		return -ENOMEM;
	log->seg_size += FRAME_HDR_BYTES + n;
	pthread_mutex_lock(&log->lock);
	log->stats.frames++;
	log->stats.raw_bytes += log->raw_len;
	log->stats.stored_bytes += FRAME_HDR_BYTES + n;
	pthread_mutex_unlock(&log->lock);
	memset(h, 0, sizeof(*h));
	log->raw_len = 0;
	return 0;
}

static int roll_if_full(struct vms_log *log)
{
	uint64_t removed = 0;
	int err;

	if (log->seg_size < log->opts.segment_bytes)
		return 0;
	err = segment_seal(log);
	if (err)
		return err;
	log->seq++;
	err = segment_create(log);
	if (err)
		return err;
	log_retention(log->dir, log->seq, log->opts.max_bytes, log->opts.max_age_s, &removed);
	pthread_mutex_lock(&log->lock);
	log->stats.segments_removed += removed;
	pthread_mutex_unlock(&log->lock);
	return 0;
}

static int do_sync(struct vms_log *log)
{
	int err = frame_emit(log);

	if (!err && log->fd >= 0 && fdatasync(log->fd))
		err = -errno;
	if (!err)
		err = roll_if_full(log);
	if (err)
		return err;
	atomic_store(&log->durable, log->written);
	atomic_store(&log->sync_now, 0);
	log->unsynced_since_ms = 0;
	if (log->opts.on_sync)
		log->opts.on_sync(log->opts.ctx, log->written);
	pthread_mutex_lock(&log->lock);
	log->stats.durable = log->written;
	pthread_cond_broadcast(&log->done);
	pthread_mutex_unlock(&log->lock);
	return 0;
}

static int take_event(struct vms_log *log, const struct vms_event *ev)
{
	size_t n = log_record_size(ev);
	struct frame_hdr *h = &log->frame;
	int err;

	if (log->raw_len + n > FRAME_RAW_TARGET && (err = frame_emit(log)))
		return err;
	if (log->raw_len + n > log->raw_cap) {
		size_t cap = FRAME_RAW_TARGET + n;
		uint8_t *more = realloc(log->raw, cap);

		if (!more)
			return -ENOMEM;
		log->raw = more;
		log->raw_cap = cap;
	}
	log_record_encode(ev, log->raw + log->raw_len);
	log->raw_len += n;
	if (!h->count || ev->time_ns < h->min_ns)
		h->min_ns = ev->time_ns;
	if (!h->count || ev->time_ns > h->max_ns)
		h->max_ns = ev->time_ns;
	h->count++;
	h->type_mask |= log_name_bit(ev->type);
	h->vm_mask |= log_name_bit(ev->vm);
	err = log_index_count(&log->idx, NAME_TYPE, ev->type, 1);
	if (!err)
		err = log_index_count(&log->idx, NAME_VM, ev->vm, 1);
	log->written++;
	if (!log->unsynced_since_ms)
		log->unsynced_since_ms = mono_ms();
	return err;
}

static int sync_due(struct vms_log *log)
{
	uint64_t unsynced = log->written - atomic_load(&log->durable);

	if (!unsynced)
		return 0;
	return atomic_load(&log->sync_now) ||
	       (log->opts.sync_events && unsynced >= log->opts.sync_events) ||
	       mono_ms() - log->unsynced_since_ms >= log->opts.sync_ms;
}

static void idle_wait(struct vms_log *log)
{
	uint64_t wait_ms = IDLE_WAIT_MS;
	struct timespec ts;

	if (log->unsynced_since_ms) {
		uint64_t age = mono_ms() - log->unsynced_since_ms;

		wait_ms = age >= log->opts.sync_ms ? 0 : log->opts.sync_ms - age;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	ts.tv_sec += (time_t)(wait_ms / 1000) + ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_mutex_lock(&log->lock);
	atomic_store(&log->writer_idle, 1);
	if (!vms_ring_peek(log->ring) && !atomic_load(&log->stop) && !atomic_load(&log->sync_now))
		pthread_cond_timedwait(&log->wake, &log->lock, &ts);
	atomic_store(&log->writer_idle, 0);
	pthread_mutex_unlock(&log->lock);
}

static void *writer_main(void *arg)
{
	struct vms_log *log = arg;
	const struct vms_event *ev;
	int err = 0;

	while (!err) {
		while (!err && (ev = vms_ring_peek(log->ring))) {
			err = take_event(log, ev);
			vms_ring_release(log->ring);
			if (atomic_load(&log->appender_waiting)) {
				pthread_mutex_lock(&log->lock);
				pthread_cond_broadcast(&log->done);
				pthread_mutex_unlock(&log->lock);
			}
			if (!err && sync_due(log))
				err = do_sync(log);
		}
		if (!err && sync_due(log))
			err = do_sync(log);
		if (err || atomic_load(&log->stop))
			break;
		idle_wait(log);
	}
	if (!err)
		err = do_sync(log);
	if (!err)
		err = segment_seal(log);
	if (err)
		fail(log, err);
	return NULL;
}

static void log_free(struct vms_log *log)
{
	if (log->fd >= 0)
		close(log->fd);
	if (log->lock_fd >= 0)
		close(log->lock_fd);
	log_index_reset(&log->idx);
	vms_ring_free(log->ring);
	ZSTD_freeCCtx(log->zc);
	free(log->raw);
	free(log->out);
	free(log->dir);
	pthread_mutex_destroy(&log->lock);
	pthread_cond_destroy(&log->wake);
	pthread_cond_destroy(&log->done);
	free(log);
}

static int take_lock(struct vms_log *log)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/LOCK", log->dir);
	log->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (log->lock_fd < 0)
		return -errno;
	if (flock(log->lock_fd, LOCK_EX | LOCK_NB))
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

static void opts_defaults(struct vms_log_opts *o, const struct vms_log_opts *in)
{
	memset(o, 0, sizeof(*o));
	if (in)
		memcpy(o, in, in->sz && in->sz < sizeof(*o) ? in->sz : sizeof(*o));
	o->sync_ms = o->sync_ms ? o->sync_ms : 1000;
	o->segment_bytes = o->segment_bytes ? o->segment_bytes : 64ull << 20;
	o->level = o->level ? o->level : 3;
	o->ring_slots = o->ring_slots ? o->ring_slots : 4096;
}

int vms_log_open(const char *dir, const struct vms_log_opts *opts, struct vms_log **ret_log)
{
	struct vms_log *log = calloc(1, sizeof(*log));
	int err;

	if (!log)
		return log_error(-ENOMEM, "out of memory");
	log->fd = log->lock_fd = -1;
	pthread_mutex_init(&log->lock, NULL);
	pthread_cond_init(&log->wake, NULL);
	pthread_cond_init(&log->done, NULL);
	opts_defaults(&log->opts, opts);
	log->dir = strdup(dir);
	if (!log->dir || !(log->zc = ZSTD_createCCtx())) {
		err = log_error(-ENOMEM, "out of memory");
		goto fail;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		err = log_error(-errno, "log %s: cannot create it: %s", dir, strerror(errno));
		goto fail;
	}
	err = take_lock(log);
	if (err) {
		err = log_error(err, err == -EBUSY ? "log %s: another writer has it open"
						       : "log %s: cannot lock it: %s",
				    dir, strerror(-err));
		goto fail;
	}
	err = log_recover(dir, &log->seq, &log->stats.torn_frames, &log->stats.torn_bytes);
	if (!err)
		err = vms_ring_new(log->opts.ring_slots, &log->ring);
	if (!err)
		err = segment_create(log);
	if (err) {
		err = log_error(err, "log %s: %s", dir, strerror(-err));
		goto fail;
	}
	err = -pthread_create(&log->thread, NULL, writer_main, log);
	if (err) {
		err = log_error(err, "log %s: cannot start its writer", dir);
		goto fail;
	}
	*ret_log = log;
	return 0;
fail:
	log_free(log);
	return err;
}

static void wake_writer(struct vms_log *log)
{
	if (!atomic_load(&log->writer_idle))
		return;
	pthread_mutex_lock(&log->lock);
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->lock);
}

/* Wait (on done) until cond holds or the writer has failed. */
static int wait_writer(struct vms_log *log, int (*cond)(struct vms_log *, uint64_t),
		       uint64_t arg)
{
	pthread_mutex_lock(&log->lock);
	while (!atomic_load(&log->error) && !cond(log, arg)) {
		struct timespec ts;

		pthread_cond_signal(&log->wake);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&log->done, &log->lock, &ts);
	}
	pthread_mutex_unlock(&log->lock);
	return atomic_load(&log->error);
}

static int has_room(struct vms_log *log, uint64_t unused)
{
	struct vms_ring_stats rs;

	(void)unused;
	vms_ring_get_stats(log->ring, &rs);
	return rs.used < rs.capacity;
}

static int is_durable(struct vms_log *log, uint64_t n)
{
	return atomic_load(&log->durable) >= n;
}

int vms_log_append(struct vms_log *log, const struct vms_event *ev)
{
	int err = atomic_load(&log->error);

	if (err)
		return err;
	if (!has_room(log, 0)) {
		atomic_fetch_add(&log->waits, 1);
		atomic_store(&log->appender_waiting, 1);
		err = wait_writer(log, has_room, 0);
		atomic_store(&log->appender_waiting, 0);
		if (err)
			return err;
	}
	if (vms_ring_push(log->ring, ev))
		return -ENOBUFS; /* cannot happen: one producer, and there was room */
	atomic_fetch_add(&log->appended, 1);
	wake_writer(log);
	return 0;
}

int vms_log_sync(struct vms_log *log)
{
	atomic_store(&log->sync_now, 1);
	return wait_writer(log, is_durable, atomic_load(&log->appended));
}

void vms_log_get_stats(struct vms_log *log, struct vms_log_stats *ret_stats)
{
	pthread_mutex_lock(&log->lock);
	*ret_stats = log->stats;
	pthread_mutex_unlock(&log->lock);
	ret_stats->appended = atomic_load(&log->appended);
	ret_stats->durable = atomic_load(&log->durable);
	ret_stats->waits = atomic_load(&log->waits);
	ret_stats->error = atomic_load(&log->error);
}

int vms_log_close(struct vms_log *log)
{
	int err;

	if (!log)
		return 0;
	atomic_store(&log->stop, 1);
	pthread_mutex_lock(&log->lock);
	pthread_cond_signal(&log->wake);
	pthread_mutex_unlock(&log->lock);
	pthread_join(log->thread, NULL);
	err = atomic_load(&log->error);
	log_free(log);
	return err;
}
