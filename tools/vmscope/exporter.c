// SPDX-License-Identifier: MIT
/*
 * vmscope exporter --listen HOST:PORT [--interval S] [--timeout S] TARGET...
 *
 * Prometheus metrics for every TARGET, over HTTP (libmicrohttpd). Each VM
 * has its own collector thread, sampling on its own schedule with a deadline
 * per QMP exchange; a scrape only copies the rendered texts of the last
 * samples, so a slow, hung or dead VM never delays it: it shows as
 * vmscope_up 0 with its last good timestamp. A VM that fails is attached
 * afresh at its next turn (QEMU restarted, socket back).
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

#include <vmscope/prometheus.h>

#include "cli.h"

struct collector {
	const char *target;
	char name[VMS_NAME_MAX];
	pthread_t thread;
	pthread_mutex_t lock; /* guards texts */
	char **texts;	      /* the last rendering, one text per family */
	double last_good_s;
	struct exporter *ex;
};

struct exporter {
	struct collector *vms;
	size_t nr_vms;
	double interval_s;
	int timeout_ms;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	int stop;
};

static double realtime_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep until deadline (CLOCK_REALTIME seconds) or the exporter stops; 1 when stopping. */
static int wait_until(struct exporter *ex, double deadline)
{
	struct timespec ts = { .tv_sec = (time_t)deadline,
			       .tv_nsec = (long)((deadline - (double)(time_t)deadline) * 1e9) };
	int stop;

	pthread_mutex_lock(&ex->stop_lock);
	while (!ex->stop && pthread_cond_timedwait(&ex->stop_cond, &ex->stop_lock, &ts) != ETIMEDOUT)
		;
	stop = ex->stop;
	pthread_mutex_unlock(&ex->stop_lock);
	return stop;
}

static void publish(struct collector *c, char **texts)
{
	char **old;

	pthread_mutex_lock(&c->lock);
	old = c->texts;
	c->texts = texts;
	pthread_mutex_unlock(&c->lock);
	vms_prom_texts_free(old);
}

static struct vms_vm *attach(struct collector *c)
{
	struct vms_attach_opts opts = { .sz = sizeof(opts), .timeout_ms = c->ex->timeout_ms };
	struct vms_vm_info info;
	struct vms_vm *vm = NULL;

	if (vms_vm_new(&vm))
		return NULL;
	if (vms_vm_attach(vm, c->target, &opts)) {
		vms_vm_free(vm);
		return NULL;
	}
	if (!vms_vm_query_info(vm, &info) && info.name[0])
		snprintf(c->name, sizeof(c->name), "%s", info.name);
	return vm;
}

/* One turn: sample (attaching first if need be) and publish what the VM looks like now. */
static struct vms_vm *collect(struct collector *c, struct vms_vm *vm)
{
	struct vms_prom_vm p = { .name = c->name };
	struct cli_sample s = { 0 };
	double start = realtime_s();
	char **texts = NULL;
	int ok = 0;

	if (!vm)
		vm = attach(c);
	if (vm && !cli_sample(vm, &s) && s.has_host) {
		ok = 1;
		c->last_good_s = start;
	} else if (vm) {
		vms_vm_free(vm); /* attach afresh next turn: QEMU may have restarted */
		vm = NULL;
	}
	p.up = ok;
	p.sample_time_s = c->last_good_s;
	p.sample_duration_s = realtime_s() - start;
	p.host = ok ? &s.host : NULL;
	p.guest = ok && s.has_guest ? &s.guest : NULL;
	if (!vms_prom_render(&p, &texts))
		publish(c, texts);
	if (ok)
		cli_sample_release(&s);
	return vm;
}

static void *collector_main(void *arg)
{
	struct collector *c = arg;
	struct vms_vm *vm = NULL;
	double next = realtime_s();

	do {
		vm = collect(c, vm);
		next += c->ex->interval_s;
		if (next < realtime_s()) /* a slow turn: skip the missed ones, keep the phase */
			next = realtime_s() + c->ex->interval_s;
	} while (!wait_until(c->ex, next));
	vms_vm_free(vm);
	return NULL;
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
			struct collector *c = &ex->vms[i];

			pthread_mutex_lock(&c->lock);
			if (c->texts)
				fputs(c->texts[fam], f);
			pthread_mutex_unlock(&c->lock);
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

static void stop_collectors(struct exporter *ex, size_t started)
{
	pthread_mutex_lock(&ex->stop_lock);
	ex->stop = 1;
	pthread_cond_broadcast(&ex->stop_cond);
	pthread_mutex_unlock(&ex->stop_lock);
	for (size_t i = 0; i < started; i++) {
		pthread_join(ex->vms[i].thread, NULL);
		vms_prom_texts_free(ex->vms[i].texts);
		pthread_mutex_destroy(&ex->vms[i].lock);
	}
}

static int run_exporter(int argc, char **argv)
{
	static const struct option options[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ 0 },
	};
	struct exporter ex = { .interval_s = 1, .timeout_ms = 2000,
			       .stop_lock = PTHREAD_MUTEX_INITIALIZER,
			       .stop_cond = PTHREAD_COND_INITIALIZER };
	const char *listen = NULL;
	struct MHD_Daemon *daemon;
	double timeout = 2;
	size_t started = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'l')
			listen = optarg;
		else if (opt == 'i' && cli_parse_seconds(optarg, "--interval", &ex.interval_s))
			return 1;
		else if (opt == 't' && cli_parse_seconds(optarg, "--timeout", &timeout))
			return 1;
		else if (opt != 'i' && opt != 't')
			return cli_usage(&cmd_exporter);
	}
	if (!listen || optind >= argc)
		return cli_usage(&cmd_exporter);
	ex.timeout_ms = (int)(timeout * 1000);
	ex.nr_vms = (size_t)(argc - optind);
	ex.vms = calloc(ex.nr_vms, sizeof(*ex.vms));
	if (!ex.vms)
		return cli_fail("out of memory");
	daemon = serve(&ex, listen);
	if (!daemon) {
		free(ex.vms);
		return 1;
	}
	cli_stop_on_signals();
	for (; started < ex.nr_vms; started++) {
		struct collector *c = &ex.vms[started];

		c->target = argv[optind + (int)started];
		c->ex = &ex;
		snprintf(c->name, sizeof(c->name), "%s", c->target);
		pthread_mutex_init(&c->lock, NULL);
		if (pthread_create(&c->thread, NULL, collector_main, c))
			break;
	}
	fprintf(stderr, "vmscope: serving %zu VMs' metrics on http://%s/metrics\n", started, listen);
	while (!cli_stopping())
		usleep(100000);
	MHD_stop_daemon(daemon);
	stop_collectors(&ex, started);
	free(ex.vms);
	return started == ex.nr_vms ? 0 : cli_fail("cannot start a collector thread");
}

const struct cli_command cmd_exporter = {
	.name = "exporter",
	.usage = "--listen HOST:PORT [--interval S] [--timeout S] TARGET...",
	.summary = "Prometheus metrics of every TARGET over HTTP",
	.run = run_exporter,
};
