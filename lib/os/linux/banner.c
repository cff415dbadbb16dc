// SPDX-License-Identifier: MIT
/*
 * Find the Linux banner ("Linux version 6.1.0-56-cloud-amd64 (...) #1 SMP ...\n")
 * in guest RAM.
 *
 * RAM holds several copies: the kernel's own linux_banner, copies made when
 * something read /proc/version, and half-overwritten or compressed fragments.
 * A candidate must have the banner's exact shape (release, "(", a "#N" build,
 * printable text, newline, NUL). Among valid candidates the text seen most
 * often wins, ties going to the lowest address; the kernel's copy and the one
 * in its init_uts_ns-derived buffers agree, stray fragments do not. A guest
 * could still plant copies, so when the kernel can be discovered (kernel.c)
 * the banner is read where the kernel's own symbol linux_banner says, and the
 * scan is only the fallback for kernels discovery does not understand.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vmscope/mem.h>

#include "core/internal.h"
#include "os/driver.h"
#include "os/linux/linux.h"

#define BANNER_PREFIX  "Linux version "
#define MAX_CANDIDATES 64
#define MAX_RELEASE    64

struct candidate {
	char text[VMS_BANNER_MAX];
	uint64_t gpa;
	unsigned int votes;
};

struct banner_search {
	struct vms_vm *vm;
	struct candidate cand[MAX_CANDIDATES];
	size_t nr_cand;
	unsigned int seen;
};

static int release_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("._+~-", c) != NULL;
}

/* Return the length of a well-formed banner at the start of buf (without '\n'), or 0. */
size_t linux_banner_length(const char *buf, size_t len)
{
	size_t prefix = strlen(BANNER_PREFIX), i = prefix, nl;
	const char *build;

	if (len < prefix || memcmp(buf, BANNER_PREFIX, prefix))
		return 0;
	while (i < len && i - prefix <= MAX_RELEASE && release_char(buf[i]) && buf[i])
		i++;
	if (i == prefix || i - prefix > MAX_RELEASE || i + 2 > len || memcmp(buf + i, " (", 2))
		return 0;
	for (nl = i; nl < len && buf[nl] != '\n'; nl++)
		if (buf[nl] < 0x20 || buf[nl] > 0x7e)
			return 0;
	if (nl + 1 >= len || buf[nl + 1] != '\0')
		return 0;
	build = memmem(buf + i, nl - i, " #", 2);
	if (!build || build + 2 >= buf + nl || build[2] < '0' || build[2] > '9')
		return 0;
	return nl;
}

static void vote(struct banner_search *s, const char *text, size_t len, uint64_t gpa)
{
	for (size_t i = 0; i < s->nr_cand; i++) {
		if (strlen(s->cand[i].text) == len && !memcmp(s->cand[i].text, text, len)) {
			s->cand[i].votes++;
			return;
		}
	}
	if (s->nr_cand == MAX_CANDIDATES)
		return;
	memcpy(s->cand[s->nr_cand].text, text, len);
	s->cand[s->nr_cand].text[len] = '\0';
	s->cand[s->nr_cand].gpa = gpa;
	s->cand[s->nr_cand].votes = 1;
	s->nr_cand++;
}

static int found_prefix(uint64_t gpa, void *ctx)
{
	struct banner_search *s = ctx;
	char buf[VMS_BANNER_MAX + 1];
	uint64_t avail = mem_map_avail(&s->vm->mem, gpa);
	size_t want = avail < sizeof(buf) ? (size_t)avail : sizeof(buf), len = 0;

	/* Near the end of RAM, read what there is. */
	if (!mem_map_read(&s->vm->mem, gpa, buf, want))
		len = linux_banner_length(buf, want);
	if (len && len < VMS_BANNER_MAX)
		vote(s, buf, len, gpa);
	/* Bound the work a guest can cause by filling RAM with prefixes. */
	return ++s->seen >= 4096;
}

static void fill_ident(const struct candidate *best, struct vms_os_ident *ret)
{
	const char *release = best->text + strlen(BANNER_PREFIX);
	size_t release_len = strcspn(release, " ");

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->os, sizeof(ret->os), "linux");
	snprintf(ret->release, sizeof(ret->release), "%.*s", (int)release_len, release);
	snprintf(ret->banner, sizeof(ret->banner), "%s", best->text);
	ret->banner_gpa = best->gpa;
}

/* The banner at the kernel's own linux_banner symbol. */
static int banner_from_symbol(struct vms_vm *vm, struct vms_os_ident *ret)
{
	struct linux_kernel *k;
	struct candidate c = { 0 };
	struct vms_translation t;
	uint64_t addr;
	size_t len;

	if (linux_kernel_get(vm, &k))
		return -ENOENT;
	addr = kallsyms_lookup(&k->ksyms, "linux_banner");
	if (!addr || kread_string(k, addr, c.text, sizeof(c.text)) ||
	    vms_translate(vm, k->root, addr, &t))
		return -ENOENT;
	len = strcspn(c.text, "\n");
	c.text[len] = '\0';
	if (strncmp(c.text, BANNER_PREFIX, strlen(BANNER_PREFIX)))
		return -ENOENT;
	c.gpa = t.gpa;
	fill_ident(&c, ret);
	return 0;
}

static int linux_identify(struct vms_vm *vm, struct vms_os_ident *ret)
{
	struct banner_search *s;
	const struct candidate *best = NULL;
	int err;

	if (!banner_from_symbol(vm, ret))
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return vm_error(vm, -ENOMEM, "out of memory");
	s->vm = vm;
	err = mem_map_scan(&vm->mem, BANNER_PREFIX, strlen(BANNER_PREFIX), found_prefix, s);
	if (err < 0) {
		free(s);
		return vm_error(vm, err, "cannot scan guest RAM: %s", strerror(-err));
	}
	for (size_t i = 0; i < s->nr_cand; i++)
		if (!best || s->cand[i].votes > best->votes)
			best = &s->cand[i];
	if (best)
		fill_ident(best, ret);
	free(s);
	return best ? 0 : -ENOENT;
}

const struct os_driver linux_driver = {
	.name = "linux",
	.identify = linux_identify,
};
