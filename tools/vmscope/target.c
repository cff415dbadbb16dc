// SPDX-License-Identifier: MIT
/* Options the memory commands share: which page tables (--cr3, --vcpu) and how many levels. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

#include <vmscope/mem.h>
#include <vmscope/vcpu.h>

#include "cli.h"

int cli_paging_option(struct cli_paging *p, int opt, const char *arg)
{
	uint64_t value;

	switch (opt) {
	case CLI_OPT_CR3:
		if (cli_parse_u64(arg, "--cr3", &p->cr3))
			return -1;
		p->have_cr3 = 1;
		return 1;
	case CLI_OPT_VCPU:
		if (cli_parse_u64(arg, "--vcpu", &value))
			return -1;
		p->vcpu = value;
		return 1;
	case CLI_OPT_LEVELS:
		if (cli_parse_u64(arg, "--levels", &value))
			return -1;
		p->levels = (int)value;
		return 1;
	default:
		return 0;
	}
}

int cli_paging_apply(struct vms_vm *vm, struct cli_paging *p)
{
	int err;

	if (p->levels && vms_vm_set_paging_levels(vm, p->levels))
		return cli_fail("%s", vms_last_error(vm));
	if (p->have_cr3)
		return 0;
	/* The live registers: nothing pauses the VM unless asked. */
	err = p->vcpu > INT_MAX ? -ENOENT : vms_vcpu_get_cr3(vm, (int)p->vcpu, &p->cr3);
	if (err == -ENOENT)
		return cli_fail("%s", p->vcpu > INT_MAX ? "no such vCPU" : vms_last_error(vm));
	if (err)
		return cli_fail("%s (give --cr3)", vms_last_error(vm));
	return 0;
}
