// SPDX-License-Identifier: MIT
/* vmscope mounts TARGET [--json]: the guest's mounts, as its /proc/mounts lists them. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmscope/os.h>

#include "cli.h"

static int run_mounts(int argc, char **argv)
{
	struct vms_mount *mounts = NULL;
	int json, status = 0;
	struct vms_vm *vm;
	json_t *list;
	size_t n = 0;

	status = cli_target_args(argc, argv, &cmd_mounts, &json);
	if (status >= 0)
		return status;
	status = 0;
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (vms_os_mounts(vm, &mounts, &n)) {
		status = cli_fail("%s", vms_last_error(vm));
	} else if (json) {
		list = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:b}", "device",
							      mounts[i].device, "mountpoint",
							      mounts[i].mountpoint, "fstype",
							      mounts[i].fstype, "read_only",
							      mounts[i].read_only));
		cli_print_json(list);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s %s %s %s\n", mounts[i].device, mounts[i].mountpoint,
			       mounts[i].fstype, mounts[i].read_only ? "ro" : "rw");
	}
	free(mounts);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_mounts = {
	.name = "mounts",
	.usage = "TARGET [--json]",
	.summary = "mounts of a Linux guest",
	.run = run_mounts,
};
