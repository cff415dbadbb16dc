/* SPDX-License-Identifier: MIT */
/* A sink is a vtable plus its state; one file per sink implements the ops. */
#ifndef VMSCOPE_SINKS_SINK_H
#define VMSCOPE_SINKS_SINK_H

#include <vmscope/sink.h>

struct sink_ops {
	int (*write)(struct vms_sink *sink, const struct vms_event *ev);
	int (*flush)(struct vms_sink *sink);
	void (*destroy)(struct vms_sink *sink);
	void (*stats)(struct vms_sink *sink, struct vms_sink_stats *ret); /* optional */
};

struct vms_sink {
	const struct sink_ops *ops;
	void *state;
};

/* The JSON object of an event as the JSON-lines sink (sink) would write it. */
void *vms_sink_jsonl_object(struct vms_sink *sink, const struct vms_event *ev);

#endif
