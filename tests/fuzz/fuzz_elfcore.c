// SPDX-License-Identifier: MIT
/* libFuzzer target: ELF cores (program headers, notes, vCPU registers). */
#include <stddef.h>
#include <stdint.h>

#include "access/elfcore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elfcore core;
	struct mem_map map;
	uint8_t byte;
	char err[128];

	mem_map_init(&map);
	if (!elfcore_parse(&core, data, size, &map, err, sizeof(err))) {
		for (size_t i = 0; i < map.nr_segs; i++)
			mem_map_read(&map, map.segs[i].gpa + map.segs[i].size - 1, &byte, 1);
		elfcore_release(&core);
	}
	map.maps = NULL; /* nothing was mapped: the input is the file */
	mem_map_release(&map);
	return 0;
}
