// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: page-table walks and enumeration, the input being guest
 * RAM; its first bytes choose the root, the address and the paging depth.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "arch/x86_64.h"

struct ram {
	const uint8_t *data;
	size_t size;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_ram(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	const struct ram *r = ctx;

	if (gpa > r->size || len > r->size - gpa)
		return -EFAULT;
	memcpy(buf, r->data + gpa, len);
	return 0;
}

static int count(uint64_t va, const struct x86_translation *t, void *ctx)
{
	(void)va;
	(void)t;
	return ++*(int *)ctx > 10000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ram ram = { data, size };
	struct x86_translation t;
	uint64_t cr3, va;
	int n = 0;

	if (size < 17)
		return 0;
	memcpy(&cr3, data, 8);
	memcpy(&va, data + 8, 8);
	cr3 %= size;
	struct x86_mmu mmu = { read_ram, &ram, data[16] & 1 ? 5 : 4 };

	x86_translate(&mmu, cr3, va, &t);
	x86_for_each_mapping(&mmu, cr3, 0, UINT64_MAX, 64, count, &n);
	return 0;
}
