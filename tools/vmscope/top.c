// SPDX-License-Identifier: MIT
/*
 * vmscope top [--interval S] [--sort c|g|m|d|n] [--batch [--iterations N]] TARGET...
 *
 * A live table of VMs, as virt-top or htop show hosts: per VM the host's
 * view (vCPU time and run-queue wait, QEMU's RSS, disk throughput) beside the
 * guest's own (CPU use, load, tasks, memory used), refreshed in place by
 * ncurses and sorted by a key (c host CPU, g guest CPU, m guest memory, d
 * disk writes, n name; q quits). Each VM is sampled by its own thread, so a
 * hung VM shows as such and holds nothing up. --batch prints the table as
 * text instead, --iterations times (default: until interrupted), as top -b.
 */
#include <curses.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct row {
	char name[64];
	char why[96];
	int up, has_guest, rated;
	double hcpu, wait, gcpu, load1, mem_pct, rss_mib, rd_kib, wr_kib;
	int tasks;
};

struct top {
	struct cli_collectors group;
	pthread_mutex_t lock; /* guards rows */
	struct row *rows;
	size_t nr_rows;
	char sort;
};

/* A series between the previous turn and this one (lib/monitor/series.c names them). */
static double series(const double *v, const char *name)
{
	int i = vms_monitor_series_index(name);

	return i < 0 ? NAN : v[i];
}

/* Rates need the previous turn: a row is "measuring" until there is one. */
static void rate(struct row *r, const struct cli_sample *prev, const struct cli_sample *s)
{
	double v[VMS_SERIES_MAX];

	r->rated = prev != NULL;
	if (!r->rated)
		return;
	vms_monitor_series(&prev->host, &s->host,
			   prev->has_guest && s->has_guest ? &prev->guest : NULL,
			   s->has_guest ? &s->guest : NULL, v);
	r->hcpu = 100 * series(v, "host_vcpu_run");
	r->wait = 100 * series(v, "host_vcpu_wait");
	r->gcpu = 100 * series(v, "guest_cpu_busy");
	r->rd_kib = series(v, "host_disk_read_bytes") / 1024;
	r->wr_kib = series(v, "host_disk_write_bytes") / 1024;
}

static void on_turn(struct cli_collector *c, const struct cli_sample *prev,
		    const struct cli_sample *s, double start, double duration)
{
	struct top *top = c->group->ctx;
	struct row *r = &top->rows[c->index];

	(void)duration, (void)start;
	pthread_mutex_lock(&top->lock);
	snprintf(r->name, sizeof(r->name), "%.63s", c->name);
	r->up = s != NULL;
	if (!s) {
		snprintf(r->why, sizeof(r->why), "%.95s", c->why);
		r->rated = 0;
		pthread_mutex_unlock(&top->lock);
		return;
	}
	r->has_guest = s->has_guest;
	rate(r, prev, s);
	r->rss_mib = (double)s->host.rss_bytes / 1048576;
	if (s->has_guest) {
		const struct vms_sysinfo *g = &s->guest.sys;

		r->load1 = g->load[0];
		r->tasks = (int)g->tasks;
		r->mem_pct = g->mem_total_bytes ? 100.0 * (double)(g->mem_total_bytes -
								   g->mem_available_bytes) /
							  (double)g->mem_total_bytes
						: NAN;
	}
	pthread_mutex_unlock(&top->lock);
}

static char sort_key = 'c';

static double key_of(const struct row *r)
{
	if (!r->up || !r->rated)
		return -INFINITY;
	switch (sort_key) {
	case 'g':
		return r->has_guest ? r->gcpu : -INFINITY;
	case 'm':
		return r->has_guest ? r->mem_pct : -INFINITY;
	case 'd':
		return r->wr_kib;
	default:
		return r->hcpu;
	}
}

static int by_key(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	double kx, ky;

	if (sort_key == 'n')
		return strcmp(x->name, y->name);
	kx = key_of(x);
	ky = key_of(y);
	return kx < ky ? 1 : kx > ky ? -1 : strcmp(x->name, y->name);
}

static const char *sort_name(void)
{
	switch (sort_key) {
	case 'g':
		return "guest CPU";
	case 'm':
		return "guest memory";
	case 'd':
		return "disk writes";
	case 'n':
		return "name";
	default:
		return "host CPU";
	}
}

/* The table as lines of at most 79 columns; line 0 is the title. */
static size_t format(struct top *top, char lines[][96], size_t max)
{
	struct row *rows = malloc(top->nr_rows * sizeof(*rows));
	size_t n = 0;

	if (!rows)
		return 0;
	pthread_mutex_lock(&top->lock);
	memcpy(rows, top->rows, top->nr_rows * sizeof(*rows));
	pthread_mutex_unlock(&top->lock);
	sort_key = top->sort;
	qsort(rows, top->nr_rows, sizeof(*rows), by_key);
	snprintf(lines[n++], 96, "vmscope top: %zu VMs, every %.1f s, by %s (c g m d n sort, q quits)",
		 top->nr_rows, top->group.interval_s, sort_name());
	snprintf(lines[n++], 96, "%-14s %-2s %5s %5s %5s %5s %5s %5s %6s %7s %7s", "VM", "UP", "HCPU%",
		 "WAIT%", "GCPU%", "LOAD1", "TASKS", "MEM%", "RSSMiB", "RDKiB/s", "WRKiB/s");
	for (size_t i = 0; i < top->nr_rows && n < max; i++) {
		const struct row *r = &rows[i];

		if (!r->up)
			snprintf(lines[n++], 96, "%-14.14s -- %.61s", r->name, r->why);
		else if (!r->rated)
			snprintf(lines[n++], 96, "%-14.14s up (measuring)", r->name);
		else if (!r->has_guest)
			snprintf(lines[n++], 96, "%-14.14s up %5.1f %5.1f %5s %5s %5s %5s %6.1f %7.1f %7.1f",
				 r->name, r->hcpu, r->wait, "-", "-", "-", "-", r->rss_mib, r->rd_kib,
				 r->wr_kib);
		else
			snprintf(lines[n++], 96,
				 "%-14.14s up %5.1f %5.1f %5.1f %5.2f %5d %5.1f %6.1f %7.1f %7.1f",
				 r->name, r->hcpu, r->wait, r->gcpu, r->load1, r->tasks, r->mem_pct,
				 r->rss_mib, r->rd_kib, r->wr_kib);
	}
	free(rows);
	return n;
}

static void batch(struct top *top, long iterations)
{
	char lines[1024][96];

	/* The first turn has no rates yet: wait for the second, half an interval on. */
	usleep((useconds_t)(top->group.interval_s * 1.5e6));
	for (long i = 0; (!iterations || i < iterations) && !cli_stopping(); i++) {
		size_t n;

		if (i)
			usleep((useconds_t)(top->group.interval_s * 1e6));
		n = format(top, lines, 1024);
		for (size_t l = 0; l < n; l++)
			puts(lines[l]);
		putchar('\n');
		fflush(stdout);
	}
}

static void interactive(struct top *top)
{
	char lines[1024][96];

	initscr();
	cbreak();
	noecho();
	curs_set(0);
	timeout(250); /* redraw four times a second, and at once on a key */
	while (!cli_stopping()) {
		int key, max = LINES > 1024 ? 1024 : LINES;
		size_t n = format(top, lines, (size_t)max);

		erase();
		for (size_t l = 0; l < n; l++)
			mvprintw((int)l, 0, "%.*s", COLS > 0 ? COLS : 80, lines[l]);
		refresh();
		key = getch();
		if (key == 'q')
			break;
		if (key != ERR && strchr("cgmdn", key))
			top->sort = (char)key;
	}
	endwin();
}

static int run_top(int argc, char **argv)
{
	static const struct option options[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "sort", required_argument, NULL, 's' },
		{ "batch", no_argument, NULL, 'b' },
		{ "iterations", required_argument, NULL, 'n' },
		{ 0 },
	};
	struct top top = { .group = { .interval_s = 1, .timeout_ms = 1000, .on_turn = on_turn },
			   .sort = 'c' };
	uint64_t iterations = 0;
	int opt, batch_mode = 0;

	while ((opt = getopt_long(argc, argv, "b", options, NULL)) != -1) {
		if (opt == 'i' && cli_parse_seconds(optarg, "--interval", &top.group.interval_s))
			return 1;
		else if (opt == 's' && (strlen(optarg) != 1 || !strchr("cgmdn", optarg[0])))
			return cli_fail("--sort %s: one of c (host CPU), g (guest CPU), m (guest "
					"memory), d (disk writes), n (name)", optarg);
		else if (opt == 's')
			top.sort = optarg[0];
		else if (opt == 'b')
			batch_mode = 1;
		else if (opt == 'n' && cli_parse_u64(optarg, "--iterations", &iterations))
			return 1;
		else if (opt != 'i' && opt != 'n')
			return cli_usage(&cmd_top);
	}
	if (optind >= argc)
		return cli_usage(&cmd_top);
	if (!batch_mode && !isatty(STDOUT_FILENO))
		batch_mode = 1;
	top.nr_rows = (size_t)(argc - optind);
	top.rows = calloc(top.nr_rows, sizeof(*top.rows));
	if (!top.rows)
		return cli_fail("out of memory");
	for (size_t i = 0; i < top.nr_rows; i++) {
		snprintf(top.rows[i].name, sizeof(top.rows[i].name), "%.63s", argv[optind + (int)i]);
		snprintf(top.rows[i].why, sizeof(top.rows[i].why), "not sampled yet");
	}
	pthread_mutex_init(&top.lock, NULL);
	top.group.ctx = &top;
	cli_stop_on_signals();
	if (cli_collectors_start(&top.group, argv + optind, top.nr_rows)) {
		free(top.rows);
		return 1;
	}
	if (batch_mode)
		batch(&top, (long)iterations);
	else
		interactive(&top);
	cli_collectors_stop(&top.group);
	pthread_mutex_destroy(&top.lock);
	free(top.rows);
	return 0;
}

const struct cli_command cmd_top = {
	.name = "top",
	.usage = "[--interval S] [--sort c|g|m|d|n] [--batch [--iterations N]] TARGET...",
	.summary = "a live table of VMs: host and guest CPU, load, memory, disk",
	.run = run_top,
};
