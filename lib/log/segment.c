// SPDX-License-Identifier: MIT
/*
 * Segment files: their header, their names in a directory, and walking
 * their frames. A walk stops at the first frame that does not check; what
 * follows it is a torn tail (a writer stopped mid-frame) unless a good frame
 * header can be found further on, which makes it damage.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log/format.h"

void log_seg_path(char *buf, size_t len, const char *dir, uint64_t seq, const char *ext)
{
	snprintf(buf, len, "%s/%016" PRIu64 ".%s", dir, seq, ext);
}

int log_seg_hdr_write(int fd, uint64_t seq, uint64_t created_ns)
{
	uint8_t h[SEG_HDR_BYTES] = { 0 };

	memcpy(h, SEG_MAGIC, 8);
	put16(h + 8, VMS_LOG_FORMAT_VERSION);
	put16(h + 10, SEG_HDR_BYTES);
	put64(h + 16, seq);
	put64(h + 24, created_ns);
	put64(h + 32, log_hash(h, 32));
	return pwrite(fd, h, sizeof(h), 0) == sizeof(h) ? 0 : -errno;
}

int log_seg_hdr_check(int fd, uint64_t *ret_seq)
{
	uint8_t h[SEG_HDR_BYTES];
	int err = log_read_exact(fd, h, sizeof(h), 0);

	if (err)
		return err;
	if (memcmp(h, SEG_MAGIC, 8) || get64(h + 32) != log_hash(h, 32))
		return -EBADMSG;
	if (get16(h + 8) != VMS_LOG_FORMAT_VERSION || get16(h + 10) != SEG_HDR_BYTES)
		return -EPROTONOSUPPORT;
	*ret_seq = get64(h + 16);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* "0000000000000042.vlog" and nothing else. */
static int seg_name(const char *name, uint64_t *ret_seq)
{
	uint64_t seq = 0;

	for (int i = 0; i < 16; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		seq = seq * 10 + (uint64_t)(name[i] - '0');
	}
	if (strcmp(name + 16, ".vlog"))
		return 0;
	*ret_seq = seq;
	return 1;
}

int log_seg_list(const char *dir, uint64_t **ret_seqs, size_t *ret_count)
{
	DIR *d = opendir(dir);
	uint64_t *seqs = NULL, seq;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!seg_name(de->d_name, &seq))
			continue;
		if (n == cap) {
			uint64_t *more = realloc(seqs, (cap = cap ? cap * 2 : 16) * sizeof(*seqs));

			if (!more) {
				free(seqs);
				closedir(d);
				return -ENOMEM;
			}
			seqs = more;
		}
		seqs[n++] = seq;
	}
	closedir(d);
	if (n)
		qsort(seqs, n, sizeof(*seqs), cmp_u64);
	*ret_seqs = seqs;
	*ret_count = n;
	return 0;
}

uint64_t log_seg_resync(int fd, uint64_t size, uint64_t off)
{
	enum { CHUNK = 1 << 20 };
	uint8_t *buf = malloc(CHUNK + FRAME_HDR_BYTES);
	struct frame_hdr h;
	uint64_t found = 0;

	if (!buf)
		return 0;
	for (uint64_t at = off + 1; !found && at + FRAME_HDR_BYTES <= size; at += CHUNK) {
		size_t len = size - at < CHUNK + FRAME_HDR_BYTES ? (size_t)(size - at)
								  : CHUNK + FRAME_HDR_BYTES;

		if (log_read_exact(fd, buf, len, at))
			break;
		for (size_t i = 0; i + FRAME_HDR_BYTES <= len && i < CHUNK; i++)
			if (get32(buf + i) == FRAME_MAGIC && !log_frame_hdr_decode(buf + i, &h)) {
				found = at + i;
				break;
			}
	}
	free(buf);
	return found;
}

int log_seg_scan(int fd, uint64_t size, const struct seg_scan *scan)
{
	uint64_t off = SEG_HDR_BYTES;
	int err = 0;

	while (off < size) {
		uint8_t hb[FRAME_HDR_BYTES], *raw = NULL;
		struct frame_hdr h;
		uint64_t next;

		err = off + FRAME_HDR_BYTES > size ? -EBADMSG : log_read_exact(fd, hb, sizeof(hb), off);
		if (!err)
			err = log_frame_hdr_decode(hb, &h);
		if (!err && h.stored_len > size - off - FRAME_HDR_BYTES)
			err = -EBADMSG;
		if (!err && scan->deep)
			err = log_frame_load(fd, off, &h, &raw);
		if (err == -ENOMEM)
			return err;
		if (!err)
			err = scan->frame ? scan->frame(scan->ctx, off, &h, raw) : 0;
		free(raw);
		if (err < 0 && err != -EBADMSG)
			return err;
		if (!err) {
			off += FRAME_HDR_BYTES + h.stored_len;
			continue;
		}
		next = log_seg_resync(fd, size, off);
		err = scan->bad ? scan->bad(scan->ctx, off, next) : 0;
		if (err || !next)
			return err < 0 ? err : 0;
		off = next;
	}
	return 0;
}
