// SPDX-License-Identifier: MIT
/*
 * The durable log as a sink: writes go to the log's writer thread
 * (lib/log/writer.c); "sent" counts events synced to disk, "buffered" those
 * appended and not yet synced.
 */
#include <errno.h>
#include <stdlib.h>

#include <vmscope/log.h>

#include "sinks/sink.h"

static int log_write(struct vms_sink *sink, const struct vms_event *ev)
{
	return vms_log_append(sink->state, ev);
}

static void log_destroy(struct vms_sink *sink)
{
	vms_log_close(sink->state);
}

static void log_stats(struct vms_sink *sink, struct vms_sink_stats *ret)
{
	struct vms_log_stats ls;

	vms_log_get_stats(sink->state, &ls);
	ret->sent = ls.durable;
	ret->buffered = ls.appended - ls.durable;
}

static const struct sink_ops log_ops = {
	.write = log_write,
	.destroy = log_destroy,
	.stats = log_stats,
};

int vms_sink_log_new(const char *dir, const struct vms_log_opts *opts, struct vms_sink **ret_sink)
{
	struct vms_sink *sink = calloc(1, sizeof(*sink));
	struct vms_log *log;
	int err;

	if (!sink)
		return -ENOMEM;
	err = vms_log_open(dir, opts, &log);
	if (err) {
		free(sink);
		return err;
	}
	sink->ops = &log_ops;
	sink->state = log;
	*ret_sink = sink;
	return 0;
}

struct vms_log *vms_sink_log_get(struct vms_sink *sink)
{
	return sink && sink->ops == &log_ops ? sink->state : NULL;
}
