// SPDX-License-Identifier: MIT
/*
 * Where every VM's events meet: the workers publish what their views,
 * traces and fswatches give, and the hub hands each event to the daemon's
 * consumers, today the durable log (log-dir). The log's writer takes one
 * producer, so publishing holds the hub's lock for the copy into its ring;
 * the writer compresses and syncs on its own thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vmscope/log.h>

#include "daemon.h"

/* The writer's ring: shared by every VM, a slot is a whole event (about 6 KiB). */
#define LOG_RING_SLOTS 1024

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

int events_init(struct events *e, const struct daemon_config *c, char *why, size_t why_len)
{
	struct vms_log *log;

	memset(e, 0, sizeof(*e));
	if (open_log(c->log_dir, c->log_max_bytes, c->log_max_age_s, &log, why, why_len))
		return -1;
	pthread_mutex_init(&e->lock, NULL);
	set_log(e, log, c);
	return 0;
}

static int close_log(struct vms_log *log)
{
	return log ? vms_log_close(log) : 0;
}

int events_configure(struct events *e, const struct daemon_config *c, char *why, size_t why_len)
{
	struct vms_log *log, *old;

	if (!strcmp(e->log_dir, c->log_dir) && e->log_max_bytes == c->log_max_bytes &&
	    e->log_max_age_s == c->log_max_age_s)
		return 0;
	/* The same directory reopened: its lock allows one writer, so close it first. */
	pthread_mutex_lock(&e->lock);
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
		pthread_mutex_unlock(&e->lock);
		return -1;
	}
	set_log(e, log, c);
	pthread_mutex_unlock(&e->lock);
	close_log(old);
	return 0;
}

void events_publish(struct events *e, const struct vms_event *ev, int to_log)
{
	pthread_mutex_lock(&e->lock);
	e->published++;
	if (to_log && e->log) {
		if (vms_log_append(e->log, ev))
			e->log_errors++;
		else
			e->logged++;
	}
	pthread_mutex_unlock(&e->lock);
}

void events_metrics(struct events *e, FILE *f)
{
	struct vms_log_stats st = { 0 };
	uint64_t published, logged, errors;
	int has_log;

	pthread_mutex_lock(&e->lock);
	has_log = e->log != NULL;
	if (has_log)
		vms_log_get_stats(e->log, &st);
	published = e->published;
	logged = e->logged;
	errors = e->log_errors;
	pthread_mutex_unlock(&e->lock);
	fprintf(f,
		"# HELP vmscoped_events_published_total Events the workers handed on, every VM.\n"
		"# TYPE vmscoped_events_published_total counter\n"
		"vmscoped_events_published_total %llu\n",
		(unsigned long long)published);
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
	close_log(e->log);
	e->log = NULL;
	pthread_mutex_destroy(&e->lock);
}
