// SPDX-License-Identifier: MIT
/*
 * `log verify` and `log stats`: both walk every frame of every segment with
 * the payload checked and decoded. verify reports each problem and checks
 * each index against the frames it describes; summarize uses an index where
 * it can (a sealed segment whose size is what its index says) and the frames
 * where it must.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmscope/log.h>

#include "log/format.h"

struct walk {
	struct seg_index idx;	   /* what the frames say */
	uint64_t size, damaged, torn;
	char path[4200];
	int sealed;
	void (*report)(void *ctx, int fatal, const char *line);
	void *ctx;
	int fatal;
};

static void say(struct walk *w, int fatal, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct walk *w, int fatal, const char *fmt, ...)
{
	char line[4600];
	int n = snprintf(line, sizeof(line), "%s: ", w->path);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	w->fatal += fatal;
	if (w->report)
		w->report(w->ctx, fatal, line);
}

static int on_frame(void *ctx, uint64_t off, const struct frame_hdr *h, const uint8_t *raw)
{
	struct walk *w = ctx;
	int err = log_frame_check(raw, h);

	if (err == -EBADMSG)
		say(w, 1, "frame at %" PRIu64 ": its records are not what its header says", off);
	if (err)
		return err;
	err = log_index_count_raw(&w->idx, raw, h->raw_len);
	return err ? err : log_index_add_frame(&w->idx, off, h);
}

static int on_bad(void *ctx, uint64_t off, uint64_t next)
{
	struct walk *w = ctx;

	if (next) {
		w->damaged++;
		say(w, 1, "bytes %" PRIu64 " to %" PRIu64 " are not a good frame (damaged)", off,
		    next);
	} else {
		w->torn += w->size - off;
		say(w, w->sealed, "%s at %" PRIu64 " (%" PRIu64 " bytes)%s", w->sealed ?
		    "a sealed segment ends in a bad frame" : "torn tail", off, w->size - off,
		    w->sealed ? "" : ": a writer stopped mid-frame; the next writer cuts it off");
	}
	return 0;
}

static uint64_t name_total(const struct seg_index *idx, const struct name_count *c)
{
	for (size_t i = 0; i < idx->nr_names; i++)
		if (idx->names[i].kind == c->kind && !strcmp(idx->names[i].name, c->name))
			return idx->names[i].count;
	return UINT64_MAX;
}

static int same_index(const struct seg_index *a, const struct seg_index *b)
{
	if (a->nr_entries != b->nr_entries || a->events != b->events || a->min_ns != b->min_ns ||
	    a->max_ns != b->max_ns || a->raw_bytes != b->raw_bytes || a->nr_names != b->nr_names)
		return 0;
	for (size_t i = 0; i < a->nr_entries; i++)
		if (memcmp(&a->entries[i], &b->entries[i], sizeof(a->entries[i])))
			return 0;
	for (size_t i = 0; i < a->nr_names; i++)
		if (name_total(b, &a->names[i]) != a->names[i].count)
			return 0;
	return 1;
}

/* Walk one segment; *w holds what it found. -errno only when it cannot be read. */
static int walk_segment(const char *dir, uint64_t seq, struct walk *w, struct seg_index *stored,
			int *has_index)
{
	char ipath[4200];
	struct seg_scan scan = { on_frame, on_bad, w, 1 };
	struct stat st;
	uint64_t got;
	int fd, err;

	log_seg_path(w->path, sizeof(w->path), dir, seq, "vlog");
	log_seg_path(ipath, sizeof(ipath), dir, seq, "vidx");
	*has_index = 0;
	memset(stored, 0, sizeof(*stored));
	err = log_index_read(ipath, stored);
	if (!err)
		*has_index = 1;
	else if (err != -ENOENT)
		say(w, 1, "its index %s is damaged (%s)", ipath, strerror(-err));
	w->sealed = err != -ENOENT;
	fd = open(w->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		return err == -ENOENT ? 0 : err;
	}
	w->size = (uint64_t)st.st_size;
	err = log_seg_hdr_check(fd, &got);
	if (err || got != seq) {
		say(w, w->sealed || w->size >= SEG_HDR_BYTES, "no good segment header");
		close(fd);
		return 0;
	}
	err = log_seg_scan(fd, w->size, &scan);
	close(fd);
	w->idx.seg_size = w->size;
	return err;
}

static void check_index(struct walk *w, const struct seg_index *stored)
{
	if (stored->seg_size != w->size)
		say(w, 1, "the segment is %" PRIu64 " bytes, its index says %" PRIu64
		    " (cut or grown since it was sealed)", w->size, stored->seg_size);
	else if (!same_index(stored, &w->idx))
		say(w, 1, "its index does not describe its frames");
}

int vms_log_verify(const char *dir, void (*report)(void *ctx, int fatal, const char *line),
		   void *ctx)
{
	uint64_t *seqs;
	size_t n;
	int err = log_seg_list(dir, &seqs, &n), fatal = 0;

	if (err)
		return log_error(err, "log %s: %s", dir, strerror(-err));
	for (size_t i = 0; i < n; i++) {
		struct walk w = { .report = report, .ctx = ctx };
		struct seg_index stored;
		int has_index;

		err = walk_segment(dir, seqs[i], &w, &stored, &has_index);
		if (!err && has_index)
			check_index(&w, &stored);
		fatal += w.fatal;
		log_index_reset(&stored);
		log_index_reset(&w.idx);
		if (err) {
			free(seqs);
			return log_error(err, "log %s: %s", dir, strerror(-err));
		}
	}
	free(seqs);
	return fatal;
}

static int add_count(struct vms_log_count **list, size_t *n, const struct name_count *c)
{
	struct vms_log_count *more;

	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*list)[i].name, c->name)) {
			(*list)[i].events += c->count;
			return 0;
		}
	more = realloc(*list, (*n + 1) * sizeof(**list));
	if (!more)
		return -ENOMEM;
	*list = more;
	memset(&more[*n], 0, sizeof(more[*n]));
	snprintf(more[*n].name, sizeof(more[*n].name), "%s", c->name);
	more[(*n)++].events = c->count;
	return 0;
}

static int by_count(const void *a, const void *b)
{
	const struct vms_log_count *x = a, *y = b;

	return x->events != y->events ? (x->events < y->events ? 1 : -1)
				      : strcmp(x->name, y->name);
}

static int fold(struct vms_log_summary *s, const struct seg_index *idx)
{
	s->frames += idx->nr_entries;
	s->events += idx->events;
	s->raw_bytes += idx->raw_bytes;
	if (idx->events && (!s->first_ns || idx->min_ns < s->first_ns))
		s->first_ns = idx->min_ns;
	if (idx->max_ns > s->last_ns)
		s->last_ns = idx->max_ns;
	for (size_t i = 0; i < idx->nr_names; i++) {
		const struct name_count *c = &idx->names[i];
		int err = c->kind == NAME_TYPE ? add_count(&s->types, &s->nr_types, c)
					       : add_count(&s->vms, &s->nr_vms, c);

		if (err)
			return err;
	}
	return 0;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

static int summarize_segment(const char *dir, uint64_t seq, struct vms_log_summary *s)
{
	char path[4200], ipath[4200];
	struct seg_index idx;
	int err;

	log_seg_path(path, sizeof(path), dir, seq, "vlog");
	log_seg_path(ipath, sizeof(ipath), dir, seq, "vidx");
	s->segments++;
	s->stored_bytes += file_size(path) + file_size(ipath);
	if (!log_index_read(ipath, &idx) && idx.seg_size == file_size(path)) {
		s->sealed++;
		err = fold(s, &idx);
		log_index_reset(&idx);
		return err;
	}
	log_index_reset(&idx);
	{
		struct walk w = { 0 };
		struct seg_index stored;
		int has_index;

		err = walk_segment(dir, seq, &w, &stored, &has_index);
		log_index_reset(&stored);
		if (!err)
			err = fold(s, &w.idx);
		s->damaged_frames += w.damaged;
		s->torn_bytes += w.torn;
		log_index_reset(&w.idx);
	}
	return err;
}

int vms_log_summarize(const char *dir, struct vms_log_summary **ret_summary)
{
	struct vms_log_summary *s = calloc(1, sizeof(*s));
	uint64_t *seqs = NULL;
	size_t n = 0;
	int err = s ? log_seg_list(dir, &seqs, &n) : -ENOMEM;

	for (size_t i = 0; !err && i < n; i++)
		err = summarize_segment(dir, seqs[i], s);
	free(seqs);
	if (err) {
		vms_log_summary_free(s);
		return log_error(err, "log %s: %s", dir, strerror(-err));
	}
	if (s->nr_types)
		qsort(s->types, s->nr_types, sizeof(*s->types), by_count);
	if (s->nr_vms)
		qsort(s->vms, s->nr_vms, sizeof(*s->vms), by_count);
	*ret_summary = s;
	return 0;
}

void vms_log_summary_free(struct vms_log_summary *s)
{
	if (!s)
		return;
	free(s->types);
	free(s->vms);
	free(s);
}
