// SPDX-License-Identifier: MIT
/* libFuzzer target: GPT and MBR partition tables, the input being the disk. */
#include <stdint.h>
#include <string.h>

#include "fuzz_disk.h"
#include "disk/layout/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct layout l;
	struct fuzz_disk d = { data, size };

	if (layout_read(fuzz_disk_read, &d, size, &l))
		return 0;
	/* What is returned must lie on the disk. */
	for (size_t i = 0; i < l.n; i++)
		if (l.parts[i].offset > size || l.parts[i].size > size - l.parts[i].offset)
			__builtin_trap();
	return 0;
}
