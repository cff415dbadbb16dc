// SPDX-License-Identifier: MIT
/* vmscope sysinfo TARGET [--json]: release, uptime, load, memory and counters of the guest. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>

#include <vmscope/os.h>

#include "cli.h"

static int print_json(const struct vms_sysinfo *s)
{
	json_t *obj = json_pack("{s:s,s:f,s:[f,f,f],s:I,s:I,s:I,s:I,s:I,s:I,s:i}", "release",
				s->release, "uptime_s", s->uptime_s, "load", s->load[0], s->load[1],
				s->load[2], "mem_total_bytes", (json_int_t)s->mem_total_bytes,
				"mem_free_bytes", (json_int_t)s->mem_free_bytes,
				"mem_available_bytes", (json_int_t)s->mem_available_bytes, "tasks",
				(json_int_t)s->tasks, "context_switches",
				(json_int_t)s->context_switches, "forks", (json_int_t)s->forks,
				"cpus", s->cpus);

	if (!obj)
		return cli_fail("cannot build JSON output");
	json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(obj);
	return 0;
}

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
	if (vms_os_sysinfo(vm, &info))
		status = cli_fail("%s", vms_last_error(vm));
	else if (json)
		status = print_json(&info);
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
