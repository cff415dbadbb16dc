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
};

/* In the VM's collector thread: render this turn and put it where scrapes look. */
static void on_turn(struct cli_collector *c, const struct cli_sample *s, double start,
		    double duration)
{
	struct exporter *ex = c->group->ctx;
	struct rendered *r = &ex->vms[c->index];
	struct vms_prom_vm p = { .name = c->name, .up = s != NULL };
	size_t *offsets = malloc((vms_prom_families() + 1) * sizeof(*offsets)), *old_offsets;
	char *text = NULL, *old;

	(void)start;
	p.sample_time_s = c->last_good_s;
	p.sample_duration_s = duration;
	p.host = s ? &s->host : NULL;
	p.guest = s && s->has_guest ? &s->guest : NULL;
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
		{ 0 },
	};
	struct exporter ex = { .group = { .interval_s = 1, .on_turn = on_turn } };
	const char *listen = NULL;
	struct MHD_Daemon *daemon;
	double timeout = 2;
	int opt, status = 0;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'l')
			listen = optarg;
		else if (opt == 'i' && cli_parse_seconds(optarg, "--interval", &ex.group.interval_s))
			return 1;
		else if (opt == 't' && cli_parse_seconds(optarg, "--timeout", &timeout))
			return 1;
		else if (opt != 'i' && opt != 't')
			return cli_usage(&cmd_exporter);
	}
	if (!listen || optind >= argc)
		return cli_usage(&cmd_exporter);
	ex.group.timeout_ms = (int)(timeout * 1000);
	ex.group.ctx = &ex;
	ex.nr_vms = (size_t)(argc - optind);
	ex.vms = calloc(ex.nr_vms, sizeof(*ex.vms));
	if (!ex.vms)
		return cli_fail("out of memory");
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
	return status;
}

const struct cli_command cmd_exporter = {
	.name = "exporter",
	.usage = "--listen HOST:PORT [--interval S] [--timeout S] TARGET...",
	.summary = "Prometheus metrics of every TARGET over HTTP",
	.run = run_exporter,
};
