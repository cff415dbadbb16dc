// SPDX-License-Identifier: MIT
/*
 * A VM's capabilities besides its metrics, run by its worker between
 * samples: its views polled and diffed into change events (process, module
 * and socket starts and ends), its kernel traced (exec, fork, exit, module
 * and network events at breakpoints), and its disks' ext4 writes turned
 * into file events. Each capability starts once the VM is attached; one
 * that fails says why in the VM's status and is tried again after
 * RETRY_S, without touching the others or the VM's metrics. Events go to
 * the daemon's hub.
 *
 * The VM's memory budget bounds what its events hold: its ring (views and
 * trace) takes a sixteenth, the watched disks' spools half, shared.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vmscope/disk.h>
#include <vmscope/trace.h>

#include "daemon.h"

#define RETRY_S	       30.0
#define TICK_S	       0.1 /* the longest wait while a trace or an fswatch runs */
#define DETACH_S       2.0 /* a clean stop's wait for a watched disk's last events */
#define RING_SLOTS_MIN 16
#define RING_SLOTS_MAX 1024

struct caps {
	struct daemon_vmconf conf;
	int configured;
	struct vms_ring *ring; /* views and trace: the worker fills it and drains it */
	size_t ring_slots;
	struct vms_poll *poll;
	double next_poll;
	struct vms_trace *trace;
	struct vms_fswatch *fw[DAEMON_DISKS_MAX];
	struct vms_ring *fw_ring[DAEMON_DISKS_MAX]; /* one producer each: its inference thread */
	double retry_at[DCAP__COUNT];
	uint64_t dropped_done; /* of rings and fswatches freed since */
};

static const char *const names[DCAP__COUNT] = { "views", "trace", "fswatch" };

const char *dcap_name(enum dcap cap)
{
	return cap < DCAP__COUNT ? names[cap] : "unknown";
}

double daemon_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void daemon_deadline(struct timespec *until, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, until);
	until->tv_sec += ms / 1000;
	until->tv_nsec += (long)(ms % 1000) * 1000000;
	if (until->tv_nsec >= 1000000000) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000;
	}
}

int caps_new(struct caps **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

static int wanted(const struct caps *k, enum dcap cap)
{
	switch (cap) {
	case DCAP_VIEWS:
		return k->conf.views != 0;
	case DCAP_TRACE:
		return k->conf.trace != 0;
	default:
		return k->conf.fswatch.nr != 0;
	}
}

static int running(const struct caps *k, enum dcap cap)
{
	switch (cap) {
	case DCAP_VIEWS:
		return k->poll != NULL;
	case DCAP_TRACE:
		return k->trace != NULL;
	default:
		for (int i = 0; i < DAEMON_DISKS_MAX; i++)
			if (k->fw[i])
				return 1;
		return 0;
	}
}

static void set_status(struct dvm *v, enum dcap cap, const char *state, const char *reason)
{
	pthread_mutex_lock(&v->lock);
	snprintf(v->cap[cap].state, sizeof(v->cap[cap].state), "%s", state);
	snprintf(v->cap[cap].reason, sizeof(v->cap[cap].reason), "%s", reason ? reason : "");
	pthread_mutex_unlock(&v->lock);
}

static void failed(struct caps *k, struct dvm *v, enum dcap cap, const char *reason)
{
	k->retry_at[cap] = daemon_now_s() + RETRY_S;
	set_status(v, cap, "failed", reason);
	fprintf(stderr, "vmscoped: VM %s: %s: %s\n", v->name, names[cap], reason);
}

/* The largest power of two at most n, within [lo, hi]. */
static uint64_t pow2_within(uint64_t n, uint64_t lo, uint64_t hi)
{
	uint64_t p = lo;

	while (p * 2 <= n && p * 2 <= hi)
		p *= 2;
	return p;
}

/* Not its ring's count: inference waits at a full ring, and each try there counts. */
static uint64_t fswatch_dropped(struct vms_fswatch *fw)
{
	struct vms_fswatch_stats st;

	vms_fswatch_get_stats(fw, &st);
	return st.dropped + st.spool_dropped;
}

static uint64_t ring_dropped(const struct vms_ring *ring)
{
	struct vms_ring_stats st;

	if (!ring)
		return 0;
	vms_ring_get_stats(ring, &st);
	return st.dropped;
}

static void count_dropped(struct caps *k, struct dvm *v)
{
	uint64_t n = k->dropped_done + ring_dropped(k->ring);

	for (int i = 0; i < DAEMON_DISKS_MAX; i++)
		if (k->fw[i])
			n += fswatch_dropped(k->fw[i]);
	pthread_mutex_lock(&v->lock);
	v->dropped = n;
	pthread_mutex_unlock(&v->lock);
}

/* Everything the rings hold, to the hub, counted by capability. */
static void drain(struct caps *k, struct dvm *v)
{
	uint64_t n[DCAP__COUNT] = { 0 };
	struct vms_ring *rings[1 + DAEMON_DISKS_MAX] = { k->ring };

	memcpy(rings + 1, k->fw_ring, sizeof(k->fw_ring));
	for (int r = 0; r < 1 + DAEMON_DISKS_MAX; r++) {
		const struct vms_event *ev;

		while (rings[r] && (ev = vms_ring_peek(rings[r]))) {
			events_publish(v->set->events, ev, k->conf.log);
			n[ev->source == VMS_SOURCE_TRACE  ? DCAP_TRACE
			  : ev->source == VMS_SOURCE_DISK ? DCAP_FSWATCH
							  : DCAP_VIEWS]++;
			vms_ring_release(rings[r]);
		}
	}
	pthread_mutex_lock(&v->lock);
	for (int c = 0; c < DCAP__COUNT; c++)
		v->cap[c].events += n[c];
	pthread_mutex_unlock(&v->lock);
}

static int ensure_ring(struct caps *k)
{
	size_t slots = pow2_within(k->conf.memory / 16 / sizeof(struct vms_event), RING_SLOTS_MIN,
				   RING_SLOTS_MAX);

	if (k->ring && k->ring_slots == slots)
		return 0;
	k->dropped_done += ring_dropped(k->ring);
	vms_ring_free(k->ring);
	k->ring = NULL;
	if (vms_ring_new(slots, &k->ring))
		return -ENOMEM;
	k->ring_slots = slots;
	return 0;
}

static void start_views(struct caps *k, struct dvm *v, struct vms_vm *vm)
{
	if (vms_poll_start(vm, k->conf.views, k->ring, &k->poll)) {
		failed(k, v, DCAP_VIEWS, vms_last_error(vm));
		return;
	}
	k->next_poll = daemon_now_s() + k->conf.view_interval_s;
	set_status(v, DCAP_VIEWS, "on", NULL);
}

/* Set, with the probes this kernel lacks named in the reason. */
static void start_trace(struct caps *k, struct dvm *v, struct vms_vm *vm)
{
	char reason[DAEMON_REASON_MAX] = "";
	size_t used = 0;

	if (vms_trace_start(vm, k->conf.trace, 0, k->ring, &k->trace)) {
		failed(k, v, DCAP_TRACE, vms_last_error(vm));
		return;
	}
	for (int p = 0; p < VMS_PROBE__COUNT; p++) {
		const char *why = vms_trace_probe_status(k->trace, p);

		if (why && used < sizeof(reason))
			used += (size_t)snprintf(reason + used, sizeof(reason) - used, "%s%s: %s",
						 used ? "; " : "not set: ", vms_probe_name(p), why);
	}
	set_status(v, DCAP_TRACE, "on", reason);
}

/* At once: what its capture still held is counted as dropped. */
static void stop_fswatch(struct caps *k, int i)
{
	if (!k->fw[i])
		return;
	k->dropped_done += fswatch_dropped(k->fw[i]);
	vms_fswatch_stop(k->fw[i]);
	k->fw[i] = NULL;
	vms_ring_free(k->fw_ring[i]);
	k->fw_ring[i] = NULL;
}

static void start_fswatch(struct caps *k, struct dvm *v, struct vms_vm *vm)
{
	const char *globs[DAEMON_GLOBS_MAX];
	struct vms_fswatch_options o = {
		.paths = globs,
		.nr_paths = (size_t)k->conf.fswatch_paths.nr,
		.mode = (enum vms_capture_mode)k->conf.fswatch_mode,
		/* half the budget between the disks' spools */
		.spool_bytes = pow2_within(k->conf.memory / 2 / (uint64_t)k->conf.fswatch.nr,
					   1u << 20, 1u << 30),
	};
	char reason[DAEMON_REASON_MAX];

	for (int i = 0; i < k->conf.fswatch_paths.nr; i++)
		globs[i] = k->conf.fswatch_paths.glob[i];
	for (int i = 0; i < k->conf.fswatch.nr; i++) {
		const char *node = k->conf.fswatch.node[i];

		if (vms_ring_new(RING_SLOTS_MIN * 4, &k->fw_ring[i]) ||
		    vms_fswatch_start(vm, node, &o, k->fw_ring[i], &k->fw[i])) {
			snprintf(reason, sizeof(reason), "%s: %s", node,
				 k->fw_ring[i] ? vms_last_error(vm) : "out of memory");
			vms_ring_free(k->fw_ring[i]);
			k->fw_ring[i] = NULL;
			k->fw[i] = NULL;
			while (i--)
				stop_fswatch(k, i);
			failed(k, v, DCAP_FSWATCH, reason);
			return;
		}
	}
	set_status(v, DCAP_FSWATCH, "on", NULL);
}

static void stop_one(struct caps *k, struct dvm *v, enum dcap cap, int clean)
{
	drain(k, v);
	if (cap == DCAP_VIEWS) {
		vms_poll_free(k->poll);
		k->poll = NULL;
	} else if (cap == DCAP_TRACE && k->trace) {
		vms_trace_stop(k->trace);
		k->trace = NULL;
	} else if (cap == DCAP_FSWATCH) {
		for (int i = 0; i < DAEMON_DISKS_MAX; i++) {
			/* its last events, drained as they come */
			if (clean && k->fw[i] && !vms_fswatch_detach(k->fw[i])) {
				double deadline = daemon_now_s() + DETACH_S;

				while (!vms_fswatch_idle(k->fw[i]) && daemon_now_s() < deadline) {
					drain(k, v);
					nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
				}
				drain(k, v);
			}
			stop_fswatch(k, i);
		}
	}
	drain(k, v);
}

void caps_configure(struct caps *k, struct dvm *v, struct vms_vm *vm,
		    const struct daemon_vmconf *conf)
{
	struct daemon_vmconf was = k->conf;

	if (k->configured && !memcmp(&was, conf, sizeof(*conf)))
		return;
	k->conf = *conf;
	for (int c = 0; c < DCAP__COUNT; c++) {
		int changed = !k->configured || was.memory != conf->memory ||
			      (c == DCAP_VIEWS && was.views != conf->views) ||
			      (c == DCAP_TRACE && was.trace != conf->trace) ||
			      (c == DCAP_FSWATCH &&
			       (memcmp(&was.fswatch, &conf->fswatch, sizeof(was.fswatch)) ||
				was.fswatch_mode != conf->fswatch_mode ||
				memcmp(&was.fswatch_paths, &conf->fswatch_paths,
				       sizeof(was.fswatch_paths))));

		if (!changed)
			continue;
		if (running(k, c))
			stop_one(k, v, c, 1);
		k->retry_at[c] = 0;
		set_status(v, c, wanted(k, c) ? "starting" : "off", NULL);
	}
	if (vm && (was.view_interval_s != conf->view_interval_s))
		k->next_poll = daemon_now_s() + conf->view_interval_s;
	k->configured = 1;
}

void caps_start(struct caps *k, struct dvm *v, struct vms_vm *vm)
{
	double now = daemon_now_s();

	for (int c = 0; c < DCAP__COUNT; c++) {
		if (!wanted(k, c) || running(k, c) || now < k->retry_at[c])
			continue;
		if (c != DCAP_FSWATCH && ensure_ring(k)) {
			failed(k, v, c, "out of memory");
			continue;
		}
		if (c == DCAP_VIEWS)
			start_views(k, v, vm);
		else if (c == DCAP_TRACE)
			start_trace(k, v, vm);
		else
			start_fswatch(k, v, vm);
	}
}

static void poll_views(struct caps *k, struct dvm *v, struct vms_vm *vm)
{
	if (!k->poll || daemon_now_s() < k->next_poll)
		return;
	k->next_poll = daemon_now_s() + k->conf.view_interval_s;
	if (vms_poll_once(k->poll) < 0) {
		char reason[DAEMON_REASON_MAX];

		snprintf(reason, sizeof(reason), "%s", vms_last_error(vm));
		stop_one(k, v, DCAP_VIEWS, 0);
		failed(k, v, DCAP_VIEWS, reason);
	}
}

static void pause_until(struct dvm *v, double until_s)
{
	double wait = until_s - daemon_now_s();
	struct timespec until;

	if (wait <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	wait += (double)until.tv_nsec / 1e9;
	until.tv_sec += (time_t)wait;
	until.tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9);
	pthread_mutex_lock(&v->wake_lock);
	while (!v->stopping && v->req_state != REQ_ASKED &&
	       pthread_cond_timedwait(&v->wake, &v->wake_lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&v->wake_lock);
}

void caps_run(struct caps *k, struct dvm *v, struct vms_vm *vm, double until_s)
{
	poll_views(k, v, vm);
	drain(k, v);
	while (!v->stopping && daemon_now_s() < until_s) {
		double now = daemon_now_s(), step = until_s - now;
		int busy = running(k, DCAP_FSWATCH) || k->trace;

		if (k->poll && k->next_poll - now < step)
			step = k->next_poll - now;
		if (busy && step > TICK_S)
			step = TICK_S;
		if (k->trace) {
			struct vms_ring_stats st;
			int err;

			vms_ring_get_stats(k->ring, &st);
			err = vms_trace_run(k->trace, step > 0.001 ? (int)(step * 1000) : 1,
					    (unsigned int)(st.capacity - st.used));
			if (err < 0) {
				char reason[DAEMON_REASON_MAX];

				snprintf(reason, sizeof(reason), "%s", vms_last_error(vm));
				stop_one(k, v, DCAP_TRACE, 0);
				failed(k, v, DCAP_TRACE, reason);
			}
		} else {
			pause_until(v, now + step);
		}
		poll_views(k, v, vm);
		drain(k, v);
		count_dropped(k, v);
		dvm_serve_request(v, vm);
	}
}

void caps_stop(struct caps *k, struct dvm *v, int clean)
{
	for (int c = 0; c < DCAP__COUNT; c++) {
		if (running(k, c))
			stop_one(k, v, c, clean);
		k->retry_at[c] = 0;
		if (wanted(k, c))
			set_status(v, c, "starting", NULL);
	}
	count_dropped(k, v);
}

void caps_free(struct caps *k)
{
	if (!k)
		return;
	vms_ring_free(k->ring);
	free(k);
}
