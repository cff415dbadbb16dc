// SPDX-License-Identifier: MIT
/*
 * vmcoreinfo: the text note distribution kernels keep in RAM for crash tools
 * ("OSRELEASE=...\nSYMBOL(init_top_pgt)=ffffffff...\nNUMBER(phys_base)=...\n").
 * It is the quickest way in: it names the KASLR offset, the kernel's page
 * tables and the kallsyms tables. It is guest data, so it is only a start:
 * every value it gives is checked by what follows (kallsyms must decode to
 * the same addresses, the page tables must translate).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define VMCOREINFO_MAX 16384

struct vmcoreinfo_search {
	struct vms_vm *vm;
	char *text;
};

/* Printable lines of KEY=VALUE up to a NUL; a candidate needs the symbols we use. */
static int found_note(uint64_t gpa, void *ctx)
{
	struct vmcoreinfo_search *s = ctx;
	uint64_t avail = mem_map_avail(&s->vm->mem, gpa);
	size_t len = avail < VMCOREINFO_MAX ? (size_t)avail : VMCOREINFO_MAX, end;
	char *text = malloc(len + 1);

	if (!text || mem_map_read(&s->vm->mem, gpa, text, len)) {
		free(text);
		return 0;
	}
	for (end = 0; end < len && text[end] && (text[end] == '\n' || (text[end] >= 0x20 &&
								       text[end] < 0x7f));
	     end++)
		;
	text[end] = '\0';
	if (!strstr(text, "\nSYMBOL(init_top_pgt)=") || !strstr(text, "\nNUMBER(phys_base)=") ||
	    !strstr(text, "\nSYMBOL(kallsyms_names)=")) {
		free(text);
		return 0;
	}
	s->text = text;
	return 1;
}

int vmcoreinfo_find(struct vms_vm *vm, char **ret_text)
{
	struct vmcoreinfo_search s = { vm, NULL };
	int err = mem_map_scan(&vm->mem, "OSRELEASE=", 10, found_note, &s);

	if (err < 0)
		return vm_error(vm, err, "cannot scan guest RAM: %s", strerror(-err));
	if (!s.text)
		return vm_error(vm, -ENOENT,
				"no usable vmcoreinfo in guest RAM (a Linux kernel before 6.0, or "
				"one built without CONFIG_CRASH_CORE or CONFIG_KALLSYMS)");
	*ret_text = s.text;
	return 0;
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
