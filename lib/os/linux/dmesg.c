// SPDX-License-Identifier: MIT
/*
 * The kernel log from the printk ring buffer (Linux 5.10+), as dmesg reads it.
 *
 * prb points at a printk_ringbuffer: a ring of descriptors (each with a
 * state and the logical positions of its text block) beside a ring of
 * records' metadata (printk_info: sequence number, timestamp, length,
 * level) and a data ring of text blocks, each starting with its
 * descriptor's id. Records are read from tail_id to head_id; a descriptor
 * whose id no longer matches, or that is not committed or finalized, is
 * skipped, as the kernel's own reader does. Everything is bounded by the
 * ring sizes the guest gives, themselves capped, and the view by a budget of
 * records and text (descriptors that all point at one long block would
 * otherwise copy it millions of times): past it, the newest records are left
 * out and the view says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"

#define MAX_COUNT_BITS 24
#define MAX_DATA_BITS  28
#define STATE_SHIFT    62
#define ID_MASK	       (~(3ull << STATE_SHIFT))
#define DESC_COMMITTED 1
#define DESC_FINALIZED 2
#define MAX_TEXT       4096
#define MAX_RECORDS    (1u << 20)
#define TEXT_BUDGET    (64u << 20)

struct prb_layout {
	struct kfield desc_ring, text_ring, count_bits, descs, infos, head_id, tail_id;
	struct kfield size_bits, data, state_var, blk_begin, blk_next;
	struct kfield seq, ts, text_len, level, facility;
	uint32_t desc_bytes, info_bytes;
	uint64_t prb;
};

struct prb {
	uint64_t descs, infos, data;
	uint64_t count, data_size, head, tail;
};

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct prb_layout *l = layout;
	const struct kfield_want want[] = {
		{ &l->desc_ring, "printk_ringbuffer", "desc_ring" },
		{ &l->text_ring, "printk_ringbuffer", "text_data_ring" },
		{ &l->count_bits, "prb_desc_ring", "count_bits" },
		{ &l->descs, "prb_desc_ring", "descs" },
		{ &l->infos, "prb_desc_ring", "infos" },
		{ &l->head_id, "prb_desc_ring", "head_id" },
		{ &l->tail_id, "prb_desc_ring", "tail_id" },
		{ &l->size_bits, "prb_data_ring", "size_bits" },
		{ &l->data, "prb_data_ring", "data" },
		{ &l->state_var, "prb_desc", "state_var" },
		{ &l->blk_begin, "prb_desc", "text_blk_lpos.begin" },
		{ &l->blk_next, "prb_desc", "text_blk_lpos.next" },
		{ &l->seq, "printk_info", "seq" },
		{ &l->ts, "printk_info", "ts_nsec" },
		{ &l->text_len, "printk_info", "text_len" },
		{ &l->level, "printk_info", "level" },
		{ &l->facility, "printk_info", "facility" },
	};

	if (kfields_require(k, want, ARRAY_SIZE(want)))
		return -ENOENT;
	l->desc_bytes = kbtf_size(k->btf, "prb_desc");
	l->info_bytes = kbtf_size(k->btf, "printk_info");
	if (!l->desc_bytes || !l->info_bytes)
		return vm_error(k->vm, -ENOENT, "the guest kernel's printk records are unknown");
	return ksym_require(k, "prb", &l->prb);
}

static struct prb_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->dmesg_layout, sizeof(struct prb_layout), find_layout);
}

static int read_ring(struct linux_kernel *k, const struct prb_layout *l, struct prb *r)
{
	uint64_t rb, d, t;
	uint32_t count_bits = 0, size_bits = 0;

	if (kread_u64(k, l->prb, &rb))
		return vm_error(k->vm, -EFAULT, "the printk ring buffer is unreadable");
	d = rb + l->desc_ring.offset;
	t = rb + l->text_ring.offset;
	if (kread_u32(k, d + l->count_bits.offset, &count_bits) ||
	    kread_u64(k, d + l->descs.offset, &r->descs) ||
	    kread_u64(k, d + l->infos.offset, &r->infos) ||
	    kread_u64(k, d + l->head_id.offset, &r->head) ||
	    kread_u64(k, d + l->tail_id.offset, &r->tail) ||
	    kread_u32(k, t + l->size_bits.offset, &size_bits) ||
	    kread_u64(k, t + l->data.offset, &r->data))
		return vm_error(k->vm, -EFAULT, "the printk ring buffer is unreadable");
	if (count_bits > MAX_COUNT_BITS || size_bits > MAX_DATA_BITS || !size_bits)
		return vm_error(k->vm, -EPROTO, "the printk ring buffer has implausible sizes");
	r->count = 1ull << count_bits;
	r->data_size = 1ull << size_bits;
	return 0;
}

/* The text of a record whose block spans [begin, next) in logical positions. */
static int read_text(struct linux_kernel *k, const struct prb *r, uint64_t begin, uint64_t next,
		     uint32_t len, char *out)
{
	uint64_t start = begin & (r->data_size - 1);

	if ((begin & 1) || next - begin > r->data_size) /* no data, or nonsense */
		return -EINVAL;
	/* A block that would wrap is stored whole at the start of the ring. */
	if ((begin / r->data_size) != ((next - 1) / r->data_size))
		start = 0;
	start += 8; /* the block begins with its descriptor id */
	if (start + len > r->data_size || len >= MAX_TEXT)
		return -EINVAL;
	return kread(k, r->data + start, out, len);
}

static int append(struct vms_log_record **recs, size_t *n, size_t *cap)
{
	struct vms_log_record *grown = array_grow(*recs, cap, *n, sizeof(**recs));

	if (!grown)
		return -ENOMEM;
	*recs = grown;
	return 0;
}

static int one_record(struct linux_kernel *k, const struct prb_layout *l, const struct prb *r,
		      uint64_t id, struct vms_log_record *rec)
{
	uint8_t desc[64], info[128];
	uint64_t sv;
	uint32_t len;
	char text[MAX_TEXT];

	if (l->desc_bytes > sizeof(desc) || l->info_bytes > sizeof(info) ||
	    kread(k, r->descs + (id % r->count) * l->desc_bytes, desc, l->desc_bytes) ||
	    kread(k, r->infos + (id % r->count) * l->info_bytes, info, l->info_bytes))
		return -EFAULT;
	sv = kfield_get(&l->state_var, desc);
	if ((sv & ID_MASK) != id || ((sv >> STATE_SHIFT) != DESC_COMMITTED &&
				     (sv >> STATE_SHIFT) != DESC_FINALIZED))
		return -EAGAIN;
	len = (uint32_t)kfield_get(&l->text_len, info);
	if (read_text(k, r, kfield_get(&l->blk_begin, desc), kfield_get(&l->blk_next, desc), len,
		      text))
		len = 0;
	rec->seq = kfield_get(&l->seq, info);
	rec->ts_ns = kfield_get(&l->ts, info);
	rec->level = (int)kfield_get(&l->level, info);
	rec->facility = (int)kfield_get(&l->facility, info);
	rec->text = strndup(text, len);
	return rec->text ? 0 : -ENOMEM;
}

void vms_log_records_free(struct vms_log_record *recs, size_t count)
{
	for (size_t i = 0; recs && i < count; i++)
		free(recs[i].text);
	free(recs);
}

int vms_os_dmesg(struct vms_vm *vm, struct vms_log_record **ret_recs, size_t *ret_count)
{
	struct vms_log_record *recs = NULL;
	const struct prb_layout *l;
	struct linux_kernel *k;
	struct prb r;
	size_t n = 0, cap = 0, text_bytes = 0;
	int err = linux_kernel_get(vm, &k);

	if (err)
		return err;
	l = layout(k);
	if (!l)
		return -ENOENT;
	err = read_ring(k, l, &r);
	if (err)
		return err;
	for (uint64_t id = r.tail & ID_MASK, steps = 0; steps < r.count;
	     id = (id + 1) & ID_MASK, steps++) {
		int e;

		if (n == MAX_RECORDS || text_bytes >= TEXT_BUDGET) {
			view_partial(vm, "the kernel log is larger than the view's budget: the "
					 "oldest %zu records listed", n);
			break;
		}
		if (append(&recs, &n, &cap)) {
			err = vm_error(vm, -ENOMEM, "out of memory");
			break;
		}
		e = one_record(k, l, &r, id, &recs[n]);
		if (e == -ENOMEM) {
			err = vm_error(vm, e, "out of memory");
			break;
		}
		if (e == 0)
			text_bytes += strlen(recs[n++].text) + 1;
		if (id == (r.head & ID_MASK))
			break;
	}
	if (err) {
		vms_log_records_free(recs, n);
		return err;
	}
	*ret_recs = recs;
	*ret_count = n;
	return 0;
}
