// SPDX-License-Identifier: MIT
/*
 * Reading a log: segments in order, frames in order, events in order, with
 * whatever the index or the frame headers rule out never decompressed. A
 * sealed segment's frames come from its index (checked against the file's
 * size); an unsealed one's from walking its frame headers. A frame whose
 * checksums fail is skipped and counted, so is a torn tail.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmscope/log.h>

#include "log/format.h"

struct vms_log_reader {
	char *dir;
	struct vms_log_filter filter;
	char **types;
	char *vm;
	uint64_t type_mask, vm_bit;

	uint64_t *seqs;
	size_t nr_seqs, seg; /* the next segment to open */
	int fd;
	struct seg_index idx; /* the open segment's frames */
	size_t entry;	      /* the next frame of it */
	uint8_t *raw;	      /* the frame being read */
	size_t raw_len, pos;

	struct vms_log_read_stats stats;
};

static int copy_filter(struct vms_log_reader *r, const struct vms_log_filter *f)
{
	struct vms_log_filter in = { 0 };

	if (f)
		memcpy(&in, f, f->sz && f->sz < sizeof(in) ? f->sz : sizeof(in));
	r->filter = in;
	if (in.vm && !(r->vm = strdup(in.vm)))
		return -ENOMEM;
	if (in.vm)
		r->vm_bit = log_name_bit(in.vm);
	if (!in.nr_types)
		return 0;
	r->types = calloc(in.nr_types, sizeof(*r->types));
	if (!r->types)
		return -ENOMEM;
	for (size_t i = 0; i < in.nr_types; i++) {
		if (!(r->types[i] = strdup(in.types[i])))
			return -ENOMEM;
		r->type_mask |= log_name_bit(in.types[i]);
	}
	return 0;
}

void vms_log_reader_free(struct vms_log_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	log_index_reset(&r->idx);
	for (size_t i = 0; r->types && i < r->filter.nr_types; i++)
		free(r->types[i]);
	free(r->types);
	free(r->vm);
	free(r->seqs);
	free(r->raw);
	free(r->dir);
	free(r);
}

int vms_log_reader_open(const char *dir, const struct vms_log_filter *filter,
			struct vms_log_reader **ret_reader)
{
	struct vms_log_reader *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return log_error(-ENOMEM, "out of memory");
	r->fd = -1;
	err = copy_filter(r, filter);
	if (!err && !(r->dir = strdup(dir)))
		err = -ENOMEM;
	if (err) {
		vms_log_reader_free(r);
		return log_error(err, "out of memory");
	}
	err = log_seg_list(dir, &r->seqs, &r->nr_seqs);
	if (err) {
		vms_log_reader_free(r);
		return log_error(err, "log %s: %s", dir, strerror(-err));
	}
	*ret_reader = r;
	return 0;
}

static int type_wanted(const struct vms_log_reader *r, const char *type)
{
	if (!r->filter.nr_types)
		return 1;
	for (size_t i = 0; i < r->filter.nr_types; i++)
		if (!strcmp(r->types[i], type))
			return 1;
	return 0;
}

static int time_wanted(const struct vms_log_reader *r, uint64_t min, uint64_t max)
{
	return max >= r->filter.since_ns && (!r->filter.until_ns || min <= r->filter.until_ns);
}

/* Whether a sealed segment's index rules all of it out. */
static int segment_wanted(const struct vms_log_reader *r, const struct seg_index *idx)
{
	int type = !r->filter.nr_types, vm = !r->vm;

	if (!idx->events || !time_wanted(r, idx->min_ns, idx->max_ns))
		return 0;
	for (size_t i = 0; i < idx->nr_names; i++) {
		const struct name_count *c = &idx->names[i];

		if (c->kind == NAME_TYPE && !type)
			type = type_wanted(r, c->name);
		if (c->kind == NAME_VM && !vm)
			vm = !strcmp(c->name, r->vm);
	}
	return type && vm;
}

struct walk {
	struct vms_log_reader *r;
	uint64_t size;
};

static int walk_frame(void *ctx, uint64_t off, const struct frame_hdr *h, const uint8_t *raw)
{
	struct walk *w = ctx;

	(void)raw;
	return log_index_add_frame(&w->r->idx, off, h);
}

static int walk_bad(void *ctx, uint64_t off, uint64_t next)
{
	struct walk *w = ctx;

	if (next)
		w->r->stats.damaged_frames++;
	else
		w->r->stats.torn_bytes += w->size - off;
	return 0;
}

/* The frames of an unsealed segment, from their headers. */
static int walk_headers(struct vms_log_reader *r, uint64_t size)
{
	struct walk w = { r, size };
	struct seg_scan scan = { walk_frame, walk_bad, &w, 0 };

	return log_seg_scan(r->fd, size, &scan);
}

static int open_segment(struct vms_log_reader *r, uint64_t seq)
{
	char path[4200], ipath[4200];
	uint64_t got;
	struct stat st;
	int err;

	log_index_reset(&r->idx);
	r->entry = 0;
	log_seg_path(path, sizeof(path), r->dir, seq, "vlog");
	log_seg_path(ipath, sizeof(ipath), r->dir, seq, "vidx");
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return errno == ENOENT ? 0 : -errno; /* removed by retention meanwhile */
	r->stats.segments++;
	if (fstat(r->fd, &st) || log_seg_hdr_check(r->fd, &got) || got != seq) {
		r->stats.damaged_frames++;
		return 0;
	}
	err = log_index_read(ipath, &r->idx);
	if (!err && r->idx.seg_size == (uint64_t)st.st_size) {
		if (!segment_wanted(r, &r->idx)) {
			r->stats.frames_skipped += r->idx.nr_entries;
			log_index_reset(&r->idx);
		}
		return 0;
	}
	log_index_reset(&r->idx);
	return walk_headers(r, (uint64_t)st.st_size);
}

static int frame_wanted(const struct vms_log_reader *r, const struct idx_entry *e)
{
	return time_wanted(r, e->min_ns, e->max_ns) &&
	       (!r->type_mask || (e->type_mask & r->type_mask)) &&
	       (!r->vm || (e->vm_mask & r->vm_bit));
}

/* Load the next frame worth reading into r->raw; 0 when the log is done. */
static int next_frame(struct vms_log_reader *r)
{
	free(r->raw);
	r->raw = NULL;
	for (;;) {
		uint8_t hb[FRAME_HDR_BYTES];
		struct idx_entry *e;
		struct frame_hdr h;
		int err;

		if (r->fd < 0 || r->entry == r->idx.nr_entries) {
			if (r->fd >= 0)
				close(r->fd);
			r->fd = -1;
			if (r->seg == r->nr_seqs)
				return 0;
			err = open_segment(r, r->seqs[r->seg++]);
			if (err)
				return err;
			continue;
		}
		e = &r->idx.entries[r->entry++];
		if (!frame_wanted(r, e)) {
			r->stats.frames_skipped++;
			continue;
		}
		err = log_read_exact(r->fd, hb, sizeof(hb), e->offset);
		if (!err)
			err = log_frame_hdr_decode(hb, &h);
		if (!err && (h.count != e->count || h.min_ns != e->min_ns || h.max_ns != e->max_ns))
			err = -EBADMSG;
		if (!err)
			err = log_frame_load(r->fd, e->offset, &h, &r->raw);
		if (err == -ENOMEM)
			return err;
		if (err) {
			r->stats.damaged_frames++;
			continue;
		}
		r->stats.frames_read++;
		r->raw_len = h.raw_len;
		r->pos = 0;
		return 1;
	}
}

int vms_log_next(struct vms_log_reader *r, struct vms_event *ev)
{
	for (;;) {
		int err;

		if (!r->raw || r->pos >= r->raw_len) {
			err = next_frame(r);
			if (err <= 0)
				return err < 0 ? log_error(err, "log %s: %s", r->dir, strerror(-err))
					       : 0;
		}
		if (log_record_decode(r->raw, r->raw_len, &r->pos, ev)) {
			/* Checksummed but not decodable: a frame no writer of ours made. */
			r->stats.damaged_frames++;
			r->pos = r->raw_len;
			continue;
		}
		r->stats.events_scanned++;
		if (!time_wanted(r, ev->time_ns, ev->time_ns) || !type_wanted(r, ev->type) ||
		    (r->vm && strcmp(r->vm, ev->vm)))
			continue;
		r->stats.events_matched++;
		return 1;
	}
}

void vms_log_reader_get_stats(const struct vms_log_reader *r, struct vms_log_read_stats *ret)
{
	*ret = r->stats;
}
