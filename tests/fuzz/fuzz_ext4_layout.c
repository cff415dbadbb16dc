// SPDX-License-Identifier: MIT
/* libFuzzer target: ext4 superblock and group descriptors, the input being the disk. */
#include <stdint.h>
#include <string.h>

#include "fuzz_disk.h"
#include "disk/ext4/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_disk d = { data, size };
	struct ext4_layout l;
	uint32_t group;
	char err[128];

	if (ext4_layout_load(&l, size, fuzz_disk_read, &d, err, sizeof(err)))
		return 0;
	for (uint64_t b = 0; b < l.blocks && b < 4096; b++)
		ext4_classify(&l, b, &group);
	ext4_layout_release(&l);
	return 0;
}
