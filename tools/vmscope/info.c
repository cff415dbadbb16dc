// SPDX-License-Identifier: MIT
/*
 * vmscope info TARGET [--json]: what the VMM says of the VM (name, run state,
 * vCPUs, RAM) and what its RAM says of the kernel (the banner).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <vmscope/os.h>

#include "cli.h"

static void print_text(const struct vms_vm_info *info, const struct vms_os_ident *os)
{
	printf("name:     %s\n", info->name[0] ? info->name : "-");
	printf("state:    %s\n", info->state);
	if (info->vcpus >= 0)
		printf("vcpus:    %d\n", info->vcpus);
	else
		printf("vcpus:    -\n");
	printf("ram:      %" PRIu64 " MiB (%" PRIu64 " bytes)\n", info->ram_bytes >> 20,
	       info->ram_bytes);
	printf("os:       %s\n", os ? os->os : "unknown");
	printf("banner:   %s\n", os ? os->banner : "-");
}

static int print_json(const struct vms_vm_info *info, const struct vms_os_ident *os)
{
	json_t *obj = json_pack("{s:s?,s:s,s:o,s:I,s:s?,s:s?,s:s?,s:o}", "name",
				info->name[0] ? info->name : NULL, "state", info->state, "vcpus",
				info->vcpus >= 0 ? json_integer(info->vcpus) : json_null(),
				"ram_bytes", (json_int_t)info->ram_bytes, "os", os ? os->os : NULL,
				"kernel_release", os ? os->release : NULL, "kernel_banner",
				os ? os->banner : NULL, "qemu_pid",
				info->qemu_pid > 0 ? json_integer(info->qemu_pid) : json_null());

	if (!obj)
		return cli_fail("cannot build JSON output");
	json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(obj);
	return 0;
}

static int run_info(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vms_os_ident os;
	struct vms_vm_info info;
	struct vms_vm *vm;
	int json = 0, opt, err, status;

	while ((opt = getopt_long(argc, argv, "jh", options, NULL)) != -1) {
		if (opt == 'j')
			json = 1;
		else
			return cli_usage(&cmd_info);
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_info);
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	err = vms_vm_query_info(vm, &info);
	if (err) {
		status = cli_fail("%s", vms_last_error(vm));
		goto out;
	}
	err = vms_os_identify(vm, &os);
	if (err && err != -ENOENT) {
		status = cli_fail("%s", vms_last_error(vm));
		goto out;
	}
	status = json ? print_json(&info, err ? NULL : &os)
		      : (print_text(&info, err ? NULL : &os), 0);
out:
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_info = {
	.name = "info",
	.usage = "TARGET [--json]",
	.summary = "VM name, state, vCPUs, RAM and the guest kernel's banner",
	.run = run_info,
};
