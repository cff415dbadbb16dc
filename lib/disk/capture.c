// SPDX-License-Identifier: MIT
/*
 * Attaching a capture to a running VM, and detaching it, in one of the
 * capture modes (modes[]). Two are QEMU's mirror with the NBD server inside
 * vmscope as its target: "write-blocking", so that from the moment the job
 * is ready every guest write reaches us before the guest sees it complete,
 * or "background", so that the guest never waits and the job copies what
 * changed after. The third polls a dirty bitmap instead (bitmap.c).
 *
 * For the mirror the order matters: the server listens before QEMU's NBD
 * node connects; the mirror starts with sync "none" (no bulk copy).
 * Detaching waits for a background job to have copied everything (its
 * offset reaching its length), then cancels the job (after ready, a clean
 * end) before removing the node.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vmscope/disk.h>

#include "access/qmp.h"
#include "core/util.h"
#include "core/internal.h"
#include "disk/bitmap.h"
#include "disk/capture.h"
#include "disk/nbd.h"
#include "disk/reader.h"

#define JOB_WAIT_MS 10000
#define POLL_MS	    20
/*
 * Background copies in blocks of the granularity asked for (fswatch: the
 * filesystem's block, so that a neighbour is never copied as if written;
 * capture: 4 KiB), doubled while the job's dirty bitmap would pass 8 MiB.
 */
#define GRANULARITY_CAPTURE 4096u
#define BITMAP_MAX_BITS	    (64ull << 20)
#define GRANULARITY_MAX	    (64u << 20)

struct vms_capture;

static int mirror_attach(struct vms_capture *c);
static int mirror_detach(struct vms_capture *c);
static int poll_attach(struct vms_capture *c);
static int poll_detach(struct vms_capture *c);

static const struct capture_mode {
	const char *name, *copy_mode; /* the mirror's, for a mirror */
	int waits;		      /* the guest's writes wait for vmscope */
	int (*attach)(struct vms_capture *c);
	int (*detach)(struct vms_capture *c);
} modes[] = {
	[VMS_CAPTURE_BLOCKING] = { "blocking", "write-blocking", 1, mirror_attach, mirror_detach },
	[VMS_CAPTURE_BACKGROUND] = { "background", "background", 0, mirror_attach, mirror_detach },
	[VMS_CAPTURE_BITMAP] = { "bitmap", NULL, 0, poll_attach, poll_detach },
};

int vms_capture_mode_parse(const char *name, enum vms_capture_mode *ret)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(name, modes[i].name)) {
			*ret = (enum vms_capture_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *vms_capture_mode_name(enum vms_capture_mode mode)
{
	return (size_t)mode < sizeof(modes) / sizeof(modes[0]) ? modes[mode].name : "unknown";
}

struct vms_capture {
	struct vms_vm *vm;
	struct vms_ring *ring;
	struct nbd_server *nbd;
	struct bitmap_poll *bitmap;
	struct vms_capture_stats bitmap_final;	     /* its figures, kept past its end */
	struct vms_disk_reader *reader, *own_reader; /* bitmap: whose NBD server exports */
	nbd_request_fn fn; /* another consumer's (fswatch), instead of the ring */
	nbd_want_fn want;
	void *fn_ctx;
	char dir[64], socket[96], job[64], target[64], node[64], vm_name[VMS_NAME_MAX];
	_Atomic uint64_t writes, write_bytes, zeroes, trims, flushes, dropped;
	int job_started, node_added;
	enum vms_capture_mode mode;
	uint64_t size;
	uint32_t granularity, interval_ms;
};

static void on_request(void *ctx, const struct nbd_request *req, const void *payload)
{
	static const char *const types[] = { [NBD_CMD_WRITE] = "disk_write",
					     [NBD_CMD_TRIM] = "disk_trim",
					     [NBD_CMD_WRITE_ZEROES] = "disk_zero" };
	struct vms_capture *c = ctx;
	struct vms_event *ev;

	if (req->type == NBD_CMD_WRITE) {
		c->writes++;
		c->write_bytes += req->length;
	} else if (req->type == NBD_CMD_WRITE_ZEROES) {
		c->zeroes++;
	} else if (req->type == NBD_CMD_TRIM) {
		c->trims++;
	} else {
		c->flushes++;
	}
	if (c->fn) {
		c->fn(c->fn_ctx, req, payload);
		return;
	}
	/* The job's own flushes (when it is ready, when it ends) would read as the guest's. */
	if (req->type == NBD_CMD_FLUSH)
		return;
	ev = vms_ring_reserve(c->ring);
	if (!ev) {
		c->dropped++; /* the guest never waits for us */
		return;
	}
	vms_event_init(ev, c->vm_name, VMS_SOURCE_DISK, types[req->type]);
	vms_event_add_str(ev, "disk", c->node);
	vms_event_add_uint(ev, "offset", req->offset);
	vms_event_add_uint(ev, "length", req->length);
	if (req->flags & 1)
		vms_event_add_bool(ev, "fua", 1);
	vms_ring_commit(c->ring);
}

/* Events carry offsets and lengths, not bytes: only another consumer may want them. */
static int want_payload(void *ctx, const struct nbd_request *req)
{
	struct vms_capture *c = ctx;

	return c->want ? c->want(c->fn_ctx, req) : 0;
}

static int qmp_fail(struct vms_vm *vm, int err)
{
	return vm_error(vm, err, "%s", qmp_error(vm->qmp));
}

/* The virtual size of a block node, from query-named-block-nodes. */
static int node_size(struct vms_vm *vm, const char *node, uint64_t *ret)
{
	json_t *list = NULL, *entry;
	size_t i;
	int err = qmp_execute(vm->qmp, "query-named-block-nodes", NULL, &list);

	if (err)
		return qmp_fail(vm, err);
	err = vm_error(vm, -ENODEV, "the VM has no block node \"%s\" (see query-named-block-nodes)",
		       node);
	json_array_foreach (list, i, entry) {
		const char *name = json_string_value(json_object_get(entry, "node-name"));
		json_t *size = json_object_get(json_object_get(entry, "image"), "virtual-size");

		if (name && !strcmp(name, node) && json_is_integer(size)) {
			*ret = (uint64_t)json_integer_value(size);
			err = 0;
			break;
		}
	}
	json_decref(list);
	return err;
}

enum job_want { JOB_READY, JOB_GONE, JOB_COPIED };

/* One look at the job: 1 when it is as wanted, 0 not yet, <0 when it never will be. */
static int job_is(struct vms_capture *c, enum job_want want)
{
	json_t *jobs = NULL, *job, *mine = NULL;
	size_t i;
	int err = qmp_execute(c->vm->qmp, "query-block-jobs", NULL, &jobs), r;

	if (err)
		return qmp_fail(c->vm, err);
	json_array_foreach (jobs, i, job) {
		const char *id = json_string_value(json_object_get(job, "device"));

		if (id && !strcmp(id, c->job))
			mine = job;
	}
	if (want == JOB_GONE)
		r = !mine;
	else if (!mine) /* gone before it was ready is an error; gone, it has nothing left to copy */
		r = want == JOB_READY ? vm_error(c->vm, -EIO, "the mirror job ended before it was ready")
				      : 1;
	else if (want == JOB_READY)
		r = json_is_true(json_object_get(mine, "ready"));
	else /* a background job has copied what the guest wrote when its offset reaches its length */
		r = json_integer_value(json_object_get(mine, "offset")) ==
		    json_integer_value(json_object_get(mine, "len"));
	json_decref(jobs);
	return r;
}

static int wait_job(struct vms_capture *c, enum job_want want)
{
	static const char *const what[] = { "become ready", "end",
					    "copy the guest's last writes" };
	long long deadline = monotonic_ms() + JOB_WAIT_MS;

	while (monotonic_ms() < deadline) {
		int r = job_is(c, want);

		if (r)
			return r < 0 ? r : 0;
		usleep(POLL_MS * 1000);
	}
	return vm_error(c->vm, -ETIMEDOUT, "the mirror job did not %s within %d s", what[want],
			JOB_WAIT_MS / 1000);
}

/* The granularity asked for, coarser only where QEMU's bitmap would be too big. */
static uint32_t granularity(const struct vms_capture *c)
{
	uint64_t g = c->granularity;

	while (g < GRANULARITY_MAX && c->size / g > BITMAP_MAX_BITS)
		g <<= 1;
	return (uint32_t)g;
}

static json_t *mirror_args(const struct vms_capture *c)
{
	json_t *args =
		json_pack("{s:s,s:s,s:s,s:s,s:s}", "job-id", c->job, "device", c->node, "target",
			  c->target, "sync", "none", "copy-mode", modes[c->mode].copy_mode);

	if (modes[c->mode].waits || !args)
		return args;
	json_object_set_new(args, "granularity", json_integer((json_int_t)granularity(c)));
	return args;
}

static int mirror_attach(struct vms_capture *c)
{
	struct vms_vm *vm = c->vm;
	int err;

	snprintf(c->dir, sizeof(c->dir), "/tmp/vmscope-nbd-%d-XXXXXX", (int)getpid());
	if (!mkdtemp(c->dir)) {
		c->dir[0] = 0;
		return vm_error(vm, -errno, "cannot make a directory for the NBD socket");
	}
	snprintf(c->socket, sizeof(c->socket), "%s/nbd.sock", c->dir);
	err = nbd_server_start(c->socket, c->size, on_request, want_payload, c, &c->nbd);

	if (err)
		return vm_error(vm, err, "cannot listen on %s: %s", c->socket, strerror(-err));
	/* QEMU connects to our server: its user needs the directory and the socket. */
	if (vm_lend_to_qemu(vm, c->dir) || vm_lend_to_qemu(vm, c->socket))
		return -EACCES;
	err = qmp_execute(vm->qmp, "blockdev-add",
			  json_pack("{s:s,s:s,s:{s:s,s:s}}", "driver", "nbd", "node-name", c->target,
				    "server", "type", "unix", "path", c->socket),
			  NULL);
	if (err)
		return qmp_fail(vm, err);
	c->node_added = 1;
	err = qmp_execute(vm->qmp, "blockdev-mirror", mirror_args(c), NULL);
	if (err)
		return qmp_fail(vm, err);
	c->job_started = 1;
	return wait_job(c, JOB_READY);
}

/* The mirror's end: copied (background), cancelled, gone; then its NBD node. */
static int mirror_detach(struct vms_capture *c)
{
	struct vms_vm *vm = c->vm;
	int err = 0;

	if (c->job_started) {
		int copied = modes[c->mode].waits ? 0 : wait_job(c, JOB_COPIED);
		int cancel = qmp_execute(vm->qmp, "block-job-cancel",
					 json_pack("{s:s}", "device", c->job), NULL);

		err = cancel ? qmp_fail(vm, cancel) : wait_job(c, JOB_GONE);
		err = err ? err : copied;
	}
	if (c->node_added) {
		int del = qmp_execute(vm->qmp, "blockdev-del",
				      json_pack("{s:s}", "node-name", c->target), NULL);

		if (del && !err)
			err = qmp_fail(vm, del);
	}
	nbd_server_stop(c->nbd);
	if (c->dir[0])
		rmdir(c->dir);
	return err;
}

/* The bitmap mode exports through QEMU's one NBD server: the caller's reader's, or ours. */
static int poll_attach(struct vms_capture *c)
{
	struct bitmap_config cfg = { NULL,	 granularity(c), c->interval_ms,
				     on_request, want_payload,	 c };
	char why[256];
	int err;

	if (!c->reader) {
		err = vms_disk_open(c->vm, c->node, &c->own_reader);
		if (err)
			return err;
		c->reader = c->own_reader;
	}
	cfg.socket = disk_reader_socket(c->reader);
	err = bitmap_start(c->vm->qmp, c->node, c->size, &cfg, &c->bitmap, why, sizeof(why));
	return err ? vm_error(c->vm, err, "dirty bitmap on %s: %s", c->node, why) : 0;
}

static int poll_detach(struct vms_capture *c)
{
	char why[256];
	int err = bitmap_stop(c->bitmap, &c->bitmap_final, why, sizeof(why)), closed;

	c->bitmap = NULL;
	if (err)
		vm_error(c->vm, err, "dirty bitmap on %s: %s", c->node, why);
	closed = vms_disk_close(c->own_reader);
	c->own_reader = NULL;
	return err ? err : closed;
}

int vms_capture_start(struct vms_vm *vm, const char *node, const struct vms_capture_options *o,
		      struct vms_ring *ring, struct vms_capture **ret_capture)
{
	struct capture_config cfg = { o ? o->mode : VMS_CAPTURE_BLOCKING,
				      GRANULARITY_CAPTURE,
				      o ? o->interval_ms : 0,
				      NULL,
				      NULL,
				      NULL,
				      NULL };

	return capture_start(vm, node, &cfg, ring, ret_capture);
}

int capture_start(struct vms_vm *vm, const char *node, const struct capture_config *cfg,
		  struct vms_ring *ring, struct vms_capture **ret_capture)
{
	enum vms_capture_mode mode = cfg->mode;
	uint32_t granularity = cfg->granularity;
	struct vms_capture *c;
	uint64_t size;
	int err;

	if (!vm->qmp)
		return vm_error(vm, -EOPNOTSUPP, "disk capture needs a live VM (qmp:)");
	err = node_size(vm, node, &size);
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		return vm_error(vm, -ENOMEM, "out of memory");
	if ((size_t)mode >= sizeof(modes) / sizeof(modes[0]) || granularity < 512 ||
	    granularity & (granularity - 1)) {
		free(c);
		return vm_error(vm, -EINVAL, "no capture mode %d, or a granularity (%u) QEMU cannot "
				"use", (int)mode, granularity);
	}
	if (cfg->interval_ms && (cfg->interval_ms < VMS_CAPTURE_INTERVAL_MIN_MS ||
				 cfg->interval_ms > VMS_CAPTURE_INTERVAL_MAX_MS)) {
		free(c);
		return vm_error(vm, -EINVAL, "a poll interval of %u ms: from %u to %u ms",
				cfg->interval_ms, VMS_CAPTURE_INTERVAL_MIN_MS,
				VMS_CAPTURE_INTERVAL_MAX_MS);
	}
	c->vm = vm;
	c->mode = mode;
	c->size = size;
	c->granularity = granularity;
	c->interval_ms = cfg->interval_ms;
	c->ring = ring;
	c->reader = cfg->reader;
	c->fn = cfg->fn;
	c->want = cfg->want;
	c->fn_ctx = cfg->ctx;
	snprintf(c->node, sizeof(c->node), "%s", node);
	snprintf(c->job, sizeof(c->job), "vmscope-capture-%d", (int)getpid());
	snprintf(c->target, sizeof(c->target), "vmscope-nbd-%d", (int)getpid());
	vms_vm_event_name(vm, c->vm_name, sizeof(c->vm_name));
	err = modes[mode].attach(c);
	if (err) {
		char why[VMS_ERROR_MAX];

		snprintf(why, sizeof(why), "%s", vm->error);
		vms_capture_stop(c);
		return vm_error(vm, err, "%s", why);
	}
	*ret_capture = c;
	return 0;
}

void vms_capture_get_stats(const struct vms_capture *c, struct vms_capture_stats *ret)
{
	ret->writes = c->writes;
	ret->write_bytes = c->write_bytes;
	ret->zeroes = c->zeroes;
	ret->trims = c->trims;
	ret->flushes = c->flushes;
	ret->dropped = c->dropped;
	if (c->bitmap)
		bitmap_get_stats(c->bitmap, ret);
	else {
		ret->polls = c->bitmap_final.polls;
		ret->dirty_bytes = c->bitmap_final.dirty_bytes;
		ret->read_bytes = c->bitmap_final.read_bytes;
		ret->poll_us_max = c->bitmap_final.poll_us_max;
		ret->poll_failures = c->bitmap_final.poll_failures;
		ret->failed = c->bitmap_final.failed;
	}
}

int capture_stop_stats(struct vms_capture *c, struct vms_capture_stats *ret)
{
	int err;

	if (!c)
		return 0;
	err = modes[c->mode].detach(c);
	if (ret)
		vms_capture_get_stats(c, ret);
	free(c);
	return err;
}

int vms_capture_stop(struct vms_capture *c)
{
	return capture_stop_stats(c, NULL);
}
