// SPDX-License-Identifier: MIT
/* libFuzzer target: partition tables and filesystem probes, the input being the disk. */
#include <stdint.h>
#include <string.h>

#include "fuzz_disk.h"
#include "disk/layout/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct layout l;
	struct fuzz_disk d = { data, size };
	struct layout_fs fs;

	layout_probe_fs(fuzz_disk_read, &d, 0, size, &fs);
	if (layout_read(fuzz_disk_read, &d, size, &l))
		return 0;
	/* What is returned must lie on the disk. */
	for (size_t i = 0; i < l.n; i++)
		if (l.parts[i].offset > size || l.parts[i].size > size - l.parts[i].offset)
			__builtin_trap();
	for (size_t i = 0; i < l.n; i++)
		layout_probe_fs(fuzz_disk_read, &d, l.parts[i].offset, l.parts[i].size, &fs);
	return 0;
}
