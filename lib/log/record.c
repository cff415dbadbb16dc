// SPDX-License-Identifier: MIT
/*
 * One event as a log record, and back. A record is self-delimiting:
 *
 *   len:4  time_ns:8 source:2 nr_attrs:2 vm_len:1 type_len:1 vm type
 *          then per attribute: type:1 key_len:1 key value
 *
 * where value is 8 bytes (int, uint, double's bits), 1 byte (bool) or
 * len:4 bytes (string, which may hold NULs). len counts what follows it.
 * Decoding rebuilds the event through the event API, so a record can never
 * make an event that the API could not.
 */
#include <errno.h>
#include <string.h>

#include "log/format.h"

static size_t attr_value_size(const struct vms_event *ev, unsigned int i)
{
	switch (ev->attrs[i].type) {
	case VMS_ATTR_BOOL: return 1;
	case VMS_ATTR_STR: return 4 + ev->attrs[i].str_len;
	default: return 8;
	}
}

size_t log_record_size(const struct vms_event *ev)
{
	size_t n = 4 + 14 + strlen(ev->vm) + strlen(ev->type);

	for (unsigned int i = 0; i < ev->nr_attrs; i++)
		n += 2 + strlen(vms_event_attr_key(ev, i)) + attr_value_size(ev, i);
	return n;
}

size_t log_record_encode(const struct vms_event *ev, uint8_t *out)
{
	size_t vm_len = strlen(ev->vm), type_len = strlen(ev->type), p = 4;

	put64(out + p, ev->time_ns);
	put16(out + p + 8, ev->source);
	put16(out + p + 10, ev->nr_attrs);
	out[p + 12] = (uint8_t)vm_len;
	out[p + 13] = (uint8_t)type_len;
	p += 14;
	memcpy(out + p, ev->vm, vm_len);
	p += vm_len;
	memcpy(out + p, ev->type, type_len);
	p += type_len;
	for (unsigned int i = 0; i < ev->nr_attrs; i++) {
		const struct vms_attr *a = &ev->attrs[i];
		const char *key = vms_event_attr_key(ev, i);
		size_t key_len = strlen(key);

		out[p] = (uint8_t)a->type;
		out[p + 1] = (uint8_t)key_len;
		memcpy(out + p + 2, key, key_len);
		p += 2 + key_len;
		if (a->type == VMS_ATTR_BOOL) {
			out[p++] = !!a->v.b;
		} else if (a->type == VMS_ATTR_STR) {
			put32(out + p, a->str_len);
			memcpy(out + p + 4, vms_event_attr_str(ev, i), a->str_len);
			p += 4 + a->str_len;
		} else {
			put64(out + p, a->v.u);
			p += 8;
		}
	}
	put32(out, (uint32_t)(p - 4));
	return p;
}

/* A C string of len bytes at src with no NUL in it, into dst (size > len). */
static int take_name(char *dst, size_t size, const uint8_t *src, size_t len)
{
	if (len >= size || memchr(src, 0, len))
		return -EBADMSG;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int decode_attr(struct vms_event *ev, const uint8_t *p, size_t end, size_t *pos)
{
	char key[256];
	size_t at = *pos, key_len;
	unsigned int type;
	uint64_t v;
	int err;

	if (end - at < 2)
		return -EBADMSG;
	type = p[at];
	key_len = p[at + 1];
	at += 2;
	if (!key_len || end - at < key_len || take_name(key, sizeof(key), p + at, key_len))
		return -EBADMSG;
	at += key_len;
	if (type == VMS_ATTR_BOOL) {
		if (end - at < 1 || p[at] > 1)
			return -EBADMSG;
		err = vms_event_add_bool(ev, key, p[at]);
		at += 1;
	} else if (type == VMS_ATTR_STR) {
		uint32_t len;

		if (end - at < 4 || (len = get32(p + at)) > end - at - 4)
			return -EBADMSG;
		err = vms_event_add_strn(ev, key, (const char *)p + at + 4, len);
		at += 4 + (size_t)len;
	} else {
		if (end - at < 8 || type > VMS_ATTR_STR)
			return -EBADMSG;
		v = get64(p + at);
		err = type == VMS_ATTR_INT    ? vms_event_add_int(ev, key, (int64_t)v)
		      : type == VMS_ATTR_UINT ? vms_event_add_uint(ev, key, v)
					      : vms_event_add_double(ev, key, 0);
		if (!err && type == VMS_ATTR_DOUBLE)
			ev->attrs[ev->nr_attrs - 1].v.u = v; /* the bits, NaNs included */
		at += 8;
	}
	*pos = at;
	return err ? -EBADMSG : 0;
}

int log_record_decode(const uint8_t *raw, size_t len, size_t *pos, struct vms_event *ev)
{
	char vm[VMS_EVENT_VM_MAX], type[VMS_EVENT_TYPE_MAX];
	size_t at = *pos, end;
	unsigned int nr_attrs, source;
	uint32_t rec_len;

	if (len - at < 4 + 14)
		return -EBADMSG;
	rec_len = get32(raw + at);
	if (rec_len < 14 || rec_len > len - at - 4)
		return -EBADMSG;
	end = at + 4 + rec_len;
	at += 4;
	source = get16(raw + at + 8);
	nr_attrs = get16(raw + at + 10);
	if (source >= VMS_SOURCE__COUNT || nr_attrs > VMS_EVENT_MAX_ATTRS ||
	    (size_t)raw[at + 12] + raw[at + 13] > end - at - 14 ||
	    take_name(vm, sizeof(vm), raw + at + 14, raw[at + 12]) ||
	    take_name(type, sizeof(type), raw + at + 14 + raw[at + 12], raw[at + 13]))
		return -EBADMSG;
	vms_event_init(ev, vm, source, type);
	ev->time_ns = get64(raw + at);
	at += 14 + (size_t)raw[at + 12] + raw[at + 13];
	for (unsigned int i = 0; i < nr_attrs; i++) {
		int err = decode_attr(ev, raw, end, &at);

		if (err)
			return err;
	}
	if (at != end)
		return -EBADMSG;
	*pos = end;
	return 0;
}
