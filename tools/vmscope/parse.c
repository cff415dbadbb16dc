// SPDX-License-Identifier: MIT
/* Parsing the CLI's numeric arguments, with one-line errors. */
#include <errno.h>
#include <stdlib.h>

#include "cli.h"

int cli_parse_u64(const char *text, const char *what, uint64_t *ret)
{
	char *end;
	unsigned long long value;

	if (!text || !*text || *text == '-')
		return -cli_fail("bad %s \"%s\": expected a number (0x... for hex)", what,
				 text ? text : "");
	errno = 0;
	value = strtoull(text, &end, 0);
	if (errno || *end)
		return -cli_fail("bad %s \"%s\": expected a number (0x... for hex)", what, text);
	*ret = value;
	return 0;
}

int cli_parse_seconds(const char *text, const char *what, double *ret)
{
	char *end;
	double value;

	errno = 0;
	value = text && *text ? strtod(text, &end) : 0;
	if (!text || !*text || errno || *end || !(value > 0) || value > 1e9)
		return -cli_fail("bad %s \"%s\": expected seconds above 0", what, text ? text : "");
	*ret = value;
	return 0;
}
