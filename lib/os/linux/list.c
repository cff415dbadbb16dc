// SPDX-License-Identifier: MIT
/*
 * After a walk that ended in a cycle missing its head (list.h notices it some
 * way into the second round), the entries read repeat: where the first
 * repeat is, so that a partial view lists each entry once. n log n.
 */
#include <stdlib.h>

#include "core/util.h"
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

int list_collect(struct linux_kernel *k, uint64_t head, uint64_t member_offset, uint64_t max,
		 uint64_t **ret, size_t *ret_n)
{
	uint64_t node, *addrs = NULL;
	size_t n = 0, cap = 0;
	struct list_walk w;
	int more;

	if (list_walk_start(&w, k, head, max))
		return -EFAULT;
	while ((more = list_walk_next(&w, &node)) > 0) {
		uint64_t *grown = array_grow(addrs, &cap, n, sizeof(*addrs));

		if (!grown) {
			free(addrs);
			return -ENOMEM;
		}
		addrs = grown;
		addrs[n++] = node - member_offset;
	}
	if (more == -ELOOP)
		n = list_first_repeat(addrs, n);
	*ret = addrs;
	*ret_n = n;
	return more < 0 ? more : 0;
}
