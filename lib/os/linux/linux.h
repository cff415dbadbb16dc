/* SPDX-License-Identifier: MIT */
/* The Linux monitoring driver's internal interface. */
#ifndef VMSCOPE_OS_LINUX_H
#define VMSCOPE_OS_LINUX_H

#include <stddef.h>

/*
 * If buf (len bytes) starts with a well-formed kernel banner
 * ("Linux version RELEASE (...) ... #N ...\n\0"), return its length without
 * the newline; otherwise 0.
 */
size_t linux_banner_length(const char *buf, size_t len);

#endif
