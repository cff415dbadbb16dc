// SPDX-License-Identifier: MIT
/*
 * The VM's disks (query-block) and each one's layout: its partition table
 * (disk/layout) and what every partition holds, read through the disk
 * reader (QEMU's NBD export of the node).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/disk.h>

#include "access/qmp.h"
#include "core/internal.h"
#include "disk/layout/layout.h"

#define MAX_NODES 256

_Static_assert(sizeof(((struct vms_disk_layout *)0)->parts) /
			       sizeof(((struct vms_disk_layout *)0)->parts[0]) ==
		       LAYOUT_MAX_PARTITIONS,
	       "vms_disk_layout holds every partition the tables give");

/* "/machine/peripheral/vda/virtio-backend" -> "vda"; anything else as it is. */
static void device_id(const char *qdev, char *out, size_t len)
{
	const char *p = strstr(qdev, "/peripheral/");
	size_t n;

	if (!p) {
		snprintf(out, len, "%s", qdev);
		return;
	}
	p += strlen("/peripheral/");
	n = strcspn(p, "/");
	snprintf(out, len, "%.*s", (int)n, p);
}

int vms_disk_nodes(struct vms_vm *vm, struct vms_disk_node **ret, size_t *ret_n)
{
	struct vms_disk_node *nodes;
	json_t *list = NULL, *dev;
	size_t i, n = 0;
	int err;

	if (!vm->qmp)
		return vm_error(vm, -EOPNOTSUPP, "listing disks needs a live VM (qmp:)");
	err = qmp_execute(vm->qmp, "query-block", NULL, &list);
	if (err)
		return vm_error(vm, err, "query-block: %s", qmp_error(vm->qmp));
	nodes = calloc(json_array_size(list) + 1, sizeof(*nodes));
	if (!nodes) {
		json_decref(list);
		return vm_error(vm, -ENOMEM, "out of memory");
	}
	json_array_foreach(list, i, dev) {
		const char *node = json_string_value(
			json_object_get(json_object_get(dev, "inserted"), "node-name"));
		const char *qdev = json_string_value(json_object_get(dev, "qdev"));
		const char *name = json_string_value(json_object_get(dev, "device"));

		if (!node || n == MAX_NODES)
			continue;
		snprintf(nodes[n].node, sizeof(nodes[n].node), "%s", node);
		device_id(qdev ? qdev : name ? name : "", nodes[n].device, sizeof(nodes[n].device));
		n++;
	}
	json_decref(list);
	*ret = nodes;
	*ret_n = n;
	return 0;
}

static int read_reader(void *ctx, uint64_t offset, void *buf, size_t len)
{
	return vms_disk_read(ctx, offset, buf, len);
}

static void copy_fs(struct vms_disk_fs *to, const struct layout_fs *from)
{
	memcpy(to->type, from->type, sizeof(to->type));
	memcpy(to->label, from->label, sizeof(to->label));
	memcpy(to->uuid, from->uuid, sizeof(to->uuid));
	to->size = from->size;
}

struct volume_reader {
	struct vms_disk_reader *r;
	const struct vms_disk_volume *v;
};

static int read_volume(void *ctx, uint64_t offset, void *buf, size_t len)
{
	const struct volume_reader *vr = ctx;

	return layout_read_mapped(read_reader, vr->r, vr->v->seg, vr->v->nr_segments, offset, buf,
				  len);
}

static void add_volume(struct vms_disk_reader *r, struct vms_disk_layout *out, unsigned int part,
		       uint64_t base, const struct layout_volume *lv, const char *vg)
{
	struct vms_disk_volume *v = &out->volumes[out->nr_volumes++];
	struct volume_reader vr = { r, v };
	struct layout_fs fs;

	v->partition = part;
	snprintf(v->vg, sizeof(v->vg), "%s", vg);
	snprintf(v->lv, sizeof(v->lv), "%s", lv->name);
	memcpy(v->uuid, lv->uuid, sizeof(v->uuid));
	memcpy(v->refused, lv->refused, sizeof(v->refused));
	v->size = lv->size;
	v->nr_segments = lv->nr_segments;
	for (size_t i = 0; i < lv->nr_segments; i++)
		v->seg[i] = (struct vms_disk_segment){ lv->seg[i].lv_offset,
						       base + lv->seg[i].pv_offset, lv->seg[i].len };
	if (v->refused[0])
		return;
	layout_probe_fs(read_volume, &vr, 0, v->size, &fs);
	copy_fs(&v->fs, &fs);
}

/* The logical volumes of an LVM2 PV at [base, base + space): a PV that does not read is said. */
static void add_volumes(struct vms_disk_reader *r, struct vms_disk_layout *out, unsigned int part,
			uint64_t base, uint64_t space)
{
	struct layout_lvm *lvm = malloc(sizeof(*lvm));
	int found = lvm ? layout_lvm(read_reader, r, base, space, lvm) : -ENOMEM;

	if (found < 0 || (found > 0 && lvm->partial)) {
		out->partial = 1;
		snprintf(out->why, sizeof(out->why), "%s", lvm ? lvm->why : "out of memory");
	}
	for (size_t i = 0; found > 0 && i < lvm->n; i++) {
		if (out->nr_volumes == sizeof(out->volumes) / sizeof(out->volumes[0])) {
			out->partial = 1;
			snprintf(out->why, sizeof(out->why), "more than %zu logical volumes",
				 out->nr_volumes);
			break;
		}
		add_volume(r, out, part, base, &lvm->vols[i], lvm->vg);
	}
	free(lvm);
}

static int is_pv(const struct vms_disk_fs *fs)
{
	return !strcmp(fs->type, "lvm2_member");
}

int vms_disk_layout(struct vms_disk_reader *r, struct vms_disk_layout **ret, char *why,
		    size_t why_len)
{
	struct vms_disk_layout *out = calloc(1, sizeof(*out));
	struct layout *l = calloc(1, sizeof(*l));
	struct layout_fs fs;
	int err = -ENOMEM;

	snprintf(why, why_len, "out of memory");
	if (!out || !l)
		goto fail;
	out->size = vms_disk_size(r);
	err = layout_read(read_reader, r, out->size, l);
	snprintf(out->why, sizeof(out->why), "%s", l->why);
	if (err) {
		snprintf(why, why_len, "%s", l->why);
		goto fail;
	}
	snprintf(out->table, sizeof(out->table), "%s", layout_kind_name(l->kind));
	snprintf(out->uuid, sizeof(out->uuid), "%s", l->disk_uuid);
	out->partial = l->partial;
	if (l->kind == LAYOUT_WHOLE_DISK) {
		layout_probe_fs(read_reader, r, 0, out->size, &fs);
		copy_fs(&out->fs, &fs);
		if (is_pv(&out->fs))
			add_volumes(r, out, 0, 0, out->size);
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct layout_partition *p = &l->parts[i];
		struct vms_disk_partition *q = &out->parts[out->n++];

		q->number = p->number;
		q->offset = p->offset;
		q->size = p->size;
		memcpy(q->type, p->type, sizeof(q->type));
		memcpy(q->uuid, p->uuid, sizeof(q->uuid));
		memcpy(q->name, p->name, sizeof(q->name));
		layout_probe_fs(read_reader, r, p->offset, p->size, &fs);
		copy_fs(&q->fs, &fs);
		if (is_pv(&q->fs))
			add_volumes(r, out, p->number, p->offset, p->size);
	}
	free(l);
	*ret = out;
	return 0;
fail:
	free(l);
	free(out);
	return err;
}
