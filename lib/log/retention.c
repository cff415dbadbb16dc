// SPDX-License-Identifier: MIT
/*
 * Retention: whole sealed segments go, oldest first, while the log is over
 * its size or their newest event is over its age. The open segment never
 * goes, so a log is never emptied under its writer.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/format.h"

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

static int too_old(const char *ipath, uint64_t max_age_s)
{
	struct seg_index idx;
	struct timespec ts;
	int old;

	if (!max_age_s || log_index_read(ipath, &idx))
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	old = idx.max_ns / 1000000000u + max_age_s < (uint64_t)ts.tv_sec;
	log_index_reset(&idx);
	return old;
}

void log_retention(const char *dir, uint64_t current_seq, uint64_t max_bytes, uint64_t max_age_s,
		   uint64_t *ret_removed)
{
	char path[4200], ipath[4200];
	uint64_t *seqs, total = 0;
	size_t n;

	*ret_removed = 0;
	if ((!max_bytes && !max_age_s) || log_seg_list(dir, &seqs, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		log_seg_path(path, sizeof(path), dir, seqs[i], "vlog");
		log_seg_path(ipath, sizeof(ipath), dir, seqs[i], "vidx");
		total += file_size(path) + file_size(ipath);
	}
	for (size_t i = 0; i < n && seqs[i] < current_seq; i++) {
		uint64_t size;

		log_seg_path(path, sizeof(path), dir, seqs[i], "vlog");
		log_seg_path(ipath, sizeof(ipath), dir, seqs[i], "vidx");
		if (access(ipath, F_OK))
			break; /* unsealed: damaged, kept for verify */
		if (!(max_bytes && total > max_bytes) && !too_old(ipath, max_age_s))
			break;
		size = file_size(path) + file_size(ipath);
		if (unlink(path) || unlink(ipath))
			break;
		total -= size;
		(*ret_removed)++;
	}
	free(seqs);
}
