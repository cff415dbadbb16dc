// SPDX-License-Identifier: MIT
/* vmscope regs TARGET [--json]: every vCPU's registers. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmscope/vcpu.h>

#include "cli.h"

struct named {
	const char *name;
	size_t offset;
};

#define R(field) { #field, offsetof(struct vms_vcpu_regs, field) }

static const struct named shown[] = {
	R(rip), R(rsp), R(rflags), R(rax), R(rbx), R(rcx), R(rdx), R(rsi), R(rdi), R(rbp),
	R(r8),	R(r9),	R(r10),	   R(r11), R(r12), R(r13), R(r14), R(r15), R(cr0), R(cr2),
	R(cr3), R(cr4), R(efer),   R(fs_base), R(gs_base), R(kernel_gs_base),
};

static uint64_t value_of(const struct vms_vcpu_regs *r, const struct named *n)
{
	return *(const uint64_t *)((const char *)r + n->offset);
}

static int known(const struct vms_vcpu_regs *r, const struct named *n)
{
	if (n->offset == offsetof(struct vms_vcpu_regs, kernel_gs_base))
		return !!(r->flags & VMS_REGS_KERNEL_GS_BASE);
	if (n->offset == offsetof(struct vms_vcpu_regs, efer))
		return !!(r->flags & (VMS_REGS_EFER | VMS_REGS_EFER_DERIVED));
	return 1;
}

static void print_text(const struct vms_vcpu_regs *regs, int count)
{
	for (int i = 0; i < count; i++) {
		const struct vms_vcpu_regs *r = &regs[i];

		printf("vCPU %d: CPL %d%s%s\n", r->index, r->cpl,
		       r->flags & VMS_REGS_HALTED ? ", halted" : "",
		       r->flags & VMS_REGS_EFER_DERIVED ? ", EFER derived from CS and CR0" : "");
		for (size_t j = 0; j < sizeof(shown) / sizeof(shown[0]); j++) {
			if (known(r, &shown[j]))
				printf("  %-15s %016" PRIx64 "%s", shown[j].name, value_of(r, &shown[j]),
				       j % 3 == 2 ? "\n" : "");
			else
				printf("  %-15s %16s%s", shown[j].name, "unknown", j % 3 == 2 ? "\n" : "");
		}
		printf("\n");
	}
}

static int print_json(const struct vms_vcpu_regs *regs, int count)
{
	json_t *list = json_array();

	for (int i = 0; list && i < count; i++) {
		const struct vms_vcpu_regs *r = &regs[i];
		json_t *obj = json_pack("{s:i,s:i,s:b,s:b}", "vcpu", r->index, "cpl", r->cpl, "halted",
					!!(r->flags & VMS_REGS_HALTED), "efer_derived",
					!!(r->flags & VMS_REGS_EFER_DERIVED));

		for (size_t j = 0; obj && j < sizeof(shown) / sizeof(shown[0]); j++) {
			char hex[24];

			snprintf(hex, sizeof(hex), "0x%" PRIx64, value_of(r, &shown[j]));
			json_object_set_new(obj, shown[j].name,
					    known(r, &shown[j]) ? json_string(hex) : json_null());
		}
		if (!obj || json_array_append_new(list, obj))
			break;
	}
	if (!list)
		return cli_fail("cannot build JSON output");
	json_dumpf(list, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(list);
	return 0;
}

static int run_regs(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct vms_vcpu_regs *regs = NULL;
	struct vms_vm *vm;
	int json = 0, opt, count, status;

	while ((opt = getopt_long(argc, argv, "j", options, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage(&cmd_regs);
		json = 1;
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_regs);
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (vms_vcpu_get_regs(vm, &regs, &count)) {
		status = cli_fail("%s", vms_last_error(vm));
	} else {
		status = json ? print_json(regs, count) : (print_text(regs, count), 0);
		free(regs);
	}
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_regs = {
	.name = "regs",
	.usage = "TARGET [--json]",
	.summary = "registers of every vCPU",
	.run = run_regs,
};
