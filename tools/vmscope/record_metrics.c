// SPDX-License-Identifier: MIT
/*
 * vmscope record-metrics TARGET --interval S --duration S --out FILE
 *     [--format csv|jsonl]: a VM's time series (lib/monitor/series.c), one
 * row per interval from the second sample on, for `vmscope model fit` or any
 * other tool. Samples follow an absolute schedule, so a slow sample delays
 * the next one without shifting the rest; SIGINT ends it early, file whole.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <vmscope/monitor.h>

#include "cli.h"

struct recorder {
	FILE *out; /* may be NULL: --log only */
	struct vms_sink *log;
	const char *vm_name;
	int jsonl;
	const char *const *names;
	size_t nr_names;
	double start_s;
};

static void write_header(struct recorder *r)
{
	if (r->jsonl || !r->out)
		return;
	fputs("time_s", r->out);
	for (size_t i = 0; i < r->nr_names; i++)
		fprintf(r->out, ",%s", r->names[i]);
	fputc('\n', r->out);
}

static int write_row(struct recorder *r, double t, const double *v)
{
	if (r->log && cli_log_series(r->log, r->vm_name, v, (uint64_t)((r->start_s + t) * 1e9)))
		return -EIO;
	if (!r->out)
		return 0;
	if (r->jsonl) {
		json_t *row = json_pack("{s:f}", "time_s", t);

		for (size_t i = 0; row && i < r->nr_names; i++)
			json_object_set_new(row, r->names[i], isfinite(v[i]) ? json_real(v[i])
									    : json_null());
		if (!row || json_dumpf(row, r->out, JSON_COMPACT | JSON_PRESERVE_ORDER))
			return -ENOMEM;
		json_decref(row);
		fputc('\n', r->out);
	} else {
		fprintf(r->out, "%.3f", t);
		for (size_t i = 0; i < r->nr_names; i++)
			if (isfinite(v[i]))
				fprintf(r->out, ",%.9g", v[i]);
			else
				fputs(",", r->out);
		fputc('\n', r->out);
	}
	fflush(r->out);
	return ferror(r->out) ? -EIO : 0;
}

static void sleep_until(const struct timespec *when)
{
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, when, NULL) == EINTR &&
	       !cli_stopping())
		;
}

static void advance(struct timespec *t, double seconds)
{
	long long ns = t->tv_nsec + (long long)(seconds * 1e9);

	t->tv_sec += (time_t)(ns / 1000000000);
	t->tv_nsec = (long)(ns % 1000000000);
}

static int record(struct vms_vm *vm, struct recorder *r, double interval, double duration)
{
	struct cli_sample prev, cur;
	double values[VMS_SERIES_MAX];
	struct timespec next;
	long rows = 0, steps = (long)(duration / interval + 0.5);
	int err = 0;

	if (cli_sample(vm, &prev))
		return cli_fail("no figures: %s; %s", prev.host_absent, prev.guest_absent);
	r->start_s = cli_realtime_s();
	write_header(r);
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (long i = 0; i < steps && !cli_stopping() && !err; i++) {
		advance(&next, interval);
		sleep_until(&next);
		if (cli_stopping())
			break;
		if (cli_sample(vm, &cur)) {
			err = cli_fail("no figures: %s; %s", cur.host_absent, cur.guest_absent);
			break;
		}
		vms_monitor_series(prev.has_host ? &prev.host : NULL, cur.has_host ? &cur.host : NULL,
				   prev.has_guest ? &prev.guest : NULL,
				   cur.has_guest ? &cur.guest : NULL, values);
		if (write_row(r, cli_realtime_s() - r->start_s, values))
			err = cli_fail("cannot write the series: %s", strerror(errno));
		rows++;
		cli_sample_release(&prev);
		prev = cur;
	}
	cli_sample_release(&prev);
	if (!err)
		fprintf(stderr, "vmscope: recorded %ld samples of %zu series\n", rows, r->nr_names);
	return err;
}

static int run_record(int argc, char **argv)
{
	static const struct option options[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 't' },
		{ "out", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		CLI_LOG_OPTIONS,
		{ 0 },
	};
	struct recorder r = { 0 };
	struct cli_log log = { 0 };
	struct vms_vm_info info;
	double interval = 1, duration = 60;
	const char *out = NULL, *format = NULL;
	struct vms_vm *vm;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		int lo = cli_log_option(&log, opt, optarg);

		if (lo < 0)
			return 1;
		else if (lo)
			continue;
		else if (opt == 'i' && cli_parse_seconds(optarg, "--interval", &interval))
			return 1;
		else if (opt == 't' && cli_parse_seconds(optarg, "--duration", &duration))
			return 1;
		else if (opt == 'o')
			out = optarg;
		else if (opt == 'f')
			format = optarg;
		else if (opt != 'i' && opt != 't')
			return cli_usage(&cmd_record_metrics);
	}
	if ((!out && !log.dir) || optind != argc - 1)
		return cli_usage(&cmd_record_metrics);
	if (format && strcmp(format, "csv") && strcmp(format, "jsonl"))
		return cli_fail("--format %s: not csv or jsonl", format);
	r.jsonl = format ? !strcmp(format, "jsonl")
			 : !out || strlen(out) < 4 || strcmp(out + strlen(out) - 4, ".csv");
	r.nr_names = vms_monitor_series_names(&r.names);
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	r.vm_name = argv[optind];
	if (!vms_vm_query_info(vm, &info) && info.name[0])
		r.vm_name = info.name;
	if (log.dir && cli_log_open(&log, &r.log)) {
		vms_vm_free(vm);
		return 1;
	}
	r.out = !out ? NULL : strcmp(out, "-") ? fopen(out, "w") : stdout;
	if (out && !r.out) {
		vms_sink_free(r.log);
		vms_vm_free(vm);
		return cli_fail("cannot write %s: %s", out, strerror(errno));
	}
	cli_stop_on_signals();
	status = record(vm, &r, interval, duration);
	if (r.out && r.out != stdout && fclose(r.out) && !status)
		status = cli_fail("cannot write %s: %s", out, strerror(errno));
	if (r.log && cli_log_finish(r.log))
		status = 1;
	vms_sink_free(r.log);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_record_metrics = {
	.name = "record-metrics",
	.usage = "TARGET --out FILE|" CLI_LOG_USAGE " [--interval S] [--duration S] "
		 "[--format csv|jsonl]",
	.summary = "a VM's figures as time series (CSV or JSON lines) for models and plots",
	.run = run_record,
};
