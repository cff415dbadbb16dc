// SPDX-License-Identifier: MIT
/*
 * vmscope translate TARGET ADDR... [--cr3 X|--vcpu N] [--levels 4|5]:
 * guest-virtual to guest-physical, one line per address:
 *   VA GPA PAGE_BYTES RIGHTS      or      VA - REASON
 * ADDR "-" reads addresses from standard input, one per line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <vmscope/mem.h>

#include "cli.h"

static void translate_one(struct vms_vm *vm, uint64_t cr3, uint64_t va)
{
	struct vms_translation t;
	int err = vms_translate(vm, cr3, va, &t);

	if (err == -ENOENT)
		printf("%016" PRIx64 " - unmapped\n", va);
	else if (err == -EINVAL)
		printf("%016" PRIx64 " - non-canonical\n", va);
	else if (err)
		printf("%016" PRIx64 " - error: %s\n", va, vms_last_error(vm));
	else
		printf("%016" PRIx64 " %016" PRIx64 " %" PRIu64 " %c%c%c\n", va, t.gpa, t.page_bytes,
		       t.user ? 'u' : '-', t.writable ? 'w' : '-', t.executable ? 'x' : '-');
}

static int from_stdin(struct vms_vm *vm, uint64_t cr3)
{
	char line[128];

	while (fgets(line, sizeof(line), stdin)) {
		uint64_t va;

		line[strcspn(line, " \t\r\n")] = '\0';
		if (!line[0])
			continue;
		if (cli_parse_u64(line, "address", &va))
			return 1;
		translate_one(vm, cr3, va);
	}
	return 0;
}

static int run_translate(int argc, char **argv)
{
	static const struct option options[] = { CLI_PAGING_OPTIONS, { 0 } };
	struct cli_paging paging = { 0 };
	struct vms_vm *vm;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1)
		if (cli_paging_option(&paging, opt, optarg) <= 0)
			return opt == '?' ? cli_usage(&cmd_translate) : 1;
	if (optind > argc - 2)
		return cli_usage(&cmd_translate);
	for (int i = optind + 1; i < argc; i++) {
		uint64_t va;

		if (strcmp(argv[i], "-") && cli_parse_u64(argv[i], "address", &va))
			return 1;
	}
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	status = cli_paging_apply(vm, &paging);
	for (int i = optind + 1; !status && i < argc; i++) {
		uint64_t va = 0;

		if (!strcmp(argv[i], "-"))
			status = from_stdin(vm, paging.cr3);
		else if (!cli_parse_u64(argv[i], "address", &va))
			translate_one(vm, paging.cr3, va);
	}
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_translate = {
	.name = "translate",
	.usage = "TARGET ADDR...|- [--cr3 X|--vcpu N] [--levels 4|5]",
	.summary = "guest-virtual to guest-physical addresses",
	.run = run_translate,
};
