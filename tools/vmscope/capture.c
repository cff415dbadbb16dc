// SPDX-License-Identifier: MIT
/*
 * vmscope capture TARGET --disk NODE [--duration S] [--sink jsonl|redis://HOST:PORT/STREAM]:
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

#define RING_SLOTS 8192

static int run_capture(int argc, char **argv)
{
	static const struct option options[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "duration", required_argument, NULL, 't' },
		{ "sink", required_argument, NULL, 's' },
		{ 0 },
	};
	const char *disk = NULL, *sink_url = "jsonl";
	struct vms_capture_stats st;
	struct vms_capture *capture;
	struct vms_ring *ring = NULL;
	struct vms_sink *sink = NULL;
	double duration = 0;
	struct vms_vm *vm;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "d:t:", options, NULL)) != -1) {
		if (opt == 'd')
			disk = optarg;
		else if (opt == 's')
			sink_url = optarg;
		else if (opt == 't' && (duration = atof(optarg)) > 0)
			continue;
		else
			return cli_usage(&cmd_capture);
	}
	if (!disk || optind != argc - 1)
		return cli_usage(&cmd_capture);
	if (vms_ring_new(RING_SLOTS, &ring))
		return cli_fail("out of memory");
	if (cli_sink_open(sink_url, &sink)) {
		vms_ring_free(ring);
		return 1;
	}
	vm = cli_attach(argv[optind]);
	if (!vm) {
		status = 1;
		goto out;
	}
	if (vms_capture_start(vm, disk, ring, &capture)) {
		status = cli_fail("%s", vms_last_error(vm));
		goto out_vm;
	}
	fprintf(stderr, "vmscope: capturing writes to %s; stop with Ctrl-C\n", disk);
	fflush(stderr);
	status = cli_stream(ring, sink, duration);
	vms_capture_get_stats(capture, &st);
	if (vms_capture_stop(capture))
		status = cli_fail("%s", vms_last_error(vm));
	fprintf(stderr,
		"vmscope: captured %" PRIu64 " writes (%" PRIu64 " bytes), %" PRIu64
		" zeroes, %" PRIu64 " trims, %" PRIu64 " flushes; %" PRIu64 " not queued",
		st.writes, st.write_bytes, st.zeroes, st.trims, st.flushes, st.dropped);
	cli_stream_finish(ring, sink, sink_url);
out_vm:
	vms_vm_free(vm);
out:
	vms_sink_free(sink);
	vms_ring_free(ring);
	return status;
}

const struct cli_command cmd_capture = {
	.name = "capture",
	.usage = "TARGET --disk NODE [--duration S] [--sink jsonl|redis://HOST:PORT/STREAM]",
	.summary = "every write the guest makes to a disk, as JSON lines",
	.run = run_capture,
};
