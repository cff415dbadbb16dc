// SPDX-License-Identifier: MIT
/* libFuzzer target: HMP "info registers" text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access/regs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct vms_vcpu_regs *regs;
	int count;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (!regs_parse_hmp(text, &regs, &count))
		free(regs);
	free(text);
	return 0;
}
