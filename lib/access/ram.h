/* SPDX-License-Identifier: MIT */
#ifndef VMSCOPE_ACCESS_RAM_H
#define VMSCOPE_ACCESS_RAM_H

struct vms_vm;

/* Fill vm->mem with the RAM of the live QEMU behind vm->qmp. */
int ram_attach_qemu(struct vms_vm *vm);

/* Fill vm->mem with a raw physical-memory image: guest-physical 0 at offset 0. */
int raw_attach(struct vms_vm *vm, const char *path);

#endif
