// SPDX-License-Identifier: MIT
/*
 * vmscope capture TARGET --disk NODE [--mode blocking|background|bitmap] [--interval MS]
 *                [--duration S] [--sink jsonl|redis://HOST:PORT/STREAM]:
 * every write the guest makes to a disk, as JSON lines on stdout or into a
 * Redis stream, until the duration ends or SIGINT/SIGTERM; then a clean
 * detach and a one-line summary on stderr. The raw material of
 * file-level monitoring (see fswatch), and a way to watch a disk live.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/disk.h>
#include <vmscope/sink.h>

#include "cli.h"

static int capture_failed(void *ctx)
{
	struct vms_capture_stats st;

	vms_capture_get_stats(ctx, &st);
	return st.failed;
}

static int run_capture(int argc, char **argv)
{
	static const struct option options[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "duration", required_argument, NULL, 't' },
		{ "sink", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'M' },
		{ "interval", required_argument, NULL, 'I' },
		CLI_LOG_OPTIONS,
		{ 0 },
	};
	const char *disk = NULL, *sink_url = "jsonl";
	struct vms_capture_stats st;
	struct vms_capture *capture;
	struct cli_stream stream;
	struct cli_log log = { 0 };
	double duration = 0;
	int opt, status;

	struct vms_capture_options o = { VMS_CAPTURE_BLOCKING, 0 };

	while ((opt = getopt_long(argc, argv, "d:t:", options, NULL)) != -1) {
		int lo = cli_log_option(&log, opt, optarg);

		if (lo < 0)
			return 1;
		else if (lo)
			continue;
		else if (opt == 'd')
			disk = optarg;
		else if (opt == 's')
			sink_url = optarg;
		else if (opt == 'M' && cli_parse_capture_mode(optarg, &o.mode))
			return 1;
		else if (opt == 'M')
			continue;
		else if (opt == 'I' && cli_parse_interval(optarg, &o.interval_ms))
			return 1;
		else if (opt == 'I')
			continue;
		else if (opt == 't' && (duration = atof(optarg)) > 0)
			continue;
		else
			return cli_usage(&cmd_capture);
	}
	if (!disk || optind != argc - 1)
		return cli_usage(&cmd_capture);
	if (cli_check_interval(o.mode, o.interval_ms))
		return 1;
	if (cli_stream_open(&stream, argv[optind], sink_url, &log))
		return 1;
	if (vms_capture_start(stream.vm, disk, &o, stream.ring, &capture)) {
		status = cli_fail("%s", vms_last_error(stream.vm));
		goto out;
	}
	fprintf(stderr, "vmscope: capturing writes to %s (%s); stop with Ctrl-C\n", disk,
		vms_capture_mode_name(o.mode));
	fflush(stderr);
	stream.failed = capture_failed;
	stream.failed_ctx = capture;
	status = cli_stream(&stream, duration);
	vms_capture_get_stats(capture, &st);
	if (vms_capture_stop(capture))
		status = cli_fail("%s", vms_last_error(stream.vm));
	fprintf(stderr,
		"vmscope: captured %" PRIu64 " writes (%" PRIu64 " bytes), %" PRIu64
		" zeroes, %" PRIu64 " trims; %" PRIu64 " not queued",
		st.writes, st.write_bytes, st.zeroes, st.trims, st.dropped);
	if (o.mode == VMS_CAPTURE_BITMAP)
		fprintf(stderr, "; %" PRIu64 " polls, the longest %.1f ms", st.polls,
			(double)st.poll_us_max / 1000);
	cli_stream_finish(&stream);
out:
	cli_stream_close(&stream);
	return status;
}

const struct cli_command cmd_capture = {
	.name = "capture",
	.usage = "TARGET --disk NODE [--mode blocking|background|bitmap] [--interval MS] "
		 "[--duration S] "
		 "[--sink jsonl|redis://HOST:PORT/STREAM] " CLI_LOG_USAGE,
	.summary = "every write the guest makes to a disk, as JSON lines",
	.run = run_capture,
};
