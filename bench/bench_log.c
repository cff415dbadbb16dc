// SPDX-License-Identifier: MIT
/*
 * The durable log at scale, each figure beside a baseline from the same run:
 *   write   N trace-like events through vms_log_append (writer thread, zstd,
 *           a sync a second) against the JSON-lines sink writing the same
 *           events to a file; bytes per event, log against JSON lines
 *   scan    every event read back (vms_log_next, no filter): events per second
 *   window  a 1-minute window found through the index (--since/--until) against
 *           a full scan that filters every event by its time
 *
 * Usage: bench_log [EVENTS] [DIR]   (default 10000000, a directory under /tmp)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vmscope/log.h>
#include <vmscope/sink.h>

#define BASE_NS	   1764633600000000000ull /* 2025-12-02T00:00:00Z */
#define SPACING_NS 1000000ull		  /* an event every ms: 10 M events span 2.8 h */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* exec, fork and exit as a busy guest makes them: pids rising, a few programs. */
static void sample_event(struct vms_event *ev, uint64_t i)
{
	static const char *const progs[] = { "/usr/bin/python3", "/bin/sh", "/usr/bin/git",
					     "/usr/sbin/cron", "/usr/bin/curl" };
	static const char *const types[] = { "fork", "exec", "exit" };
	const char *prog = progs[(i / 3) % 5];

	vms_event_init(ev, (i / 3) % 4 ? "web-1" : "db-1", VMS_SOURCE_TRACE, types[i % 3]);
	ev->time_ns = BASE_NS + i * SPACING_NS;
	vms_event_add_int(ev, "pid", (int64_t)(1000 + i / 3));
	vms_event_add_int(ev, "ppid", (int64_t)(900 + (i / 30)));
	if (i % 3 == 1) {
		vms_event_add_str(ev, "filename", prog);
		vms_event_add_str(ev, "argv", prog);
		vms_event_add_int(ev, "argc", 1);
		vms_event_add_bool(ev, "argv_truncated", 0);
	} else if (i % 3 == 2) {
		vms_event_add_int(ev, "code", (int64_t)(i % 7));
	}
	vms_event_add_str(ev, "comm", strrchr(prog, '/') + 1);
	vms_event_add_uint(ev, "cpu", i % 2);
}

static uint64_t dir_bytes(const char *dir)
{
	struct vms_log_summary *s;
	uint64_t n;

	if (vms_log_summarize(dir, &s))
		return 0;
	n = s->stored_bytes;
	vms_log_summary_free(s);
	return n;
}

static double write_jsonl(const char *path, uint64_t n, uint64_t *ret_bytes)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	FILE *f = fopen(path, "w");
	struct vms_sink *sink;
	struct stat st;
	double t0;

	if (!f || vms_sink_jsonl_new(f, &sink))
		exit(1);
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		sample_event(ev, i);
		vms_sink_write(sink, ev);
	}
	vms_sink_flush(sink);
	fflush(f);
	fdatasync(fileno(f));
	t0 = now_s() - t0;
	vms_sink_free(sink);
	fclose(f);
	*ret_bytes = stat(path, &st) ? 0 : (uint64_t)st.st_size;
	unlink(path);
	free(ev);
	return t0;
}

static double write_log(const char *dir, uint64_t n)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	struct vms_log_stats st;
	struct vms_log *log;
	double t0 = now_s();

	if (vms_log_open(dir, NULL, &log)) {
		fprintf(stderr, "bench_log: %s\n", vms_log_last_error());
		exit(1);
	}
	for (uint64_t i = 0; i < n; i++) {
		sample_event(ev, i);
		if (vms_log_append(log, ev))
			exit(1);
	}
	vms_log_get_stats(log, &st);
	if (vms_log_close(log))
		exit(1);
	t0 = now_s() - t0;
	printf("write: the writer waited for ring room on %" PRIu64 " of %" PRIu64 " appends\n",
	       st.waits, n);
	free(ev);
	return t0;
}

/* Events read with filter f; with window set, counted only inside it. */
static double scan(const char *dir, const struct vms_log_filter *f, const uint64_t *window,
		   uint64_t *ret_count, struct vms_log_read_stats *rs)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	struct vms_log_reader *r;
	uint64_t count = 0;
	double t0 = now_s();

	if (vms_log_reader_open(dir, f, &r))
		exit(1);
	while (vms_log_next(r, ev) == 1)
		count += !window || (ev->time_ns >= window[0] && ev->time_ns <= window[1]);
	vms_log_reader_get_stats(r, rs);
	vms_log_reader_free(r);
	*ret_count = count;
	free(ev);
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
	char dir[64] = "/tmp/vmscope-bench-log.XXXXXX", sub[96], json[96], cmd[128];
	uint64_t json_bytes, log_bytes, all, in_full, in_idx, window[2];
	struct vms_log_read_stats rs_full, rs_all, rs_idx;
	struct vms_log_filter f = { .sz = sizeof(f) };
	double t_json, t_log, t_all, t_full, t_idx;

	if (argc > 2)
		snprintf(dir, sizeof(dir), "%s", argv[2]);
	else if (!mkdtemp(dir))
		return 1;
	snprintf(sub, sizeof(sub), "%s/log", dir);
	snprintf(json, sizeof(json), "%s/events.jsonl", dir);
	t_json = write_jsonl(json, n, &json_bytes);
	t_log = write_log(sub, n);
	log_bytes = dir_bytes(sub);
	printf("%" PRIu64 " events (exec/fork/exit, 2 VMs), one a millisecond of log time\n", n);
	printf("%-34s %12s %12s %10s\n", "", "events/s", "bytes/event", "ratio");
	printf("%-34s %12.0f %12.1f %10s\n", "write: JSON lines to a file", n / t_json,
	       (double)json_bytes / (double)n, "1.00");
	printf("%-34s %12.0f %12.1f %10.2f\n", "write: log (zstd, synced 1/s)", n / t_log,
	       (double)log_bytes / (double)n, t_json / t_log);
	printf("storage: the log takes %.1f%% of the JSON lines' bytes\n",
	       100.0 * (double)log_bytes / (double)json_bytes);

	t_all = scan(sub, &f, NULL, &all, &rs_all);
	printf("%-34s %12.0f  (%" PRIu64 " events, %" PRIu64 " frames)\n", "scan: every event",
	       all / t_all, all, rs_all.frames_read);

	window[0] = BASE_NS + n / 2 * SPACING_NS;
	window[1] = window[0] + 60000000000ull - 1;
	t_full = scan(sub, &f, window, &in_full, &rs_full);
	f.since_ns = window[0];
	f.until_ns = window[1];
	t_idx = scan(sub, &f, NULL, &in_idx, &rs_idx);
	printf("window: 1 minute (%" PRIu64 " events) by full scan %.3f s, through the index "
	       "%.4f s (%" PRIu64 " frames read, %" PRIu64 " skipped): %.0fx faster%s\n",
	       in_full, t_full, t_idx, rs_idx.frames_read, rs_idx.frames_skipped, t_full / t_idx,
	       in_full == in_idx ? "" : " -- BUT THE COUNTS DIFFER");
	if (argc <= 2) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			return 1;
	}
	return in_full == in_idx ? 0 : 1;
}
