// SPDX-License-Identifier: MIT
/*
 * The task a CPU is running: a per-CPU pointer, read through the CPU's GS
 * base while in the kernel. Up to 6.14, per-CPU symbols are offsets into the
 * CPU's area (zero-based, untouched by KASLR) and GS holds the area's
 * address; since 6.15 they are ordinary addresses in the boot copy
 * [__per_cpu_start, __per_cpu_end) and GS holds the CPU's distance from that
 * copy. Either way the variable is at GS base + symbol. Linux before 6.2
 * keeps the pointer in "current_task", 6.2 to 6.14 in "pcpu_hot.current_task",
 * 6.15 on in "current_task" again.
 */
#include <errno.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define PERCPU_OFFSET_MAX (1ull << 24) /* a per-CPU offset, not an address */

/* Is sym a per-CPU variable: a small offset (zero-based), or inside the boot copy? */
static int percpu_symbol(struct linux_kernel *k, uint64_t sym)
{
	uint64_t start = kallsyms_lookup(&k->ksyms, "__per_cpu_start");
	uint64_t end = kallsyms_lookup(&k->ksyms, "__per_cpu_end");

	if (sym < PERCPU_OFFSET_MAX)
		return 1;
	return start >= PERCPU_OFFSET_MAX && sym >= start && sym < end;
}

int linux_current_task(struct linux_kernel *k, uint64_t gs_base, uint64_t *ret)
{
	uint64_t offset = kallsyms_lookup(&k->ksyms, "current_task");
	struct kfield member;

	if (!offset) {
		offset = kallsyms_lookup(&k->ksyms, "pcpu_hot");
		if (!offset || kbtf_member(k->btf, "pcpu_hot", "current_task", &member))
			return vm_error(k->vm, -ENOENT, "the guest kernel has neither current_task "
				       "nor pcpu_hot.current_task");
		offset += member.offset;
	}
	if (!gs_base || !percpu_symbol(k, offset))
		return vm_error(k->vm, -EINVAL, "no per-CPU area to find the current task in");
	if (kread_u64(k, gs_base + offset, ret) || !*ret)
		return vm_error(k->vm, -EFAULT, "the current task pointer is unreadable");
	return 0;
}
