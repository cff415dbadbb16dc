// SPDX-License-Identifier: MIT
/*
 * Where every VM's events meet: the workers publish what their views,
 * traces and fswatches give, and the hub hands each event to the daemon's
 * consumers: the durable log (log-dir), and the live event stream of the
 * API, for which the last RECENT_MAX events (RECENT_BYTES at most) are kept
 * as JSON, formatted once, each with a sequence number a reader resumes
 * from. The log's writer takes one producer, so publishing holds the hub's
 * lock for the copy into its ring; the writer compresses and syncs on its
 * own thread. A reader that falls behind what is kept is told how many it
 * missed; nobody waits for a reader.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vmscope/event.h>
#include <vmscope/log.h>
#include <vmscope/sink.h>

#include "daemon.h"

/* The writer's ring: shared by every VM, a slot is a whole event (about 6 KiB). */
#define LOG_RING_SLOTS 1024
#define RECENT_MAX     4096
#define RECENT_BYTES   (8u << 20)

struct recent {
	char vm[VMS_EVENT_VM_MAX];
	char type[VMS_EVENT_TYPE_MAX];
	char *json;
	size_t len;
	struct vms_event *ev; /* its first vms_event_size() bytes, for the forwarders */
	size_t ev_size;
};

static int open_log(const char *dir, uint64_t max_bytes, uint64_t max_age_s, struct vms_log **ret,
		    char *why, size_t why_len)
{
	struct vms_log_opts o = {
		.sz = sizeof(o),
		.max_bytes = max_bytes,
		.max_age_s = max_age_s,
		.ring_slots = LOG_RING_SLOTS,
	};

	*ret = NULL;
	if (!dir[0])
		return 0;
	if (vms_log_open(dir, &o, ret)) {
		snprintf(why, why_len, "log-dir %s: %s", dir, vms_log_last_error());
		return -1;
	}
	return 0;
}

static void set_log(struct events *e, struct vms_log *log, const struct daemon_config *c)
{
	e->log = log;
	snprintf(e->log_dir, sizeof(e->log_dir), "%s", c->log_dir);
	e->log_max_bytes = c->log_max_bytes;
	e->log_max_age_s = c->log_max_age_s;
}

/* What a forwarder of that kind is started from: a change restarts it. */
static void forward_conf(int kind, const struct daemon_config *c, char *buf, size_t len)
{
	const char *url = forwarder_url(kind, c);

	if (!*url)
		buf[0] = 0;
	else
		snprintf(buf, len, "%s|%s|%s|%d|%zu", url, c->host, c->nats_stream,
			 c->nats_replicas, c->backlog_events);
}

/* Each kind as c says: kept, stopped, (re)started. A failure keeps the one running. */
static int configure_forwarders(struct events *e, const struct daemon_config *c, char *why,
				size_t why_len)
{
	int failed = 0;

	for (int k = 0; k < FORWARDERS; k++) {
		char conf[sizeof(e->forward_conf[0])];
		struct forwarder *f = NULL, *old;

		forward_conf(k, c, conf, sizeof(conf));
		if (!strcmp(conf, e->forward_conf[k]))
			continue;
		if (conf[0] && forwarder_start(k, e, c, &f, why, why_len)) {
			failed = -1;
			continue;
		}
		pthread_mutex_lock(&e->lock);
		old = e->forward[k];
		e->forward[k] = f;
		pthread_mutex_unlock(&e->lock);
		forwarder_stop(old); /* outside the lock: its thread reads the hub */
		memcpy(e->forward_conf[k], conf, sizeof(conf));
	}
	return failed;
}

int events_init(struct events *e, const struct daemon_config *c, char *why, size_t why_len)
{
	struct vms_log *log;
	pthread_condattr_t ca;

	memset(e, 0, sizeof(*e));
	e->recent = calloc(RECENT_MAX, sizeof(*e->recent));
	if (!e->recent || vms_sink_jsonl_new(NULL, &e->json)) {
		free(e->recent);
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	if (open_log(c->log_dir, c->log_max_bytes, c->log_max_age_s, &log, why, why_len)) {
		vms_sink_free(e->json);
		free(e->recent);
		return -1;
	}
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->log_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->more, &ca);
	pthread_condattr_destroy(&ca);
	set_log(e, log, c);
	if (configure_forwarders(e, c, why, why_len)) {
		events_close(e);
		return -1;
	}
	return 0;
}

static int close_log(struct vms_log *log)
{
	return log ? vms_log_close(log) : 0;
}

int events_configure(struct events *e, const struct daemon_config *c, char *why, size_t why_len)
{
	struct vms_log *log, *old;
	int failed = configure_forwarders(e, c, why, why_len);

	if (!strcmp(e->log_dir, c->log_dir) && e->log_max_bytes == c->log_max_bytes &&
	    e->log_max_age_s == c->log_max_age_s)
		return failed;
	/* The same directory reopened: its lock allows one writer, so close it first. */
	pthread_mutex_lock(&e->log_lock);
	old = e->log;
	if (!strcmp(e->log_dir, c->log_dir)) {
		e->log = NULL;
		close_log(old);
		old = NULL;
	}
	if (open_log(c->log_dir, c->log_max_bytes, c->log_max_age_s, &log, why, why_len)) {
		char again[DAEMON_REASON_MAX];

		/* The old one, as it was, if it was closed for this. */
		if (!old && open_log(e->log_dir, e->log_max_bytes, e->log_max_age_s, &e->log, again,
				     sizeof(again)))
			fprintf(stderr, "vmscoped: %s\n", again);
		pthread_mutex_unlock(&e->log_lock);
		return -1;
	}
	set_log(e, log, c);
	pthread_mutex_unlock(&e->log_lock);
	close_log(old);
	return failed;
}

static void drop_oldest(struct events *e)
{
	struct recent *r = &e->recent[e->first_seq % RECENT_MAX];

	e->recent_bytes -= r->len + r->ev_size;
	free(r->json);
	free(r->ev);
	memset(r, 0, sizeof(*r));
	e->first_seq++;
}

/* Kept for the stream under the next sequence number (under the lock). */
static void keep(struct events *e, const struct vms_event *ev)
{
	size_t len, size = vms_event_size(ev);
	char *json = vms_sink_jsonl_format(e->json, ev, &len);
	struct vms_event *copy = malloc(size);
	struct recent *r;

	if (!json || !copy) {
		free(json);
		free(copy);
		e->unformatted++;
		return;
	}
	memcpy(copy, ev, size);
	while (e->first_seq < e->next_seq && (e->next_seq - e->first_seq == RECENT_MAX ||
					      e->recent_bytes + len + size > RECENT_BYTES))
		drop_oldest(e);
	r = &e->recent[e->next_seq++ % RECENT_MAX];
	snprintf(r->vm, sizeof(r->vm), "%s", ev->vm);
	snprintf(r->type, sizeof(r->type), "%s", ev->type);
	r->json = json;
	r->len = len;
	r->ev = copy;
	r->ev_size = size;
	e->recent_bytes += len + size;
	pthread_cond_broadcast(&e->more);
}

/*
 * The log under a lock of its own: its append waits while the writer's ring
 * is full (a slow disk), and that must hold up only the publishers, not the
 * stream's readers, the forwarders or a scrape.
 */
void events_publish(struct events *e, const struct vms_event *ev, int to_log)
{
	pthread_mutex_lock(&e->lock);
	e->published++;
	keep(e, ev);
	pthread_mutex_unlock(&e->lock);
	if (!to_log)
		return;
	pthread_mutex_lock(&e->log_lock);
	if (e->log && vms_log_append(e->log, ev))
		e->log_errors++;
	else if (e->log)
		e->logged++;
	pthread_mutex_unlock(&e->log_lock);
}

/* Family by family, each sink a sample: Prometheus wants a family's samples together. */
static void forward_metrics(FILE *f, const struct forward_figures *fig, int n)
{
	static const struct {
		const char *state;
		size_t offset;
	} counts[] = {
		{ "written", offsetof(struct forward_figures, written) },
		{ "acknowledged", offsetof(struct forward_figures, acknowledged) },
		{ "dropped", offsetof(struct forward_figures, dropped) },
		{ "missed", offsetof(struct forward_figures, missed) },
	};

	if (!n)
		return;
	fprintf(f, "# HELP vmscoped_forward_events_total Events a forwarder took from the hub "
		   "(written), its engine acknowledged, its backlog dropped, or it missed by "
		   "falling behind the hub.\n# TYPE vmscoped_forward_events_total counter\n");
	for (int i = 0; i < n; i++)
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
			fprintf(f, "vmscoped_forward_events_total{sink=\"%s\",state=\"%s\"} %llu\n",
				fig[i].name, counts[c].state,
				*(const unsigned long long *)((const char *)&fig[i] +
							      counts[c].offset));
	fprintf(f, "# HELP vmscoped_forward_buffered Events waiting for the engine.\n"
		   "# TYPE vmscoped_forward_buffered gauge\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "vmscoped_forward_buffered{sink=\"%s\"} %llu\n", fig[i].name,
			(unsigned long long)fig[i].buffered);
	fprintf(f, "# HELP vmscoped_forward_connects_total Connections the forwarder made.\n"
		   "# TYPE vmscoped_forward_connects_total counter\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "vmscoped_forward_connects_total{sink=\"%s\"} %llu\n", fig[i].name,
			(unsigned long long)fig[i].connects);
}

void events_metrics(struct events *e, FILE *f)
{
	struct vms_log_stats st = { 0 };
	struct forward_figures fig[FORWARDERS];
	uint64_t published, logged, errors, held, unkept;
	unsigned int readers;
	int has_log, nr_fig = 0;

	pthread_mutex_lock(&e->log_lock);
	has_log = e->log != NULL;
	if (has_log)
		vms_log_get_stats(e->log, &st);
	logged = e->logged;
	errors = e->log_errors;
	pthread_mutex_unlock(&e->log_lock);
	pthread_mutex_lock(&e->lock);
	published = e->published;
	unkept = e->unformatted;
	held = e->next_seq - e->first_seq;
	readers = e->readers;
	for (int k = 0; k < FORWARDERS; k++)
		if (e->forward[k])
			forwarder_figures(e->forward[k], &fig[nr_fig++]);
	pthread_mutex_unlock(&e->lock);
	forward_metrics(f, fig, nr_fig);
	fprintf(f,
		"# HELP vmscoped_events_published_total Events the workers handed on, every VM.\n"
		"# TYPE vmscoped_events_published_total counter\n"
		"vmscoped_events_published_total %llu\n"
		"# HELP vmscoped_stream_events Events held for the event stream's readers.\n"
		"# TYPE vmscoped_stream_events gauge\nvmscoped_stream_events %llu\n"
		"# HELP vmscoped_stream_readers Readers waiting on the event stream.\n"
		"# TYPE vmscoped_stream_readers gauge\nvmscoped_stream_readers %u\n"
		"# HELP vmscoped_stream_unkept_total Events the stream and forwarders never saw "
		"(out of memory).\n# TYPE vmscoped_stream_unkept_total counter\n"
		"vmscoped_stream_unkept_total %llu\n",
		(unsigned long long)published, (unsigned long long)held, readers,
		(unsigned long long)unkept);
	if (!has_log)
		return;
	fprintf(f,
		"# HELP vmscoped_log_events_total Events appended to the log, and of those synced "
		"to disk.\n# TYPE vmscoped_log_events_total counter\n"
		"vmscoped_log_events_total{state=\"appended\"} %llu\n"
		"vmscoped_log_events_total{state=\"durable\"} %llu\n"
		"# HELP vmscoped_log_errors_total Events the log refused (its writer failed).\n"
		"# TYPE vmscoped_log_errors_total counter\nvmscoped_log_errors_total %llu\n"
		"# HELP vmscoped_log_stored_bytes_total Compressed bytes the log wrote.\n"
		"# TYPE vmscoped_log_stored_bytes_total counter\n"
		"vmscoped_log_stored_bytes_total %llu\n",
		(unsigned long long)logged, (unsigned long long)st.durable,
		(unsigned long long)errors, (unsigned long long)st.stored_bytes);
}

void events_close(struct events *e)
{
	for (int k = 0; k < FORWARDERS; k++) {
		forwarder_stop(e->forward[k]);
		e->forward[k] = NULL;
	}
	close_log(e->log);
	e->log = NULL;
	while (e->first_seq < e->next_seq)
		drop_oldest(e);
	free(e->recent);
	vms_sink_free(e->json);
	pthread_cond_destroy(&e->more);
	pthread_mutex_destroy(&e->log_lock);
	pthread_mutex_destroy(&e->lock);
}

static int wanted(const struct recent *r, const struct events_filter *f)
{
	if (f->vm[0] && strcmp(f->vm, r->vm))
		return 0;
	for (int i = 0; i < f->nr_types; i++)
		if (!strcmp(f->type[i], r->type))
			return 1;
	return !f->nr_types;
}

/* What fits of [*pos, next_seq) into buf; *pos moves past what was looked at. */
static size_t render(struct events *e, uint64_t *pos, const struct events_filter *f, char *buf,
		     size_t len)
{
	size_t used = 0;

	if (*pos < e->first_seq) {
		used = (size_t)snprintf(buf, len,
					": %llu events were dropped before this reader "
					"read them\n\n",
					(unsigned long long)(e->first_seq - *pos));
		*pos = e->first_seq;
	}
	for (; *pos < e->next_seq; ++*pos) {
		const struct recent *r = &e->recent[*pos % RECENT_MAX];
		size_t need = r->len + strlen(r->type) + 64;

		if (!wanted(r, f))
			continue;
		if (need > len - used) {
			if (!used) { /* bigger than any buffer it will get: passed over */
				used = (size_t)snprintf(buf, len, ": event %llu is too big\n\n",
							(unsigned long long)*pos);
				++*pos;
			}
			break;
		}
		used += (size_t)snprintf(buf + used, len - used,
					 "id: %llu\nevent: %s\ndata: ", (unsigned long long)*pos,
					 r->type);
		memcpy(buf + used, r->json, r->len);
		used += r->len;
		memcpy(buf + used, "\n\n", 2);
		used += 2;
	}
	return used;
}

size_t events_read(struct events *e, uint64_t *pos, const struct events_filter *f, char *buf,
		   size_t len, int wait_ms, const _Atomic int *stop)
{
	struct timespec until;
	size_t used = 0;

	daemon_deadline(&until, wait_ms);
	pthread_mutex_lock(&e->lock);
	if (*pos > e->next_seq) /* from the future (another run's, or made up): from now */
		*pos = e->next_seq;
	e->readers++;
	while (!*stop && !(used = render(e, pos, f, buf, len)))
		if (pthread_cond_timedwait(&e->more, &e->lock, &until))
			break;
	e->readers--;
	pthread_mutex_unlock(&e->lock);
	if (*stop)
		return 0;
	return used ? used : (size_t)snprintf(buf, len, ": keepalive\n\n");
}

int events_next(struct events *e, uint64_t *pos, struct vms_event *ev, uint64_t *missed,
		int wait_ms, const _Atomic int *stop)
{
	struct timespec until;
	int got = 0;

	daemon_deadline(&until, wait_ms);
	pthread_mutex_lock(&e->lock);
	if (*pos > e->next_seq)
		*pos = e->next_seq;
	while (!*stop && *pos == e->next_seq)
		if (pthread_cond_timedwait(&e->more, &e->lock, &until))
			break;
	if (*pos < e->first_seq) {
		*missed += e->first_seq - *pos;
		*pos = e->first_seq;
	}
	if (!*stop && *pos < e->next_seq) {
		const struct recent *r = &e->recent[*pos % RECENT_MAX];

		memcpy(ev, r->ev, r->ev_size);
		++*pos;
		got = 1;
	}
	pthread_mutex_unlock(&e->lock);
	return *stop ? -1 : got;
}

uint64_t events_position(struct events *e)
{
	uint64_t pos;

	pthread_mutex_lock(&e->lock);
	pos = e->next_seq;
	pthread_mutex_unlock(&e->lock);
	return pos;
}

void events_kick(struct events *e)
{
	pthread_mutex_lock(&e->lock);
	pthread_cond_broadcast(&e->more);
	pthread_mutex_unlock(&e->lock);
}
