// SPDX-License-Identifier: MIT
/*
 * NATS JetStream sink: each event is one message on the subject
 * PREFIX.HOST.VM.TYPE, its payload the JSON-lines object, stored by a
 * stream (created when missing: subjects PREFIX.>, the replicas asked for,
 * file storage) and acknowledged by it. Each message carries a Nats-Msg-Id
 * (host, this sink's start time, a sequence number), so that one sent again
 * after an acknowledgement was lost is stored once: JetStream drops
 * duplicates within its window (two minutes by default).
 *
 * The servers can go away, one or all. An event waits, oldest first, in a
 * bounded backlog until a publish is acknowledged; a failed one is tried
 * again at the next write or flush, after reconnecting (libnats moves to
 * another server of the list by itself). When the backlog is full the
 * oldest event is dropped and counted. Writes block for at most a publish's
 * wait (PUBLISH_WAIT_MS) or a connect attempt, once a second at most: give
 * the sink a thread of its own when that matters.
 */
#include <errno.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "sinks/sink.h"

#define CONNECT_TIMEOUT_MS 1000
#define RETRY_EVERY_MS	   1000
#define PUBLISH_WAIT_MS	   2000
#define SERVERS_MAX	   16
#define TOKEN_MAX	   64

struct pending {
	struct pending *next;
	char id[96];
	char *subject;
	char *payload;
	size_t len;
};

struct nats_sink {
	char *servers[SERVERS_MAX];
	int nr_servers;
	char prefix[TOKEN_MAX], host[TOKEN_MAX], stream[TOKEN_MAX];
	int replicas;
	size_t backlog_max;
	natsConnection *conn;
	jsCtx *js;
	long long next_try_ms;
	int stream_ready;
	uint64_t run_id, seq;
	struct pending *head, **tail;
	size_t backlog;
	struct vms_sink_stats stats;
	struct vms_sink *json;
};

static void disconnect(struct nats_sink *n)
{
	jsCtx_Destroy(n->js);
	natsConnection_Destroy(n->conn);
	n->js = NULL;
	n->conn = NULL;
	n->stream_ready = 0;
}

/* The stream, made when missing; another daemon making it at once is fine. */
static int ensure_stream(struct nats_sink *n)
{
	char subjects[TOKEN_MAX + 4];
	const char *list[1] = { subjects };
	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	jsErrCode code = 0;
	natsStatus s;

	if (n->stream_ready)
		return 0;
	s = js_GetStreamInfo(&si, n->js, n->stream, NULL, &code);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		n->stream_ready = 1;
		return 0;
	}
	snprintf(subjects, sizeof(subjects), "%s.>", n->prefix);
	jsStreamConfig_Init(&cfg);
	cfg.Name = n->stream;
	cfg.Subjects = list;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = n->replicas;
	s = js_AddStream(&si, n->js, &cfg, NULL, &code);
	jsStreamInfo_Destroy(si);
	if (s != NATS_OK && code != JSStreamNameExistErr)
		return -EIO;
	n->stream_ready = 1;
	return 0;
}

static int connect_now(struct nats_sink *n)
{
	natsOptions *o = NULL;
	natsStatus s;

	/* A failed try waits its turn, connected or not: a write never waits twice a second. */
	if (monotonic_ms() < n->next_try_ms)
		return -EAGAIN;
	if (n->conn && natsConnection_IsReconnecting(n->conn))
		return -EAGAIN; /* libnats is moving to another server: the backlog keeps it */
	if (n->conn) {
		if (ensure_stream(n)) {
			n->next_try_ms = monotonic_ms() + RETRY_EVERY_MS;
			return -EIO;
		}
		return 0;
	}
	n->next_try_ms = monotonic_ms() + RETRY_EVERY_MS;
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, (const char **)n->servers, n->nr_servers);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, CONNECT_TIMEOUT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1); /* once connected, it moves on by itself */
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 200);
	if (s == NATS_OK)
		s = natsConnection_Connect(&n->conn, o);
	natsOptions_Destroy(o);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&n->js, n->conn, NULL);
	if (s != NATS_OK) {
		disconnect(n);
		return -ECONNREFUSED;
	}
	n->stats.reconnects++;
	n->next_try_ms = 0;
	if (ensure_stream(n)) {
		n->next_try_ms = monotonic_ms() + RETRY_EVERY_MS;
		return -EIO;
	}
	return 0;
}

/* A subject token from guest-chosen text: no dots, wildcards or blanks. */
static void token(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src[i] && i + 1 < len; i++)
		dst[i] =
			strchr(".*> \t\r\n", src[i]) || (unsigned char)src[i] < 0x20 ? '_' : src[i];
	dst[i] = 0;
	if (!i && len > 1)
		memcpy(dst, "_", 2);
}

static void free_pending(struct pending *p)
{
	free(p->subject);
	free(p->payload);
	free(p);
}

static void pop(struct nats_sink *n)
{
	struct pending *p = n->head;

	n->head = p->next;
	if (!n->head)
		n->tail = &n->head;
	n->backlog--;
	free_pending(p);
}

static int publish(struct nats_sink *n, const struct pending *p)
{
	jsPubOptions po;
	natsMsg *msg = NULL;
	jsPubAck *ack = NULL;
	jsErrCode code = 0;
	natsStatus s;

	jsPubOptions_Init(&po);
	po.MsgId = p->id;
	po.MaxWait = PUBLISH_WAIT_MS;
	po.ExpectStream = n->stream;
	s = natsMsg_Create(&msg, p->subject, NULL, p->payload, (int)p->len);
	if (s == NATS_OK)
		s = js_PublishMsg(&ack, n->js, msg, &po, &code);
	jsPubAck_Destroy(ack);
	natsMsg_Destroy(msg);
	return s == NATS_OK ? 0 : -EIO;
}

/* Oldest first, until one fails: it and the rest wait for the next try. */
static void send_backlog(struct nats_sink *n)
{
	while (n->head && !connect_now(n)) {
		if (publish(n, n->head)) {
			/* a connection that lost its servers, or a stream without a leader yet */
			if (!natsConnection_IsReconnecting(n->conn) &&
			    natsConnection_Status(n->conn) != NATS_CONN_STATUS_CONNECTED)
				disconnect(n);
			n->next_try_ms = monotonic_ms() + RETRY_EVERY_MS;
			return;
		}
		pop(n);
		n->stats.sent++;
	}
}

static int keep(struct nats_sink *n, const struct vms_event *ev)
{
	char vm[TOKEN_MAX], type[TOKEN_MAX], subject[4 * TOKEN_MAX];
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	token(vm, sizeof(vm), ev->vm);
	token(type, sizeof(type), ev->type);
	snprintf(subject, sizeof(subject), "%s.%s.%s.%s", n->prefix, n->host, vm, type);
	snprintf(p->id, sizeof(p->id), "%s-%llx-%llu", n->host, (unsigned long long)n->run_id,
		 (unsigned long long)++n->seq);
	p->subject = strdup(subject);
	p->payload = vms_sink_jsonl_format(n->json, ev, &p->len);
	if (!p->subject || !p->payload) {
		free_pending(p);
		return -ENOMEM;
	}
	if (n->backlog == n->backlog_max) {
		pop(n);
		n->stats.dropped++;
	}
	*n->tail = p;
	n->tail = &p->next;
	n->backlog++;
	return 0;
}

static int nats_write(struct vms_sink *sink, const struct vms_event *ev)
{
	struct nats_sink *n = sink->state;
	int err = keep(n, ev);

	if (!err)
		send_backlog(n);
	return err;
}

static int nats_flush(struct vms_sink *sink)
{
	struct nats_sink *n = sink->state;

	send_backlog(n);
	return n->head ? -EAGAIN : 0;
}

static void nats_destroy(struct vms_sink *sink)
{
	struct nats_sink *n = sink->state;

	send_backlog(n);
	while (n->head) {
		pop(n);
		n->stats.dropped++;
	}
	disconnect(n);
	for (int i = 0; i < n->nr_servers; i++)
		free(n->servers[i]);
	vms_sink_free(n->json);
	free(n);
}

static void nats_stats(struct vms_sink *sink, struct vms_sink_stats *ret)
{
	struct nats_sink *n = sink->state;

	*ret = n->stats;
	ret->buffered = n->backlog;
}

static const struct sink_ops nats_ops = {
	.write = nats_write,
	.flush = nats_flush,
	.destroy = nats_destroy,
	.stats = nats_stats,
};

/* nats://HOST:PORT[,nats://HOST:PORT]... */
static int parse_servers(struct nats_sink *n, const char *url)
{
	const char *p = url;

	while (*p) {
		size_t len = strcspn(p, ",");

		if (len < 8 || strncmp(p, "nats://", 7) || n->nr_servers == SERVERS_MAX)
			return -EINVAL;
		n->servers[n->nr_servers] = strndup(p, len);
		if (!n->servers[n->nr_servers++])
			return -ENOMEM;
		p += len + (p[len] == ',');
	}
	return n->nr_servers ? 0 : -EINVAL;
}

static int valid_token(const char *t)
{
	return *t && strlen(t) < TOKEN_MAX && !strpbrk(t, ".*> \t\r\n");
}

#define OPT(o, field, dflt)                                                                        \
	((o) && (o)->sz >= offsetof(struct vms_nats_opts, field) + sizeof((o)->field) &&           \
			 (o)->field                                                                \
		 ? (o)->field                                                                      \
		 : (dflt))

int vms_sink_nats_new(const char *url, const struct vms_nats_opts *opts, struct vms_sink **ret)
{
	struct vms_sink *sink = calloc(1, sizeof(*sink));
	struct nats_sink *n = calloc(1, sizeof(*n));
	char hostname[TOKEN_MAX] = "";
	struct timespec now;
	int err = sink && n ? 0 : -ENOMEM;

	gethostname(hostname, sizeof(hostname) - 1);
	token(hostname, sizeof(hostname), hostname);
	if (!err) {
		snprintf(n->prefix, sizeof(n->prefix), "%s", OPT(opts, subject_prefix, "vmscope"));
		snprintf(n->host, sizeof(n->host), "%s", OPT(opts, host, hostname));
		snprintf(n->stream, sizeof(n->stream), "%s", OPT(opts, stream, "VMSCOPE"));
		n->replicas = OPT(opts, replicas, 1);
		n->backlog_max = OPT(opts, backlog_events, (size_t)10000);
		n->tail = &n->head;
		err = parse_servers(n, url ? url : "");
	}
	if (!err && (!valid_token(n->prefix) || !valid_token(n->host) || !valid_token(n->stream) ||
		     n->replicas < 1 || n->replicas > 5))
		err = -EINVAL;
	if (!err)
		err = vms_sink_jsonl_new(NULL, &n->json);
	if (err) {
		for (int i = 0; n && i < n->nr_servers; i++)
			free(n->servers[i]);
		free(n);
		free(sink);
		return err;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	n->run_id = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	sink->ops = &nats_ops;
	sink->state = n;
	connect_now(n); /* the stream made now if it can be; else at the first write */
	*ret = sink;
	return 0;
}
