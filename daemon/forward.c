// SPDX-License-Identifier: MIT
/*
 * Forwarders: the hub's events to an engine beyond this host, NATS
 * JetStream or Redis Streams, one thread each. A forwarder reads the hub
 * as a stream reader does, from its own position, and writes each event
 * into its sink, whose backlog carries an outage; the sink may block (a
 * publish waits for JetStream's acknowledgement), which holds up nobody
 * but the forwarder. One that falls behind what the hub holds counts what
 * it missed. A table of backends: one row per engine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/event.h>
#include <vmscope/sink.h>

#include "daemon.h"

#define IDLE_FLUSH_MS 500 /* with nothing new, the backlog is tried again this often */
#define STOP_FLUSH_MS 2000

struct forwarder {
	const struct backend *backend;
	struct vms_sink *sink;
	struct events *hub;
	pthread_t thread;
	_Atomic int stopping;
	uint64_t pos;
	pthread_mutex_t lock; /* the figures below, for the metrics */
	struct vms_sink_stats stats;
	uint64_t missed, written;
};

struct backend {
	const char *name;
	int (*open)(const struct daemon_config *c, struct vms_sink **ret);
	const char *(*url)(const struct daemon_config *c);
};

static int open_nats(const struct daemon_config *c, struct vms_sink **ret)
{
	struct vms_nats_opts o = {
		.sz = sizeof(o),
		.host = c->host,
		.stream = c->nats_stream[0] ? c->nats_stream : NULL,
		.replicas = c->nats_replicas,
		.backlog_events = c->backlog_events,
	};

	return vms_sink_nats_new(c->nats, &o, ret);
}

static const char *nats_url(const struct daemon_config *c)
{
	return c->nats;
}

static int open_redis(const struct daemon_config *c, struct vms_sink **ret)
{
	struct vms_redis_opts o = { .sz = sizeof(o), .backlog_events = c->backlog_events };

	return vms_sink_redis_new(c->redis, &o, ret);
}

static const char *redis_url(const struct daemon_config *c)
{
	return c->redis;
}

static const struct backend backends[FORWARDERS] = {
	{ "nats", open_nats, nats_url },
	{ "redis", open_redis, redis_url },
};

const char *forwarder_url(int kind, const struct daemon_config *c)
{
	return backends[kind].url(c);
}

static void *run(void *arg)
{
	struct forwarder *f = arg;
	struct vms_event *ev = malloc(sizeof(*ev));
	long long stop_by;
	uint64_t missed = 0;

	while (ev && !f->stopping) {
		int got = events_next(f->hub, &f->pos, ev, &missed, IDLE_FLUSH_MS, &f->stopping);

		if (got > 0)
			vms_sink_write(f->sink, ev);
		else if (!got)
			vms_sink_flush(f->sink);
		pthread_mutex_lock(&f->lock);
		vms_sink_get_stats(f->sink, &f->stats);
		f->missed = missed;
		f->written += got > 0;
		pthread_mutex_unlock(&f->lock);
	}
	/* Stopping: what waits is given a last chance, for a moment. */
	stop_by = (long long)(daemon_now_s() * 1000) + STOP_FLUSH_MS;
	while (vms_sink_flush(f->sink) == -EAGAIN && daemon_now_s() * 1000 < (double)stop_by)
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	free(ev);
	return NULL;
}

int forwarder_start(int kind, struct events *hub, const struct daemon_config *c,
		    struct forwarder **ret, char *why, size_t why_len)
{
	struct forwarder *f = calloc(1, sizeof(*f));
	int err = f ? backends[kind].open(c, &f->sink) : -ENOMEM;

	if (!err) {
		f->backend = &backends[kind];
		f->hub = hub;
		f->pos = events_position(hub); /* from now on */
		pthread_mutex_init(&f->lock, NULL);
		err = -pthread_create(&f->thread, NULL, run, f);
		if (err) {
			pthread_mutex_destroy(&f->lock);
			vms_sink_free(f->sink);
		}
	}
	if (err) {
		snprintf(why, why_len, "%s %s: %s", backends[kind].name, backends[kind].url(c),
			 err == -EINVAL ? "not a URL it takes" : strerror(-err));
		free(f);
		return -1;
	}
	*ret = f;
	return 0;
}

void forwarder_stop(struct forwarder *f)
{
	if (!f)
		return;
	f->stopping = 1;
	events_kick(f->hub);
	pthread_join(f->thread, NULL);
	vms_sink_free(f->sink);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void forwarder_figures(struct forwarder *f, struct forward_figures *ret)
{
	pthread_mutex_lock(&f->lock);
	ret->name = f->backend->name;
	ret->written = f->written;
	ret->acknowledged = f->stats.sent;
	ret->dropped = f->stats.dropped;
	ret->missed = f->missed;
	ret->buffered = f->stats.buffered;
	ret->connects = f->stats.reconnects;
	pthread_mutex_unlock(&f->lock);
}
