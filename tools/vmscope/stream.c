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

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cli_sink_open(const char *url, struct vms_sink **ret)
{
	if (!strcmp(url, "jsonl") ? vms_sink_jsonl_new(stdout, ret)
				  : vms_sink_redis_new(url, NULL, ret))
		return cli_fail("bad sink \"%s\": expected jsonl or redis://HOST:PORT/STREAM", url);
	return 0;
}

void cli_stream_signals(void)
{
	/* SA_RESTART: a write to a full stdout pipe must resume, not lose half a line. */
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int cli_stream(struct vms_ring *ring, struct vms_sink *sink, double duration)
{
	double end = duration > 0 ? now_s() + duration : 0;

	cli_stream_signals();
	while (!stopping && (!end || now_s() < end)) {
		size_t moved = 0;

		if (vms_sink_drain(sink, ring, 0, &moved))
			return cli_fail("cannot write events");
		vms_sink_flush(sink);
		if (!moved)
			usleep(20000);
	}
	return 0;
}

void cli_stream_finish(struct vms_ring *ring, struct vms_sink *sink, const char *url)
{
	struct vms_sink_stats st;

	vms_sink_drain(sink, ring, 0, NULL);
	vms_sink_flush(sink);
	vms_sink_get_stats(sink, &st);
	if (strcmp(url, "jsonl"))
		fprintf(stderr,
			"; sink: %" PRIu64 " sent, %" PRIu64 " undelivered, %" PRIu64
			" dropped, %" PRIu64 " connections",
			st.sent, st.buffered, st.dropped, st.reconnects);
	fputc('\n', stderr);
}
