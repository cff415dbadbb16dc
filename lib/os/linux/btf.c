// SPDX-License-Identifier: MIT
/*
 * Kernel type layouts from the kernel's own BTF, through libbpf's btf API.
 *
 * Members are found by name: through anonymous structs and unions (mm_struct
 * keeps arg_start in one), along dotted paths into embedded structs
 * ("uid.val"), and with their bit position when they are bitfields.
 */
#include <bpf/btf.h>
#include <errno.h>
#include <string.h>

#include "os/linux/linux.h"

#define MAX_DEPTH	 8
#define MAX_STRUCT_BYTES (1u << 20) /* task_struct, the largest a view reads, is ~14 KiB */

static const struct btf_type *resolved(const struct btf *btf, uint32_t id, uint32_t *ret_id)
{
	int real = btf__resolve_type(btf, id);

	if (real < 0)
		return NULL;
	*ret_id = (uint32_t)real;
	return btf__type_by_id(btf, (uint32_t)real);
}

/* Search one composite type for name, descending into anonymous members. */
static int find_in(const struct btf *btf, uint32_t type_id, const char *name, size_t name_len,
		   uint32_t base_bits, int depth, struct kfield *ret, uint32_t *ret_type)
{
	uint32_t id;
	const struct btf_type *t = resolved(btf, type_id, &id);
	const struct btf_member *m;

	if (!t || !btf_is_composite(t) || depth > MAX_DEPTH)
		return -ENOENT;
	m = btf_members(t);
	for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
		const char *member = btf__name_by_offset(btf, m->name_off);
		uint32_t bits = base_bits + btf_member_bit_offset(t, i);

		if (member && !*member) {
			if (!find_in(btf, m->type, name, name_len, bits, depth + 1, ret, ret_type))
				return 0;
			continue;
		}
		if (!member || strlen(member) != name_len || strncmp(member, name, name_len))
			continue;
		ret->bit_size = btf_member_bitfield_size(t, i);
		ret->offset = bits / 8;
		ret->bit_offset = bits % 8;
		ret->size = ret->bit_size ? (ret->bit_offset + ret->bit_size + 7) / 8
					  : (uint32_t)btf__resolve_size(btf, m->type);
		*ret_type = m->type;
		return 0;
	}
	return -ENOENT;
}

static int find_type(const struct btf *btf, const char *type)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);

	if (id < 0)
		id = btf__find_by_name_kind(btf, type, BTF_KIND_UNION);
	return id;
}

/*
 * The BTF is the guest's: a member must lie inside its struct, and the struct
 * be of a plausible size, so that every offset a view uses on a buffer of the
 * struct's size is checked here, once, when the layout is built.
 */
static int inside(const struct btf *btf, uint32_t type_id, const struct kfield *f)
{
	__s64 size = btf__resolve_size(btf, type_id);

	if (size <= 0 || size > MAX_STRUCT_BYTES || f->size > (uint64_t)size ||
	    f->offset > (uint64_t)size - f->size)
		return 0;
	return !f->bit_size || f->bit_offset + f->bit_size <= 8 * f->size;
}

int kbtf_member(const struct btf *btf, const char *type, const char *path, struct kfield *ret)
{
	struct kfield total = { 0 };
	int id = find_type(btf, type);
	uint32_t cur;

	if (id < 0)
		return -ENOENT;
	cur = (uint32_t)id;
	while (*path) {
		size_t len = strcspn(path, ".");
		struct kfield part = { 0 };
		uint32_t next;

		if (find_in(btf, cur, path, len, 0, 0, &part, &next))
			return -ENOENT;
		total.offset += part.offset;
		total.size = part.size;
		total.bit_offset = part.bit_offset;
		total.bit_size = part.bit_size;
		cur = next;
		path += len + (path[len] == '.');
	}
	if (!inside(btf, (uint32_t)id, &total))
		return -EPROTO;
	total.found = 1;
	*ret = total;
	return 0;
}

uint32_t kbtf_size(const struct btf *btf, const char *type)
{
	int id = find_type(btf, type);
	__s64 size;

	if (id < 0)
		return 0;
	size = btf__resolve_size(btf, (uint32_t)id);
	return size > 0 && size <= MAX_STRUCT_BYTES ? (uint32_t)size : 0;
}

int kbtf_enum_value(const struct btf *btf, const char *name, int64_t *ret)
{
	uint32_t n = btf__type_cnt(btf);

	for (uint32_t id = 1; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *e;

		if (!btf_is_enum(t))
			continue;
		e = btf_enum(t);
		for (uint16_t i = 0; i < btf_vlen(t); i++, e++) {
			if (!strcmp(btf__name_by_offset(btf, e->name_off), name)) {
				*ret = e->val;
				return 0;
			}
		}
	}
	return -ENOENT;
}
