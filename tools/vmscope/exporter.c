// SPDX-License-Identifier: MIT
/*
 * vmscope exporter --listen HOST:PORT [--interval S] [--timeout S] [--guest-every N]
 *     TARGET...
 *
 * Prometheus metrics for every TARGET, over HTTP (libmicrohttpd). Each VM
 * has its own collector thread, sampling on its own schedule with a deadline
 * per QMP exchange; a scrape only copies the rendered texts of the last
 * samples, so a slow, hung or dead VM never delays it: it shows as
 * vmscope_up 0 with its last good timestamp. A VM that fails is attached
 * afresh at its next turn (QEMU restarted, socket back). With --guest-every N
 * the guest is read only every N turns (in pairs, for its rates); between
 * them its figures are the last read, and vmscope_guest_estimate gives the
 * host-driven estimates of its CPU use and disk throughput for every turn.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include <math.h>

#include <vmscope/arx.h>
#include <vmscope/prometheus.h>

#include "cli.h"

/* What a scrape reads: each VM's last rendering, cut by family. */
struct rendered {
	pthread_mutex_t lock;
	char *text;
	size_t *offsets;
};

struct exporter {
	struct cli_collectors group;
	struct rendered *vms;
	size_t nr_vms;
	struct vms_sink *log;	 /* --log: each turn's series as events */
	pthread_mutex_t log_lock; /* the log takes one appender at a time */
};

/* The turn's series into the log, from whichever collector thread. */
static void log_turn(struct exporter *ex, const struct cli_collector *c,
		     const struct cli_sample *prev, const struct cli_sample *s)
{
	double v[VMS_SERIES_MAX];

	vms_monitor_series(prev->has_host ? &prev->host : NULL, s->has_host ? &s->host : NULL,
			   prev->has_guest ? &prev->guest : NULL, s->has_guest ? &s->guest : NULL,
			   v);
	pthread_mutex_lock(&ex->log_lock);
	cli_log_series(ex->log, c->name, v, (uint64_t)(cli_realtime_s() * 1e9));
	pthread_mutex_unlock(&ex->log_lock);
}

/*
 * Guest figures estimated from the host's at every turn, by models refitted
 * whenever the guest is read (--guest-every N: every N turns, in pairs).
 */
static const struct estimated {
	const char *output, *input;
	int nb;
} estimated[] = {
	{ "guest_cpu_busy", "host_vcpu_run", 2 },
	{ "guest_disk_read_bytes", "host_disk_read_bytes", 1 },
	{ "guest_disk_write_bytes", "host_disk_write_bytes", 1 },
};

#define NR_ESTIMATED (sizeof(estimated) / sizeof(estimated[0]))

struct vm_state {
	struct vms_estimator *est[NR_ESTIMATED];
	int in[NR_ESTIMATED], out[NR_ESTIMATED]; /* their series' indices */
	const char *names[NR_ESTIMATED];
	double value[NR_ESTIMATED], fit[NR_ESTIMATED];
};

static struct vm_state *state_of(struct cli_collector *c)
{
	struct vm_state *st = c->state;

	if (st)
		return st;
	st = calloc(1, sizeof(*st));
	for (size_t i = 0; st && i < NR_ESTIMATED; i++) {
		struct vms_estimator_opts o = { .sz = sizeof(o), .nb = estimated[i].nb };

		st->in[i] = vms_monitor_series_index(estimated[i].input);
		st->out[i] = vms_monitor_series_index(estimated[i].output);
		st->names[i] = estimated[i].output;
		if (vms_estimator_new(1, &o, &st->est[i]))
			st->est[i] = NULL;
	}
	c->state = st;
	return st;
}

static void estimate(struct cli_collector *c, const struct cli_sample *prev,
		     const struct cli_sample *s)
{
	struct vm_state *st = state_of(c);
	double series[VMS_SERIES_MAX];

	if (!st)
		return;
	vms_monitor_series(prev ? &prev->host : NULL, &s->host,
			   prev && prev->has_guest && s->has_guest ? &prev->guest : NULL,
			   s->has_guest ? &s->guest : NULL, series);
	for (size_t i = 0; i < NR_ESTIMATED; i++) {
		struct vms_estimator *e = st->est[i];

		st->value[i] = st->fit[i] = NAN;
		if (!e || st->in[i] < 0 || st->out[i] < 0)
			continue;
		vms_estimator_input(e, &series[st->in[i]]);
		vms_estimator_observe(e, series[st->out[i]]);
		st->value[i] = vms_estimator_estimate(e);
		st->fit[i] = vms_estimator_fit_percent(e);
	}
}

static void free_state(struct cli_collector *c)
{
	struct vm_state *st = c->state;

	for (size_t i = 0; st && i < NR_ESTIMATED; i++)
		vms_estimator_free(st->est[i]);
	free(st);
	c->state = NULL;
}

/* In the VM's collector thread: render this turn and put it where scrapes look. */
static void on_turn(struct cli_collector *c, const struct cli_sample *prev,
		    const struct cli_sample *s, double start, double duration)
{
	struct exporter *ex = c->group->ctx;
	struct rendered *r = &ex->vms[c->index];
	struct vms_prom_vm p = { .name = c->name, .up = s != NULL };
	size_t *offsets = malloc((vms_prom_families() + 1) * sizeof(*offsets)), *old_offsets;
	char *text = NULL, *old;

	(void)start;
	if (ex->log && s && prev)
		log_turn(ex, c, prev, s);
	p.sample_time_s = c->last_good_s;
	p.sample_duration_s = duration;
	p.host = s ? &s->host : NULL;
	/* Between introspection turns, the guest's figures are the last ones read. */
	p.guest = s && s->has_guest ? &s->guest : s && c->has_guest ? &c->guest : NULL;
	/* Read every turn, the guest needs no estimates: its figures are measured. */
	if (s && c->group->guest_every > 2)
		estimate(c, prev, s);
	if (s && c->state) {
		struct vm_state *st = c->state;

		p.nr_estimates = NR_ESTIMATED;
		p.estimate_names = st->names;
		p.estimates = st->value;
		p.estimate_fits = st->fit;
	}
	if (!offsets || vms_prom_render(&p, &text, offsets)) {
		free(offsets);
		return;
	}
	pthread_mutex_lock(&r->lock);
	old = r->text;
	old_offsets = r->offsets;
	r->text = text;
	r->offsets = offsets;
	pthread_mutex_unlock(&r->lock);
	free(old);
	free(old_offsets);
}

/* The scrape: family by family, every VM's last text; never waits for a VM. */
static char *render_scrape(struct exporter *ex, size_t *ret_len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, ret_len);

	if (!f)
		return NULL;
	for (size_t fam = 0; fam < vms_prom_families(); fam++) {
		vms_prom_header(f, fam);
		for (size_t i = 0; i < ex->nr_vms; i++) {
			struct rendered *r = &ex->vms[i];

			pthread_mutex_lock(&r->lock);
			if (r->text)
				fwrite(r->text + r->offsets[fam], 1,
				       r->offsets[fam + 1] - r->offsets[fam], f);
			pthread_mutex_unlock(&r->lock);
		}
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned int status = MHD_HTTP_OK;
	size_t len = 0;
	char *body;

	(void)version, (void)upload, (void)upload_len, (void)state;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		body = strdup("only GET\n");
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics")) {
		body = strdup("vmscope exporter: metrics are at /metrics\n");
		status = strcmp(url, "/") ? MHD_HTTP_NOT_FOUND : MHD_HTTP_OK;
	} else {
		body = render_scrape(cls, &len);
	}
	if (!body)
		return MHD_NO;
	if (status != MHD_HTTP_OK || strcmp(url, "/metrics"))
		len = strlen(body);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				!strcmp(url, "/metrics") ? "text/plain; version=0.0.4; charset=utf-8"
							 : "text/plain; charset=utf-8");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* "HOST:PORT", ":PORT" (every address) or "[V6]:PORT"; the result to freeaddrinfo(). */
static int resolve(const char *listen, struct addrinfo **ret)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	size_t hlen;
	int err;

	if (!colon || !colon[1])
		return cli_fail("--listen %s: expected HOST:PORT or :PORT", listen);
	hlen = (size_t)(colon - listen);
	if (hlen >= sizeof(host))
		return cli_fail("--listen %s: the host is too long", listen);
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	err = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, ret);
	if (err)
		return cli_fail("--listen %s: %s", listen, gai_strerror(err));
	return 0;
}

static struct MHD_Daemon *serve(struct exporter *ex, const char *listen)
{
	struct addrinfo *ai = NULL;
	struct MHD_Daemon *d;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (resolve(listen, &ai))
		return NULL;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	d = MHD_start_daemon(flags, 0, NULL, NULL, answer, ex, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
			     MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!d)
		cli_fail("--listen %s: cannot serve there (%s)", listen, strerror(errno));
	return d;
}

static int run_exporter(int argc, char **argv)
{
	static const struct option options[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "guest-every", required_argument, NULL, 'g' },
		CLI_LOG_OPTIONS,
		{ 0 },
	};
	struct exporter ex = { .group = { .interval_s = 1, .on_turn = on_turn,
					  .on_end = free_state } };
	uint64_t every = 1;
	const char *listen = NULL;
	struct MHD_Daemon *daemon;
	struct cli_log log = { 0 };
	double timeout = 2;
	int opt, status = 0;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		int lo = cli_log_option(&log, opt, optarg);

		if (lo < 0)
			return 1;
		else if (lo)
			continue;
		else if (opt == 'l')
			listen = optarg;
		else if (opt == 'i' && cli_parse_seconds(optarg, "--interval", &ex.group.interval_s))
			return 1;
		else if (opt == 't' && cli_parse_seconds(optarg, "--timeout", &timeout))
			return 1;
		else if (opt == 'g' && (cli_parse_u64(optarg, "--guest-every", &every) ||
					every < 1 || every > 3600))
			return every < 1 || every > 3600 ? cli_fail("--guest-every %s: 1 to 3600", optarg)
							 : 1;
		else if (opt != 'i' && opt != 't' && opt != 'g')
			return cli_usage(&cmd_exporter);
	}
	if (!listen || optind >= argc)
		return cli_usage(&cmd_exporter);
	ex.group.timeout_ms = (int)(timeout * 1000);
	ex.group.guest_every = (unsigned)every;
	ex.group.ctx = &ex;
	ex.nr_vms = (size_t)(argc - optind);
	if (log.dir && cli_log_open(&log, &ex.log))
		return 1;
	pthread_mutex_init(&ex.log_lock, NULL);
	ex.vms = calloc(ex.nr_vms, sizeof(*ex.vms));
	if (!ex.vms) {
		vms_sink_free(ex.log);
		return cli_fail("out of memory");
	}
	for (size_t i = 0; i < ex.nr_vms; i++)
		pthread_mutex_init(&ex.vms[i].lock, NULL);
	daemon = serve(&ex, listen);
	if (!daemon) {
		status = 1;
		goto out;
	}
	cli_stop_on_signals();
	if (cli_collectors_start(&ex.group, argv + optind, ex.nr_vms)) {
		status = 1;
		goto out_daemon;
	}
	fprintf(stderr, "vmscope: serving %zu VMs' metrics on http://%s/metrics\n", ex.nr_vms,
		listen);
	while (!cli_stopping())
		usleep(100000);
	cli_collectors_stop(&ex.group);
out_daemon:
	MHD_stop_daemon(daemon);
out:
	for (size_t i = 0; i < ex.nr_vms; i++) {
		free(ex.vms[i].text);
		free(ex.vms[i].offsets);
		pthread_mutex_destroy(&ex.vms[i].lock);
	}
	free(ex.vms);
	if (ex.log && cli_log_finish(ex.log))
		status = 1;
	vms_sink_free(ex.log);
	pthread_mutex_destroy(&ex.log_lock);
	return status;
}

const struct cli_command cmd_exporter = {
	.name = "exporter",
	.usage = "--listen HOST:PORT [--interval S] [--timeout S] [--guest-every N] " CLI_LOG_USAGE
		 " TARGET...",
	.summary = "Prometheus metrics of every TARGET over HTTP",
	.run = run_exporter,
};
