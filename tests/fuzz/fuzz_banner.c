// SPDX-License-Identifier: MIT
/* libFuzzer target: the kernel banner's shape check. */
#include <stddef.h>
#include <stdint.h>

#include "os/linux/linux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = linux_banner_length((const char *)data, size);

	return len <= size ? 0 : __builtin_trap(), 0;
}
