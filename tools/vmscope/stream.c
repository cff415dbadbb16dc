// SPDX-License-Identifier: MIT
/*
 * What the streaming commands (capture, fswatch) share: a sink from its
 * URL, the loop that moves events from the ring to the sink until the
 * duration ends or SIGINT/SIGTERM, and the sink's part of the summary.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vmscope/log.h>

#include "cli.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define RING_SLOTS 8192

void cli_print_event(const struct vms_event *ev, int with_time)
{
	if (with_time) {
		time_t s = (time_t)(ev->time_ns / 1000000000u);
		struct tm tm;

		gmtime_r(&s, &tm);
		printf("%04d-%02d-%02dT%02d:%02d:%02d.%06uZ %s ", tm.tm_year + 1900, tm.tm_mon + 1,
		       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       (unsigned int)(ev->time_ns % 1000000000u / 1000), ev->vm);
	}
	printf("%s", ev->type);
	for (unsigned int i = 0; i < ev->nr_attrs; i++) {
		const struct vms_attr *a = &ev->attrs[i];

		printf(" %s=", vms_event_attr_key(ev, i));
		switch (a->type) {
		case VMS_ATTR_INT: printf("%" PRId64, a->v.i); break;
		case VMS_ATTR_UINT: printf("%" PRIu64, a->v.u); break;
		case VMS_ATTR_BOOL: printf("%s", a->v.b ? "true" : "false"); break;
		case VMS_ATTR_DOUBLE: printf("%g", a->v.d); break;
		default: printf(strchr(vms_event_attr_str(ev, i), ' ') ? "\"%s\"" : "%s",
				vms_event_attr_str(ev, i));
		}
	}
	putchar('\n');
}

int cli_log_option(struct cli_log *log, int opt, const char *arg)
{
	uint64_t ms;

	switch (opt) {
	case 0x4c01:
		log->dir = arg;
		return 1;
	case 0x4c02:
		if (cli_parse_u64(arg, "--log-sync", &ms))
			return -1;
		if (!ms || ms > 3600000)
			return cli_fail("--log-sync %s: milliseconds, from 1 to 3600000", arg), -1;
		log->sync_ms = (unsigned int)ms;
		return 1;
	case 0x4c03:
		log->acks = 1;
		return 1;
	}
	return 0;
}

static void print_ack(void *ctx, uint64_t durable)
{
	(void)ctx;
	fprintf(stderr, "log: %" PRIu64 " events durable\n", durable);
}

int cli_log_open(const struct cli_log *log, struct vms_sink **ret_sink)
{
	struct vms_log_opts o = { .sz = sizeof(o), .sync_ms = log->sync_ms };

	if (log->acks)
		o.on_sync = print_ack;
	if (vms_sink_log_new(log->dir, &o, ret_sink))
		return cli_fail("%s", vms_log_last_error());
	return 0;
}

void cli_log_summary(struct vms_sink *log_sink)
{
	struct vms_log_stats ls;

	vms_log_get_stats(vms_sink_log_get(log_sink), &ls);
	fprintf(stderr, "log: %" PRIu64 " events durable, %" PRIu64 " bytes stored (%" PRIu64
		" before compression)", ls.durable, ls.stored_bytes, ls.raw_bytes);
}

int cli_log_finish(struct vms_sink *log_sink)
{
	struct vms_log *log = vms_sink_log_get(log_sink);
	struct vms_log_stats ls;

	if (!log)
		return 0;
	vms_log_sync(log);
	vms_log_get_stats(log, &ls);
	fputs("vmscope: ", stderr);
	cli_log_summary(log_sink);
	fputc('\n', stderr);
	return ls.error ? cli_fail("the log failed: %s", strerror(-ls.error)) : 0;
}

int cli_sink_open(const char *url, struct vms_sink **ret_sink)
{
	if (!strcmp(url, "jsonl") ? vms_sink_jsonl_new(stdout, ret_sink)
				  : vms_sink_redis_new(url, NULL, ret_sink))
		return cli_fail("bad sink \"%s\": expected jsonl or redis://HOST:PORT/STREAM", url);
	return 0;
}

/* The output sink, teed into the log when there is one. */
static int open_sinks(struct cli_stream *st, const char *sink_url, const struct cli_log *log)
{
	struct vms_sink *out, *both;

	if (cli_sink_open(sink_url, &out))
		return 1;
	if (!log || !log->dir) {
		st->sink = out;
		return 0;
	}
	if (cli_log_open(log, &st->log)) {
		vms_sink_free(out);
		return 1;
	}
	if (vms_sink_tee_new(out, st->log, &both)) {
		vms_sink_free(out);
		vms_sink_free(st->log);
		st->log = NULL;
		return cli_fail("out of memory");
	}
	st->sink = both;
	return 0;
}

int cli_stream_open(struct cli_stream *st, const char *target, const char *sink_url,
		    const struct cli_log *log)
{
	memset(st, 0, sizeof(*st));
	st->sink_url = sink_url;
	if (vms_ring_new(RING_SLOTS, &st->ring))
		return cli_fail("out of memory");
	if (open_sinks(st, sink_url, log)) {
		cli_stream_close(st);
		return 1;
	}
	st->vm = cli_attach(target);
	if (!st->vm) {
		cli_stream_close(st);
		return 1;
	}
	return 0;
}

void cli_stream_close(struct cli_stream *st)
{
	vms_vm_free(st->vm);
	vms_sink_free(st->sink);
	vms_ring_free(st->ring);
	memset(st, 0, sizeof(*st));
}

int cli_stream(struct cli_stream *st, double duration)
{
	struct vms_ring *ring = st->ring;
	struct vms_sink *sink = st->sink;
	double end = duration > 0 ? now_s() + duration : 0, next_check = 0;

	cli_stop_on_signals();
	while (!cli_stopping() && (!end || now_s() < end)) {
		size_t moved = 0;

		/* Twice a second: the producer's figures are not free to gather. */
		if (st->failed && now_s() >= next_check) {
			if (st->failed(st->failed_ctx))
				return 1; /* the reason comes with the producer's stop */
			next_check = now_s() + 0.5;
		}

		if (vms_sink_drain(sink, ring, 0, &moved))
			return cli_fail("cannot write events");
		vms_sink_flush(sink);
		if (!moved)
			usleep(20000);
	}
	return 0;
}

void cli_stream_finish(struct cli_stream *st)
{
	struct vms_sink_stats ss;

	vms_sink_drain(st->sink, st->ring, 0, NULL);
	vms_sink_flush(st->sink);
	vms_sink_get_stats(st->sink, &ss);
	if (st->log) {
		vms_log_sync(vms_sink_log_get(st->log));
		fputs("; ", stderr);
		cli_log_summary(st->log);
	}
	if (strcmp(st->sink_url, "jsonl"))
		fprintf(stderr,
			"; sink: %" PRIu64 " sent, %" PRIu64 " undelivered, %" PRIu64
			" dropped, %" PRIu64 " connections",
			ss.sent, ss.buffered, ss.dropped, ss.reconnects);
	fputc('\n', stderr);
}

int cli_parse_capture_mode(const char *text, enum vms_capture_mode *ret)
{
	if (!vms_capture_mode_parse(text, ret))
		return 0;
	return cli_fail("--mode: blocking (the guest's writes wait for vmscope), background or "
			"bitmap (they never do), not \"%s\"",
			text);
}

int cli_parse_interval(const char *text, uint32_t *ret)
{
	uint64_t ms;

	if (cli_parse_u64(text, "--interval", &ms))
		return 1;
	if (ms < VMS_CAPTURE_INTERVAL_MIN_MS || ms > VMS_CAPTURE_INTERVAL_MAX_MS)
		return cli_fail("--interval: milliseconds between polls, from %u to %u, not %s",
				VMS_CAPTURE_INTERVAL_MIN_MS, VMS_CAPTURE_INTERVAL_MAX_MS, text);
	*ret = (uint32_t)ms;
	return 0;
}

int cli_check_interval(enum vms_capture_mode mode, uint32_t interval_ms)
{
	if (interval_ms && mode != VMS_CAPTURE_BITMAP)
		return cli_fail(
			"--interval is the bitmap mode's poll interval: give --mode bitmap");
	return 0;
}
