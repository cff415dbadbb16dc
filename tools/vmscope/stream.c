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

#include "cli.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define RING_SLOTS 8192

int cli_stream_open(struct cli_stream *st, const char *target, const char *sink_url)
{
	memset(st, 0, sizeof(*st));
	st->sink_url = sink_url;
	if (vms_ring_new(RING_SLOTS, &st->ring))
		return cli_fail("out of memory");
	if (!strcmp(sink_url, "jsonl") ? vms_sink_jsonl_new(stdout, &st->sink)
				       : vms_sink_redis_new(sink_url, NULL, &st->sink)) {
		cli_stream_close(st);
		return cli_fail("bad sink \"%s\": expected jsonl or redis://HOST:PORT/STREAM",
				sink_url);
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
	double end = duration > 0 ? now_s() + duration : 0;

	cli_stop_on_signals();
	while (!cli_stopping() && (!end || now_s() < end)) {
		size_t moved = 0;

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
	if (strcmp(st->sink_url, "jsonl"))
		fprintf(stderr,
			"; sink: %" PRIu64 " sent, %" PRIu64 " undelivered, %" PRIu64
			" dropped, %" PRIu64 " connections",
			ss.sent, ss.buffered, ss.dropped, ss.reconnects);
	fputc('\n', stderr);
}
