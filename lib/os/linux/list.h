/* SPDX-License-Identifier: MIT */
/*
 * Walking a guest's circular list_head lists safely. The guest controls every
 * pointer, so a walk must end even if the list never comes back to its head:
 * Brent's cycle detection notices a repeated node after at most twice the
 * list's length in steps, with no memory beyond two words, and a hard cap
 * bounds a list that is merely absurdly long.
 */
#ifndef VMSCOPE_OS_LINUX_LIST_H
#define VMSCOPE_OS_LINUX_LIST_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "os/linux/linux.h"

struct list_walk {
	struct linux_kernel *k;
	uint64_t head, node;
	uint64_t saved; /* Brent: the node we compare against */
	uint64_t power, steps_since_save, total, max;
};

static inline int list_walk_start(struct list_walk *w, struct linux_kernel *k, uint64_t head,
				  uint64_t max)
{
	*w = (struct list_walk){ .k = k, .head = head, .power = 1, .max = max };
	if (kread_u64(k, head, &w->node))
		return -EFAULT;
	w->saved = w->node;
	return 0;
}

/*
 * 1 with *ret_node the next entry's list_head, 0 at the end, -ELOOP on a
 * cycle that misses the head or more than max entries, -EFAULT when a link
 * is unreadable.
 */
static inline int list_walk_next(struct list_walk *w, uint64_t *ret_node)
{
	uint64_t current = w->node;

	if (current == w->head)
		return 0;
	if (++w->total > w->max)
		return -ELOOP;
	if (kread_u64(w->k, current, &w->node))
		return -EFAULT;
	if (w->node == w->saved && w->node != w->head)
		return -ELOOP;
	if (++w->steps_since_save == w->power) {
		w->saved = w->node;
		w->power *= 2;
		w->steps_since_save = 0;
	}
	*ret_node = current;
	return 1;
}

/* The index of the first entry of addrs[] that already came before (n if none). */
size_t list_first_repeat(const uint64_t *addrs, size_t n);

/*
 * The entries of the list at head (their list_head at member_offset inside
 * each), each once, at most max: *ret (to free) and *ret_n, also when the
 * list breaks (-EFAULT) or does not end (-ELOOP), which is then returned;
 * -EFAULT with nothing when head itself is unreadable, -ENOMEM.
 */
int list_collect(struct linux_kernel *k, uint64_t head, uint64_t member_offset, uint64_t max,
		 uint64_t **ret, size_t *ret_n);

#endif
