// SPDX-License-Identifier: MIT
/* libFuzzer target: LVM2 physical volumes (label, metadata areas, text), the input being the PV. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz_disk.h"
#include "disk/layout/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void put_crc(uint8_t *to, const uint8_t *buf, size_t len)
{
	uint32_t crc = (uint32_t)crc32(0xf597a6cfu ^ 0xffffffffu, buf, (uInt)len) ^ 0xffffffffu;

	memcpy(to, &crc, 4);
}

/*
 * The checksums made right where the input has them (the corpus's layout:
 * label in sector 1, the first metadata area at 4096), so that mutations
 * reach the headers' fields and the metadata parser instead of dying at a
 * CRC.
 */
static void fix_checksums(uint8_t *d, size_t size)
{
	uint64_t at, len;

	if (size >= 4096 + 512) {
		at = le64(d + 4096 + 40);
		len = le64(d + 4096 + 48);
		if (at < size - 4096 && len <= size - 4096 - at)
			put_crc(d + 4096 + 56, d + 4096 + at, len);
		put_crc(d + 4096, d + 4096 + 4, 508);
	}
	if (size >= 1024)
		put_crc(d + 512 + 16, d + 512 + 20, 492);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct layout_lvm l;
	uint8_t *copy = malloc(size ? size : 1);
	struct fuzz_disk d = { copy, size };

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fix_checksums(copy, size);

	if (layout_lvm(fuzz_disk_read, &d, 0, size, &l) <= 0) {
		free(copy);
		return 0;
	}
	/* A readable volume's segments lie on the PV and cover it in order. */
	for (size_t i = 0; i < l.n; i++) {
		const struct layout_volume *v = &l.vols[i];
		uint64_t at = 0;

		if (v->refused[0] ? v->nr_segments != 0 : !v->nr_segments)
			__builtin_trap();
		for (size_t k = 0; k < v->nr_segments; k++) {
			const struct layout_segment *s = &v->seg[k];

			if (s->lv_offset != at || s->pv_offset > size ||
			    s->len > size - s->pv_offset)
				__builtin_trap();
			at += s->len;
		}
		if (at != v->size)
			__builtin_trap();
	}
	free(copy);
	return 0;
}
