// SPDX-License-Identifier: MIT
/*
 * Building events. Keys and string values are appended to the event's arena;
 * an attribute is added whole or not at all.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vmscope/event.h>

static const char *const source_names[VMS_SOURCE__COUNT] = {
	[VMS_SOURCE_INTROSPECT] = "introspect",
	[VMS_SOURCE_TRACE] = "trace",
	[VMS_SOURCE_POLL] = "poll",
	[VMS_SOURCE_DISK] = "disk",
	[VMS_SOURCE_MONITOR] = "monitor",
	[VMS_SOURCE_VMM] = "vmm",
	[VMS_SOURCE_REPLAY] = "replay",
};

static const char *const reserved_keys[] = { "time", "time_ns", "vm", "source", "type" };

const char *vms_event_source_name(unsigned int source)
{
	return source < VMS_SOURCE__COUNT ? source_names[source] : "unknown";
}

void vms_event_init(struct vms_event *ev, const char *vm, enum vms_event_source source,
		    const char *type)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ev->time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	ev->source = (uint16_t)source;
	ev->nr_attrs = 0;
	ev->arena_used = 0;
	snprintf(ev->vm, sizeof(ev->vm), "%s", vm ? vm : "");
	snprintf(ev->type, sizeof(ev->type), "%s", type ? type : "");
}

static int key_allowed(const char *key)
{
	if (!key || !key[0])
		return 0;
	for (size_t i = 0; i < sizeof(reserved_keys) / sizeof(reserved_keys[0]); i++)
		if (!strcmp(key, reserved_keys[i]))
			return 0;
	return 1;
}

/* Reserve an attribute and arena room for its key plus extra bytes. */
static struct vms_attr *new_attr(struct vms_event *ev, const char *key, size_t extra,
				 enum vms_attr_type type, int *ret_err)
{
	size_t key_len = strlen(key ? key : "") + 1;
	struct vms_attr *attr;

	*ret_err = 0;
	if (!key_allowed(key)) {
		*ret_err = -EINVAL;
		return NULL;
	}
	if (ev->nr_attrs == VMS_EVENT_MAX_ATTRS ||
	    VMS_EVENT_ARENA_BYTES - ev->arena_used < key_len + extra) {
		*ret_err = -ENOSPC;
		return NULL;
	}
	attr = &ev->attrs[ev->nr_attrs++];
	attr->key = (uint16_t)ev->arena_used;
	attr->type = (uint16_t)type;
	attr->str_len = 0;
	memcpy(ev->arena + ev->arena_used, key, key_len);
	ev->arena_used += (uint32_t)key_len;
	return attr;
}

int vms_event_add_int(struct vms_event *ev, const char *key, int64_t value)
{
	int err;
	struct vms_attr *attr = new_attr(ev, key, 0, VMS_ATTR_INT, &err);

	if (attr)
		attr->v.i = value;
	return err;
}

int vms_event_add_uint(struct vms_event *ev, const char *key, uint64_t value)
{
	int err;
	struct vms_attr *attr = new_attr(ev, key, 0, VMS_ATTR_UINT, &err);

	if (attr)
		attr->v.u = value;
	return err;
}

int vms_event_add_bool(struct vms_event *ev, const char *key, int value)
{
	int err;
	struct vms_attr *attr = new_attr(ev, key, 0, VMS_ATTR_BOOL, &err);

	if (attr)
		attr->v.b = !!value;
	return err;
}

int vms_event_add_double(struct vms_event *ev, const char *key, double value)
{
	int err;
	struct vms_attr *attr = new_attr(ev, key, 0, VMS_ATTR_DOUBLE, &err);

	if (attr)
		attr->v.d = value;
	return err;
}

int vms_event_add_strn(struct vms_event *ev, const char *key, const char *value, size_t len)
{
	struct vms_attr *attr;
	int err;

	if (len >= VMS_EVENT_ARENA_BYTES)
		return -ENOSPC;
	attr = new_attr(ev, key, len + 1, VMS_ATTR_STR, &err);
	if (!attr)
		return err;
	attr->v.str = ev->arena_used;
	attr->str_len = (uint32_t)len;
	memcpy(ev->arena + ev->arena_used, value, len);
	ev->arena[ev->arena_used + len] = '\0';
	ev->arena_used += (uint32_t)len + 1;
	return 0;
}

int vms_event_add_str(struct vms_event *ev, const char *key, const char *value)
{
	return vms_event_add_strn(ev, key, value ? value : "", value ? strlen(value) : 0);
}

const struct vms_attr *vms_event_find(const struct vms_event *ev, const char *key)
{
	for (unsigned int i = 0; i < ev->nr_attrs; i++)
		if (!strcmp(vms_event_attr_key(ev, i), key))
			return &ev->attrs[i];
	return NULL;
}

size_t vms_event_size(const struct vms_event *ev)
{
	return offsetof(struct vms_event, arena) + ev->arena_used;
}

void vms_event_copy(struct vms_event *dst, const struct vms_event *src)
{
	memcpy(dst, src, vms_event_size(src));
}
