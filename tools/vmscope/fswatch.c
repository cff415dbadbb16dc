// SPDX-License-Identifier: MIT
/*
 * vmscope fswatch TARGET --disk NODE [--partition N | --volume VG/LV]
 *                [--mode blocking|background|bitmap]
 *                [--interval MS] [--spool MIB] [--path GLOB]... [--mount DIR] [--hash]
 *                [--duration S] [--sink jsonl|redis://HOST:PORT/STREAM]:
 * file events inferred from the guest's ext4 writes, as JSON lines or into
 * a Redis stream, until the duration ends or SIGINT/SIGTERM; then a clean
 * detach and a one-line summary on stderr.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmscope/disk.h>

#include "cli.h"

#define MAX_GLOBS  64

static void summary(struct vms_fswatch *fw)
{
	struct vms_fswatch_stats st;

	vms_fswatch_get_stats(fw, &st);
	fprintf(stderr,
		"vmscope: %" PRIu64 " file events (%" PRIu64 " outside --path, %" PRIu64
		" not queued) from %" PRIu64 " writes (%" PRIu64 " bytes) and %" PRIu64
		" transactions; %" PRIu64 " writes not queued for inference, %" PRIu64
		" never mapped to a file, %" PRIu64 " waiting for a commit, %" PRIu64
		" damaged structures, %" PRIu64 " blocks or inodes failing their checksum, %" PRIu64
		" transactions missed; latency "
		"p50 %" PRIu64 " us, p99 %" PRIu64 " us; inference %.3f s CPU; spool peak %" PRIu64
		" of %" PRIu64 " bytes, the capture waited %.3f s for inference",
		st.events, st.filtered, st.dropped, st.writes, st.write_bytes, st.transactions,
		st.spool_dropped, st.unmapped, st.pending, st.errors, st.checksum_failures,
		st.missed_transactions, st.latency_p50_us, st.latency_p99_us, st.infer_cpu_s,
		st.spool_peak, st.spool_size, (double)st.spool_waited_us / 1e6);
	if (st.polls)
		fprintf(stderr, "; %" PRIu64 " bitmap polls", st.polls);
}

static int capture_failed(void *ctx)
{
	struct vms_fswatch_stats st;

	vms_fswatch_get_stats(ctx, &st);
	return st.capture_failed;
}

static int parse_spool(const char *text, uint64_t *ret)
{
	uint64_t mib;

	if (cli_parse_u64(text, "--spool", &mib))
		return 1;
	if (!mib || mib > 1024 || (mib & (mib - 1)))
		return cli_fail("--spool: MiB between capture and inference, a power of two from 1 "
				"to 1024, not %s",
				text);
	*ret = mib << 20;
	return 0;
}

static int parse_partition(const char *text, unsigned int *ret)
{
	uint64_t n;

	if (cli_parse_u64(text, "--partition", &n))
		return 1;
	if (!n || n > 128)
		return cli_fail("--partition: a partition number from 1 to 128, not %s", text);
	*ret = (unsigned int)n;
	return 0;
}

/* Each filesystem and where its paths are rooted, on the banner's line. */
static void print_filesystems(const struct vms_fswatch *fw)
{
	const char *name, *mount;
	int found;

	for (size_t i = 0; !vms_fswatch_filesystem(fw, i, &name, &mount, &found); i++) {
		if (mount[0])
			fprintf(stderr, "%s %s at %s%s", i ? "," : "", name, mount,
				found ? " (the guest's mount table)" : "");
		else
			fprintf(stderr, "%s %s, paths from its root", i ? "," : "", name);
	}
}

static int run_fswatch(int argc, char **argv)
{
	static const struct option options[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "partition", required_argument, NULL, 'P' },
		{ "volume", required_argument, NULL, 'V' },
		{ "mode", required_argument, NULL, 'M' },
		{ "interval", required_argument, NULL, 'I' },
		{ "spool", required_argument, NULL, 'S' },
		{ "path", required_argument, NULL, 'p' },
		{ "mount", required_argument, NULL, 'm' },
		{ "hash", no_argument, NULL, 'H' },
		{ "duration", required_argument, NULL, 't' },
		{ "sink", required_argument, NULL, 's' },
		CLI_LOG_OPTIONS,
		{ 0 },
	};
	const char *disk = NULL, *sink_url = "jsonl", *globs[MAX_GLOBS];
	struct vms_fswatch_options o = { .paths = globs };
	struct vms_fswatch_stats st;
	struct cli_stream stream;
	struct cli_log log = { 0 };
	struct vms_fswatch *fw;
	double duration = 0;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "d:p:", options, NULL)) != -1) {
		int lo = cli_log_option(&log, opt, optarg);

		if (lo < 0)
			return 1;
		else if (lo)
			continue;
		else if (opt == 'd')
			disk = optarg;
		else if (opt == 'P' && parse_partition(optarg, &o.partition))
			return 1;
		else if (opt == 'P')
			continue;
		else if (opt == 'V' && !strchr(optarg, '/'))
			return cli_fail("--volume: VG/LV (an LVM volume group and volume), not \"%s\"",
					optarg);
		else if (opt == 'V')
			o.volume = optarg;
		else if (opt == 'M' && cli_parse_capture_mode(optarg, &o.mode))
			return 1;
		else if (opt == 'M')
			continue;
		else if (opt == 'I' && cli_parse_interval(optarg, &o.interval_ms))
			return 1;
		else if (opt == 'I')
			continue;
		else if (opt == 'S' && parse_spool(optarg, &o.spool_bytes))
			return 1;
		else if (opt == 'S')
			continue;
		else if (opt == 'p' && o.nr_paths < MAX_GLOBS)
			globs[o.nr_paths++] = optarg;
		else if (opt == 'p')
			return cli_fail("at most %d --path globs", MAX_GLOBS);
		else if (opt == 'm' && optarg[0] == '/')
			o.mount = optarg;
		else if (opt == 'm')
			return cli_fail("--mount needs an absolute path, not \"%s\"", optarg);
		else if (opt == 'H')
			o.hash = 1;
		else if (opt == 's')
			sink_url = optarg;
		else if (opt == 't' && (duration = atof(optarg)) > 0)
			continue;
		else
			return cli_usage(&cmd_fswatch);
	}
	if (!disk || optind != argc - 1)
		return cli_usage(&cmd_fswatch);
	if (cli_check_interval(o.mode, o.interval_ms))
		return 1;
	if (o.partition && o.volume)
		return cli_fail("--partition and --volume each choose the one filesystem: give one");
	if (cli_stream_open(&stream, argv[optind], sink_url, &log))
		return 1;
	if (vms_fswatch_start(stream.vm, disk, &o, stream.ring, &fw)) {
		status = cli_fail("%s", vms_last_error(stream.vm));
		goto out;
	}
	vms_fswatch_get_stats(fw, &st);
	fprintf(stderr, "vmscope: watching %" PRIu64 " files in %" PRIu64 " directories on %s (%s):",
		st.inodes, st.directories, disk,
		st.journaled ? "ext4, events from journal commits" : "ext4 without a journal");
	print_filesystems(fw);
	fprintf(stderr, "; %s capture; stop with Ctrl-C\n", vms_capture_mode_name(o.mode));
	fflush(stderr);
	stream.failed = capture_failed;
	stream.failed_ctx = fw;
	status = cli_stream(&stream, duration);
	/* Detach, then deliver every event inferred from what was captured. */
	if (vms_fswatch_detach(fw))
		status = cli_fail("%s", vms_last_error(stream.vm));
	while (!vms_fswatch_idle(fw)) {
		vms_sink_drain(stream.sink, stream.ring, 0, NULL);
		usleep(5000);
	}
	vms_sink_drain(stream.sink, stream.ring, 0, NULL);
	summary(fw);
	if (vms_fswatch_stop(fw))
		status = cli_fail("%s", vms_last_error(stream.vm));
	cli_stream_finish(&stream);
out:
	cli_stream_close(&stream);
	return status;
}

const struct cli_command cmd_fswatch = {
	.name = "fswatch",
	.usage = "TARGET --disk NODE [--partition N | --volume VG/LV] [--mode "
		 "blocking|background|bitmap] [--interval MS] "
		 "[--path GLOB]... [--mount DIR] [--hash] "
		 "[--duration S] "
		 "[--sink jsonl|redis://HOST:PORT/STREAM] " CLI_LOG_USAGE,
	.summary = "file events (create, write, rename, delete, ...) from the guest's ext4 writes",
	.run = run_fswatch,
};
