// SPDX-License-Identifier: MIT
/*
 * JSON-lines sink: one jansson object per event, written with one fwrite.
 * Guest bytes are made valid UTF-8 first (jansson rejects anything else).
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/utf8.h"
#include "sinks/sink.h"

struct jsonl {
	FILE *out;
	char scratch[3 * VMS_EVENT_ARENA_BYTES + 1];
	char line[64 * 1024];
};

static void format_time(uint64_t time_ns, char *buf, size_t len)
{
	time_t sec = (time_t)(time_ns / 1000000000u);
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%09uZ", (unsigned int)(time_ns % 1000000000u));
}

static json_t *attr_value(struct jsonl *j, const struct vms_event *ev, unsigned int i)
{
	const struct vms_attr *a = &ev->attrs[i];
	size_t len;

	switch (a->type) {
	case VMS_ATTR_INT:
		return json_integer(a->v.i);
	case VMS_ATTR_UINT:
		/* JSON integers here are signed 64-bit; larger values go out as text. */
		if (a->v.u > (uint64_t)INT64_MAX) {
			char text[24];

			snprintf(text, sizeof(text), "%llu", (unsigned long long)a->v.u);
			return json_string(text);
		}
		return json_integer((json_int_t)a->v.u);
	case VMS_ATTR_BOOL:
		return json_boolean(a->v.b);
	case VMS_ATTR_DOUBLE:
		return json_real(a->v.d);
	case VMS_ATTR_STR:
		len = utf8_sanitize(j->scratch, vms_event_attr_str(ev, i), a->str_len);
		return json_stringn(j->scratch, len);
	}
	return json_null();
}

static int set_text(struct jsonl *j, json_t *obj, const char *key, const char *text, size_t max)
{
	size_t len = utf8_sanitize(j->scratch, text, strnlen(text, max));

	return json_object_set_new(obj, key, json_stringn(j->scratch, len));
}

static json_t *to_json(struct jsonl *j, const struct vms_event *ev)
{
	json_t *obj = json_object();
	char when[48];
	int err = !obj;

	format_time(ev->time_ns, when, sizeof(when));
	if (!err)
		err = json_object_set_new(obj, "time", json_string(when)) ||
		      json_object_set_new(obj, "time_ns", json_integer((json_int_t)ev->time_ns)) ||
		      set_text(j, obj, "vm", ev->vm, sizeof(ev->vm)) ||
		      json_object_set_new(obj, "source",
					  json_string(vms_event_source_name(ev->source))) ||
		      set_text(j, obj, "type", ev->type, sizeof(ev->type));
	for (unsigned int i = 0; !err && i < ev->nr_attrs && i < VMS_EVENT_MAX_ATTRS; i++)
		err = json_object_set_new(obj, vms_event_attr_key(ev, i), attr_value(j, ev, i));
	if (err) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

void *vms_sink_jsonl_object(struct vms_sink *sink, const struct vms_event *ev)
{
	return to_json(sink->state, ev);
}

static int jsonl_write(struct vms_sink *sink, const struct vms_event *ev)
{
	struct jsonl *j = sink->state;
	json_t *obj = to_json(j, ev);
	char *heap = NULL;
	const char *text = j->line;
	size_t len;
	int err = 0;

	if (!j->out) /* one for vms_sink_jsonl_format() only */
		err = -EINVAL;
	if (!obj || err) {
		json_decref(obj);
		return err ?: -ENOMEM;
	}
	len = json_dumpb(obj, j->line, sizeof(j->line) - 1, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (len >= sizeof(j->line) - 1) {
		text = heap = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
		len = heap ? strlen(heap) : 0;
	}
	json_decref(obj);
	if (!text || !len)
		return -ENOMEM;
	if (fwrite(text, 1, len, j->out) != len || fputc('\n', j->out) == EOF)
		err = -EIO;
	free(heap);
	return err;
}

static int jsonl_flush(struct vms_sink *sink)
{
	struct jsonl *j = sink->state;

	return j->out && fflush(j->out) ? -errno : 0;
}

static void jsonl_destroy(struct vms_sink *sink)
{
	jsonl_flush(sink);
	free(sink->state);
}

static const struct sink_ops jsonl_ops = {
	.write = jsonl_write,
	.flush = jsonl_flush,
	.destroy = jsonl_destroy,
};

char *vms_sink_jsonl_format(struct vms_sink *sink, const struct vms_event *ev, size_t *ret_len)
{
	json_t *obj;
	char *text;

	if (sink->ops != &jsonl_ops)
		return NULL;
	obj = to_json(sink->state, ev);
	text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(obj);
	if (text && ret_len)
		*ret_len = strlen(text);
	return text;
}

int vms_sink_jsonl_new(FILE *out, struct vms_sink **ret_sink)
{
	struct vms_sink *sink = calloc(1, sizeof(*sink));

	if (!sink)
		return -ENOMEM;
	sink->state = calloc(1, sizeof(struct jsonl));
	if (!sink->state) {
		free(sink);
		return -ENOMEM;
	}
	((struct jsonl *)sink->state)->out = out;
	sink->ops = &jsonl_ops;
	*ret_sink = sink;
	return 0;
}
