// SPDX-License-Identifier: MIT
/* What every sink shares: dispatch through its ops, and draining a ring into it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/sink.h"

int vms_sink_write(struct vms_sink *sink, const struct vms_event *ev)
{
	return sink->ops->write(sink, ev);
}

int vms_sink_flush(struct vms_sink *sink)
{
	return sink->ops->flush ? sink->ops->flush(sink) : 0;
}

void vms_sink_get_stats(struct vms_sink *sink, struct vms_sink_stats *ret_stats)
{
	memset(ret_stats, 0, sizeof(*ret_stats));
	if (sink->ops->stats)
		sink->ops->stats(sink, ret_stats);
}

void vms_sink_free(struct vms_sink *sink)
{
	if (!sink)
		return;
	if (sink->ops->destroy)
		sink->ops->destroy(sink);
	free(sink);
}

int vms_sink_drain(struct vms_sink *sink, struct vms_ring *ring, size_t max, size_t *ret_moved)
{
	const struct vms_event *ev;
	size_t moved = 0;
	int err = 0;

	while ((!max || moved < max) && (ev = vms_ring_peek(ring))) {
		err = sink->ops->write(sink, ev);
		if (err)
			break;
		vms_ring_release(ring);
		moved++;
	}
	if (ret_moved)
		*ret_moved = moved;
	return err;
}
