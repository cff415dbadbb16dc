// SPDX-License-Identifier: MIT
/*
 * Two sinks as one, so that any command can log beside its other sink.
 * Each event goes to both; a failure of one does not keep it from the other.
 */
#include <errno.h>
#include <stdlib.h>

#include "sinks/sink.h"

struct tee {
	struct vms_sink *a, *b;
};

static int tee_write(struct vms_sink *sink, const struct vms_event *ev)
{
	struct tee *t = sink->state;
	int ea = vms_sink_write(t->a, ev), eb = vms_sink_write(t->b, ev);

	return ea ? ea : eb;
}

static int tee_flush(struct vms_sink *sink)
{
	struct tee *t = sink->state;
	int ea = vms_sink_flush(t->a), eb = vms_sink_flush(t->b);

	return ea ? ea : eb;
}

static void tee_destroy(struct vms_sink *sink)
{
	struct tee *t = sink->state;

	vms_sink_free(t->a);
	vms_sink_free(t->b);
	free(t);
}

static void tee_stats(struct vms_sink *sink, struct vms_sink_stats *ret)
{
	vms_sink_get_stats(((struct tee *)sink->state)->a, ret);
}

static const struct sink_ops tee_ops = {
	.write = tee_write,
	.flush = tee_flush,
	.destroy = tee_destroy,
	.stats = tee_stats,
};

int vms_sink_tee_new(struct vms_sink *a, struct vms_sink *b, struct vms_sink **ret_sink)
{
	struct vms_sink *sink = calloc(1, sizeof(*sink));
	struct tee *t = calloc(1, sizeof(*t));

	if (!sink || !t) {
		free(sink);
		free(t);
		return -ENOMEM;
	}
	t->a = a;
	t->b = b;
	sink->ops = &tee_ops;
	sink->state = t;
	*ret_sink = sink;
	return 0;
}
