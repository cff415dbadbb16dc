/* SPDX-License-Identifier: MIT */
#ifndef VMSCOPE_CORE_UTF8_H
#define VMSCOPE_CORE_UTF8_H

#include <stddef.h>

/*
 * Copy len bytes of src to dst as valid UTF-8 without NULs: every byte that
 * does not start a well-formed sequence (and every NUL) becomes U+FFFD. dst
 * needs room for 3 * len + 1 bytes; the result is NUL-terminated. Returns its
 * length.
 */
size_t utf8_sanitize(char *dst, const char *src, size_t len);

#endif
