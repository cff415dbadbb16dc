/* SPDX-License-Identifier: MIT */
/*
 * ELF cores as QEMU's dump-guest-memory writes them: PT_LOAD segments whose
 * p_paddr is guest-physical, and PT_NOTE notes with each vCPU's state
 * ("CORE" NT_PRSTATUS, "QEMU" QEMUCPUState, and "VMSCOPE" notes that
 * vms_vm_dump() adds for what QEMU's notes lack, such as EFER).
 */
#ifndef VMSCOPE_ACCESS_ELFCORE_H
#define VMSCOPE_ACCESS_ELFCORE_H

#include <stddef.h>
#include <stdint.h>

#include <vmscope/vcpu.h>

#include "access/mem.h"

#define ELFCORE_MAX_VCPUS 4096
#define VMSCOPE_NOTE_NAME "VMSCOPE"
#define VMSCOPE_NOTE_EFER 1 /* desc: u32 vcpu index, u32 reserved, u64 efer */

struct elfcore {
	const uint8_t *file;
	size_t size;
	struct vms_vcpu_regs *regs; /* malloc'ed, one per vCPU */
	int nr_regs;
};

/*
 * Check the ELF header and program headers of file (size bytes), collect the
 * vCPU registers from its notes into core->regs and, if map is not NULL, add
 * each PT_LOAD as a guest-physical segment pointing into file. A sentence on
 * failure goes to errbuf.
 */
int elfcore_parse(struct elfcore *core, const uint8_t *file, size_t size, struct mem_map *map,
		  char *errbuf, size_t errbuf_len);
void elfcore_release(struct elfcore *core);

#endif
