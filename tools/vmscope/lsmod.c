// SPDX-License-Identifier: MIT
/* vmscope lsmod TARGET [--json]: the guest's loaded kernel modules. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmscope/os.h>

#include "cli.h"

static int print_json(const struct vms_module *mods, size_t n)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < n; i++) {
		char base[24];

		snprintf(base, sizeof(base), "0x%" PRIx64, mods[i].base);
		if (json_array_append_new(list, json_pack("{s:s,s:I,s:s,s:i,s:s}", "name",
							  mods[i].name, "size",
							  (json_int_t)mods[i].size, "base", base,
							  "refcount", mods[i].refcount, "state",
							  mods[i].state)))
			break;
	}
	if (!list)
		return cli_fail("cannot build JSON output");
	json_dumpf(list, stdout, JSON_INDENT(1));
	putchar('\n');
	json_decref(list);
	return 0;
}

static int run_lsmod(int argc, char **argv)
{
	struct vms_module *mods = NULL;
	int json, status = 0;
	struct vms_vm *vm;
	size_t n;

	status = cli_target_args(argc, argv, &cmd_lsmod, &json);
	if (status >= 0)
		return status;
	status = 0;
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (vms_os_modules(vm, &mods, &n)) {
		status = cli_fail("%s", vms_last_error(vm));
	} else if (json) {
		status = print_json(mods, n);
	} else {
		printf("%-24s %10s %5s %-10s %s\n", "MODULE", "SIZE", "REFS", "STATE", "BASE");
		for (size_t i = 0; i < n; i++)
			printf("%-24s %10" PRIu64 " %5d %-10s 0x%016" PRIx64 "\n", mods[i].name,
			       mods[i].size, mods[i].refcount, mods[i].state, mods[i].base);
	}
	free(mods);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_lsmod = {
	.name = "lsmod",
	.usage = "TARGET [--json]",
	.summary = "kernel modules loaded in a Linux guest",
	.run = run_lsmod,
};
