// SPDX-License-Identifier: MIT
/*
 * The per-build discovery cache: what a cold discovery learned about one
 * kernel build (its banner, the kernel-image offsets of linux_banner and
 * init_top_pgt, every symbol relative to _stext, the BTF blob), kept in one
 * file per build under the cache directory, named by a hash of the banner.
 *
 * A warm attach needs no scan of RAM: the kernel image is placed at a 2 MiB
 * boundary, so probing each boundary for the cached banner at its cached
 * offset finds the physical base; init_top_pgt follows by the same offset as
 * in every boot of this build; the kernel's own page tables then tell where
 * _stext is mapped, which is the virtual KASLR slide. Reading linux_banner
 * through those tables must give the banner back, or the cache is not used.
 * Files are checked (magic, version, checksum, bounds) before use; a bad or
 * foreign one is ignored, never trusted.
 *
 * The banner only names a build, and any guest can copy a stock banner into
 * a kernel of its own: so an entry is bound to what it describes. It holds
 * the SHA-256 of the kallsyms names and offsets as they lie in RAM, and the
 * BTF itself; a VM uses it only if its own RAM holds the same bytes there.
 * Files are written to a fresh name (O_EXCL, O_NOFOLLOW) and renamed into
 * place, so a link planted in a shared cache directory is not followed.
 */
#include <bpf/btf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define CACHE_MAGIC	 "VMSKCACHE3"
#define CACHE_SUFFIX	 ".kcache"
#define MAX_CACHE_FILES	 64
#define MAX_CACHE_BYTES	 (128u << 20)
#define KERNEL_ALIGN	 (2ull << 20)
#define ABSOLUTE_FLAG	 0x80

struct cache_header {
	char magic[10];
	uint16_t banner_len;
	uint32_t nr_syms, names_bytes, btf_bytes;
	uint64_t banner_off, top_pgt_off, checksum;
	uint64_t names_off, names_len, offsets_off, offsets_len; /* from _stext */
	uint8_t tables_sha256[32];
	char release[65];
	char banner[VMS_BANNER_MAX];
};

struct cache_sym {
	uint32_t name_off;
	uint8_t type, flags;
	uint16_t pad;
	int64_t value; /* addr - _stext, or the address itself with ABSOLUTE_FLAG */
};

/* FNV-1a over 8-byte words (then the tail): a checksum against damage, not an attacker. */
static uint64_t fnv(const void *data, size_t len, uint64_t h)
{
	const uint8_t *p = data;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 1099511628211ull;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void cache_path(const char *dir, const char *banner, char *out, size_t len)
{
	snprintf(out, len, "%s/%016llx%s", dir,
		 (unsigned long long)fnv(banner, strlen(banner), 1469598103934665603ull),
		 CACHE_SUFFIX);
}

static int mkdirs(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(path, 0700);
		*p = '/';
	}
	return mkdir(path, 0700) && errno != EEXIST ? -errno : 0;
}

#define MAX_TABLE_BYTES (64u << 20)

/* SHA-256 of the kernel's names and offsets tables as they are in RAM. */
static int hash_tables(struct linux_kernel *k, uint64_t names_va, uint64_t names_len,
		       uint64_t offsets_va, uint64_t offsets_len, uint8_t out[32])
{
	uint64_t spans[2][2] = { { names_va, names_len }, { offsets_va, offsets_len } };
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *buf = NULL;
	unsigned int md_len = 0;
	int err = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) ? 0 : -ENOMEM;

	for (int i = 0; i < 2 && !err; i++) {
		uint64_t len = spans[i][1];

		if (!len || len > MAX_TABLE_BYTES || !(buf = malloc(len)))
			err = -EPROTO;
		else if (kread(k, spans[i][0], buf, len) || !EVP_DigestUpdate(md, buf, len))
			err = -EFAULT;
		free(buf);
		buf = NULL;
	}
	if (!err && (!EVP_DigestFinal_ex(md, out, &md_len) || md_len != 32))
		err = -EPROTO;
	EVP_MD_CTX_free(md);
	return err;
}

/* -- writing -------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fill_symbols(const struct linux_kernel *k, uint64_t stext, struct cache_sym *syms)
{
	for (size_t i = 0; i < k->ksyms.nr_syms; i++) {
		const struct ksym *s = &k->ksyms.syms[i];

		syms[i].name_off = (uint32_t)(s->name - k->ksyms.names);
		syms[i].type = (uint8_t)s->type;
		syms[i].flags = s->addr < LINUX_IMAGE_LOW ? ABSOLUTE_FLAG : 0;
		syms[i].value = syms[i].flags ? (int64_t)s->addr : (int64_t)(s->addr - stext);
	}
	return 0;
}

void linux_cache_store(struct linux_kernel *k, const char *dir, const char *banner)
{
	uint64_t stext = kallsyms_lookup(&k->ksyms, "_stext");
	uint64_t linux_banner = kallsyms_lookup(&k->ksyms, "linux_banner");
	uint64_t top_pgt = kallsyms_lookup(&k->ksyms, "init_top_pgt");
	const struct ksym *last = &k->ksyms.syms[k->ksyms.nr_syms - 1];
	struct cache_header h = { .magic = CACHE_MAGIC };
	struct cache_sym *syms = calloc(k->ksyms.nr_syms, sizeof(*syms));
	char path[4096], tmp[4200];
	const void *btf;
	uint32_t btf_bytes = 0;
	int fd;

	btf = btf__raw_data(k->btf, &btf_bytes);
	if (!syms || !dir || !*dir || !stext || !linux_banner || !top_pgt || !btf || mkdirs(dir)) {
		free(syms);
		return;
	}
	h.banner_len = (uint16_t)strlen(banner);
	snprintf(h.banner, sizeof(h.banner), "%s", banner);
	snprintf(h.release, sizeof(h.release), "%s", k->release);
	h.nr_syms = (uint32_t)k->ksyms.nr_syms;
	h.names_bytes = (uint32_t)(last->name + strlen(last->name) + 1 - k->ksyms.names);
	h.btf_bytes = btf_bytes;
	h.banner_off = linux_banner - stext;
	h.top_pgt_off = top_pgt - stext;
	h.names_off = k->names_va - stext;
	h.names_len = k->names_len;
	h.offsets_off = k->offsets_va - stext;
	h.offsets_len = k->offsets_len;
	if (hash_tables(k, k->names_va, k->names_len, k->offsets_va, k->offsets_len,
			h.tables_sha256)) {
		free(syms);
		return;
	}
	fill_symbols(k, stext, syms);
	h.checksum = fnv(syms, h.nr_syms * sizeof(*syms),
			 fnv(k->ksyms.names, h.names_bytes, fnv(btf, btf_bytes, 1)));
	cache_path(dir, banner, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && !write_all(fd, &h, sizeof(h)) &&
	    !write_all(fd, syms, h.nr_syms * sizeof(*syms)) &&
	    !write_all(fd, k->ksyms.names, h.names_bytes) && !write_all(fd, btf, btf_bytes) &&
	    !close(fd)) {
		rename(tmp, path); /* atomic: readers see the old file or the whole new one */
	} else {
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	}
	free(syms);
}

/* -- reading -------------------------------------------------------------- */

struct cached_build {
	struct cache_header h;
	uint8_t *map;	     /* the whole file, mapped */
	size_t map_len;
	const uint8_t *body; /* symbols, names, BTF */
};

static int read_header(const char *path, struct cache_header *h)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -errno;
	ok = read(fd, h, sizeof(*h)) == (ssize_t)sizeof(*h) &&
	     !memcmp(h->magic, CACHE_MAGIC, sizeof(h->magic)) && h->banner_len > 14 &&
	     h->banner_len < VMS_BANNER_MAX && !h->banner[h->banner_len] && h->nr_syms &&
	     (uint64_t)h->nr_syms * sizeof(struct cache_sym) + h->names_bytes + h->btf_bytes <=
		     MAX_CACHE_BYTES;
	close(fd);
	return ok ? 0 : -EPROTO;
}

static int read_body(const char *path, struct cached_build *b)
{
	size_t len = (size_t)b->h.nr_syms * sizeof(struct cache_sym) + b->h.names_bytes +
		     b->h.btf_bytes;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const uint8_t *names;
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || (uint64_t)st.st_size != sizeof(b->h) + len) {
		close(fd);
		return -EPROTO;
	}
	b->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (b->map == MAP_FAILED) {
		b->map = NULL;
		return -EIO;
	}
	b->map_len = (size_t)st.st_size;
	b->body = b->map + sizeof(b->h);
	names = b->body + (size_t)b->h.nr_syms * sizeof(struct cache_sym);
	if (fnv(b->body, (size_t)b->h.nr_syms * sizeof(struct cache_sym),
		fnv(names, b->h.names_bytes, fnv(names + b->h.names_bytes, b->h.btf_bytes, 1))) !=
		    b->h.checksum ||
	    !b->h.names_bytes || names[b->h.names_bytes - 1] != '\0')
		return -EPROTO;
	return 0;
}

/* Is the cached banner in RAM at a 2 MiB boundary plus its offset? */
static int find_image(struct vms_vm *vm, const struct cache_header *h, uint64_t *ret_phys)
{
	char text[VMS_BANNER_MAX];

	for (size_t s = 0; s < vm->mem.nr_segs; s++) {
		const struct mem_segment *seg = &vm->mem.segs[s];
		uint64_t p = (seg->gpa + KERNEL_ALIGN - 1) & ~(KERNEL_ALIGN - 1);

		for (; p + h->banner_off + h->banner_len < seg->gpa + seg->size; p += KERNEL_ALIGN) {
			if (mem_map_read(&vm->mem, p + h->banner_off, text, h->banner_len) ||
			    memcmp(text, h->banner, h->banner_len))
				continue;
			*ret_phys = p;
			return 0;
		}
	}
	return -ENOENT;
}

/* Where the kernel's own tables map _stext: the virtual KASLR placement. */
static int place_virtually(struct linux_kernel *k, uint64_t phys, const struct cache_header *h,
			   uint64_t *ret_stext)
{
	int user_levels = k->vm->paging_levels;
	char text[VMS_BANNER_MAX];

	for (int levels = 4; levels <= 5; levels++) {
		uint64_t va;

		vms_vm_set_paging_levels(k->vm, levels);
		if (linux_image_va(k, phys, &va))
			continue;
		if (!kread(k, va + h->banner_off, text, h->banner_len) &&
		    !memcmp(text, h->banner, h->banner_len)) {
			k->levels = levels;
			*ret_stext = va;
			break;
		}
	}
	vms_vm_set_paging_levels(k->vm, user_levels);
	if (!k->levels)
		return -ENOENT;
	if (!user_levels)
		k->vm->detected_levels = k->levels;
	return 0;
}

static int adopt(struct linux_kernel *k, struct cached_build *b, uint64_t stext)
{
	const struct cache_sym *syms = (const struct cache_sym *)b->body;
	const char *names = (const char *)(syms + b->h.nr_syms);
	struct kallsyms *ks = &k->ksyms;

	ks->names = malloc(b->h.names_bytes);
	ks->syms = calloc(b->h.nr_syms, sizeof(*ks->syms));
	if (!ks->names || !ks->syms)
		return -ENOMEM;
	memcpy(ks->names, names, b->h.names_bytes);
	ks->nr_syms = b->h.nr_syms;
	for (uint32_t i = 0; i < b->h.nr_syms; i++) {
		if (syms[i].name_off >= b->h.names_bytes)
			return -EPROTO;
		ks->syms[i].name = ks->names + syms[i].name_off;
		ks->syms[i].type = (char)syms[i].type;
		ks->syms[i].addr = syms[i].flags & ABSOLUTE_FLAG ? (uint64_t)syms[i].value
								  : stext + (uint64_t)syms[i].value;
	}
	if (kallsyms_index(ks))
		return -ENOMEM;
	k->btf = btf__new(names + b->h.names_bytes, b->h.btf_bytes);
	if (!k->btf)
		return -EPROTO;
	snprintf(k->release, sizeof(k->release), "%s", b->h.release);
	k->kaslr_offset = stext - (LINUX_IMAGE_LOW + 0x1000000); /* _stext's link address */
	k->from_cache = 1;
	return 0;
}

/* Does this VM's RAM hold the tables and the BTF the entry was made from? */
static int check_content(struct linux_kernel *k, const struct cached_build *b, uint64_t stext)
{
	const uint8_t *btf = b->body + (size_t)b->h.nr_syms * sizeof(struct cache_sym) +
			     b->h.names_bytes;
	uint64_t start_btf = kallsyms_lookup(&k->ksyms, "__start_BTF");
	uint8_t sha[32], *ram;
	int same;

	if (hash_tables(k, stext + b->h.names_off, b->h.names_len, stext + b->h.offsets_off,
			b->h.offsets_len, sha) ||
	    memcmp(sha, b->h.tables_sha256, sizeof(sha)))
		return -EPROTO;
	if (!start_btf || !(ram = malloc(b->h.btf_bytes)))
		return -EPROTO;
	same = !kread(k, start_btf, ram, b->h.btf_bytes) && !memcmp(ram, btf, b->h.btf_bytes);
	free(ram);
	return same ? 0 : -EPROTO;
}

static int try_build(struct linux_kernel *k, const char *path)
{
	struct cached_build b = { 0 };
	uint64_t phys, stext;
	int err = read_header(path, &b.h);

	if (!err)
		err = find_image(k->vm, &b.h, &phys);
	if (!err) {
		k->root = phys + b.h.top_pgt_off;
		err = place_virtually(k, phys, &b.h, &stext);
	}
	if (!err)
		err = read_body(path, &b);
	if (!err)
		err = adopt(k, &b, stext);
	if (!err)
		err = check_content(k, &b, stext);
	if (!err)
		err = linux_check_cpu_mapping(k);
	if (b.map)
		munmap(b.map, b.map_len);
	if (err) {
		k->levels = 0;
		k->from_cache = 0;
		kallsyms_release(&k->ksyms);
		btf__free(k->btf);
		k->btf = NULL;
	}
	return err;
}

int linux_cache_load(struct linux_kernel *k, const char *dir)
{
	struct dirent *e;
	DIR *d;
	int tried = 0, err = -ENOENT;

	if (!dir || !*dir || !(d = opendir(dir)))
		return -ENOENT;
	while (err && tried < MAX_CACHE_FILES && (e = readdir(d))) {
		char path[4096];
		size_t len = strlen(e->d_name);

		if (len <= strlen(CACHE_SUFFIX) ||
		    strcmp(e->d_name + len - strlen(CACHE_SUFFIX), CACHE_SUFFIX))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		tried++;
		err = try_build(k, path);
	}
	closedir(d);
	return err;
}
