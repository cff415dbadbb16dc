// SPDX-License-Identifier: MIT
/* vmscope dmesg TARGET [--json]: the guest's kernel log, from its printk ring buffer. */
#include <stdio.h>
#include <string.h>

#include <vmscope/os.h>

#include "cli.h"

static int fetch(struct vms_vm *vm, void **ret_items, size_t *ret_count)
{
	return vms_os_dmesg(vm, (struct vms_log_record **)ret_items, ret_count);
}

static void release(void *items, size_t n)
{
	vms_log_records_free(items, n);
}

/* dmesg prints each line of a record behind the record's time. */
static void print_text(const void *items, size_t n)
{
	const struct vms_log_record *recs = items;

	for (size_t i = 0; i < n; i++) {
		const char *line = recs[i].text;

		do {
			size_t len = strcspn(line, "\n");

			printf("[%5llu.%06llu] %.*s\n",
			       (unsigned long long)(recs[i].ts_ns / 1000000000u),
			       (unsigned long long)(recs[i].ts_ns % 1000000000u / 1000), (int)len,
			       line);
			line += len;
		} while (*line++);
	}
}

static const struct cli_view view = { &cmd_dmesg, fetch, print_text, "dmesg", release };

static int run_dmesg(int argc, char **argv)
{
	return cli_run_view(argc, argv, &view);
}

const struct cli_command cmd_dmesg = {
	.name = "dmesg",
	.usage = "TARGET [--json]",
	.summary = "the kernel log of a Linux guest",
	.run = run_dmesg,
};
