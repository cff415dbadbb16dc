// SPDX-License-Identifier: MIT
/* vmscope lsmod TARGET [--json]: the guest's loaded kernel modules. */
#include <inttypes.h>
#include <stdio.h>

#include <vmscope/os.h>

#include "cli.h"

static int fetch(struct vms_vm *vm, void **ret_items, size_t *ret_count)
{
	return vms_os_modules(vm, (struct vms_module **)ret_items, ret_count);
}

static void print_text(const void *items, size_t n)
{
	const struct vms_module *m = items;

	printf("%-24s %10s %5s %-10s %s\n", "MODULE", "SIZE", "REFS", "STATE", "BASE");
	for (size_t i = 0; i < n; i++)
		printf("%-24s %10" PRIu64 " %5d %-10s 0x%016" PRIx64 "\n", m[i].name, m[i].size,
		       m[i].refcount, m[i].state, m[i].base);
}

static const struct cli_view view = { &cmd_lsmod, fetch, print_text, "lsmod", NULL };

static int run_lsmod(int argc, char **argv)
{
	return cli_run_view(argc, argv, &view);
}

const struct cli_command cmd_lsmod = {
	.name = "lsmod",
	.usage = "TARGET [--json]",
	.summary = "kernel modules loaded in a Linux guest",
	.run = run_lsmod,
};
