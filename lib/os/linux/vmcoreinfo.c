// SPDX-License-Identifier: MIT
/*
 * vmcoreinfo: the text note distribution kernels keep in RAM for crash tools
 * ("OSRELEASE=...\nSYMBOL(init_top_pgt)=ffffffff...\nNUMBER(phys_base)=...\n").
 * It is the quickest way in: it names the KASLR offset, the kernel's page
 * tables and (6.0 to 6.x) the kallsyms tables. It is guest data, and any
 * process can leave look-alikes in free pages, so it is only a start: every
 * candidate is tried in turn (a bounded number), and discover.c keeps one
 * only when the kernel it describes checks out and points back at it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define VMCOREINFO_MAX	 16384
#define MAX_NOTES_TRIED	 16
#define MAX_NOTES_SEEN	 100000

struct vmcoreinfo_search {
	struct vms_vm *vm;
	vmcoreinfo_fn fn;
	void *ctx;
	unsigned int tried, seen;
};

int vmcoreinfo_at(struct vms_vm *vm, uint64_t gpa, char **ret_text)
{
	uint64_t avail = mem_map_avail(&vm->mem, gpa);
	size_t len = avail < VMCOREINFO_MAX ? (size_t)avail : VMCOREINFO_MAX, end;
	char *text;

	if (!len || !(text = malloc(len + 1)))
		return -ENOMEM;
	if (mem_map_read(&vm->mem, gpa, text, len)) {
		free(text);
		return -EFAULT;
	}
	/* Printable lines of KEY=VALUE up to a NUL; a candidate needs the entries we use. */
	for (end = 0; end < len && text[end] && (text[end] == '\n' || (text[end] >= 0x20 &&
								       text[end] < 0x7f));
	     end++)
		;
	text[end] = '\0';
	if (strncmp(text, "OSRELEASE=", 10) || !strstr(text, "\nSYMBOL(init_top_pgt)=") ||
	    !strstr(text, "\nNUMBER(phys_base)=")) {
		free(text);
		return -ENOENT;
	}
	*ret_text = text;
	return 0;
}

static int found_note(uint64_t gpa, void *ctx)
{
	struct vmcoreinfo_search *s = ctx;
	char *text;
	int ret;

	/* Bounded both ways: notes looked at, and notes a guest can make us try. */
	if (++s->seen > MAX_NOTES_SEEN || s->tried == MAX_NOTES_TRIED)
		return -ELOOP;
	if (vmcoreinfo_at(s->vm, gpa, &text))
		return 0;
	s->tried++;
	ret = s->fn(text, gpa, s->ctx);
	free(text);
	return ret;
}

int vmcoreinfo_each(struct vms_vm *vm, vmcoreinfo_fn fn, void *ctx)
{
	struct vmcoreinfo_search s = { vm, fn, ctx, 0, 0 };
	int err = mem_map_scan(&vm->mem, "OSRELEASE=", 10, found_note, &s);

	if (err == -ELOOP || (!err && s.tried))
		return -ENOENT;
	return err;
}

/* The value after "KEY=" on its own line, or NULL. */
static const char *lookup(const char *text, const char *key)
{
	size_t key_len = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, key_len) && p[key_len] == '=')
			return p + key_len + 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

int vmcoreinfo_symbol(const char *text, const char *name, uint64_t *ret)
{
	char key[128];
	const char *v;
	char *end;

	snprintf(key, sizeof(key), "SYMBOL(%s)", name);
	v = lookup(text, key);
	if (!v)
		return -ENOENT;
	*ret = strtoull(v, &end, 16);
	return (*end == '\n' || *end == '\0') && end != v ? 0 : -EINVAL;
}

/* NUMBER(...) values are decimal (possibly negative) or 0x-hex. */
int vmcoreinfo_number(const char *text, const char *name, int64_t *ret)
{
	char key[128];
	const char *v;
	char *end;

	snprintf(key, sizeof(key), "NUMBER(%s)", name);
	v = lookup(text, key);
	if (!v)
		return -ENOENT;
	*ret = strtoll(v, &end, 0);
	return (*end == '\n' || *end == '\0') && end != v ? 0 : -EINVAL;
}

int vmcoreinfo_string(const char *text, const char *key, char *buf, size_t len)
{
	const char *v = lookup(text, key);

	if (!v)
		return -ENOENT;
	snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
	return 0;
}
