/* SPDX-License-Identifier: MIT */
/* Small helpers every subsystem uses: a growing array, the monotonic clock, UUIDs as text. */
#ifndef VMSCOPE_CORE_UTIL_H
#define VMSCOPE_CORE_UTIL_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/*
 * Make room for element number count (0-based) in an array that doubles as
 * it fills. Returns the array, perhaps moved; NULL when out of memory, the
 * old array then still valid and still the caller's.
 */
static inline void *array_grow(void *items, size_t *cap, size_t count, size_t elem_size)
{
	size_t grown;
	void *moved;

	if (count < *cap)
		return items;
	grown = *cap ? *cap * 2 : 64;
	if (grown > SIZE_MAX / elem_size)
		return NULL;
	moved = realloc(items, grown * elem_size);
	if (moved)
		*cap = grown;
	return moved;
}

/* qsort(3) that accepts an empty (NULL) array, which qsort itself must not be given. */
static inline void sort_array(void *base, size_t nr, size_t size,
			      int (*cmp)(const void *, const void *))
{
	if (nr > 1)
		qsort(base, nr, size, cmp);
}

/*
 * Whether process pid has ended: what vmscope leaves in a VM (an NBD export,
 * a dirty bitmap, a gdbstub) carries its pid, so a later run can tell a dead
 * owner's from a live one's.
 */
static inline int pid_is_gone(int pid)
{
	return pid > 0 && kill(pid, 0) && errno == ESRCH;
}

/* Milliseconds on the monotonic clock, for deadlines and rates. */
static inline long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline long long monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 16 bytes as a UUID's text, 8-4-4-4-12 hex digits. */
static inline void uuid_text(const uint8_t u[16], char out[40])
{
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

#endif
