/* SPDX-License-Identifier: MIT */
/* For unit tests that make their inputs with real tools (mke2fs, sfdisk). */
#ifndef VMSCOPE_TEST_RUN_COMMAND_H
#define VMSCOPE_TEST_RUN_COMMAND_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* A shell command from a format; 0 when it succeeded, else -1 (said on stderr). */
static inline int run_command(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int run_command(const char *fmt, ...)
{
	char command[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(command, sizeof(command), fmt, ap);
	va_end(ap);
	if (system(command)) {
		fprintf(stderr, "failed: %s\n", command);
		return -1;
	}
	return 0;
}

#endif
