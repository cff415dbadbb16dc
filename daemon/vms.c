// SPDX-License-Identifier: MIT
/*
 * The set of VMs the daemon watches, a worker thread each. A worker
 * attaches, samples the host's figures of its VM every interval (each QMP
 * exchange under the configured timeout) and renders them as Prometheus
 * text, and between samples runs the VM's other capabilities (caps.c); a
 * scrape or a status request only copies the last rendering under the
 * VM's lock, so a slow, hung or dead VM never delays another, or the API.
 * A VM that fails is marked down with the reason and attached afresh at
 * its next turn.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <vmscope/monitor.h>
#include <vmscope/prometheus.h>
#include <vmscope/vm.h>

#include "daemon.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Down: vmscope_up 0 with the last good sample's time, and why, until it comes back. */
static void set_down(struct dvm *v, const char *reason)
{
	size_t *offsets = calloc(vms_prom_families() + 1, sizeof(*offsets));
	struct vms_prom_vm p = { v->name, 0, 0, 0, NULL, NULL, 0, NULL, NULL, NULL };
	char *text = NULL;

	pthread_mutex_lock(&v->lock);
	p.sample_time_s = v->last_sample_s;
	if (offsets && !vms_prom_render(&p, &text, offsets)) {
		free(v->text);
		free(v->offsets);
		v->text = text;
		v->offsets = offsets;
		offsets = NULL;
	}
	snprintf(v->state, sizeof(v->state), "down");
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	pthread_mutex_unlock(&v->lock);
	free(offsets);
}

struct history {
	double time[HISTORY_POINTS];
	float cpu[HISTORY_POINTS], rss[HISTORY_POINTS];
	unsigned int head, count;
	double last_s;	  /* the last point's time: the next is due HISTORY_STEP_S later */
	uint64_t last_ns; /* QEMU's CPU time then */
};

/* Under the VM's lock: a point of the last hour, at most one each HISTORY_STEP_S. */
static void remember(struct dvm *v, uint64_t cpu, uint64_t rss, double now)
{
	struct history *y = v->hist;
	unsigned int i;

	if (!y)
		y = v->hist = calloc(1, sizeof(*y));
	if (!y || (y->last_s && now - y->last_s < HISTORY_STEP_S))
		return;
	if (y->last_s && cpu >= y->last_ns) {
		i = (y->head + y->count) % HISTORY_POINTS;
		if (y->count == HISTORY_POINTS)
			y->head = (y->head + 1) % HISTORY_POINTS;
		else
			y->count++;
		y->time[i] = now;
		y->cpu[i] = (float)((double)(cpu - y->last_ns) / 1e7 / (now - y->last_s));
		y->rss[i] = (float)rss;
	}
	y->last_s = now;
	y->last_ns = cpu;
}

/* One sample: the host's figures, rendered; the rendering replaces the last. */
static int sample(struct dvm *v, struct vms_vm *vm)
{
	struct vms_host_metrics h = { 0 };
	double start = now_s();
	size_t *offsets = calloc(vms_prom_families() + 1, sizeof(*offsets));
	char *text = NULL;
	int err = offsets ? vms_monitor_host(vm, &h) : -ENOMEM;
	uint64_t cpu = h.cpu_user_ns + h.cpu_system_ns, rss = h.rss_bytes;

	if (!err) {
		struct vms_prom_vm p = { v->name, 1,	start, now_s() - start, &h, NULL, 0,
					 NULL,	  NULL, NULL };

		err = vms_prom_render(&p, &text, offsets);
	}
	vms_host_metrics_release(&h);
	if (err) {
		free(offsets);
		return err;
	}
	pthread_mutex_lock(&v->lock);
	free(v->text);
	free(v->offsets);
	v->text = text;
	v->offsets = offsets;
	v->samples++;
	v->last_sample_s = start;
	remember(v, cpu, rss, start);
	snprintf(v->state, sizeof(v->state), "up");
	v->reason[0] = 0;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

static struct vms_vm *attach(struct dvm *v)
{
	/* A libvirt VM's source is its URI, unless the config file listed it. */
	struct vms_attach_opts opts = {
		.sz = sizeof(opts),
		.timeout_ms = v->set->timeout_ms,
		.libvirt_uri = !strncmp(v->target, "libvirt:", 8) && strcmp(v->source, "config")
				       ? v->source
				       : NULL,
		.name = v->name, /* in its events, as in its metrics */
	};
	struct vms_vm *vm = NULL;

	if (vms_vm_new(&vm)) {
		set_down(v, "out of memory");
		return NULL;
	}
	if (vms_vm_attach(vm, v->target, &opts)) {
		set_down(v, vms_last_error(vm));
		vms_vm_free(vm);
		return NULL;
	}
	return vm;
}

/* Without metrics a VM is up once attached; its capabilities say how it goes. */
static void set_up(struct dvm *v)
{
	pthread_mutex_lock(&v->lock);
	snprintf(v->state, sizeof(v->state), "up");
	v->reason[0] = 0;
	pthread_mutex_unlock(&v->lock);
}

static void *worker(void *arg)
{
	struct dvm *v = arg;
	struct vms_vm *vm = NULL;
	struct caps *k = NULL;
	double next_sample = 0;

	if (caps_new(&k)) {
		set_down(v, "out of memory");
		return NULL;
	}
	while (!v->stopping) {
		struct daemon_vmconf conf;

		dvm_serve_request(v, vm);
		vmset_vmconf(v->set, v->name, &conf);
		caps_configure(k, v, vm, &conf);
		if (!vm) {
			vm = attach(v);
			next_sample = daemon_now_s();
			if (vm && !conf.metrics)
				set_up(v);
		}
		if (vm)
			caps_start(k, v, vm);
		if (vm && conf.metrics && daemon_now_s() >= next_sample) {
			next_sample = daemon_now_s() + v->set->interval_s;
			if (sample(v, vm)) {
				pthread_mutex_lock(&v->lock);
				v->failures++;
				pthread_mutex_unlock(&v->lock);
				set_down(v, vms_last_error(vm)[0] ? vms_last_error(vm)
								  : "sampling failed");
				caps_stop(k, v, 0);
				vms_vm_free(vm); /* attached afresh next turn: QEMU may have
						    restarted */
				vm = NULL;
			}
		}
		if (!vm || !conf.metrics)
			next_sample = daemon_now_s() + v->set->interval_s;
		caps_run(k, v, vm, next_sample);
	}
	caps_stop(k, v, 1);
	caps_free(k);
	vms_vm_free(vm);
	pthread_mutex_lock(&v->lock); /* a view asked for now will not be read */
	if (v->req_state == REQ_ASKED) {
		v->req_err = -ENOENT;
		snprintf(v->req_why, sizeof(v->req_why), "VM %s: removed", v->name);
		v->req_state = REQ_DONE;
	}
	pthread_cond_broadcast(&v->req_done);
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

void dvm_serve_request(struct dvm *v, struct vms_vm *vm)
{
	char view[sizeof(v->req_view)], why[DAEMON_REASON_MAX + DAEMON_NAME_MAX + 32] = "";
	char *json = NULL;
	int err;

	if (v->req_state != REQ_ASKED)
		return;
	pthread_mutex_lock(&v->lock);
	if (v->req_state != REQ_ASKED) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	v->req_state = REQ_TAKEN;
	memcpy(view, v->req_view, sizeof(view));
	if (!vm)
		snprintf(why, sizeof(why), "VM %s is %s: %s", v->name, v->state,
			 v->reason[0] ? v->reason : "not attached");
	pthread_mutex_unlock(&v->lock);
	err = vm ? vms_view_json(vm, view, 0, &json) : -ENOTCONN;
	if (err && vm)
		snprintf(why, sizeof(why), "%s", vms_last_error(vm));
	pthread_mutex_lock(&v->lock);
	if (v->req_abandoned) { /* the asker gave up */
		free(json);
		v->req_abandoned = 0;
		v->req_state = REQ_IDLE;
	} else {
		v->req_json = json;
		v->req_err = err;
		snprintf(v->req_why, sizeof(v->req_why), "%s", why);
		v->req_state = REQ_DONE;
	}
	pthread_cond_broadcast(&v->req_done);
	pthread_mutex_unlock(&v->lock);
}

void vmset_init(struct vmset *s, const struct daemon_config *config, struct events *events)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->conf_lock, NULL);
	s->events = events;
	vmset_configure(s, config);
}

int vmset_configure(struct vmset *s, const struct daemon_config *config)
{
	int err;

	s->interval_s = config->interval_s;
	s->timeout_ms = config->timeout_ms; /* from each VM's next attach */
	pthread_mutex_lock(&s->conf_lock);
	err = daemon_config_copy_vms(&s->conf, config);
	snprintf(s->host, sizeof(s->host), "%s", config->host);
	pthread_mutex_unlock(&s->conf_lock);
	return err;
}

void vmset_vmconf(struct vmset *s, const char *name, struct daemon_vmconf *ret)
{
	pthread_mutex_lock(&s->conf_lock);
	daemon_vmconf_resolve(&s->conf, name, ret);
	pthread_mutex_unlock(&s->conf_lock);
}

static struct dvm *find(struct vmset *s, const char *name)
{
	for (struct dvm *v = s->head; v; v = v->next)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

int vmset_add(struct vmset *s, const char *source, const char *name, const char *target)
{
	pthread_condattr_t ca;
	struct dvm *v;
	int err;

	pthread_mutex_lock(&s->lock);
	if (find(s, name)) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	v->set = s;
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->target, sizeof(v->target), "%s", target);
	snprintf(v->source, sizeof(v->source), "%s", source);
	snprintf(v->state, sizeof(v->state), "attaching");
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->wake_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->wake, &ca);
	pthread_cond_init(&v->req_done, &ca);
	pthread_condattr_destroy(&ca);
	v->seen = 1;
	err = -pthread_create(&v->thread, NULL, worker, v);
	if (err) {
		pthread_cond_destroy(&v->wake);
		pthread_cond_destroy(&v->req_done);
		pthread_mutex_destroy(&v->wake_lock);
		pthread_mutex_destroy(&v->lock);
		free(v);
		pthread_mutex_unlock(&s->lock);
		return err;
	}
	v->next = s->head;
	s->head = v;
	s->nr++;
	pthread_mutex_unlock(&s->lock);
	fprintf(stderr, "vmscoped: VM %s added (%s)\n", name, target);
	return 1;
}

static void free_dvm(struct dvm *v)
{
	pthread_mutex_lock(&v->wake_lock);
	v->stopping = 1;
	pthread_cond_signal(&v->wake);
	pthread_mutex_unlock(&v->wake_lock);
	pthread_join(v->thread, NULL);
	pthread_mutex_lock(&v->lock); /* an API thread still looking at it */
	while (v->users)
		pthread_cond_wait(&v->req_done, &v->lock);
	pthread_mutex_unlock(&v->lock);
	free(v->req_json);
	free(v->hist);
	pthread_cond_destroy(&v->wake);
	pthread_cond_destroy(&v->req_done);
	pthread_mutex_destroy(&v->wake_lock);
	pthread_mutex_destroy(&v->lock);
	free(v->text);
	free(v->offsets);
	free(v);
}

/* Unlinked under the set's lock, stopped outside it: a worker mid-sample takes its time. */
static struct dvm *unlink_if(struct vmset *s, const char *name, const char *unseen_of)
{
	struct dvm **p = &s->head, *gone = NULL;

	while (*p) {
		struct dvm *v = *p;

		if ((name && !strcmp(v->name, name)) ||
		    (unseen_of && !v->seen && !strcmp(v->source, unseen_of))) {
			*p = v->next;
			v->next = gone;
			gone = v;
			s->nr--;
		} else {
			p = &v->next;
		}
	}
	return gone;
}

static void free_list(struct dvm *v)
{
	while (v) {
		struct dvm *next = v->next;

		fprintf(stderr, "vmscoped: VM %s removed\n", v->name);
		free_dvm(v);
		v = next;
	}
}

int vmset_remove(struct vmset *s, const char *name)
{
	struct dvm *gone;

	pthread_mutex_lock(&s->lock);
	gone = unlink_if(s, name, NULL);
	pthread_mutex_unlock(&s->lock);
	free_list(gone);
	return gone ? 0 : -ENOENT;
}

void vmset_unsee(struct vmset *s, const char *source)
{
	pthread_mutex_lock(&s->lock);
	for (struct dvm *v = s->head; v; v = v->next)
		if (!strcmp(v->source, source))
			v->seen = 0;
	pthread_mutex_unlock(&s->lock);
}

int vmset_see(struct vmset *s, const char *source, const char *name, const char *target)
{
	struct dvm *v;
	int same;

	pthread_mutex_lock(&s->lock);
	v = find(s, name);
	same = v && !strcmp(v->target, target) && !strcmp(v->source, source);
	if (same)
		v->seen = 1;
	pthread_mutex_unlock(&s->lock);
	if (v && !same)
		vmset_remove(s, name); /* the name now means another socket: start afresh */
	return same;
}

void vmset_sweep(struct vmset *s, const char *source)
{
	struct dvm *gone;

	pthread_mutex_lock(&s->lock);
	gone = unlink_if(s, NULL, source);
	pthread_mutex_unlock(&s->lock);
	free_list(gone);
}

void vmset_drop_source(struct vmset *s, const char *source)
{
	vmset_unsee(s, source);
	vmset_sweep(s, source);
}

void vmset_destroy(struct vmset *s)
{
	pthread_mutex_lock(&s->lock);
	free_list(s->head);
	s->head = NULL;
	s->nr = 0;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	daemon_config_release(&s->conf);
	pthread_mutex_destroy(&s->conf_lock);
}

/* The daemon's own families: each VM's events and capabilities. */
static void caps_metrics(struct vmset *s, FILE *f)
{
	fprintf(f, "# HELP vmscoped_events_total Events a VM's capability gave.\n"
		   "# TYPE vmscoped_events_total counter\n");
	for (struct dvm *v = s->head; v; v = v->next) {
		pthread_mutex_lock(&v->lock);
		for (int c = 0; c < DCAP__COUNT; c++)
			if (strcmp(v->cap[c].state, "off") && v->cap[c].state[0])
				fprintf(f,
					"vmscoped_events_total{vm=\"%s\",capability=\"%s\"} %llu\n",
					v->name, dcap_name(c),
					(unsigned long long)v->cap[c].events);
		pthread_mutex_unlock(&v->lock);
	}
	fprintf(f, "# HELP vmscoped_capability_up Whether a VM's capability runs (1) or "
		   "failed or waits to start (0).\n# TYPE vmscoped_capability_up gauge\n");
	for (struct dvm *v = s->head; v; v = v->next) {
		pthread_mutex_lock(&v->lock);
		for (int c = 0; c < DCAP__COUNT; c++)
			if (strcmp(v->cap[c].state, "off") && v->cap[c].state[0])
				fprintf(f,
					"vmscoped_capability_up{vm=\"%s\",capability=\"%s\"} %d\n",
					v->name, dcap_name(c), !strcmp(v->cap[c].state, "on"));
		pthread_mutex_unlock(&v->lock);
	}
	fprintf(f, "# HELP vmscoped_events_dropped_total Events a VM lost: a ring or a spool was "
		   "full.\n# TYPE vmscoped_events_dropped_total counter\n");
	for (struct dvm *v = s->head; v; v = v->next) {
		pthread_mutex_lock(&v->lock);
		fprintf(f, "vmscoped_events_dropped_total{vm=\"%s\"} %llu\n", v->name,
			(unsigned long long)v->dropped);
		pthread_mutex_unlock(&v->lock);
	}
}

/*
 * Every sample labelled host="HOST", first: one Prometheus scraping many
 * daemons tells their VMs apart (two hosts may each run a "web1").
 */
static char *with_host(struct vmset *s, char *text, size_t len, size_t *ret_len)
{
	char host[sizeof(s->host)], *out = NULL;
	FILE *f = open_memstream(&out, ret_len);

	pthread_mutex_lock(&s->conf_lock);
	memcpy(host, s->host, sizeof(host));
	pthread_mutex_unlock(&s->conf_lock);
	for (size_t i = 0; f && i < len;) {
		size_t n = strcspn(text + i, "\n"), name = strcspn(text + i, "{ \n");

		if (text[i] == '#' || name >= n) {
			fwrite(text + i, 1, n, f);
		} else {
			fwrite(text + i, 1, name, f);
			fprintf(f, text[i + name] == '{' ? "{host=\"%s\"," : "{host=\"%s\"}", host);
			fwrite(text + i + name + (text[i + name] == '{'), 1,
			       n - name - (text[i + name] == '{'), f);
		}
		fputc('\n', f);
		i += n + 1;
	}
	free(text);
	if (!f || fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

char *vmset_metrics(struct vmset *s, size_t *ret_len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, ret_len);

	if (!f)
		return NULL;
	pthread_mutex_lock(&s->lock);
	fprintf(f,
		"# HELP vmscoped_vms VMs the daemon watches.\n# TYPE vmscoped_vms gauge\n"
		"vmscoped_vms %zu\n",
		s->nr);
	for (size_t fam = 0; fam < vms_prom_families(); fam++) {
		vms_prom_header(f, fam);
		for (struct dvm *v = s->head; v; v = v->next) {
			pthread_mutex_lock(&v->lock);
			if (v->text)
				fwrite(v->text + v->offsets[fam], 1,
				       v->offsets[fam + 1] - v->offsets[fam], f);
			pthread_mutex_unlock(&v->lock);
		}
	}
	caps_metrics(s, f);
	pthread_mutex_unlock(&s->lock);
	events_metrics(s->events, f);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return with_host(s, buf, *ret_len, ret_len);
}

static json_t *caps_json(const struct dvm *v)
{
	json_t *caps = json_object();

	for (int c = 0; caps && c < DCAP__COUNT; c++) {
		const struct dcap_status *st = &v->cap[c];
		json_t *o = json_pack("{s:s,s:s,s:I}", "state", st->state[0] ? st->state : "off",
				      "reason", st->reason, "events", (json_int_t)st->events);

		/* a reason cut mid-character: the state alone */
		json_object_set_new(caps, dcap_name(c),
				    o ? o : json_pack("{s:s}", "state", st->state));
	}
	return caps;
}

/* Under the VM's lock. */
static json_t *vm_json(struct dvm *v)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:f}", "name", v->name, "target",
			      v->target, "source", v->source, "state", v->state, "reason",
			      v->reason, "samples", (json_int_t)v->samples, "failures",
			      (json_int_t)v->failures, "last_sample", v->last_sample_s);
	/* a reason cut mid-character, or a path that is not UTF-8: still listed */
	if (!o)
		o = json_pack("{s:s,s:s}", "name", v->name, "state", v->state);
	json_object_set_new(o, "capabilities", caps_json(v));
	json_object_set_new(o, "events_dropped", json_integer((json_int_t)v->dropped));
	return o;
}

char *vmset_json(struct vmset *s)
{
	json_t *list = json_array();
	char *text;

	pthread_mutex_lock(&s->lock);
	for (struct dvm *v = s->head; list && v; v = v->next) {
		pthread_mutex_lock(&v->lock);
		json_array_append_new(list, vm_json(v));
		pthread_mutex_unlock(&v->lock);
	}
	pthread_mutex_unlock(&s->lock);
	text = list ? json_dumps(list, JSON_COMPACT) : NULL;
	json_decref(list);
	return text;
}

char *vmset_vm_json(struct vmset *s, const char *name)
{
	struct dvm *v;
	json_t *o = NULL;
	char *text;

	pthread_mutex_lock(&s->lock);
	v = find(s, name);
	if (v) {
		pthread_mutex_lock(&v->lock);
		o = vm_json(v);
		pthread_mutex_unlock(&v->lock);
	}
	pthread_mutex_unlock(&s->lock);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

char *vmset_history(struct vmset *s, const char *name)
{
	json_t *o = NULL, *t = json_array(), *c = json_array(), *r = json_array();
	struct dvm *v;
	char *text;

	pthread_mutex_lock(&s->lock);
	v = find(s, name);
	if (v && t && c && r) {
		pthread_mutex_lock(&v->lock);
		for (unsigned int k = 0; v->hist && k < v->hist->count; k++) {
			unsigned int i = (v->hist->head + k) % HISTORY_POINTS;

			json_array_append_new(t, json_real(v->hist->time[i]));
			json_array_append_new(c, json_real(v->hist->cpu[i]));
			json_array_append_new(r, json_integer((json_int_t)v->hist->rss[i]));
		}
		pthread_mutex_unlock(&v->lock);
		o = json_pack("{s:O,s:O,s:O}", "time", t, "cpu_percent", c, "rss_bytes", r);
	}
	pthread_mutex_unlock(&s->lock);
	json_decref(t);
	json_decref(c);
	json_decref(r);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

/* Under v->lock: ask, wake the worker, wait for its answer or the deadline. */
static int ask(struct dvm *v, const char *view, const struct timespec *until, char **ret_json)
{
	int err = 0;

	while (v->req_state != REQ_IDLE && !v->stopping && !err)
		err = pthread_cond_timedwait(&v->req_done, &v->lock, until);
	if (err || v->stopping)
		return err ? -ETIMEDOUT : -ENOENT;
	snprintf(v->req_view, sizeof(v->req_view), "%s", view);
	v->req_state = REQ_ASKED;
	pthread_mutex_lock(&v->wake_lock);
	pthread_cond_signal(&v->wake);
	pthread_mutex_unlock(&v->wake_lock);
	while (v->req_state != REQ_DONE && !err)
		err = pthread_cond_timedwait(&v->req_done, &v->lock, until);
	if (v->req_state == REQ_DONE) {
		*ret_json = v->req_json;
		v->req_json = NULL;
		v->req_state = REQ_IDLE;
		pthread_cond_broadcast(&v->req_done);
		return v->req_err;
	}
	if (v->req_state == REQ_ASKED) { /* never taken: withdrawn */
		v->req_state = REQ_IDLE;
		pthread_cond_broadcast(&v->req_done);
	} else {
		v->req_abandoned = 1; /* the worker reads it still: it frees the answer */
	}
	return -ETIMEDOUT;
}

int vmset_view(struct vmset *s, const char *name, const char *view, int timeout_ms, char **ret_json,
	       char *why, size_t why_len)
{
	struct timespec until;
	struct dvm *v;
	int err;

	*ret_json = NULL;
	daemon_deadline(&until, timeout_ms);
	pthread_mutex_lock(&s->lock);
	v = find(s, name);
	if (v) { /* found before any unlink: free_dvm() waits for users */
		pthread_mutex_lock(&v->lock);
		v->users++;
		pthread_mutex_unlock(&v->lock);
	}
	pthread_mutex_unlock(&s->lock);
	if (!v) {
		snprintf(why, why_len, "no VM called %s", name);
		return -ENOENT;
	}
	pthread_mutex_lock(&v->lock);
	err = ask(v, view, &until, ret_json);
	if (err == -ETIMEDOUT)
		snprintf(why, why_len, "VM %s: its worker did not read %s within %d ms", name, view,
			 timeout_ms);
	else if (err)
		snprintf(why, why_len, "%s", v->req_why[0] ? v->req_why : strerror(-err));
	v->users--;
	pthread_cond_broadcast(&v->req_done);
	pthread_mutex_unlock(&v->lock);
	return err;
}
