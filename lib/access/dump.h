/* SPDX-License-Identifier: MIT */
#ifndef VMSCOPE_ACCESS_DUMP_H
#define VMSCOPE_ACCESS_DUMP_H

struct vms_vm;

/* Attach to an ELF core written by dump-guest-memory (dump:PATH). */
int dump_attach(struct vms_vm *vm, const char *path);

#endif
