// SPDX-License-Identifier: MIT
/* vmscope dump TARGET FILE: an ELF core of a live VM, usable later as dump:FILE. */
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"

static int run_dump(int argc, char **argv)
{
	struct vms_vm_info info;
	struct vms_vm *vm;
	struct stat st;
	int err;

	if (argc != 3)
		return cli_usage(&cmd_dump);
	vm = cli_attach(argv[1]);
	if (!vm)
		return 1;
	err = vms_vm_dump(vm, argv[2]);
	if (!err)
		err = vms_vm_query_info(vm, &info);
	if (err) {
		cli_fail("%s", vms_last_error(vm));
		vms_vm_free(vm);
		return 1;
	}
	if (!stat(argv[2], &st))
		printf("wrote %s: %lld bytes, %d vCPUs; read it with dump:%s\n", argv[2],
		       (long long)st.st_size, info.vcpus, argv[2]);
	vms_vm_free(vm);
	return 0;
}

const struct cli_command cmd_dump = {
	.name = "dump",
	.usage = "TARGET FILE",
	.summary = "write an ELF core (RAM and vCPU registers) of a live VM",
	.run = run_dump,
};
