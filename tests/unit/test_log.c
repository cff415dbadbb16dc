// SPDX-License-Identifier: MIT
/*
 * The durable log on a real directory: events come back exactly, filters
 * give exactly the matching subset, a torn tail is cut and counted, damage
 * is found and skipped, retention drops the oldest segments, one writer per
 * directory, and syncs are acknowledged.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include <vmscope/log.h>

static const char *const types[] = { "exec", "fork", "exit", "create" };
static const char *const vms[] = { "alpha", "beta" };
#define BASE_NS 1700000000000000000ull

/* Event i: a mix of every attribute type, strings with NULs and bad UTF-8. */
static void make_event(struct vms_event *ev, unsigned int i)
{
	char path[64];

	vms_event_init(ev, vms[i % 2], i % 7 ? VMS_SOURCE_TRACE : VMS_SOURCE_DISK, types[i % 4]);
	ev->time_ns = BASE_NS + (uint64_t)i * 1000000; /* 1 ms apart */
	snprintf(path, sizeof(path), "/usr/bin/prog-%u", i);
	assert_int_equal(vms_event_add_uint(ev, "seq", i), 0);
	assert_int_equal(vms_event_add_int(ev, "delta", -(int64_t)i), 0);
	assert_int_equal(vms_event_add_str(ev, "path", path), 0);
	assert_int_equal(vms_event_add_bool(ev, "ok", i & 1), 0);
	assert_int_equal(vms_event_add_double(ev, "ratio", i % 5 ? i / 3.0 : NAN), 0);
	assert_int_equal(vms_event_add_strn(ev, "raw", "a\0b\xff", 4), 0);
}

static void assert_same_event(const struct vms_event *a, const struct vms_event *b)
{
	assert_int_equal(a->time_ns, b->time_ns);
	assert_int_equal(a->source, b->source);
	assert_string_equal(a->vm, b->vm);
	assert_string_equal(a->type, b->type);
	assert_int_equal(a->nr_attrs, b->nr_attrs);
	for (unsigned int i = 0; i < a->nr_attrs; i++) {
		assert_string_equal(vms_event_attr_key(a, i), vms_event_attr_key(b, i));
		assert_int_equal(a->attrs[i].type, b->attrs[i].type);
		if (a->attrs[i].type == VMS_ATTR_STR) {
			assert_int_equal(a->attrs[i].str_len, b->attrs[i].str_len);
			assert_memory_equal(vms_event_attr_str(a, i), vms_event_attr_str(b, i),
					    a->attrs[i].str_len);
		} else if (a->attrs[i].type == VMS_ATTR_BOOL) {
			assert_int_equal(a->attrs[i].v.b, b->attrs[i].v.b);
		} else {
			assert_int_equal(a->attrs[i].v.u, b->attrs[i].v.u); /* NaN's bits too */
		}
	}
}

static char *new_dir(void)
{
	char *dir = strdup("/tmp/vmscope-test-log.XXXXXX");

	assert_non_null(mkdtemp(dir));
	return dir;
}

static void remove_dir(char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

static void write_events(const char *dir, unsigned int from, unsigned int n,
			 const struct vms_log_opts *opts, struct vms_log_stats *ret)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	struct vms_log *log;

	assert_int_equal(vms_log_open(dir, opts, &log), 0);
	for (unsigned int i = from; i < from + n; i++) {
		make_event(ev, i);
		assert_int_equal(vms_log_append(log, ev), 0);
	}
	if (ret) {
		assert_int_equal(vms_log_sync(log), 0);
		vms_log_get_stats(log, ret);
	}
	assert_int_equal(vms_log_close(log), 0);
	free(ev);
}

/* Read back with filter f; every event must be make_event(seq) for the seqs in order. */
static unsigned int read_check(const char *dir, const struct vms_log_filter *f,
			       int (*want)(unsigned int, const void *), const void *arg,
			       unsigned int first, unsigned int last,
			       struct vms_log_read_stats *ret_stats)
{
	struct vms_event *ev = malloc(sizeof(*ev)), *exp = malloc(sizeof(*exp));
	struct vms_log_reader *r;
	unsigned int got = 0, next = first;
	int rc;

	assert_int_equal(vms_log_reader_open(dir, f, &r), 0);
	while ((rc = vms_log_next(r, ev)) == 1) {
		const struct vms_attr *seq = vms_event_find(ev, "seq");

		assert_non_null(seq);
		while (next <= last && want && !want(next, arg))
			next++;
		assert_int_equal(seq->v.u, next);
		make_event(exp, next++);
		assert_same_event(ev, exp);
		got++;
	}
	assert_int_equal(rc, 0);
	while (next <= last && want && !want(next, arg))
		next++;
	assert_true(next > last); /* nothing wanted was missed */
	if (ret_stats)
		vms_log_reader_get_stats(r, ret_stats);
	vms_log_reader_free(r);
	free(ev);
	free(exp);
	return got;
}

static void verify_counts(void *ctx, int fatal, const char *line)
{
	int *counts = ctx;

	counts[!!fatal]++;
	(void)line;
}

static int verify(const char *dir, int *ret_notes)
{
	int counts[2] = { 0, 0 };
	int fatal = vms_log_verify(dir, verify_counts, counts);

	assert_int_equal(fatal, counts[1]);
	if (ret_notes)
		*ret_notes = counts[0];
	return fatal;
}

static void test_round_trip(void **state)
{
	char *dir = new_dir();
	struct vms_log_summary *s;
	struct vms_log_stats st;

	(void)state;
	write_events(dir, 0, 20000, NULL, &st);
	assert_int_equal(st.appended, 20000);
	assert_int_equal(st.durable, 20000);
	assert_true(st.stored_bytes < st.raw_bytes / 4); /* zstd finds the repeats */
	assert_int_equal(read_check(dir, NULL, NULL, NULL, 0, 19999, NULL), 20000);
	assert_int_equal(verify(dir, NULL), 0);
	assert_int_equal(vms_log_summarize(dir, &s), 0);
	assert_int_equal(s->events, 20000);
	assert_int_equal(s->first_ns, BASE_NS);
	assert_int_equal(s->last_ns, BASE_NS + 19999ull * 1000000);
	assert_int_equal(s->nr_types, 4);
	assert_int_equal(s->types[0].events, 5000);
	assert_int_equal(s->nr_vms, 2);
	assert_int_equal(s->vms[0].events + s->vms[1].events, 20000);
	assert_int_equal(s->raw_bytes, st.raw_bytes);
	vms_log_summary_free(s);
	/* A second writer appends after the first: one log, in order. */
	write_events(dir, 20000, 500, NULL, NULL);
	assert_int_equal(read_check(dir, NULL, NULL, NULL, 0, 20499, NULL), 20500);
	remove_dir(dir);
}

struct window {
	uint64_t since, until;
	const char *type, *vm;
};

static int in_window(unsigned int i, const void *arg)
{
	const struct window *w = arg;
	uint64_t t = BASE_NS + (uint64_t)i * 1000000;

	return t >= w->since && (!w->until || t <= w->until) &&
	       (!w->type || !strcmp(types[i % 4], w->type)) && (!w->vm || !strcmp(vms[i % 2], w->vm));
}

static void test_filters_are_exact(void **state)
{
	struct vms_log_opts opts = { .sz = sizeof(opts), .segment_bytes = 64 << 10 };
	char *dir = new_dir();
	struct vms_log_read_stats rs;
	static const char *const fork_only[] = { "fork" };

	(void)state;
	write_events(dir, 0, 30000, &opts, NULL);
	{
		struct window w = { BASE_NS + 10000ull * 1000000, BASE_NS + 10999ull * 1000000 };
		struct vms_log_filter f = { .sz = sizeof(f), .since_ns = w.since,
					    .until_ns = w.until };

		assert_int_equal(read_check(dir, &f, in_window, &w, 0, 29999, &rs), 1000);
		/* The index ruled out most frames without reading them. */
		assert_true(rs.frames_skipped > 4 * rs.frames_read);
		assert_true(rs.events_scanned < 10000);
	}
	{
		struct window w = { 0, 0, "fork", "beta" };
		struct vms_log_filter f = { .sz = sizeof(f), .types = fork_only, .nr_types = 1,
					    .vm = "beta" };

		assert_int_equal(read_check(dir, &f, in_window, &w, 0, 29999, NULL), 7500);
	}
	{
		struct window w = { 0, 0, "fork", "alpha" }; /* forks are odd, alpha even: none */
		struct vms_log_filter f = { .sz = sizeof(f), .types = fork_only, .nr_types = 1,
					    .vm = "alpha" };

		assert_int_equal(read_check(dir, &f, in_window, &w, 0, 29999, NULL), 0);
	}
	remove_dir(dir);
	/* One segment: the frames' own index entries rule most of it out. */
	dir = new_dir();
	write_events(dir, 0, 30000, NULL, NULL);
	{
		struct window w = { BASE_NS + 10000ull * 1000000, BASE_NS + 10999ull * 1000000 };
		struct vms_log_filter f = { .sz = sizeof(f), .since_ns = w.since,
					    .until_ns = w.until };

		assert_int_equal(read_check(dir, &f, in_window, &w, 0, 29999, &rs), 1000);
		assert_int_equal(rs.segments, 1);
		assert_true(rs.frames_read >= 1 && rs.frames_skipped > 2 * rs.frames_read);
	}
	remove_dir(dir);
}

static uint64_t last_segment(const char *dir, char *path, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char best[256] = "";

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".vlog") && strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	closedir(d);
	assert_true(best[0]);
	snprintf(path, len, "%s/%s", dir, best);
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		return (uint64_t)st.st_size;
	}
}

static void unseal(const char *seg)
{
	char idx[4200];

	snprintf(idx, sizeof(idx), "%.*s.vidx", (int)(strlen(seg) - 5), seg);
	assert_int_equal(unlink(idx), 0);
}

static void append_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_torn_tail_is_cut_and_counted(void **state)
{
	char *dir = new_dir(), seg[4200], head[200];
	struct vms_log_stats st;
	struct vms_log *log;
	uint64_t size;
	int notes, fd;

	(void)state;
	write_events(dir, 0, 3000, NULL, NULL);
	size = last_segment(dir, seg, sizeof(seg));
	/* What a writer killed mid-pwrite leaves: the start of a frame, unsealed. */
	fd = open(seg, O_RDONLY);
	assert_int_equal(pread(fd, head, sizeof(head), 40), (ssize_t)sizeof(head));
	close(fd);
	unseal(seg);
	append_bytes(seg, head, sizeof(head));
	assert_int_equal(verify(dir, &notes), 0); /* what a crash leaves is not damage */
	assert_int_equal(notes, 1);
	assert_int_equal(read_check(dir, NULL, NULL, NULL, 0, 2999, NULL), 3000);
	/* The next writer cuts it, counts it and seals the segment. */
	assert_int_equal(vms_log_open(dir, NULL, &log), 0);
	vms_log_get_stats(log, &st);
	assert_int_equal(st.torn_frames, 1);
	assert_int_equal(st.torn_bytes, sizeof(head));
	assert_int_equal(vms_log_close(log), 0);
	assert_int_equal(verify(dir, &notes), 0);
	assert_int_equal(notes, 0);
	assert_int_equal(last_segment(dir, seg, sizeof(seg)) > 0, 1);
	{
		char first[4200];
		struct stat sb;

		snprintf(first, sizeof(first), "%s/0000000000000001.vlog", dir);
		assert_int_equal(stat(first, &sb), 0);
		assert_int_equal((uint64_t)sb.st_size, size);
	}
	remove_dir(dir);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_damage_is_found_and_skipped(void **state)
{
	struct vms_log_opts opts = { .sz = sizeof(opts), .segment_bytes = 1 << 20 };
	char *dir = new_dir(), seg[4200];
	struct vms_log_read_stats rs;
	struct vms_log_reader *r;
	struct vms_event *ev = malloc(sizeof(*ev));
	unsigned int got = 0;
	uint32_t stored;
	uint64_t size;

	(void)state;
	write_events(dir, 0, 20000, &opts, NULL);
	size = last_segment(dir, seg, sizeof(seg));
	/* Late in the first frame's payload, where zstd itself may not notice:
	 * the frame's checksum must, and no changed event may come out. */
	{
		unsigned char hb[8];
		int fd = open(seg, O_RDONLY);

		assert_int_equal(pread(fd, hb, 8, 40), 8);
		close(fd);
		stored = hb[4] | hb[5] << 8 | (uint32_t)hb[6] << 16 | (uint32_t)hb[7] << 24;
	}
	flip_byte(seg, 40 + 64 + stored - 40);
	assert_true(verify(dir, NULL) >= 1);
	assert_int_equal(vms_log_reader_open(dir, NULL, &r), 0);
	while (vms_log_next(r, ev) == 1) {
		struct vms_event *want = malloc(sizeof(*want));

		make_event(want, (unsigned int)vms_event_find(ev, "seq")->v.u);
		assert_same_event(ev, want);
		free(want);
		got++;
	}
	vms_log_reader_get_stats(r, &rs);
	vms_log_reader_free(r);
	assert_int_equal(rs.damaged_frames, 1);
	assert_true(got > 0 && got < 20000);
	/* A sealed segment cut short is damage too. */
	flip_byte(seg, 40 + 64 + stored - 40);
	assert_int_equal(verify(dir, NULL), 0);
	assert_int_equal(truncate(seg, (off_t)(size - 7)), 0);
	assert_true(verify(dir, NULL) >= 1);
	free(ev);
	remove_dir(dir);
}

/*
 * A frame whose payload is valid zstd of the right length, but not the bytes
 * its header hashed: only the payload hash can tell (the header is made to
 * check itself again), so this fails if that check goes.
 */
static void test_payload_hash_is_checked(void **state)
{
	char *dir = new_dir(), seg[4200];
	struct vms_log_read_stats rs;
	struct vms_log_reader *r;
	struct vms_event *ev = malloc(sizeof(*ev));
	unsigned char hdr[64];
	uint64_t hash;
	int fd;

	(void)state;
	write_events(dir, 0, 20000, NULL, NULL);
	last_segment(dir, seg, sizeof(seg));
	fd = open(seg, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, hdr, sizeof(hdr), 40), sizeof(hdr));
	hdr[48] ^= 1; /* payload_hash */
	hash = XXH3_64bits(hdr, 56);
	for (int i = 0; i < 8; i++)
		hdr[56 + i] = (unsigned char)(hash >> (8 * i));
	assert_int_equal(pwrite(fd, hdr, sizeof(hdr), 40), sizeof(hdr));
	close(fd);
	assert_true(verify(dir, NULL) >= 1);
	assert_int_equal(vms_log_reader_open(dir, NULL, &r), 0);
	while (vms_log_next(r, ev) == 1)
		;
	vms_log_reader_get_stats(r, &rs);
	vms_log_reader_free(r);
	assert_int_equal(rs.damaged_frames, 1);
	free(ev);
	remove_dir(dir);
}

static void test_retention_drops_oldest(void **state)
{
	struct vms_log_opts opts = { .sz = sizeof(opts), .segment_bytes = 32 << 10,
				     .max_bytes = 128 << 10, .sync_events = 500 };
	char *dir = new_dir();
	struct vms_log_stats st;
	struct vms_log_summary *s;

	(void)state;
	write_events(dir, 0, 60000, &opts, &st);
	assert_true(st.segments_removed > 0);
	assert_int_equal(vms_log_summarize(dir, &s), 0);
	assert_true(s->stored_bytes <= (128 << 10) + (64 << 10));
	assert_true(s->events > 0 && s->events < 60000);
	/* What is left is the newest part, whole and in order. */
	assert_int_equal(read_check(dir, NULL, NULL, NULL, 60000 - (unsigned int)s->events, 59999,
				    NULL), s->events);
	vms_log_summary_free(s);
	remove_dir(dir);
}

static void count_syncs(void *ctx, uint64_t durable)
{
	uint64_t *last = ctx;

	assert_true(durable >= *last);
	*last = durable;
}

static void test_one_writer_and_sync_acks(void **state)
{
	uint64_t acked = 0;
	struct vms_log_opts opts = { .sz = sizeof(opts), .sync_events = 100,
				     .on_sync = count_syncs, .ctx = &acked };
	struct vms_event *ev = malloc(sizeof(*ev));
	char *dir = new_dir();
	struct vms_log *log, *other;

	(void)state;
	assert_int_equal(vms_log_open(dir, &opts, &log), 0);
	assert_int_equal(vms_log_open(dir, NULL, &other), -EBUSY);
	assert_non_null(strstr(vms_log_last_error(), "another writer"));
	for (unsigned int i = 0; i < 1000; i++) {
		make_event(ev, i);
		assert_int_equal(vms_log_append(log, ev), 0);
	}
	assert_int_equal(vms_log_sync(log), 0);
	assert_int_equal(acked, 1000);
	assert_int_equal(vms_log_close(log), 0);
	assert_int_equal(vms_log_reader_open("/nonexistent/log", NULL, (void *)&other), -ENOENT);
	free(ev);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_filters_are_exact),
		cmocka_unit_test(test_torn_tail_is_cut_and_counted),
		cmocka_unit_test(test_damage_is_found_and_skipped),
		cmocka_unit_test(test_payload_hash_is_checked),
		cmocka_unit_test(test_retention_drops_oldest),
		cmocka_unit_test(test_one_writer_and_sync_acks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
