// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the log reader, verifier, summary and a writer's crash
 * recovery on a forged segment and index. Input: a flags byte; bit 0 set:
 * two big-endian bytes give the segment's length, the rest is its index.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmscope/log.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void put_file(const char *name, const uint8_t *p, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	if (len && fwrite(p, 1, len, f) != len)
		abort();
	fclose(f);
}

static void clear(void)
{
	static const char *const names[] = { "0000000000000001.vlog", "0000000000000001.vidx",
					      "0000000000000002.vlog", "0000000000000002.vidx",
					      "LOCK" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

static void ignore(void *ctx, int fatal, const char *line)
{
	(void)ctx;
	(void)fatal;
	(void)line;
}

static void read_all(void)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	struct vms_log_summary *s;
	struct vms_log_reader *r;
	static const char *const types[] = { "exec" };
	struct vms_log_filter f = { .sz = sizeof(f), .types = types, .nr_types = 1,
				    .since_ns = 1, .vm = "vm-a" };

	if (!vms_log_reader_open(dir, NULL, &r)) {
		while (vms_log_next(r, ev) == 1)
			;
		vms_log_reader_free(r);
	}
	if (!vms_log_reader_open(dir, &f, &r)) {
		while (vms_log_next(r, ev) == 1)
			;
		vms_log_reader_free(r);
	}
	if (!vms_log_summarize(dir, &s))
		vms_log_summary_free(s);
	vms_log_verify(dir, ignore, NULL);
	free(ev);
}

static void remove_dir(void)
{
	clear();
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t seg_len = size ? size - 1 : 0;
	struct vms_log *log;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/vmscope-fuzz-log.XXXXXX");
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
	}
	if (!size)
		return 0;
	clear();
	if (data[0] & 1) {
		if (size < 3)
			return 0;
		seg_len = (size_t)data[1] << 8 | data[2];
		if (seg_len > size - 3)
			seg_len = size - 3;
		put_file("0000000000000001.vlog", data + 3, seg_len);
		put_file("0000000000000001.vidx", data + 3 + seg_len, size - 3 - seg_len);
	} else {
		put_file("0000000000000001.vlog", data + 1, seg_len);
	}
	read_all();
	/* What a writer does first: cut a torn tail, seal; then read again. */
	if (!vms_log_open(dir, NULL, &log)) {
		vms_log_close(log);
		read_all();
	}
	clear();
	return 0;
}
