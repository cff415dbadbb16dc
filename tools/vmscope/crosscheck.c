// SPDX-License-Identifier: MIT
/*
 * vmscope ps TARGET --cross-check [--json]: processes one source shows and
 * another hides (task list, run queues, a scan of RAM for task_structs).
 * Text: one line per process missing from the task list or from the memory
 * scan, then a summary; JSON: every process with its sources.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmscope/os.h>

#include "cli.h"

static const struct {
	unsigned int bit;
	const char *name;
} sources[] = {
	{ VMS_SOURCE_TASK_LIST, "task-list" },
	{ VMS_SOURCE_RUN_QUEUE, "run-queue" },
	{ VMS_SOURCE_MEMORY, "memory" },
	{ VMS_SOURCE_PID_IDR, "pid-idr" },
};

static void source_names(unsigned int bits, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
		if ((bits & sources[i].bit) && used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "," : "",
						 sources[i].name);
}

static int print_json(const struct vms_vm *vm, const struct vms_seen_process *seen, size_t n)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < n; i++) {
		json_t *names = json_array(), *obj;
		char task[32];

		for (size_t s = 0; names && s < sizeof(sources) / sizeof(sources[0]); s++)
			if (seen[i].sources & sources[s].bit)
				json_array_append_new(names, json_string(sources[s].name));
		snprintf(task, sizeof(task), "0x%" PRIx64, seen[i].task);
		obj = json_pack("{s:i, s:i, s:s, s:s, s:o, s:b}", "pid", seen[i].pid, "tgid",
				seen[i].tgid, "comm", seen[i].comm, "task", task, "sources", names,
				"hidden", !(seen[i].sources & VMS_SOURCE_TASK_LIST));
		if (!obj || json_array_append_new(list, obj))
			break;
	}
	return cli_print_list_json(vm, list);
}

static void print_text(const struct vms_seen_process *seen, size_t n)
{
	size_t hidden = 0, unscanned = 0;

	for (size_t i = 0; i < n; i++) {
		int in_list = seen[i].sources & VMS_SOURCE_TASK_LIST;
		int in_memory = seen[i].sources & VMS_SOURCE_MEMORY;
		char names[64];

		if (in_list && in_memory)
			continue;
		source_names(seen[i].sources, names, sizeof(names));
		printf("%-8s %7d %-16s task 0x%" PRIx64 ", seen by %s\n",
		       in_list ? "UNSCANNED" : "HIDDEN", seen[i].pid, seen[i].comm, seen[i].task,
		       names);
		hidden += !in_list;
		unscanned += in_list && !in_memory;
	}
	printf("%zu processes: %zu hidden from the task list, %zu in it but not found in memory\n",
	       n, hidden, unscanned);
}

int cli_cross_check(struct vms_vm *vm, int json)
{
	struct vms_seen_process *seen = NULL;
	size_t n = 0;
	int status = 0;

	if (vms_os_cross_check(vm, &seen, &n))
		return cli_fail("%s", vms_last_error(vm));
	if (json)
		status = print_json(vm, seen, n);
	else
		print_text(seen, n);
	if (!status)
		cli_view_warning(vm);
	free(seen);
	return status;
}
