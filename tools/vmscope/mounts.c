// SPDX-License-Identifier: MIT
/* vmscope mounts TARGET [--json]: the guest's mounts, as its /proc/mounts lists them. */
#include <stdio.h>

#include <vmscope/os.h>

#include "cli.h"

static int fetch(struct vms_vm *vm, void **ret_items, size_t *ret_count)
{
	return vms_os_mounts(vm, (struct vms_mount **)ret_items, ret_count);
}

static void print_text(const void *items, size_t n)
{
	const struct vms_mount *m = items;

	for (size_t i = 0; i < n; i++)
		printf("%s %s %s %s\n", m[i].device, m[i].mountpoint, m[i].fstype,
		       m[i].read_only ? "ro" : "rw");
}

static const struct cli_view view = { &cmd_mounts, fetch, print_text, "mounts", NULL };

static int run_mounts(int argc, char **argv)
{
	return cli_run_view(argc, argv, &view);
}

const struct cli_command cmd_mounts = {
	.name = "mounts",
	.usage = "TARGET [--json]",
	.summary = "mounts of a Linux guest",
	.run = run_mounts,
};
