// SPDX-License-Identifier: MIT
/*
 * The task a CPU is running: a per-CPU pointer, read through the CPU's GS
 * base (its per-CPU area while in the kernel). Per-CPU symbols are offsets
 * into that area, not addresses, and KASLR leaves them alone. Linux before
 * 6.2 keeps it in "current_task"; later kernels (until 6.15) in
 * "pcpu_hot.current_task".
 */
#include <errno.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define PERCPU_OFFSET_MAX (1ull << 24) /* a per-CPU offset, not an address */

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
	if (offset >= PERCPU_OFFSET_MAX || !gs_base)
		return vm_error(k->vm, -EINVAL, "no per-CPU area to find the current task in");
	if (kread_u64(k, gs_base + offset, ret) || !*ret)
		return vm_error(k->vm, -EFAULT, "the current task pointer is unreadable");
	return 0;
}
