// SPDX-License-Identifier: MIT
/*
 * Guest strings (command names, paths, arguments) are arbitrary bytes, while
 * JSON wants UTF-8. We keep every valid sequence and replace each bad byte,
 * following the well-formed byte sequences table of the Unicode standard
 * (no overlongs, no surrogates, nothing above U+10FFFF).
 */
#include <stdint.h>
#include <string.h>

#include "core/utf8.h"

static const char replacement[] = "\xef\xbf\xbd";

/* Length of the well-formed sequence at s (at most len bytes), or 0. */
static size_t sequence_length(const uint8_t *s, size_t len)
{
	uint8_t lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (s[0] >= 0x01 && s[0] <= 0x7f)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return 0;
	if (len < need)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

size_t utf8_sanitize(char *dst, const char *src, size_t len)
{
	const uint8_t *s = (const uint8_t *)src;
	size_t out = 0, i = 0;

	while (i < len) {
		size_t n = sequence_length(s + i, len - i);

		if (n) {
			memcpy(dst + out, s + i, n);
			out += n;
			i += n;
		} else {
			memcpy(dst + out, replacement, 3);
			out += 3;
			i++;
		}
	}
	dst[out] = '\0';
	return out;
}
