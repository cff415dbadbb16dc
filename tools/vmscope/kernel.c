// SPDX-License-Identifier: MIT
/*
 * vmscope kernel TARGET [--symbol NAME]... [--json]: what discovery found in
 * a Linux guest's RAM (release, KASLR offset, page-table root, symbols), and
 * the addresses of named kernel symbols.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>

#include <vmscope/os.h>

#include "cli.h"

#define MAX_SYMBOLS 64

static int run_kernel(int argc, char **argv)
{
	static const struct option options[] = {
		{ "symbol", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	const char *names[MAX_SYMBOLS];
	struct vms_kernel_info info;
	int opt, json = 0, n = 0, status = 0;
	json_t *obj, *syms;
	struct vms_vm *vm;

	while ((opt = getopt_long(argc, argv, "s:j", options, NULL)) != -1) {
		if (opt == 's' && n < MAX_SYMBOLS)
			names[n++] = optarg;
		else if (opt == 'j')
			json = 1;
		else
			return cli_usage(&cmd_kernel);
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_kernel);
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (vms_linux_kernel(vm, &info)) {
		status = cli_fail("%s", vms_last_error(vm));
		goto out;
	}
	syms = json_object();
	for (int i = 0; i < n && !status; i++) {
		uint64_t addr;
		char hex[24];

		if (vms_linux_symbol(vm, names[i], &addr)) {
			status = cli_fail("%s", vms_last_error(vm));
			break;
		}
		snprintf(hex, sizeof(hex), "0x%" PRIx64, addr);
		json_object_set_new(syms, names[i], json_string(hex));
	}
	if (status) {
		json_decref(syms);
		goto out;
	}
	if (json) {
		char kaslr[24], root[24];

		snprintf(kaslr, sizeof(kaslr), "0x%" PRIx64, info.kaslr_offset);
		snprintf(root, sizeof(root), "0x%" PRIx64, info.page_table_root);
		obj = json_pack("{s:s,s:s,s:s,s:i,s:I,s:s,s:o}", "release", info.release,
				"kaslr_offset", kaslr, "page_table_root", root, "paging_levels",
				info.paging_levels, "symbols", (json_int_t)info.symbols, "discovery",
				info.from_cache ? "cache" : "scan", "addresses", syms);
		json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(obj);
		goto out;
	}
	printf("release:          %s\n", info.release);
	printf("KASLR offset:     0x%" PRIx64 "\n", info.kaslr_offset);
	printf("page-table root:  0x%" PRIx64 " (%d levels)\n", info.page_table_root,
	       info.paging_levels);
	printf("symbols:          %zu\n", info.symbols);
	printf("discovery:        %s\n", info.from_cache ? "per-build cache" : "scan of RAM");
	for (int i = 0; i < n; i++)
		printf("%-17s %s\n", names[i], json_string_value(json_object_get(syms, names[i])));
	json_decref(syms);
out:
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_kernel = {
	.name = "kernel",
	.usage = "TARGET [--symbol NAME]... [--json]",
	.summary = "what discovery found in a Linux guest's RAM; symbol addresses",
	.run = run_kernel,
};
