/* SPDX-License-Identifier: MIT */
/* The disk reader's NBD server, for other exports of the same QEMU (one server each). */
#ifndef VMSCOPE_DISK_READER_H
#define VMSCOPE_DISK_READER_H

#include <vmscope/disk.h>

/* The unix socket of the NBD server the reader started in QEMU. */
const char *disk_reader_socket(const struct vms_disk_reader *r);

#endif
