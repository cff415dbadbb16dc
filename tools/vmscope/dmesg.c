// SPDX-License-Identifier: MIT
/* vmscope dmesg TARGET [--json]: the guest's kernel log, from its printk ring buffer. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <vmscope/os.h>

#include "cli.h"

static void print_text(const struct vms_log_record *r)
{
	const char *line = r->text;

	/* dmesg prints each line of a record behind the record's time. */
	do {
		size_t len = strcspn(line, "\n");

		printf("[%5llu.%06llu] %.*s\n", (unsigned long long)(r->ts_ns / 1000000000u),
		       (unsigned long long)(r->ts_ns % 1000000000u / 1000), (int)len, line);
		line += len;
	} while (*line++);
}

static int run_dmesg(int argc, char **argv)
{
	struct vms_log_record *recs = NULL;
	int json, status = 0;
	struct vms_vm *vm;
	json_t *list;
	size_t n = 0;

	status = cli_target_args(argc, argv, &cmd_dmesg, &json);
	if (status >= 0)
		return status;
	status = 0;
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (vms_os_dmesg(vm, &recs, &n)) {
		status = cli_fail("%s", vms_last_error(vm));
	} else if (json) {
		list = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, json_pack("{s:I,s:I,s:i,s:i,s:s}", "seq",
							      (json_int_t)recs[i].seq, "ts_ns",
							      (json_int_t)recs[i].ts_ns, "level",
							      recs[i].level, "facility",
							      recs[i].facility, "text", recs[i].text));
		cli_print_json(list);
	} else {
		for (size_t i = 0; i < n; i++)
			print_text(&recs[i]);
	}
	vms_log_records_free(recs, n);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_dmesg = {
	.name = "dmesg",
	.usage = "TARGET [--json]",
	.summary = "the kernel log of a Linux guest",
	.run = run_dmesg,
};
