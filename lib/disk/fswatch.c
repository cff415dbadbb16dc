// SPDX-License-Identifier: MIT
/*
 * File-update streaming: the ext4 engine fed by a live capture. Three
 * threads meet here. The NBD thread answers the guest at once and only
 * spools each request (with its bytes when the engine needs them: journal
 * blocks, or everything on a filesystem without a journal); the inference
 * thread applies the spool to the engine and turns its findings into
 * events on the caller's ring; the caller drains that ring into a sink.
 *
 * Bootstrap order matters: the capture starts before the filesystem is
 * read, so whatever the guest writes while vmscope reads is spooled and
 * applied afterwards rather than lost.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vmscope/disk.h>
#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "disk/capture.h"
#include "disk/ext4/engine.h"
#include "disk/layout/layout.h"
#include "disk/spool.h"

#define SPOOL_BYTES	 (64u << 20)
#define SPOOL_MIN	 (1u << 20)
#define SPOOL_MAX	 (1u << 30)
#define HASH_MAX_DEFAULT (1u << 20)
#define LATENCY_SAMPLES	 65536u
#define PATH_MAX_BYTES	 8192

#define MAX_WATCHED 16
/*
 * How long a captured write waits for room in the spool (inference behind
 * the guest) before it is counted as dropped: in blocking mode the guest's
 * write waits with it, so not long; in the other modes the guest never
 * waits, the capture's backlog (the mirror's, the bitmap's) grows instead,
 * and nothing is dropped.
 */
#define SPOOL_WAIT_BLOCKING_MS 200

/*
 * One filesystem on the disk: its len bytes, where they lie on the disk (a
 * partition is one segment; an LVM volume one per run of extents), its engine.
 */
struct watched {
	struct vms_fswatch *fw;
	struct ext4_engine *engine;
	uint64_t len;
	size_t nr_seg;
	struct vms_disk_segment seg[16];
	unsigned int partition; /* 0: a disk with no partition table */
	char volume[260];	/* "VG/LV" for an LVM volume, else "" */
	char name[340];		/* "disk0", "disk0 partition 5", "disk0 volume vg/lv" */
	char uuid[40];		/* the filesystem's, from its superblock */
	char mount[PATH_MAX_BYTES]; /* where the guest mounts it, prefixed to paths; "" none */
	int mount_found;	    /* 1: from the guest's own mount table */
	struct ext4_engine_stats stats;
};

struct vms_fswatch {
	struct vms_vm *vm;
	struct vms_ring *ring;
	struct vms_disk_reader *reader;
	struct watched fs[MAX_WATCHED];
	size_t nr_fs;
	struct vms_capture *capture;
	struct spool spool;
	pthread_t thread;
	int thread_started, err;
	_Atomic int stopping, abandon;
	_Atomic uint64_t queued, applied;
	char vm_name[VMS_NAME_MAX], node[64];
	char **paths;
	int mount_given;
	enum vms_capture_mode mode;
	size_t nr_paths;
	int hash;
	uint64_t hash_max;
	uint8_t *hash_buf;
	struct { /* the last digest: one commit's many writes to a file hash it once */
		const struct watched *w;
		uint32_t ino;
		uint64_t size;
		int64_t mtime, ctime;
		uint64_t applied;
		char hex[2 * 32 + 1];
	} last_hash;
	_Atomic uint64_t writes, write_bytes;
	uint64_t polls;	      /* the bitmap's, kept from the capture's stats past its detach */
	pthread_t detacher;
	int detach_started, detach_err, capture_failed;
	_Atomic int detached;
	pthread_mutex_t lock; /* the figures below, read by vms_fswatch_get_stats() */
	uint64_t events, filtered, dropped;
	uint32_t latency_us[LATENCY_SAMPLES];
	uint64_t nr_latency;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The request's next part inside the watched filesystem, from segment *k
 * on, in the filesystem's own offsets: 0 when there is none left (the rest
 * is another partition's or volume's, or the table's).
 */
static int clip(const struct watched *w, size_t *k, uint64_t offset, uint64_t length,
		uint64_t *ret_offset, uint64_t *ret_length, uint64_t *ret_skip)
{
	uint64_t end = offset + length;

	if (end < offset)
		return 0;
	while (*k < w->nr_seg) {
		const struct vms_disk_segment *g = &w->seg[(*k)++];
		uint64_t g_end = g->disk_offset + g->len;
		uint64_t from = offset > g->disk_offset ? offset : g->disk_offset;
		uint64_t to = end < g_end ? end : g_end;

		if (from >= to)
			continue;
		*ret_offset = g->lv_offset + (from - g->disk_offset);
		*ret_length = to - from;
		*ret_skip = from - offset;
		return 1;
	}
	return 0;
}

/*
 * One filesystem's part of a request, into the spool in pieces of at most a
 * quarter of it (block-aligned: the engine takes any run of whole blocks),
 * so that a small spool never meets a record it cannot hold. In blocking
 * mode the guest's write waits at most SPOOL_WAIT_BLOCKING_MS for all of
 * its pieces; once one is dropped, so are the rest (counted as one).
 */
static void spool_pieces(struct vms_fswatch *fw, const struct spool_record *whole,
			 const uint8_t *payload)
{
	uint64_t piece = payload ? fw->spool.size / 4 : whole->length, done = 0;
	int blocking = fw->mode == VMS_CAPTURE_BLOCKING;
	long long deadline = blocking ? monotonic_ms() + SPOOL_WAIT_BLOCKING_MS : 0;

	do {
		struct spool_record r = *whole;
		long long wait = -1, now;

		if (blocking) {
			now = monotonic_ms();
			wait = deadline > now ? deadline - now : 0;
		}
		r.offset += done;
		r.length = whole->length - done < piece ? whole->length - done : piece;
		r.payload_len = payload ? (uint32_t)r.length : 0;
		if (spool_push_wait(&fw->spool, &r, payload ? payload + done : NULL, wait,
				    &fw->abandon))
			return;
		fw->queued++;
		done += r.length;
	} while (done < whole->length);
}

/*
 * The capture's thread (in blocking mode the guest's write waits until this
 * returns): each filesystem gets its part.
 */
static void on_request(void *ctx, const struct nbd_request *req, const void *payload)
{
	struct vms_fswatch *fw = ctx;
	uint64_t seen = now_ns();
	int counted = 0;

	if (req->type != NBD_CMD_WRITE && req->type != NBD_CMD_WRITE_ZEROES)
		return; /* flushes carry no change; trims free blocks a commit already freed */
	for (size_t i = 0; i < fw->nr_fs; i++) {
		struct spool_record r = { 0, 0, seen, 0, req->type, 0, (uint16_t)i };
		uint64_t skip;
		size_t k = 0;

		while (clip(&fw->fs[i], &k, req->offset, req->length, &r.offset, &r.length, &skip)) {
			if (req->type == NBD_CMD_WRITE) {
				fw->writes += !counted;
				fw->write_bytes += r.length;
			}
			counted = 1;
			spool_pieces(fw, &r, payload ? (const uint8_t *)payload + skip : NULL);
		}
	}
}

static int want_payload(void *ctx, const struct nbd_request *req)
{
	struct vms_fswatch *fw = ctx;

	for (size_t i = 0; i < fw->nr_fs; i++) {
		uint64_t offset, length, skip;
		size_t k = 0;

		while (clip(&fw->fs[i], &k, req->offset, req->length, &offset, &length, &skip))
			if (ext4_engine_wants_payload(fw->fs[i].engine, offset, length))
				return 1;
	}
	return 0;
}

static int read_reader(void *ctx, uint64_t offset, void *buf, size_t len)
{
	return vms_disk_read(ctx, offset, buf, len);
}

static int read_disk(void *ctx, uint64_t offset, void *buf, size_t len)
{
	struct watched *w = ctx;

	if (offset > w->len || len > w->len - offset)
		return -EIO; /* past the filesystem's partition or volume */
	return layout_read_mapped(read_reader, w->fw->reader, w->seg, w->nr_seg, offset, buf, len);
}

static const char *file_type(uint16_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "regular";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "character";
	case S_IFBLK: return "block";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return "unknown";
	}
}

static void full_path(const struct watched *w, const char *path, char *out)
{
	if (w->mount[0] && !strcmp(path, "/"))
		snprintf(out, PATH_MAX_BYTES, "%s", w->mount);
	else
		snprintf(out, PATH_MAX_BYTES, "%s%s", w->mount, path);
}

static int watched(const struct vms_fswatch *fw, const char *path, const char *old_path)
{
	if (!fw->nr_paths)
		return 1;
	for (size_t i = 0; i < fw->nr_paths; i++)
		if (!fnmatch(fw->paths[i], path, 0) || (old_path && !fnmatch(fw->paths[i], old_path, 0)))
			return 1;
	return 0;
}

static void add_hash(struct watched *w, struct vms_event *ev, const struct ext4_fs_event *fe)
{
	struct vms_fswatch *fw = w->fw;
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int md_len = 0;
	size_t len = 0;

	if (!S_ISREG(fe->info->mode) || fe->info->size > fw->hash_max ||
	    (fe->action != EXT4_CREATE && fe->action != EXT4_WRITE && fe->action != EXT4_TRUNCATE))
		return;
	/* Same inode, same size and times, same captured write being applied: same bytes. */
	if (fw->last_hash.w == w && fw->last_hash.ino == fe->ino &&
	    fw->last_hash.size == fe->info->size &&
	    fw->last_hash.mtime == fe->info->mtime && fw->last_hash.ctime == fe->info->ctime &&
	    fw->last_hash.applied == fw->applied) {
		vms_event_add_str(ev, "sha256", fw->last_hash.hex);
		return;
	}
	if (ext4_engine_read_file(w->engine, fe->ino, fw->hash_buf, fw->hash_max, &len) ||
	    !EVP_Digest(fw->hash_buf, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
		return;
	for (unsigned int i = 0; i < md_len; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	vms_event_add_str(ev, "sha256", hex);
	fw->last_hash.w = w;
	fw->last_hash.ino = fe->ino;
	fw->last_hash.size = fe->info->size;
	fw->last_hash.mtime = fe->info->mtime;
	fw->last_hash.ctime = fe->info->ctime;
	fw->last_hash.applied = fw->applied;
	memcpy(fw->last_hash.hex, hex, sizeof(fw->last_hash.hex));
}

static void record_latency(struct vms_fswatch *fw, uint64_t seen_ns)
{
	uint64_t now = now_ns(), us = now > seen_ns ? (now - seen_ns) / 1000 : 0;

	fw->latency_us[fw->nr_latency++ % LATENCY_SAMPLES] = us > UINT32_MAX ? UINT32_MAX
									   : (uint32_t)us;
}

/* Inference thread: one engine finding, as an event. */
static void on_event(void *ctx, const struct ext4_fs_event *fe)
{
	struct watched *w = ctx;
	struct vms_fswatch *fw = w->fw;
	char path[PATH_MAX_BYTES], old_path[PATH_MAX_BYTES], mode[16];
	const struct ext4_inode_info *i = fe->info;
	struct vms_event *ev;

	full_path(w, fe->path, path);
	if (fe->old_path)
		full_path(w, fe->old_path, old_path);
	pthread_mutex_lock(&fw->lock);
	if (!watched(fw, path, fe->old_path ? old_path : NULL)) {
		fw->filtered++;
		goto out;
	}
	/* Wait for the consumer rather than lose a file event; the spool buffers the guest. */
	while (!(ev = vms_ring_reserve(fw->ring)) && !fw->abandon) {
		pthread_mutex_unlock(&fw->lock);
		usleep(1000);
		pthread_mutex_lock(&fw->lock);
	}
	if (!ev) {
		fw->dropped++;
		goto out;
	}
	vms_event_init(ev, fw->vm_name, VMS_SOURCE_DISK, ext4_action_name(fe->action));
	vms_event_add_str(ev, "action", ext4_action_name(fe->action));
	vms_event_add_str(ev, "path", path);
	if (fe->old_path)
		vms_event_add_str(ev, "old_path", old_path);
	if (fe->target)
		vms_event_add_str(ev, "target", fe->target);
	vms_event_add_uint(ev, "inode", fe->ino);
	snprintf(mode, sizeof(mode), "%04o", i->mode & 07777);
	vms_event_add_str(ev, "mode", mode);
	vms_event_add_str(ev, "file_type", file_type(i->mode));
	vms_event_add_uint(ev, "uid", i->uid);
	vms_event_add_uint(ev, "gid", i->gid);
	vms_event_add_uint(ev, "size", i->size);
	vms_event_add_int(ev, "mtime", i->mtime);
	vms_event_add_int(ev, "ctime", i->ctime);
	if (fe->action == EXT4_WRITE) {
		vms_event_add_uint(ev, "offset", fe->offset);
		vms_event_add_uint(ev, "length", fe->length);
	}
	vms_event_add_str(ev, "disk", fw->node);
	if (w->partition)
		vms_event_add_uint(ev, "partition", w->partition);
	if (w->volume[0])
		vms_event_add_str(ev, "volume", w->volume);
	if (fw->hash)
		add_hash(w, ev, fe);
	vms_ring_commit(fw->ring);
	fw->events++;
	record_latency(fw, fe->seen_ns);
out:
	pthread_mutex_unlock(&fw->lock);
}

static void *infer_thread(void *arg)
{
	struct vms_fswatch *fw = arg;

	for (;;) {
		const struct spool_record *r = spool_peek(&fw->spool);
		int err;

		if (!r) {
			if (fw->stopping)
				break;
			spool_wait(&fw->spool, 50);
			continue;
		}
		struct watched *w = &fw->fs[r->fs]; /* on_request's index */

		err = ext4_engine_write(w->engine, r->offset, r->length,
					r->payload_len ? r->payload : NULL,
					r->type == NBD_CMD_WRITE_ZEROES, r->seen_ns);
		spool_pop(&fw->spool);
		fw->applied++;
		pthread_mutex_lock(&fw->lock);
		if (err && !fw->err)
			fw->err = err;
		ext4_engine_get_stats(w->engine, &w->stats);
		pthread_mutex_unlock(&fw->lock);
	}
	return NULL;
}

static int copy_options(struct vms_fswatch *fw, const struct vms_fswatch_options *o)
{
	if (!o)
		return 0;
	fw->hash = o->hash;
	fw->hash_max = o->hash_max ? o->hash_max : HASH_MAX_DEFAULT;
	fw->mount_given = o->mount != NULL;
	fw->mode = o->mode;
	if (fw->hash && !(fw->hash_buf = malloc(fw->hash_max)))
		return -ENOMEM;
	fw->paths = calloc(o->nr_paths + 1, sizeof(*fw->paths));
	if (!fw->paths)
		return -ENOMEM;
	for (size_t i = 0; i < o->nr_paths; i++)
		if (!(fw->paths[fw->nr_paths++] = strdup(o->paths[i])))
			return -ENOMEM;
	return 0;
}

static int is_ext(const struct vms_disk_fs *fs)
{
	return !strncmp(fs->type, "ext", 3);
}

static struct watched *watch(struct vms_fswatch *fw, uint64_t base, uint64_t len,
			     unsigned int partition, const char *uuid)
{
	struct watched *w = &fw->fs[fw->nr_fs++];

	memset(w, 0, sizeof(*w));
	w->fw = fw;
	w->len = len;
	w->nr_seg = 1;
	w->partition = partition;
	snprintf(w->uuid, sizeof(w->uuid), "%s", uuid);
	w->seg[0] = (struct vms_disk_segment){ 0, base, len };
	if (partition)
		snprintf(w->name, sizeof(w->name), "%s partition %u", fw->node, partition);
	else
		snprintf(w->name, sizeof(w->name), "%s", fw->node);
	return w;
}

static void watch_volume(struct vms_fswatch *fw, const struct vms_disk_volume *v)
{
	struct watched *w = watch(fw, 0, v->size, v->partition, v->fs.uuid);

	_Static_assert(sizeof(w->seg) == sizeof(v->seg), "a volume's segments fit");
	w->nr_seg = v->nr_segments;
	memcpy(w->seg, v->seg, sizeof(w->seg));
	snprintf(w->volume, sizeof(w->volume), "%s/%s", v->vg, v->lv);
	snprintf(w->name, sizeof(w->name), "%s volume %s", fw->node, w->volume);
}

static int too_many(struct vms_fswatch *fw)
{
	return vm_error(fw->vm, -E2BIG, "disk %s has more than %d ext2/3/4 filesystems: choose "
			"one with --partition N or --volume VG/LV", fw->node, MAX_WATCHED);
}

/*
 * --volume VG/LV: that volume, if vmscope can read it. Named twice (two PVs
 * whose metadata claim it, a cloned disk's or a forged one), it is refused:
 * which one the guest uses cannot be told from here.
 */
static int find_volume(struct vms_fswatch *fw, const struct vms_disk_layout *l, const char *want)
{
	const struct vms_disk_volume *found = NULL;

	for (size_t i = 0; i < l->nr_volumes; i++) {
		const struct vms_disk_volume *v = &l->volumes[i];
		char name[260];

		snprintf(name, sizeof(name), "%s/%s", v->vg, v->lv);
		if (strcmp(name, want))
			continue;
		if (found)
			return vm_error(fw->vm, -EEXIST, "disk %s: volume %s is claimed by the PVs of "
					"partitions %u and %u: not watched", fw->node, want,
					found->partition, v->partition);
		found = v;
	}
	if (!found)
		return vm_error(fw->vm, -ENOENT, "disk %s has no LVM volume %s%s", fw->node, want,
				l->nr_volumes ? "" : " (it has no LVM physical volume vmscope can read)");
	if (found->refused[0])
		return vm_error(fw->vm, -EOPNOTSUPP, "disk %s: volume %s: %s", fw->node, want,
				found->refused);
	watch_volume(fw, found);
	return 0;
}

/* No choice made: every ext2/3/4 partition and readable volume, or the whole disk. */
static int find_every(struct vms_fswatch *fw, const struct vms_disk_layout *l)
{
	if (!l->n && !l->nr_volumes)
		watch(fw, 0, l->size, 0, l->fs.uuid);
	for (size_t i = 0; i < l->n; i++) {
		if (!is_ext(&l->parts[i].fs))
			continue;
		if (fw->nr_fs == MAX_WATCHED)
			return too_many(fw);
		watch(fw, l->parts[i].offset, l->parts[i].size, l->parts[i].number,
		      l->parts[i].fs.uuid);
	}
	for (size_t i = 0; i < l->nr_volumes; i++) {
		if (l->volumes[i].refused[0] || !is_ext(&l->volumes[i].fs))
			continue;
		if (fw->nr_fs == MAX_WATCHED)
			return too_many(fw);
		watch_volume(fw, &l->volumes[i]);
	}
	if (!fw->nr_fs)
		return vm_error(fw->vm, -ENOENT, "disk %s: no ext2/3/4 filesystem in any of its %zu "
				"partitions or %zu LVM volumes", fw->node, l->n, l->nr_volumes);
	return 0;
}

/*
 * Which filesystems to watch: the partition or volume asked for; else every
 * ext2/3/4 partition and LVM volume, or the whole disk when it has neither.
 */
/* --partition N: that partition, whatever it holds (the engine's probe says if it is ext). */
static int find_partition(struct vms_fswatch *fw, const struct vms_disk_layout *l,
			  unsigned int want)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->parts[i].number == want) {
			watch(fw, l->parts[i].offset, l->parts[i].size, want, l->parts[i].fs.uuid);
			return 0;
		}
	return vm_error(fw->vm, -ENOENT, "disk %s has %s partition %u", fw->node,
			l->n ? "no" : "no partition table, so no", want);
}

static int find_filesystems(struct vms_fswatch *fw, unsigned int want, const char *volume)
{
	struct vms_disk_layout *l;
	char why[200];
	int err = vms_disk_layout(fw->reader, &l, why, sizeof(why));

	if (err)
		return vm_error(fw->vm, err, "disk %s: %s", fw->node, why);
	if (volume && want)
		err = vm_error(fw->vm, -EINVAL, "a partition and a volume each choose the one "
			       "filesystem: give one");
	else if (volume)
		err = find_volume(fw, l, volume);
	else if (want)
		err = find_partition(fw, l, want);
	else
		err = find_every(fw, l);
	if (!err && fw->nr_fs > 1 && fw->mount_given)
		err = vm_error(fw->vm, -EINVAL, "disk %s has %zu ext2/3/4 filesystems: --mount maps "
			       "one, so choose it with --partition N or --volume VG/LV (vmscope "
			       "disks lists them)", fw->node, fw->nr_fs);
	free(l);
	return err;
}

/* Does the guest's name for a device fit the filesystem's place ("vda1", "vg-lv")? */
static int device_fits(const struct watched *w, const char *device)
{
	size_t n = strlen(device), d = 0;
	char number[16];

	if (w->volume[0])
		return strstr(device, strchr(w->volume, '/') + 1) != NULL;
	if (!w->partition)
		return n && !isdigit((unsigned char)device[n - 1]);
	while (d < n && isdigit((unsigned char)device[n - 1 - d]))
		d++;
	snprintf(number, sizeof(number), "%u", w->partition);
	return d && !strcmp(device + n - d, number);
}

/*
 * Where the guest mounts each filesystem, from its own mount table: the
 * mount of an ext filesystem with this UUID. Cloned disks share UUIDs:
 * among mounts of different devices, the one whose name fits this
 * partition or volume; still several, none (paths stay relative).
 */
static void find_mounts(struct vms_fswatch *fw)
{
	struct vms_mount *m;
	size_t n;

	if (vms_os_mounts(fw->vm, &m, &n))
		return; /* no kernel found (yet), or no mount table: paths from the root */
	for (size_t i = 0; i < fw->nr_fs; i++) {
		struct watched *w = &fw->fs[i];
		const struct vms_mount *pick = NULL;
		int ambiguous = 0;

		for (size_t k = 0; k < n && w->uuid[0]; k++) {
			if (strcmp(m[k].uuid, w->uuid) || strncmp(m[k].fstype, "ext", 3))
				continue;
			if (!pick || !strcmp(pick->device, m[k].device))
				pick = pick ? pick : &m[k]; /* a bind mount's repeat: the first */
			else if (device_fits(w, m[k].device) && !device_fits(w, pick->device))
				pick = &m[k];
			else if (device_fits(w, m[k].device) == device_fits(w, pick->device))
				ambiguous = 1;
		}
		if (!pick || ambiguous)
			continue;
		snprintf(w->mount, sizeof(w->mount), "%s", strcmp(pick->mountpoint, "/") ? pick->mountpoint : "");
		w->mount_found = 1;
	}
	free(m);
}

/* --mount DIR for the one filesystem, or each one's from the guest's mount table. */
static void set_mounts(struct vms_fswatch *fw, const struct vms_fswatch_options *o)
{
	if (o && o->mount) {
		size_t len = snprintf(fw->fs[0].mount, sizeof(fw->fs[0].mount), "%s",
				      strcmp(o->mount, "/") ? o->mount : "");

		while (len > 1 && fw->fs[0].mount[len - 1] == '/')
			fw->fs[0].mount[--len] = 0;
		return;
	}
	find_mounts(fw);
}

/* Each filesystem's layout, then (with the capture on) its contents. */
static int probe_all(struct vms_fswatch *fw)
{
	char why[256] = "";

	for (size_t i = 0; i < fw->nr_fs; i++) {
		struct watched *w = &fw->fs[i];
		int err = ext4_engine_probe(&w->engine, w->len, read_disk, w, why, sizeof(why));

		if (err)
			return vm_error(fw->vm, err, "disk %s: %s", w->name,
					why[0] ? why : strerror(-err));
	}
	return 0;
}

/* The smallest block size of the watched filesystems: what a background mirror copies. */
static uint32_t smallest_block(const struct vms_fswatch *fw)
{
	uint32_t b = 64u << 10;

	for (size_t i = 0; i < fw->nr_fs; i++)
		if (ext4_engine_block_size(fw->fs[i].engine) < b)
			b = ext4_engine_block_size(fw->fs[i].engine);
	return b;
}

static int bootstrap_all(struct vms_fswatch *fw)
{
	char why[256] = "";

	for (size_t i = 0; i < fw->nr_fs; i++) {
		struct watched *w = &fw->fs[i];
		int err = ext4_engine_bootstrap(w->engine, why, sizeof(why));

		if (err)
			return vm_error(fw->vm, err, "disk %s: %s", w->name, why);
		ext4_engine_set_emit(w->engine, on_event, w);
		/* Only the blocking mode sees writes in the guest's order. */
		ext4_engine_set_out_of_order(w->engine, fw->mode != VMS_CAPTURE_BLOCKING);
		ext4_engine_get_stats(w->engine, &w->stats);
	}
	return 0;
}

static int start(struct vms_fswatch *fw, const char *node, const struct vms_fswatch_options *o)
{
	struct vms_vm *vm = fw->vm;
	int err;

	vms_vm_event_name(vm, fw->vm_name, sizeof(fw->vm_name));
	snprintf(fw->node, sizeof(fw->node), "%s", node);
	if (o && o->spool_bytes &&
	    (o->spool_bytes < SPOOL_MIN || o->spool_bytes > SPOOL_MAX ||
	     (o->spool_bytes & (o->spool_bytes - 1))))
		return vm_error(vm, -EINVAL,
				"a spool of %llu bytes: a power of two from 1 MiB to 1 GiB",
				(unsigned long long)o->spool_bytes);
	if (copy_options(fw, o) ||
	    spool_init(&fw->spool, o && o->spool_bytes ? o->spool_bytes : SPOOL_BYTES))
		return vm_error(vm, -ENOMEM, "out of memory");
	err = vms_disk_open(vm, node, &fw->reader);
	err = err ? err : find_filesystems(fw, o ? o->partition : 0, o ? o->volume : NULL);
	if (!err)
		set_mounts(fw, o);
	err = err ? err : probe_all(fw);
	if (!err) {
		struct capture_config cfg = {
			fw->mode,   smallest_block(fw), o ? o->interval_ms : 0,
			fw->reader, on_request,		want_payload,
			fw
		};

		err = capture_start(vm, node, &cfg, NULL, &fw->capture);
	}
	err = err ? err : bootstrap_all(fw);
	if (err)
		return err;
	err = -pthread_create(&fw->thread, NULL, infer_thread, fw);
	if (err)
		return vm_error(vm, err, "cannot start the inference thread");
	fw->thread_started = 1;
	return 0;
}

int vms_fswatch_start(struct vms_vm *vm, const char *node, const struct vms_fswatch_options *opts,
		      struct vms_ring *ring, struct vms_fswatch **ret)
{
	struct vms_fswatch *fw;
	int err;

	if (!vm->qmp)
		return vm_error(vm, -EOPNOTSUPP, "watching files needs a live VM (qmp:)");
	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return vm_error(vm, -ENOMEM, "out of memory");
	fw->vm = vm;
	fw->ring = ring;
	pthread_mutex_init(&fw->lock, NULL);
	err = start(fw, node, opts);
	if (err) {
		char why[VMS_ERROR_MAX];

		snprintf(why, sizeof(why), "%s", vm->error);
		vms_fswatch_stop(fw);
		return vm_error(vm, err, "%s", why);
	}
	*ret = fw;
	return 0;
}

static int by_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void vms_fswatch_get_stats(struct vms_fswatch *fw, struct vms_fswatch_stats *ret)
{
	static uint32_t sorted[LATENCY_SAMPLES];
	static pthread_mutex_t sorting = PTHREAD_MUTEX_INITIALIZER;
	struct timespec cpu = { 0 };
	clockid_t clock;
	size_t n;

	memset(ret, 0, sizeof(*ret));
	ret->writes = fw->writes;
	ret->write_bytes = fw->write_bytes;
	ret->spool_dropped = fw->spool.dropped;
	ret->spool_size = fw->spool.size;
	ret->spool_peak = fw->spool.peak;
	ret->spool_waited_us = fw->spool.waited_us;
	if (fw->capture && !fw->detach_started && !fw->detached) {
		struct vms_capture_stats cs;

		vms_capture_get_stats(fw->capture, &cs);
		fw->polls = cs.polls;
		fw->capture_failed = cs.failed;
	}
	ret->polls = fw->polls;
	ret->capture_failed = fw->capture_failed;
	if (fw->thread_started && !pthread_getcpuclockid(fw->thread, &clock))
		clock_gettime(clock, &cpu);
	ret->infer_cpu_s = (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9;
	pthread_mutex_lock(&sorting);
	pthread_mutex_lock(&fw->lock);
	ret->events = fw->events;
	ret->filtered = fw->filtered;
	ret->dropped = fw->dropped;
	ret->journaled = fw->nr_fs > 0;
	for (size_t i = 0; i < fw->nr_fs; i++) {
		const struct ext4_engine_stats *e = &fw->fs[i].stats;

		ret->transactions += e->transactions;
		ret->unmapped += e->unmapped;
		ret->pending += e->pending;
		ret->errors += e->errors;
		ret->checksum_failures += e->checksum_failures;
		ret->missed_transactions += e->missed_transactions;
		ret->inodes += e->inodes;
		ret->directories += e->directories;
		ret->journaled &= fw->fs[i].engine && ext4_engine_journaled(fw->fs[i].engine);
	}
	ret->errors += fw->err ? 1 : 0;
	n = fw->nr_latency < LATENCY_SAMPLES ? fw->nr_latency : LATENCY_SAMPLES;
	memcpy(sorted, fw->latency_us, n * sizeof(*sorted));
	pthread_mutex_unlock(&fw->lock);
	if (n) {
		qsort(sorted, n, sizeof(*sorted), by_u32);
		ret->latency_p50_us = sorted[n / 2];
		ret->latency_p99_us = sorted[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
		ret->latency_max_us = sorted[n - 1];
	}
	pthread_mutex_unlock(&sorting);
}

/* The capture's end, on a thread of its own: its last writes may wait for the caller's drain. */
static void *detach_thread(void *arg)
{
	struct vms_fswatch *fw = arg;
	struct vms_capture_stats cs = { 0 };

	fw->detach_err = capture_stop_stats(fw->capture, &cs);
	fw->polls = cs.polls;
	fw->capture_failed = cs.failed || fw->detach_err;
	fw->detached = 1;
	return NULL;
}

int vms_fswatch_detach(struct vms_fswatch *fw)
{
	if (!fw->capture || fw->detach_started || fw->detached)
		return 0;
	if (pthread_create(&fw->detacher, NULL, detach_thread, fw)) {
		detach_thread(fw); /* no thread to spare: here, with the spool's bound */
		return fw->detach_err;
	}
	fw->detach_started = 1;
	return 0;
}

int vms_fswatch_idle(struct vms_fswatch *fw)
{
	return (!fw->capture || fw->detached) && fw->applied == fw->queued;
}

int vms_fswatch_stop(struct vms_fswatch *fw)
{
	int err = 0;

	if (!fw)
		return 0;
	/* Nobody drains any more: waits for the spool or the ring give up, counted. */
	fw->abandon = 1;
	if (fw->capture && !fw->detach_started && !fw->detached)
		detach_thread(fw);
	if (fw->detach_started)
		pthread_join(fw->detacher, NULL);
	fw->capture = NULL;
	err = fw->detach_err;
	if (fw->thread_started) {
		fw->stopping = 1;
		fw->abandon = 1;
		spool_kick(&fw->spool);
		pthread_join(fw->thread, NULL);
		fw->thread_started = 0;
	}
	for (size_t i = 0; i < fw->nr_fs; i++) {
		ext4_engine_free(fw->fs[i].engine);
		fw->fs[i].engine = NULL;
	}
	if (fw->reader) {
		int closed = vms_disk_close(fw->reader);

		err = err ? err : closed;
	}
	spool_destroy(&fw->spool);
	for (size_t i = 0; i < fw->nr_paths; i++)
		free(fw->paths[i]);
	free(fw->paths);
	free(fw->hash_buf);
	pthread_mutex_destroy(&fw->lock);
	free(fw);
	return err;
}

int vms_fswatch_filesystem(const struct vms_fswatch *fw, size_t i, const char **ret_name,
			   const char **ret_mount, int *ret_found)
{
	if (i >= fw->nr_fs)
		return -ENOENT;
	*ret_name = fw->fs[i].name;
	*ret_mount = fw->fs[i].mount;
	*ret_found = fw->fs[i].mount_found;
	return 0;
}
