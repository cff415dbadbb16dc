/* SPDX-License-Identifier: MIT */
/* Small helpers every subsystem uses: a growing array and the monotonic clock. */
#ifndef VMSCOPE_CORE_UTIL_H
#define VMSCOPE_CORE_UTIL_H

#include <stdint.h>
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

/* Milliseconds on the monotonic clock, for deadlines and rates. */
static inline long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
