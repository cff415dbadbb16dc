// SPDX-License-Identifier: MIT
/*
 * After a walk that ended in a cycle missing its head (list.h notices it some
 * way into the second round), the entries read repeat: where the first
 * repeat is, so that a partial view lists each entry once. n log n.
 */
#include <stdlib.h>

#include "os/linux/list.h"

struct seen {
	uint64_t addr;
	size_t index;
};

static int by_addr(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

size_t list_first_repeat(const uint64_t *addrs, size_t n)
{
	struct seen *seen = malloc(n * sizeof(*seen) + 1);
	size_t cut = n;

	if (!seen)
		return n;
	for (size_t i = 0; i < n; i++)
		seen[i] = (struct seen){ addrs[i], i };
	qsort(seen, n, sizeof(*seen), by_addr);
	for (size_t i = 1; i < n; i++)
		if (seen[i].addr == seen[i - 1].addr && seen[i].index < cut)
			cut = seen[i].index;
	free(seen);
	return cut;
}
