// SPDX-License-Identifier: MIT
/*
 * vmscope disks TARGET [--json]: every guest disk's node, its partition
 * table, and what each partition (or the whole disk) holds: type, label,
 * UUID, size, and the LVM2 logical volumes on its physical volumes. Read
 * through QEMU's NBD export of each node; the VM runs on.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmscope/disk.h>

#include "cli.h"

static json_t *fs_json(const struct vms_disk_fs *fs)
{
	if (!fs->type[0])
		return json_null();
	return json_pack("{s:s,s:s,s:s,s:I}", "type", fs->type, "label", fs->label, "uuid",
			 fs->uuid, "size", (json_int_t)fs->size);
}

static json_t *segments_json(const struct vms_disk_volume *v)
{
	json_t *segs = json_array();

	for (size_t i = 0; segs && i < v->nr_segments; i++)
		json_array_append_new(segs, json_pack("{s:I,s:I,s:I}", "lv_offset",
						      (json_int_t)v->seg[i].lv_offset, "disk_offset",
						      (json_int_t)v->seg[i].disk_offset, "length",
						      (json_int_t)v->seg[i].len));
	return segs;
}

static json_t *volumes_json(const struct vms_disk_layout *l)
{
	json_t *vols = json_array();

	for (size_t i = 0; vols && i < l->nr_volumes; i++) {
		const struct vms_disk_volume *v = &l->volumes[i];

		json_array_append_new(
			vols, json_pack("{s:I,s:s,s:s,s:s,s:I,s:o,s:o,s:s?}", "partition",
					(json_int_t)v->partition, "vg", v->vg, "lv", v->lv, "uuid",
					v->uuid, "size", (json_int_t)v->size, "segments",
					segments_json(v), "filesystem", fs_json(&v->fs), "refused",
					v->refused[0] ? v->refused : NULL));
	}
	return vols;
}

static json_t *layout_json(const struct vms_disk_node *d, const struct vms_disk_layout *l)
{
	json_t *parts = json_array();

	for (size_t i = 0; parts && i < l->n; i++) {
		const struct vms_disk_partition *p = &l->parts[i];

		json_array_append_new(
			parts, json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:o}", "number",
					 (json_int_t)p->number, "offset", (json_int_t)p->offset,
					 "size", (json_int_t)p->size, "type", p->type, "uuid",
					 p->uuid, "name", p->name, "filesystem", fs_json(&p->fs)));
	}
	return json_pack("{s:s,s:s,s:I,s:s,s:s,s:o,s:o,s:o,s:b,s:s?}", "node", d->node, "device",
			 d->device, "size", (json_int_t)l->size, "table", l->table, "uuid", l->uuid,
			 "filesystem", fs_json(&l->fs), "partitions", parts, "volumes",
			 volumes_json(l), "partial", l->partial, "warning",
			 l->partial ? l->why : NULL);
}

static void print_fs(const struct vms_disk_fs *fs)
{
	if (!fs->type[0]) {
		printf("  -\n");
		return;
	}
	printf("  %s", fs->type);
	if (fs->label[0])
		printf(" label \"%s\"", fs->label);
	if (fs->uuid[0])
		printf(" uuid %s", fs->uuid);
	if (fs->size)
		printf(" %.1f MiB", (double)fs->size / (1 << 20));
	printf("\n");
}

static void print_text(const struct vms_disk_node *d, const struct vms_disk_layout *l)
{
	printf("%s (%s): %.1f MiB, %s\n", d->node, d->device[0] ? d->device : "-",
	       (double)l->size / (1 << 20), !l->n && l->fs.type[0] ? "whole disk" : l->table);
	if (!l->n && l->fs.type[0]) {
		printf("  -");
		print_fs(&l->fs);
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct vms_disk_partition *p = &l->parts[i];

		printf("  %-3u %10.1f MiB at %.1f MiB", p->number, (double)p->size / (1 << 20),
		       (double)p->offset / (1 << 20));
		if (p->name[0])
			printf(" \"%s\"", p->name);
		print_fs(&p->fs);
	}
	for (size_t i = 0; i < l->nr_volumes; i++) {
		const struct vms_disk_volume *v = &l->volumes[i];

		printf("  %s/%s %10.1f MiB in %s", v->vg, v->lv, (double)v->size / (1 << 20),
		       v->partition ? "partition" : "the whole disk");
		if (v->partition)
			printf(" %u", v->partition);
		if (v->refused[0])
			printf("  (not readable here: %s)\n", v->refused);
		else
			print_fs(&v->fs);
	}
	if (l->partial)
		fprintf(stderr, "vmscope: %s: partial: %s\n", d->node, l->why);
}

/* One disk: 0, or 1 after saying why it could not be read. */
static int one_disk(struct vms_vm *vm, const struct vms_disk_node *d, json_t *list)
{
	struct vms_disk_reader *r;
	struct vms_disk_layout *l;
	char why[200];
	int err;

	if (vms_disk_open(vm, d->node, &r))
		return cli_fail("disk %s: %s", d->node, vms_last_error(vm));
	err = vms_disk_layout(r, &l, why, sizeof(why));
	vms_disk_close(r);
	if (err)
		return cli_fail("disk %s: %s", d->node, why);
	if (list)
		json_array_append_new(list, layout_json(d, l));
	else
		print_text(d, l);
	free(l);
	return 0;
}

static int run_disks(int argc, char **argv)
{
	static const struct option options[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct vms_disk_node *nodes = NULL;
	json_t *list = NULL;
	int opt, json = 0, status = 0;
	struct vms_vm *vm;
	size_t n = 0;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage(&cmd_disks);
		json = 1;
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_disks);
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (vms_disk_nodes(vm, &nodes, &n)) {
		status = cli_fail("%s", vms_last_error(vm));
		goto out;
	}
	list = json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++)
		status |= one_disk(vm, &nodes[i], list);
	if (list) {
		json_dumpf(list, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		putchar('\n');
	}
out:
	json_decref(list);
	free(nodes);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_disks = {
	.name = "disks",
	.usage = "TARGET [--json]",
	.summary = "a VM's disks: partition tables, LVM volumes, and the filesystem in each",
	.run = run_disks,
};
