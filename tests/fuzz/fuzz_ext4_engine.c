// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the ext4 inference engine, the input being the disk.
 * Bootstrap (journal replay, inode tables, extent trees, directories), then
 * every block of the disk written back somewhere else, the first word of
 * each choosing where: journal blocks, inode tables and directories all get
 * rewritten with hostile contents, committed or not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_disk.h"
#include "disk/ext4/engine.h"

#define MAX_WRITES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ignore(void *ctx, const struct ext4_fs_event *ev)
{
	/* Touch what a consumer reads: paths must be strings, info valid. */
	*(size_t *)ctx += strlen(ev->path) + (ev->old_path ? strlen(ev->old_path) : 0) +
			  ev->info->size % 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_disk d = { data, size };
	struct ext4_engine *e;
	char why[256];
	size_t sink = 0;
	uint64_t blocks;
	uint32_t bs;

	if (ext4_engine_probe(&e, size, fuzz_disk_read, &d, why, sizeof(why)))
		return 0;
	if (ext4_engine_bootstrap(e, why, sizeof(why))) {
		ext4_engine_free(e);
		return 0;
	}
	ext4_engine_set_emit(e, ignore, &sink);
	bs = ext4_engine_block_size(e);
	blocks = size / bs;
	for (uint64_t b = 0; b < blocks && b < MAX_WRITES; b++) {
		uint32_t word;

		memcpy(&word, data + b * bs, sizeof(word));
		ext4_engine_write(e, (word % blocks) * bs, bs, data + b * bs, 0, b);
		if (word & 1) /* and some zeroing, sub-block and unkept writes */
			ext4_engine_write(e, (word >> 1) % size, word >> 20, NULL, (int)(word & 2), b);
	}
	ext4_engine_free(e);
	return 0;
}
