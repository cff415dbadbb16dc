/* SPDX-License-Identifier: MIT */
/*
 * vmscope: the one event structure every source produces and every sink
 * consumes.
 *
 * An event is self-contained and of fixed maximum size: its attributes (typed
 * key/value pairs) keep keys and string values in an inline arena, so events
 * can live in reusable ring slots with no allocation per event. Only the
 * first vms_event_size() bytes of an event are meaningful.
 */
#ifndef VMSCOPE_EVENT_H
#define VMSCOPE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vms_event_source {
	VMS_SOURCE_INTROSPECT, /* a view read from guest RAM */
	VMS_SOURCE_TRACE,      /* a breakpoint hit */
	VMS_SOURCE_POLL,       /* a difference between two polls of a view */
	VMS_SOURCE_DISK,       /* inferred from guest disk writes */
	VMS_SOURCE_MONITOR,    /* a resource counter */
	VMS_SOURCE_VMM,	       /* QEMU itself (QMP) */
	VMS_SOURCE_REPLAY,     /* read back from a log */
	VMS_SOURCE__COUNT,
};

enum vms_attr_type {
	VMS_ATTR_INT,
	VMS_ATTR_UINT,
	VMS_ATTR_BOOL,
	VMS_ATTR_DOUBLE,
	VMS_ATTR_STR,
};

#define VMS_EVENT_MAX_ATTRS   24
#define VMS_EVENT_ARENA_BYTES 6144 /* room for two PATH_MAX paths and more */
#define VMS_EVENT_VM_MAX      64
#define VMS_EVENT_TYPE_MAX    32

struct vms_attr {
	uint16_t key;	  /* arena offset of the NUL-terminated key */
	uint16_t type;	  /* enum vms_attr_type */
	uint32_t str_len; /* VMS_ATTR_STR: length, without the NUL */
	union {
		int64_t i;
		uint64_t u;
		double d;
		int b;
		uint32_t str; /* VMS_ATTR_STR: arena offset of the NUL-terminated value */
	} v;
};

struct vms_event {
	uint64_t time_ns; /* CLOCK_REALTIME, ns since the epoch */
	uint16_t source;  /* enum vms_event_source */
	uint16_t nr_attrs;
	uint32_t arena_used;
	char vm[VMS_EVENT_VM_MAX];     /* the VM's name */
	char type[VMS_EVENT_TYPE_MAX]; /* "exec", "create", "module_load", ... */
	struct vms_attr attrs[VMS_EVENT_MAX_ATTRS];
	char arena[VMS_EVENT_ARENA_BYTES]; /* must stay last: see vms_event_size() */
};

/* Reset ev to an event of this kind, stamped now, with no attributes. */
void vms_event_init(struct vms_event *ev, const char *vm, enum vms_event_source source,
		    const char *type);

/*
 * Add an attribute. Keys are short identifiers; "time", "time_ns", "vm",
 * "source" and "type" are reserved (-EINVAL). -ENOSPC when the event is full;
 * the event is unchanged then.
 */
int vms_event_add_int(struct vms_event *ev, const char *key, int64_t value);
int vms_event_add_uint(struct vms_event *ev, const char *key, uint64_t value);
int vms_event_add_bool(struct vms_event *ev, const char *key, int value);
int vms_event_add_double(struct vms_event *ev, const char *key, double value);
int vms_event_add_str(struct vms_event *ev, const char *key, const char *value);
/* value need not be NUL-terminated and may hold NULs; len bytes are stored. */
int vms_event_add_strn(struct vms_event *ev, const char *key, const char *value, size_t len);

static inline const char *vms_event_attr_key(const struct vms_event *ev, unsigned int i)
{
	return ev->arena + ev->attrs[i].key;
}

static inline const char *vms_event_attr_str(const struct vms_event *ev, unsigned int i)
{
	return ev->arena + ev->attrs[i].v.str;
}

/* The attribute named key, or NULL. */
const struct vms_attr *vms_event_find(const struct vms_event *ev, const char *key);

/* Bytes of *ev that carry information; copying these copies the event. */
size_t vms_event_size(const struct vms_event *ev);
void vms_event_copy(struct vms_event *dst, const struct vms_event *src);

/* "introspect", "trace", ...; "unknown" for values out of range. */
const char *vms_event_source_name(unsigned int source);

#ifdef __cplusplus
}
#endif
#endif
