// SPDX-License-Identifier: MIT
/* The log calls have no VM handle: their last error is kept per thread. */
#include <stdarg.h>
#include <stdio.h>

#include "log/format.h"

static __thread char last_error[512];

int log_error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err;
}

const char *vms_log_last_error(void)
{
	return last_error;
}
