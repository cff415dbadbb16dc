// SPDX-License-Identifier: MIT
/*
 * Redis Streams sink: each event is one XADD to a stream capped with
 * "MAXLEN ~ N", its fields those of the JSON-lines form (values as text).
 * The stream name may hold "{vm}", replaced by the event's VM, for one
 * stream per VM; otherwise one stream carries all, the VM being a field.
 *
 * Redis can go away. Events are then kept, oldest first, in a bounded
 * backlog and sent when a reconnection (tried at most once a second)
 * succeeds; when the backlog is full the oldest event is dropped and
 * counted. Nothing is lost without being counted.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sinks/sink.h"
#include "core/util.h"

#define CONNECT_TIMEOUT_MS 1000
#define RETRY_EVERY_MS	   1000
#define MAX_FIELDS	   (2 * (VMS_EVENT_MAX_ATTRS + 8))

struct redis_sink {
	char host[256];
	int port;
	char stream[256];
	unsigned long maxlen;
	redisContext *conn;
	long long next_try_ms;
	struct vms_event *backlog; /* ring of events waiting for Redis */
	size_t backlog_cap, backlog_head, backlog_count;
	struct vms_sink_stats stats;
	struct vms_sink *json; /* formats values through the JSON-lines code */
};

static void disconnect(struct redis_sink *r)
{
	if (r->conn)
		redisFree(r->conn);
	r->conn = NULL;
}

static int connect_now(struct redis_sink *r)
{
	struct timeval tv = { CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000 };

	if (r->conn)
		return 0;
	if (monotonic_ms() < r->next_try_ms)
		return -EAGAIN;
	r->next_try_ms = monotonic_ms() + RETRY_EVERY_MS;
	r->conn = redisConnectWithTimeout(r->host, r->port, tv);
	if (!r->conn || r->conn->err) {
		disconnect(r);
		return -ECONNREFUSED;
	}
	redisSetTimeout(r->conn, tv);
	r->stats.reconnects++;
	return 0;
}

static void stream_name(const struct redis_sink *r, const struct vms_event *ev, char *out,
			size_t len)
{
	const char *at = strstr(r->stream, "{vm}");

	if (!at)
		snprintf(out, len, "%s", r->stream);
	else
		snprintf(out, len, "%.*s%s%s", (int)(at - r->stream), r->stream, ev->vm, at + 4);
}

/* XADD STREAM MAXLEN ~ N * field value ...; 0 when Redis took it. */
static int xadd(struct redis_sink *r, const struct vms_event *ev)
{
	const char *argv[6 + MAX_FIELDS];
	size_t argl[6 + MAX_FIELDS];
	char name[512], maxlen[24], *texts[MAX_FIELDS] = { 0 };
	json_t *obj = vms_sink_jsonl_object(r->json, ev), *value;
	const char *key;
	int argc = 0, n = 0, err = -EIO;
	redisReply *reply;

	if (!obj)
		return -ENOMEM;
	stream_name(r, ev, name, sizeof(name));
	snprintf(maxlen, sizeof(maxlen), "%lu", r->maxlen);
	argv[argc++] = "XADD";
	argv[argc++] = name;
	argv[argc++] = "MAXLEN";
	argv[argc++] = "~";
	argv[argc++] = maxlen;
	argv[argc++] = "*";
	json_object_foreach (obj, key, value) {
		if (n == MAX_FIELDS / 2)
			break;
		texts[n] = json_is_string(value) ? strdup(json_string_value(value))
						  : json_dumps(value, JSON_ENCODE_ANY);
		argv[argc++] = key;
		argv[argc++] = texts[n] ? texts[n] : "";
		n++;
	}
	for (int i = 0; i < argc; i++)
		argl[i] = strlen(argv[i]);
	reply = redisCommandArgv(r->conn, argc, argv, argl);
	if (reply && reply->type != REDIS_REPLY_ERROR)
		err = 0;
	if (!reply)
		disconnect(r); /* the connection is gone; retry later */
	freeReplyObject(reply);
	for (int i = 0; i < n; i++)
		free(texts[i]);
	json_decref(obj);
	return err;
}

static void keep(struct redis_sink *r, const struct vms_event *ev)
{
	size_t slot;

	if (r->backlog_count == r->backlog_cap) { /* full: the oldest goes */
		r->backlog_head = (r->backlog_head + 1) % r->backlog_cap;
		r->backlog_count--;
		r->stats.dropped++;
	}
	slot = (r->backlog_head + r->backlog_count) % r->backlog_cap;
	vms_event_copy(&r->backlog[slot], ev);
	r->backlog_count++;
}

/* Send what waited, oldest first, while Redis takes it. */
static void send_backlog(struct redis_sink *r)
{
	while (r->backlog_count && r->conn && !xadd(r, &r->backlog[r->backlog_head])) {
		r->backlog_head = (r->backlog_head + 1) % r->backlog_cap;
		r->backlog_count--;
		r->stats.sent++;
	}
}

static int redis_write(struct vms_sink *sink, const struct vms_event *ev)
{
	struct redis_sink *r = sink->state;

	if (!connect_now(r))
		send_backlog(r);
	if (r->conn && !r->backlog_count && !xadd(r, ev)) {
		r->stats.sent++;
		return 0;
	}
	keep(r, ev);
	r->stats.buffered = r->backlog_count;
	return 0;
}

static int redis_flush(struct vms_sink *sink)
{
	struct redis_sink *r = sink->state;

	if (!connect_now(r))
		send_backlog(r);
	r->stats.buffered = r->backlog_count;
	return r->backlog_count ? -EAGAIN : 0;
}

static void redis_destroy(struct vms_sink *sink)
{
	struct redis_sink *r = sink->state;

	disconnect(r);
	vms_sink_free(r->json);
	free(r->backlog);
	free(r);
}

static void redis_stats(struct vms_sink *sink, struct vms_sink_stats *ret)
{
	struct redis_sink *r = sink->state;

	*ret = r->stats;
	ret->buffered = r->backlog_count;
}

static const struct sink_ops redis_ops = {
	.write = redis_write,
	.flush = redis_flush,
	.destroy = redis_destroy,
	.stats = redis_stats,
};

/* redis://HOST:PORT/STREAM */
static int parse_url(struct redis_sink *r, const char *url)
{
	const char *host = url + 8, *colon, *slash;

	if (strncmp(url, "redis://", 8))
		return -EINVAL;
	slash = strchr(host, '/');
	colon = memchr(host, ':', slash ? (size_t)(slash - host) : strlen(host));
	if (!slash || !slash[1] || !colon || colon == host)
		return -EINVAL;
	snprintf(r->host, sizeof(r->host), "%.*s", (int)(colon - host), host);
	r->port = atoi(colon + 1);
	snprintf(r->stream, sizeof(r->stream), "%s", slash + 1);
	return r->port > 0 && r->port < 65536 ? 0 : -EINVAL;
}

int vms_sink_redis_new(const char *url, const struct vms_redis_opts *opts,
		       struct vms_sink **ret_sink)
{
	struct redis_sink *r = calloc(1, sizeof(*r));
	struct vms_sink *sink = calloc(1, sizeof(*sink));
	size_t backlog = opts && opts->backlog_events ? opts->backlog_events : 10000;

	if (!r || !sink)
		goto out_nomem;
	if (parse_url(r, url)) {
		free(r);
		free(sink);
		return -EINVAL;
	}
	r->maxlen = opts && opts->maxlen ? opts->maxlen : 100000;
	r->backlog_cap = backlog;
	r->backlog = calloc(backlog, sizeof(*r->backlog));
	if (!r->backlog || vms_sink_jsonl_new(stdout, &r->json))
		goto out_nomem;
	connect_now(r); /* an outage at start is an outage like any other */
	sink->ops = &redis_ops;
	sink->state = r;
	*ret_sink = sink;
	return 0;
out_nomem:
	if (r)
		free(r->backlog);
	free(r);
	free(sink);
	return -ENOMEM;
}
