/* SPDX-License-Identifier: MIT */
/* Whole-buffer socket I/O, for the protocol clients and servers (NBD, gdbstub). */
#ifndef VMSCOPE_CORE_SOCKIO_H
#define VMSCOPE_CORE_SOCKIO_H

#include <stddef.h>

/* Receive or send exactly len bytes, retrying on EINTR: 0, or -EPIPE (closed, failed). */
int sock_recv_all(int fd, void *buf, size_t len);
int sock_send_all(int fd, const void *buf, size_t len);

#endif
