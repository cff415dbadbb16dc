// SPDX-License-Identifier: MIT
/*
 * vmscope trace TARGET [--events exec,fork,...] [--poll HZ] [--duration S] [--json]:
 * events from inside the guest until the duration ends or SIGINT/SIGTERM,
 * as text lines or (--json) JSON lines. Breakpoints by default (nothing
 * lost, a stop per event); --poll HZ diffs the process, module and socket
 * views instead (no stops, short-lived things missed). The end detaches
 * cleanly and prints a one-line summary on stderr.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vmscope/log.h>
#include <vmscope/trace.h>

#include "cli.h"

#define RUN_SLICE_MS 50
#define RUN_EVENTS   1024

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* To the JSON sink (teed into the log, if any), or as text and to the log. */
static void drain(struct cli_stream *st, int json)
{
	const struct vms_event *ev;

	if (json) {
		vms_sink_drain(st->sink, st->ring, 0, NULL);
		vms_sink_flush(st->sink);
		return;
	}
	while ((ev = vms_ring_peek(st->ring))) {
		if (st->log)
			vms_sink_write(st->log, ev);
		cli_print_event(ev, 0);
		vms_ring_release(st->ring);
	}
	fflush(stdout);
}

static int parse_events(const char *list, unsigned int *ret)
{
	char *copy = strdup(list), *save = NULL;

	*ret = 0;
	for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		int p = vms_probe_by_name(name);

		if (p < 0) {
			int status = cli_fail("unknown event \"%s\" (exec, fork, exit, module_load, "
					      "module_unload, open, connect, accept)", name);

			free(copy);
			return status;
		}
		*ret |= 1u << p;
	}
	free(copy);
	return *ret ? 0 : cli_fail("--events names no event");
}

/* "vmscope: through the process-events connector: exec, fork, exit" and likewise. */
static void print_methods(const struct vms_trace *t)
{
	static const char *const methods[] = { "connector", "breakpoint" };
	static const char *const says[] = { "through the process-events connector",
					    "at breakpoints" };

	for (int m = 0; m < 2; m++) {
		const char *sep = ": ";

		for (int p = 0; p < VMS_PROBE__COUNT; p++) {
			const char *how = vms_trace_probe_method(t, p);

			if (!how || strcmp(how, methods[m]))
				continue;
			if (*sep == ':')
				fprintf(stderr, "vmscope: %s", says[m]);
			fprintf(stderr, "%s%s", sep, vms_probe_name(p));
			sep = ", ";
		}
		if (*sep == ',')
			fputc('\n', stderr);
	}
}

static int trace_loop(struct cli_stream *s, unsigned int probes, unsigned int flags, int json,
		      double duration)
{
	struct vms_vm *vm = s->vm;
	long long end = duration > 0 ? now_ms() + (long long)(duration * 1000) : 0;
	struct vms_trace_stats st;
	struct vms_trace *t;
	int status = 0;

	if (vms_trace_start(vm, probes, flags, s->ring, &t))
		return cli_fail("%s", vms_last_error(vm));
	for (int p = 0; p < VMS_PROBE__COUNT; p++)
		if (vms_trace_probe_status(t, p))
			fprintf(stderr, "vmscope: %s unavailable: %s\n", vms_probe_name(p),
				vms_trace_probe_status(t, p));
	print_methods(t);
	fprintf(stderr, "vmscope: tracing; stop with Ctrl-C\n");
	fflush(stderr);
	while (!cli_stopping() && (!end || now_ms() < end)) {
		if (vms_trace_run(t, RUN_SLICE_MS, RUN_EVENTS) < 0) {
			status = cli_fail("%s", vms_last_error(vm));
			break;
		}
		drain(s, json);
	}
	vms_trace_get_stats(t, &st);
	if (vms_trace_stop(t))
		status = cli_fail("%s", vms_last_error(vm));
	drain(s, json);
	fprintf(stderr,
		"vmscope: %" PRIu64 " events from %" PRIu64 " stops (%u probes set, %u "
		"unavailable), %" PRIu64 " not queued, %" PRIu64 " partly decoded, %" PRIu64
		" single-stepped, %" PRIu64 " returns not watched; VM stopped %.3f s in all\n",
		st.events, st.hits, st.probes_set, st.probes_unavailable, st.dropped, st.errors,
		st.single_steps, st.returns_lost, st.stopped_s);
	if (s->log && cli_log_finish(s->log))
		status = 1;
	return status;
}

static int poll_loop(struct cli_stream *s, double hz, int json, double duration)
{
	struct vms_vm *vm = s->vm;
	long long end = duration > 0 ? now_ms() + (long long)(duration * 1000) : 0;
	long long period = (long long)(1000 / hz), next = now_ms();
	uint64_t polls = 0, events = 0;
	struct vms_poll *p;

	if (vms_poll_start(vm, VMS_POLL_ALL, s->ring, &p))
		return cli_fail("%s", vms_last_error(vm));
	fprintf(stderr, "vmscope: polling %.3g times a second; stop with Ctrl-C\n", hz);
	fflush(stderr);
	while (!cli_stopping() && (!end || now_ms() < end)) {
		int n;

		if (now_ms() < next) {
			usleep(1000);
			continue;
		}
		next += period;
		n = vms_poll_once(p);
		if (n < 0) {
			vms_poll_free(p);
			return cli_fail("%s", vms_last_error(vm));
		}
		polls++;
		events += (uint64_t)n;
		drain(s, json);
	}
	vms_poll_free(p);
	fprintf(stderr, "vmscope: %" PRIu64 " events from %" PRIu64 " polls\n", events, polls);
	return s->log ? cli_log_finish(s->log) : 0;
}

static int run_trace(int argc, char **argv)
{
	static const struct option options[] = {
		{ "events", required_argument, NULL, 'e' },
		{ "poll", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "breakpoints", no_argument, NULL, 'b' },
		CLI_LOG_OPTIONS,
		{ 0 },
	};
	unsigned int probes = VMS_PROBES_DEFAULT, flags = 0;
	double duration = 0, hz = 0;
	struct cli_stream stream;
	struct cli_log log = { 0 };
	int opt, status, want_json = 0;

	while ((opt = getopt_long(argc, argv, "e:", options, NULL)) != -1) {
		int lo = cli_log_option(&log, opt, optarg);

		if (lo < 0)
			return 1;
		else if (lo)
			continue;
		else if (opt == 'e' && parse_events(optarg, &probes))
			return 1;
		else if (opt == 'e')
			continue;
		else if (opt == 'p' && ((hz = atof(optarg)) <= 0 || hz > 1000))
			return cli_fail("--poll needs a rate in Hz, above 0 and at most 1000");
		else if (opt == 'p')
			continue;
		else if (opt == 't' && (duration = atof(optarg)) > 0)
			continue;
		else if (opt == 'j')
			want_json = 1;
		else if (opt == 'b')
			flags |= VMS_TRACE_BREAKPOINTS;
		else
			return cli_usage(&cmd_trace);
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_trace);
	if (cli_stream_open(&stream, argv[optind], "jsonl", &log))
		return 1;
	cli_stop_on_signals();
	status = hz > 0 ? poll_loop(&stream, hz, want_json, duration)
			: trace_loop(&stream, probes, flags, want_json, duration);
	cli_stream_close(&stream);
	return status;
}

const struct cli_command cmd_trace = {
	.name = "trace",
	.usage = "TARGET [--events exec,fork,exit,module_load,module_unload,open,connect,accept] "
		 "[--breakpoints] [--poll HZ] [--duration S] [--json] " CLI_LOG_USAGE,
	.summary = "process, module, file and network events inside the guest, live",
	.run = run_trace,
};
