// SPDX-License-Identifier: MIT
/*
 * vmscope log stats|query|replay|verify DIR: what a durable log holds, its
 * events filtered by time, type and VM, the same events replayed into a sink
 * with their original spacing, and a check of every byte of it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <vmscope/log.h>

#include "cli.h"

#define MAX_TYPES 32

struct log_args {
	struct vms_log_filter filter;
	const char *types[MAX_TYPES];
	char *type_list;
	const char *sink_url;
	double speed; /* 0: as fast as possible */
	int json;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * A moment: RFC 3339 (2026-12-02T03:04:05.5Z, or with +01:00), seconds since
 * the epoch (1764644645.5), or a time before now (-90s, -5m, -2h, -1d).
 */
static int parse_time(const char *text, const char *what, uint64_t *ret)
{
	static const struct { char unit; double s; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	int y, mo, d, h, mi, n = 0;
	double sec, v;
	char *end;

	if (text[0] == '-') {
		v = strtod(text + 1, &end);
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (end != text + 1 && end[0] == units[i].unit && !end[1] && v >= 0 &&
			    v * units[i].s * 1e9 < (double)now_ns()) {
				*ret = now_ns() - (uint64_t)(v * units[i].s * 1e9);
				return 0;
			}
	} else if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%lf%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6) {
		struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
				 .tm_hour = h, .tm_min = mi };
		int oh, om, off = 0;
		time_t t;

		if (text[n] == '+' || text[n] == '-') {
			if (sscanf(text + n + 1, "%2d:%2d", &oh, &om) != 2 || strlen(text + n) != 6)
				goto bad;
			off = (text[n] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
		} else if (strcmp(text + n, "Z")) {
			goto bad;
		}
		t = timegm(&tm);
		if (t < 0 || sec < 0 || sec >= 61)
			goto bad;
		*ret = (uint64_t)(t - off) * 1000000000u + (uint64_t)llround(sec * 1e9);
		return 0;
	} else {
		v = strtod(text, &end);
		if (end != text && !*end && v >= 0 && v < 1e11) {
			*ret = (uint64_t)llround(v * 1e9);
			return 0;
		}
	}
bad:
	return -cli_fail("bad %s \"%s\": expected RFC 3339 (2026-12-02T03:04:05Z), seconds since "
			 "the epoch, or a time before now (-90s, -5m, -2h, -1d)", what, text);
}

static int parse_types(struct log_args *a, const char *list)
{
	char *save = NULL;

	free(a->type_list);
	a->type_list = strdup(list);
	a->filter.nr_types = 0;
	for (char *t = strtok_r(a->type_list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (a->filter.nr_types == MAX_TYPES)
			return -cli_fail("--type: at most %d types", MAX_TYPES);
		a->types[a->filter.nr_types++] = t;
	}
	if (!a->filter.nr_types)
		return -cli_fail("--type names no event type");
	a->filter.types = a->types;
	return 0;
}

/* parse_args: 0, a negative value once the cause is printed, or USAGE. */
#define USAGE 2

enum { OPT_SINCE = 0x100, OPT_UNTIL, OPT_TYPE, OPT_VM, OPT_JSON, OPT_SINK, OPT_SPEED, OPT_AFAP };

static int parse_args(int argc, char **argv, struct log_args *a, const char **ret_dir)
{
	static const struct option options[] = {
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "vm", required_argument, NULL, OPT_VM },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "sink", required_argument, NULL, OPT_SINK },
		{ "speed", required_argument, NULL, OPT_SPEED },
		{ "as-fast-as-possible", no_argument, NULL, OPT_AFAP },
		{ 0 },
	};
	int opt;

	a->filter.sz = sizeof(a->filter);
	a->speed = 1;
	a->sink_url = "jsonl";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		int err = 0;

		if (opt == OPT_SINCE)
			err = parse_time(optarg, "--since", &a->filter.since_ns);
		else if (opt == OPT_UNTIL)
			err = parse_time(optarg, "--until", &a->filter.until_ns);
		else if (opt == OPT_TYPE)
			err = parse_types(a, optarg);
		else if (opt == OPT_VM)
			a->filter.vm = optarg;
		else if (opt == OPT_JSON)
			a->json = 1;
		else if (opt == OPT_SINK)
			a->sink_url = optarg;
		else if (opt == OPT_SPEED && (!(a->speed = atof(optarg) ) || !(a->speed > 0) ||
					      a->speed > 1e6))
			err = -cli_fail("--speed %s: a factor above 0 (1: the original timing)",
					optarg);
		else if (opt == OPT_AFAP)
			a->speed = 0;
		else if (opt != OPT_SPEED)
			err = USAGE;
		if (err)
			return err;
	}
	if (optind != argc - 1)
		return USAGE;
	*ret_dir = argv[optind];
	return 0;
}

static void print_read_problems(const char *dir, struct vms_log_reader *r)
{
	struct vms_log_read_stats rs;

	vms_log_reader_get_stats(r, &rs);
	if (rs.damaged_frames)
		fprintf(stderr, "vmscope: log %s: %" PRIu64 " damaged frames skipped (partial); "
			"see vmscope log verify\n", dir, rs.damaged_frames);
	if (rs.torn_bytes)
		fprintf(stderr, "vmscope: log %s: a torn tail of %" PRIu64 " bytes ignored "
			"(a writer stopped mid-frame)\n", dir, rs.torn_bytes);
}

static int open_reader(const char *dir, const struct log_args *a, struct vms_log_reader **r)
{
	if (vms_log_reader_open(dir, &a->filter, r))
		return cli_fail("%s", vms_log_last_error());
	return 0;
}

static int log_query(const char *dir, struct log_args *a)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	struct vms_sink *json = NULL;
	struct vms_log_reader *r;
	int rc, status = 0;

	if (!ev || open_reader(dir, a, &r)) {
		free(ev);
		return 1;
	}
	if (a->json && vms_sink_jsonl_new(stdout, &json))
		status = cli_fail("out of memory");
	while (!status && (rc = vms_log_next(r, ev)) == 1) {
		if (json)
			vms_sink_write(json, ev);
		else
			cli_print_event(ev, 1);
	}
	if (!status && rc < 0)
		status = cli_fail("%s", vms_log_last_error());
	vms_sink_free(json);
	fflush(stdout);
	print_read_problems(dir, r);
	vms_log_reader_free(r);
	free(ev);
	return status;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) && !cli_stopping())
		;
}

/* Events into a sink, spaced as they were (scaled by speed) unless speed is 0. */
static int log_replay(const char *dir, struct log_args *a)
{
	struct vms_event *ev = malloc(sizeof(*ev));
	uint64_t first_ns = 0, start = 0, n = 0;
	struct vms_sink *sink;
	struct vms_log_reader *r;
	int rc = 0, status = 0;

	if (!ev)
		return cli_fail("out of memory");
	if (cli_sink_open(a->sink_url, &sink)) {
		free(ev);
		return 1;
	}
	if (open_reader(dir, a, &r)) {
		vms_sink_free(sink);
		free(ev);
		return 1;
	}
	cli_stop_on_signals();
	while (!cli_stopping() && (rc = vms_log_next(r, ev)) == 1) {
		if (!n++) {
			first_ns = ev->time_ns;
			start = now_ns();
		} else if (a->speed > 0 && ev->time_ns > first_ns) {
			uint64_t due = start + (uint64_t)((double)(ev->time_ns - first_ns) / a->speed);
			uint64_t now = now_ns();

			if (due > now) {
				vms_sink_flush(sink);
				sleep_ns(due - now);
			}
		}
		if (vms_sink_write(sink, ev)) {
			status = cli_fail("cannot write events to %s", a->sink_url);
			break;
		}
	}
	if (!status && rc < 0)
		status = cli_fail("%s", vms_log_last_error());
	vms_sink_flush(sink);
	vms_sink_free(sink); /* a network sink delivers what it holds first */
	print_read_problems(dir, r);
	fprintf(stderr, "vmscope: replayed %" PRIu64 " events\n", n);
	vms_log_reader_free(r);
	free(ev);
	return status;
}

static void print_counts(const char *what, const struct vms_log_count *c, size_t n)
{
	printf("%s:", what);
	for (size_t i = 0; i < n; i++)
		printf(" %s %" PRIu64, c[i].name, c[i].events);
	putchar('\n');
}

static json_t *counts_json(const struct vms_log_count *c, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, c[i].name, json_integer((json_int_t)c[i].events));
	return o;
}

static void format_time(uint64_t ns, char *buf, size_t len)
{
	time_t s = (time_t)(ns / 1000000000u);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRIu64 "Z", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1000000000u);
}

static int log_stats(const char *dir, const struct log_args *a)
{
	struct vms_log_summary *s;
	char first[40] = "-", last[40] = "-";

	if (vms_log_summarize(dir, &s))
		return cli_fail("%s", vms_log_last_error());
	if (s->events) {
		format_time(s->first_ns, first, sizeof(first));
		format_time(s->last_ns, last, sizeof(last));
	}
	if (a->json) {
		json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:o}",
				      "segments", (json_int_t)s->segments, "sealed",
				      (json_int_t)s->sealed, "frames", (json_int_t)s->frames,
				      "events", (json_int_t)s->events, "raw_bytes",
				      (json_int_t)s->raw_bytes, "stored_bytes",
				      (json_int_t)s->stored_bytes, "first", first, "last", last,
				      "first_ns", (json_int_t)s->first_ns, "last_ns",
				      (json_int_t)s->last_ns, "damaged_frames",
				      (json_int_t)s->damaged_frames, "torn_bytes",
				      (json_int_t)s->torn_bytes, "types",
				      counts_json(s->types, s->nr_types), "vms",
				      counts_json(s->vms, s->nr_vms));

		cli_print_json(o);
	} else {
		printf("segments: %" PRIu64 " (%" PRIu64 " sealed)\nframes: %" PRIu64
		       "\nevents: %" PRIu64 "\nbytes: %" PRIu64 " of records, %" PRIu64
		       " stored (%.1fx)\ntime: %s to %s\n", s->segments, s->sealed, s->frames,
		       s->events, s->raw_bytes, s->stored_bytes,
		       s->stored_bytes ? (double)s->raw_bytes / (double)s->stored_bytes : 0.0,
		       first, last);
		print_counts("types", s->types, s->nr_types);
		print_counts("vms", s->vms, s->nr_vms);
		if (s->damaged_frames || s->torn_bytes)
			printf("damage: %" PRIu64 " damaged frames, %" PRIu64 " torn bytes\n",
			       s->damaged_frames, s->torn_bytes);
	}
	vms_log_summary_free(s);
	return 0;
}

static void print_problem(void *ctx, int fatal, const char *line)
{
	(void)ctx;
	printf("%s: %s\n", fatal ? "damage" : "note", line);
}

static int log_verify(const char *dir)
{
	struct vms_log_summary *s;
	int fatal = vms_log_verify(dir, print_problem, NULL);

	if (fatal < 0)
		return cli_fail("%s", vms_log_last_error());
	if (vms_log_summarize(dir, &s))
		return cli_fail("%s", vms_log_last_error());
	printf("log %s: %" PRIu64 " segments, %" PRIu64 " frames, %" PRIu64 " events checked; "
	       "%d problem%s\n", dir, s->segments, s->frames, s->events, fatal,
	       fatal == 1 ? "" : "s");
	vms_log_summary_free(s);
	return fatal ? 1 : 0;
}

static int run_log(int argc, char **argv)
{
	struct log_args a = { 0 };
	const char *verb = argc > 1 ? argv[1] : "", *dir;
	int status;

	if (strcmp(verb, "stats") && strcmp(verb, "query") && strcmp(verb, "replay") &&
	    strcmp(verb, "verify"))
		return cli_usage(&cmd_log);
	status = parse_args(argc - 1, argv + 1, &a, &dir);
	if (status) {
		free(a.type_list);
		return status == USAGE ? cli_usage(&cmd_log) : 1;
	}
	if (!strcmp(verb, "stats"))
		status = log_stats(dir, &a);
	else if (!strcmp(verb, "query"))
		status = log_query(dir, &a);
	else if (!strcmp(verb, "replay"))
		status = log_replay(dir, &a);
	else
		status = log_verify(dir);
	free(a.type_list);
	return status;
}

const struct cli_command cmd_log = {
	.name = "log",
	.usage = "stats|verify DIR [--json] | query DIR [--since T] [--until T] [--type LIST] "
		 "[--vm NAME] [--json] | replay DIR [--sink jsonl|redis://HOST:PORT/STREAM] "
		 "[--speed X|--as-fast-as-possible] [filters as for query]",
	.summary = "what a durable event log holds: stats, query, replay into a sink, verify",
	.run = run_log,
};
