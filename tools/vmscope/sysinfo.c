// SPDX-License-Identifier: MIT
/* vmscope sysinfo TARGET [--json]: release, uptime, load, memory and counters of the guest. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include <vmscope/os.h>

#include "cli.h"

static void print_text(const struct vms_sysinfo *s)
{
	printf("release:          %s\n", s->release);
	printf("uptime:           %.2f s\n", s->uptime_s);
	printf("load average:     %.2f %.2f %.2f\n", s->load[0], s->load[1], s->load[2]);
	printf("memory total:     %" PRIu64 " kB\n", s->mem_total_bytes >> 10);
	printf("memory free:      %" PRIu64 " kB\n", s->mem_free_bytes >> 10);
	printf("memory available: %" PRIu64 " kB\n", s->mem_available_bytes >> 10);
	printf("tasks:            %" PRIu64 "\n", s->tasks);
	printf("context switches: %" PRIu64 "\n", s->context_switches);
	printf("forks:            %" PRIu64 "\n", s->forks);
	printf("cpus:             %d\n", s->cpus);
}

static int run_sysinfo(int argc, char **argv)
{
	struct vms_sysinfo info;
	int json, status = 0;
	struct vms_vm *vm;

	status = cli_target_args(argc, argv, &cmd_sysinfo, &json);
	if (status >= 0)
		return status;
	status = 0;
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (json)
		status = cli_print_view_json(vm, "sysinfo");
	else if (vms_os_sysinfo(vm, &info))
		status = cli_fail("%s", vms_last_error(vm));
	else
		print_text(&info);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_sysinfo = {
	.name = "sysinfo",
	.usage = "TARGET [--json]",
	.summary = "release, uptime, load, memory, tasks of a Linux guest",
	.run = run_sysinfo,
};
