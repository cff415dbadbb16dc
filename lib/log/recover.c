// SPDX-License-Identifier: MIT
/*
 * What a writer does to a log before it appends: a segment left unsealed by
 * a writer that died is cut back to its last whole frame and sealed (its
 * index built from the frames), so that readers see whole frames only and
 * the cut is counted once. A segment with damage in the middle (a good frame
 * after a bad one) is left as it is, for `log verify` to report: cutting it
 * would throw away good frames.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/format.h"

static int seal_unsealed(const char *dir, uint64_t seq, uint64_t *torn_frames,
			 uint64_t *torn_bytes)
{
	char path[4200], ipath[4200];
	struct seg_index idx;
	uint64_t end, got_seq;
	struct stat st;
	int fd, resync, err;

	log_seg_path(path, sizeof(path), dir, seq, "vlog");
	log_seg_path(ipath, sizeof(ipath), dir, seq, "vidx");
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	err = log_seg_hdr_check(fd, &got_seq);
	if (err || got_seq != seq) {
		/* Only a header cut short by a crash is ours to clear away. */
		err = 0;
		if (st.st_size < SEG_HDR_BYTES) {
			*torn_bytes += (uint64_t)st.st_size;
			unlink(path);
		}
		goto out;
	}
	err = log_index_build(fd, (uint64_t)st.st_size, &idx, &end, &resync);
	if (err || resync)
		goto done;
	if (end < (uint64_t)st.st_size) {
		*torn_frames += 1;
		*torn_bytes += (uint64_t)st.st_size - end;
	}
	if (!idx.nr_entries) {
		unlink(path);
		goto done;
	}
	if (ftruncate(fd, (off_t)end) || fdatasync(fd)) {
		err = -errno;
		goto done;
	}
	idx.seg_size = end;
	err = log_index_write(ipath, &idx);
done:
	log_index_reset(&idx);
out:
	if (fd >= 0)
		close(fd);
	return err;
}

int log_recover(const char *dir, uint64_t *ret_next_seq, uint64_t *ret_torn_frames,
		uint64_t *ret_torn_bytes)
{
	uint64_t *seqs;
	size_t n;
	int err = log_seg_list(dir, &seqs, &n);

	*ret_torn_frames = *ret_torn_bytes = 0;
	if (err)
		return err;
	*ret_next_seq = n ? seqs[n - 1] + 1 : 1;
	for (size_t i = 0; !err && i < n; i++) {
		char ipath[4200];

		log_seg_path(ipath, sizeof(ipath), dir, seqs[i], "vidx");
		if (access(ipath, F_OK))
			err = seal_unsealed(dir, seqs[i], ret_torn_frames, ret_torn_bytes);
	}
	free(seqs);
	return err;
}
