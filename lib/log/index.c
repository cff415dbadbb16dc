// SPDX-License-Identifier: MIT
/*
 * A sealed segment's index: one entry per frame (offset, time range, count,
 * type and VM masks) and the segment's event counts by type and VM, so that
 * queries skip frames and stats read no frame at all.
 *
 *   magic[8] version:2 0:2 nr_entries:4 nr_names:4 0:4 seg_size:8 events:8
 *   raw_bytes:8 min_ns:8 max_ns:8
 *   entries: offset:8 min_ns:8 max_ns:8 count:4 0:4 type_mask:8 vm_mask:8
 *   names:   kind:1 len:1 name count:8     (kind 0: an event type, 1: a VM)
 *   hash:8   over all the bytes before it
 *
 * It is written to a temporary name, synced and renamed, so it is either
 * whole or absent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/format.h"

void log_index_reset(struct seg_index *idx)
{
	free(idx->entries);
	free(idx->names);
	memset(idx, 0, sizeof(*idx));
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	void *more;
	size_t n = *cap ? *cap : 64;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	more = realloc(*p, n * elem);
	if (!more)
		return -ENOMEM;
	*p = more;
	*cap = n;
	return 0;
}

int log_index_add_frame(struct seg_index *idx, uint64_t off, const struct frame_hdr *h)
{
	struct idx_entry *e;

	if (idx->nr_entries >= IDX_MAX_FRAMES ||
	    grow((void **)&idx->entries, &idx->cap_entries, idx->nr_entries + 1, sizeof(*e)))
		return -ENOMEM;
	e = &idx->entries[idx->nr_entries++];
	*e = (struct idx_entry){ off, h->min_ns, h->max_ns, h->count, h->type_mask, h->vm_mask };
	if (!idx->events || h->min_ns < idx->min_ns)
		idx->min_ns = h->min_ns;
	if (h->max_ns > idx->max_ns)
		idx->max_ns = h->max_ns;
	idx->events += h->count;
	idx->raw_bytes += h->raw_len;
	return 0;
}

int log_index_count(struct seg_index *idx, int kind, const char *name, uint64_t n)
{
	struct name_count *c;

	for (size_t i = 0; i < idx->nr_names; i++)
		if (idx->names[i].kind == kind && !strcmp(idx->names[i].name, name)) {
			idx->names[i].count += n;
			return 0;
		}
	/* Names come from events, which bound them; their number is bounded here. */
	if (idx->nr_names >= IDX_MAX_NAMES)
		name = "(other)";
	if (idx->nr_names >= IDX_MAX_NAMES + 2 ||
	    grow((void **)&idx->names, &idx->cap_names, idx->nr_names + 1, sizeof(*c)))
		return idx->nr_names >= IDX_MAX_NAMES + 2 ? 0 : -ENOMEM;
	c = &idx->names[idx->nr_names++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->kind = (uint8_t)kind;
	c->count = n;
	return 0;
}

int log_index_count_raw(struct seg_index *idx, const uint8_t *raw, size_t len)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	size_t pos = 0;
	int err = 0;

	if (!ev)
		return -ENOMEM;
	while (!err && pos < len) {
		err = log_record_decode(raw, len, &pos, ev);
		if (!err)
			err = log_index_count(idx, NAME_TYPE, ev->type, 1);
		if (!err)
			err = log_index_count(idx, NAME_VM, ev->vm, 1);
	}
	free(ev);
	return err;
}

static size_t index_bytes(const struct seg_index *idx)
{
	size_t n = IDX_HDR_BYTES + idx->nr_entries * IDX_ENTRY_BYTES + 8;

	for (size_t i = 0; i < idx->nr_names; i++)
		n += 10 + strlen(idx->names[i].name);
	return n;
}

static void index_encode(const struct seg_index *idx, uint8_t *b, size_t len)
{
	uint8_t *p = b + IDX_HDR_BYTES;

	memset(b, 0, IDX_HDR_BYTES);
	memcpy(b, IDX_MAGIC, 8);
	put16(b + 8, VMS_LOG_FORMAT_VERSION);
	put32(b + 12, (uint32_t)idx->nr_entries);
	put32(b + 16, (uint32_t)idx->nr_names);
	put64(b + 24, idx->seg_size);
	put64(b + 32, idx->events);
	put64(b + 40, idx->raw_bytes);
	put64(b + 48, idx->min_ns);
	put64(b + 56, idx->max_ns);
	for (size_t i = 0; i < idx->nr_entries; i++, p += IDX_ENTRY_BYTES) {
		const struct idx_entry *e = &idx->entries[i];

		put64(p, e->offset);
		put64(p + 8, e->min_ns);
		put64(p + 16, e->max_ns);
		put32(p + 24, e->count);
		put32(p + 28, 0);
		put64(p + 32, e->type_mask);
		put64(p + 40, e->vm_mask);
	}
	for (size_t i = 0; i < idx->nr_names; i++) {
		size_t n = strlen(idx->names[i].name);

		p[0] = idx->names[i].kind;
		p[1] = (uint8_t)n;
		memcpy(p + 2, idx->names[i].name, n);
		put64(p + 2 + n, idx->names[i].count);
		p += 10 + n;
	}
	put64(p, log_hash(b, len - 8));
}

int log_index_write(const char *path, const struct seg_index *idx)
{
	size_t len = index_bytes(idx);
	uint8_t *b = malloc(len);
	char tmp[4200];
	int fd, err = 0;

	if (!b)
		return -ENOMEM;
	index_encode(idx, b, len);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (write(fd, b, len) != (ssize_t)len || fdatasync(fd))
		err = errno ? -errno : -EIO;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
out:
	free(b);
	return err;
}

static int decode_names(struct seg_index *idx, const uint8_t *p, const uint8_t *end,
			uint32_t nr_names)
{
	for (uint32_t i = 0; i < nr_names; i++) {
		char name[VMS_EVENT_VM_MAX];
		size_t n;

		if (end - p < 10 || (n = p[1]) >= sizeof(name) || (size_t)(end - p) < 10 + n ||
		    p[0] > NAME_VM || memchr(p + 2, 0, n))
			return -EBADMSG;
		memcpy(name, p + 2, n);
		name[n] = '\0';
		if (log_index_count(idx, p[0], name, get64(p + 2 + n)))
			return -ENOMEM;
		p += 10 + n;
	}
	return p == end ? 0 : -EBADMSG;
}

static int index_decode(struct seg_index *idx, const uint8_t *b, size_t len)
{
	uint32_t nr_entries, nr_names;
	const uint8_t *p = b + IDX_HDR_BYTES;

	if (len < IDX_HDR_BYTES + 8 || memcmp(b, IDX_MAGIC, 8) ||
	    get64(b + len - 8) != log_hash(b, len - 8))
		return -EBADMSG;
	if (get16(b + 8) != VMS_LOG_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	nr_entries = get32(b + 12);
	nr_names = get32(b + 16);
	if (nr_entries > IDX_MAX_FRAMES || nr_names > IDX_MAX_NAMES + 2 ||
	    (uint64_t)nr_entries * IDX_ENTRY_BYTES > len - IDX_HDR_BYTES - 8)
		return -EBADMSG;
	for (uint32_t i = 0; i < nr_entries; i++, p += IDX_ENTRY_BYTES) {
		struct frame_hdr h = { .raw_len = 0, .count = get32(p + 24),
				       .min_ns = get64(p + 8), .max_ns = get64(p + 16),
				       .type_mask = get64(p + 32), .vm_mask = get64(p + 40) };

		if (log_index_add_frame(idx, get64(p), &h))
			return -ENOMEM;
	}
	/* The header's figures are the index's word; the entries must agree with them. */
	if (idx->events != get64(b + 32) || (nr_entries && (idx->min_ns != get64(b + 48) ||
							    idx->max_ns != get64(b + 56))))
		return -EBADMSG;
	idx->seg_size = get64(b + 24);
	idx->raw_bytes = get64(b + 40);
	return decode_names(idx, p, b + len - 8, nr_names);
}

int log_index_read(const char *path, struct seg_index *idx)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;
	struct stat st;
	uint8_t *b;

	memset(idx, 0, sizeof(*idx));
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_size > (off_t)(IDX_HDR_BYTES + 8 +
						   (uint64_t)IDX_MAX_FRAMES * IDX_ENTRY_BYTES +
						   (IDX_MAX_NAMES + 2) * 74)) {
		close(fd);
		return -EBADMSG;
	}
	b = malloc((size_t)st.st_size + 1);
	err = b ? log_read_exact(fd, b, (size_t)st.st_size, 0) : -ENOMEM;
	close(fd);
	if (!err)
		err = index_decode(idx, b, (size_t)st.st_size);
	free(b);
	if (err)
		log_index_reset(idx);
	return err;
}

int log_frame_check(const uint8_t *raw, const struct frame_hdr *h)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	uint64_t min = UINT64_MAX, max = 0, types = 0, vms = 0;
	uint32_t count = 0;
	size_t pos = 0;
	int err = 0;

	if (!ev)
		return -ENOMEM;
	while (!err && pos < h->raw_len) {
		err = log_record_decode(raw, h->raw_len, &pos, ev);
		if (err)
			break;
		count++;
		min = ev->time_ns < min ? ev->time_ns : min;
		max = ev->time_ns > max ? ev->time_ns : max;
		types |= log_name_bit(ev->type);
		vms |= log_name_bit(ev->vm);
	}
	free(ev);
	if (err)
		return err;
	return count == h->count && min == h->min_ns && max == h->max_ns &&
			       types == h->type_mask && vms == h->vm_mask
		       ? 0
		       : -EBADMSG;
}

struct build {
	struct seg_index *idx;
	uint64_t end;
	int damaged;
};

static int build_frame(void *ctx, uint64_t off, const struct frame_hdr *h, const uint8_t *raw)
{
	struct build *b = ctx;
	int err = log_frame_check(raw, h);

	if (!err)
		err = log_index_count_raw(b->idx, raw, h->raw_len);
	if (!err)
		err = log_index_add_frame(b->idx, off, h);
	if (!err)
		b->end = off + FRAME_HDR_BYTES + h->stored_len;
	return err;
}

static int build_bad(void *ctx, uint64_t off, uint64_t next)
{
	struct build *b = ctx;

	(void)off;
	b->damaged = next != 0;
	return 1;
}

int log_index_build(int fd, uint64_t size, struct seg_index *idx, uint64_t *ret_end,
		    int *ret_damaged)
{
	struct build b = { idx, SEG_HDR_BYTES, 0 };
	struct seg_scan scan = { build_frame, build_bad, &b, 1 };
	int err;

	memset(idx, 0, sizeof(*idx));
	err = log_seg_scan(fd, size, &scan);
	*ret_end = b.end;
	*ret_damaged = b.damaged;
	return err;
}
