// SPDX-License-Identifier: MIT
/* vmscope lsof TARGET [--pid N] [--json]: open file descriptors of the guest's processes. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmscope/os.h>

#include "cli.h"

static int run_lsof(int argc, char **argv)
{
	static const struct option options[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct vms_open_file *files = NULL;
	int opt, json = 0, status = 0, pid = -1;
	struct vms_vm *vm;
	uint64_t value;
	json_t *list;
	size_t n = 0;

	while ((opt = getopt_long(argc, argv, "p:j", options, NULL)) != -1) {
		if (opt == 'j')
			json = 1;
		else if (opt == 'p' && !cli_parse_u64(optarg, "--pid", &value) && value < (1u << 30))
			pid = (int)value;
		else
			return opt == 'p' ? 1 : cli_usage(&cmd_lsof);
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_lsof);
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (vms_os_open_files(vm, pid, &files, &n)) {
		status = cli_fail("%s", vms_last_error(vm));
	} else if (json) {
		list = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, json_pack("{s:i,s:i,s:s,s:I,s:i,s:I}", "pid",
							      files[i].pid, "fd", files[i].fd, "path",
							      files[i].path, "inode",
							      (json_int_t)files[i].inode, "flags",
							      (int)files[i].flags, "pos",
							      (json_int_t)files[i].pos));
		status = cli_print_list_json(vm, list);
	} else {
		printf("%7s %5s %10s %s\n", "PID", "FD", "INODE", "PATH");
		for (size_t i = 0; i < n; i++)
			printf("%7d %5d %10" PRIu64 " %s\n", files[i].pid, files[i].fd, files[i].inode,
			       files[i].path);
	}
	if (!status)
		cli_view_warning(vm);
	vms_open_files_free(files, n);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_lsof = {
	.name = "lsof",
	.usage = "TARGET [--pid N] [--json]",
	.summary = "open files of a Linux guest's processes",
	.run = run_lsof,
};
