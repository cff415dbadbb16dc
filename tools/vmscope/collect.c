// SPDX-License-Identifier: MIT
/*
 * Collectors for the commands that watch many VMs at once (exporter, top):
 * a thread per VM samples it on its own schedule, with a deadline per QMP
 * exchange, and hands each turn's sample to the command's hook. A VM that
 * fails is attached afresh at its next turn (QEMU restarted, socket back),
 * and a slow or hung one delays only its own thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

double cli_realtime_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep until deadline (CLOCK_REALTIME seconds) or the group stops; 1 when stopping. */
static int wait_until(struct cli_collectors *g, double deadline)
{
	struct timespec ts = { .tv_sec = (time_t)deadline,
			       .tv_nsec = (long)((deadline - (double)(time_t)deadline) * 1e9) };
	int stop;

	pthread_mutex_lock(&g->stop_lock);
	while (!g->stop && pthread_cond_timedwait(&g->stop_cond, &g->stop_lock, &ts) != ETIMEDOUT)
		;
	stop = g->stop;
	pthread_mutex_unlock(&g->stop_lock);
	return stop;
}

static struct vms_vm *attach(struct cli_collector *c)
{
	struct vms_attach_opts opts;
	struct vms_vm_info info;
	struct vms_vm *vm = NULL;

	if (vms_vm_new(&vm)) {
		snprintf(c->why, sizeof(c->why), "out of memory");
		return NULL;
	}
	if (vms_vm_attach(vm, c->target, cli_attach_opts(&opts, c->group->timeout_ms))) {
		snprintf(c->why, sizeof(c->why), "%s", vms_last_error(vm));
		vms_vm_free(vm);
		return NULL;
	}
	if (!vms_vm_query_info(vm, &info) && info.name[0])
		snprintf(c->name, sizeof(c->name), "%s", info.name);
	return vm;
}

/* Sample the guest this turn? Every turn, or pairs of turns every guest_every. */
static int guest_turn(const struct cli_collector *c)
{
	unsigned n = c->group->guest_every;

	return n <= 2 || c->turns % n == 0 || c->turns % n == n - 1;
}

static void *copy_of(const void *p, size_t bytes)
{
	void *q = malloc(bytes ? bytes : 1);

	if (q && bytes)
		memcpy(q, p, bytes);
	return q;
}

/* Keep this turn's sample as the next one's previous, and a copy of its guest side. */
static void keep(struct cli_collector *c, struct cli_sample *s)
{
	if (c->has_prev)
		cli_sample_release(&c->prev);
	c->prev = *s;
	c->has_prev = 1;
	if (!s->has_guest)
		return;
	if (c->has_guest)
		vms_guest_metrics_release(&c->guest);
	c->guest = s->guest;
	c->guest.cpus = copy_of(s->guest.cpus, s->guest.nr_cpus * sizeof(*s->guest.cpus));
	c->guest.disks = copy_of(s->guest.disks, s->guest.nr_disks * sizeof(*s->guest.disks));
	c->guest.nets = copy_of(s->guest.nets, s->guest.nr_nets * sizeof(*s->guest.nets));
	c->has_guest = c->guest.cpus && c->guest.disks && c->guest.nets;
	if (!c->has_guest)
		vms_guest_metrics_release(&c->guest);
}

static void forget(struct cli_collector *c)
{
	if (c->has_prev)
		cli_sample_release(&c->prev);
	c->has_prev = 0;
}

/* One turn: attach if need be, sample, hand the result over. */
static struct vms_vm *turn(struct cli_collector *c, struct vms_vm *vm)
{
	struct cli_sample s;
	double start = cli_realtime_s();

	if (!vm)
		vm = attach(c);
	if (vm && !cli_sample_sides(vm, &s, guest_turn(c)) && s.has_host) {
		c->last_good_s = start;
		c->why[0] = '\0';
		c->group->on_turn(c, c->has_prev ? &c->prev : NULL, &s, start,
				  cli_realtime_s() - start);
		keep(c, &s);
	} else {
		if (vm) {
			snprintf(c->why, sizeof(c->why), "%s", s.host_absent);
			cli_sample_release(&s);
			vms_vm_free(vm); /* attach afresh next turn */
			vm = NULL;
		}
		forget(c);
		c->group->on_turn(c, NULL, NULL, start, cli_realtime_s() - start);
	}
	c->turns++;
	return vm;
}

static void *collector_main(void *arg)
{
	struct cli_collector *c = arg;
	struct cli_collectors *g = c->group;
	struct vms_vm *vm = NULL;
	double next = cli_realtime_s();

	do {
		vm = turn(c, vm);
		next += g->interval_s;
		if (next < cli_realtime_s()) /* a slow turn: skip the missed ones */
			next = cli_realtime_s() + g->interval_s;
	} while (!wait_until(g, next));
	if (g->on_end)
		g->on_end(c);
	forget(c);
	if (c->has_guest)
		vms_guest_metrics_release(&c->guest);
	vms_vm_free(vm);
	return NULL;
}

int cli_collectors_start(struct cli_collectors *g, char **targets, size_t n)
{
	g->vms = calloc(n, sizeof(*g->vms));
	if (!g->vms)
		return cli_fail("out of memory");
	g->nr_vms = n;
	pthread_mutex_init(&g->stop_lock, NULL);
	pthread_cond_init(&g->stop_cond, NULL);
	for (g->started = 0; g->started < n; g->started++) {
		struct cli_collector *c = &g->vms[g->started];

		c->target = targets[g->started];
		c->index = g->started;
		c->group = g;
		snprintf(c->name, sizeof(c->name), "%s", c->target);
		snprintf(c->why, sizeof(c->why), "not sampled yet");
		if (pthread_create(&c->thread, NULL, collector_main, c)) {
			cli_collectors_stop(g);
			return cli_fail("cannot start a collector thread");
		}
	}
	return 0;
}

void cli_collectors_stop(struct cli_collectors *g)
{
	pthread_mutex_lock(&g->stop_lock);
	g->stop = 1;
	pthread_cond_broadcast(&g->stop_cond);
	pthread_mutex_unlock(&g->stop_lock);
	for (size_t i = 0; i < g->started; i++)
		pthread_join(g->vms[i].thread, NULL);
	g->started = 0;
	free(g->vms);
	g->vms = NULL;
}
