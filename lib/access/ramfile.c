// SPDX-License-Identifier: MIT
/*
 * Reading a memory-backend file (e.g. /dev/shm/NAME, hugetlbfs) without
 * costing the host memory.
 *
 * Guest RAM that the guest never touched is a hole in the file. Faulting a
 * hole through a mapping, even only to read it and even with MAP_PRIVATE,
 * makes tmpfs allocate the page for good: reading all of an idle 64 GiB
 * guest would pin 64 GiB. pread() of a hole returns zeros and allocates
 * nothing. So we read pages that exist through the mapping (zero copy, at
 * memory speed) and everything else with pread(). Which pages exist is
 * learned with mincore() per 2 MiB block on first use and kept until
 * ram_file_forget(): a page the guest fills later is still read correctly
 * (by pread), and a page freed later is at worst faulted in once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/ramfile.h"

#define PAGE_SHIFT  12
#define PAGE_BYTES  (1ull << PAGE_SHIFT)
#define BLOCK_SHIFT 21 /* residency is learned 2 MiB at a time */
#define BLOCK_PAGES (1u << (BLOCK_SHIFT - PAGE_SHIFT))

struct ram_file {
	int fd;
	const uint8_t *base;
	uint64_t size;
	uint64_t *resident; /* bit per page: exists in the file */
	uint64_t *learned;  /* bit per block: resident bits are current */
};

static int test_bit(const uint64_t *bits, uint64_t n)
{
	return (bits[n / 64] >> (n % 64)) & 1;
}

static void put_bit(uint64_t *bits, uint64_t n, int value)
{
	if (value)
		bits[n / 64] |= 1ull << (n % 64);
	else
		bits[n / 64] &= ~(1ull << (n % 64));
}

int ram_file_open(const char *path, uint64_t size, struct ram_file **ret_file, char *errbuf,
		  size_t errbuf_len)
{
	uint64_t pages = (size + PAGE_BYTES - 1) >> PAGE_SHIFT;
	uint64_t blocks = (pages + BLOCK_PAGES - 1) / BLOCK_PAGES;
	struct ram_file *file = calloc(1, sizeof(*file));
	struct stat st;
	void *base;
	int err;

	if (!file)
		return -ENOMEM;
	/* The path is the peer's word: a FIFO there must not hold the open (S_ISREG below). */
	file->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (file->fd < 0 || fstat(file->fd, &st)) {
		err = -errno;
		snprintf(errbuf, errbuf_len, "%s: %s", path, strerror(-err));
		goto out_close;
	}
	/* A file shorter than the backend would fault (SIGBUS) past its end. */
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < size) {
		err = -EINVAL;
		snprintf(errbuf, errbuf_len, "%s: not a %llu-byte RAM file", path,
			 (unsigned long long)size);
		goto out_close;
	}
	base = mmap(NULL, size, PROT_READ, MAP_SHARED, file->fd, 0);
	if (base == MAP_FAILED) {
		err = -errno;
		snprintf(errbuf, errbuf_len, "%s: mmap: %s", path, strerror(-err));
		goto out_close;
	}
	file->base = base;
	file->size = size;
	file->resident = calloc((pages + 63) / 64, sizeof(uint64_t));
	file->learned = calloc((blocks + 63) / 64, sizeof(uint64_t));
	if (!file->resident || !file->learned) {
		ram_file_close(file);
		return -ENOMEM;
	}
	*ret_file = file;
	return 0;
out_close:
	if (file->fd >= 0)
		close(file->fd);
	free(file);
	return err;
}

void ram_file_close(struct ram_file *file)
{
	if (!file)
		return;
	if (file->base)
		munmap((void *)file->base, file->size);
	close(file->fd);
	free(file->resident);
	free(file->learned);
	free(file);
}

void ram_file_forget(struct ram_file *file)
{
	uint64_t blocks = (((file->size + PAGE_BYTES - 1) >> PAGE_SHIFT) + BLOCK_PAGES - 1) /
			  BLOCK_PAGES;

	memset(file->learned, 0, (blocks + 63) / 64 * sizeof(uint64_t));
}

/* Ask the kernel which pages of one block exist; on failure, trust none. */
static void learn_block(struct ram_file *file, uint64_t block)
{
	uint64_t start = block << BLOCK_SHIFT, first_page = start >> PAGE_SHIFT;
	uint64_t len = file->size - start < (1ull << BLOCK_SHIFT) ? file->size - start
								   : (1ull << BLOCK_SHIFT);
	unsigned char vec[BLOCK_PAGES];
	uint64_t pages = (len + PAGE_BYTES - 1) >> PAGE_SHIFT;

	if (mincore((void *)(file->base + start), len, vec))
		memset(vec, 0, sizeof(vec));
	for (uint64_t i = 0; i < pages; i++)
		put_bit(file->resident, first_page + i, vec[i] & 1);
	put_bit(file->learned, block, 1);
}

static int page_exists(struct ram_file *file, uint64_t page)
{
	uint64_t block = page / BLOCK_PAGES;

	if (!test_bit(file->learned, block))
		learn_block(file, block);
	return test_bit(file->resident, page);
}

const uint8_t *ram_file_page(struct ram_file *file, uint64_t offset)
{
	if (offset & (PAGE_BYTES - 1) || offset >= file->size)
		return NULL;
	return page_exists(file, offset >> PAGE_SHIFT) ? file->base + offset : NULL;
}

static int pread_all(int fd, uint8_t *buf, size_t len, uint64_t offset)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

int ram_file_read(struct ram_file *file, uint64_t offset, void *buf, size_t len)
{
	uint8_t *out = buf;

	if (offset > file->size || len > file->size - offset)
		return -EFAULT;
	/* The common case: a small read inside one page that exists. */
	if (len <= PAGE_BYTES - (offset & (PAGE_BYTES - 1)) &&
	    page_exists(file, offset >> PAGE_SHIFT)) {
		memcpy(out, file->base + offset, len);
		return 0;
	}
	while (len) {
		int exists = page_exists(file, offset >> PAGE_SHIFT);
		size_t run = PAGE_BYTES - (offset & (PAGE_BYTES - 1));
		int err = 0;

		/* Extend the run over following pages in the same state. */
		while (run < len && page_exists(file, (offset + run) >> PAGE_SHIFT) == exists)
			run += PAGE_BYTES;
		if (run > len)
			run = len;
		if (exists)
			memcpy(out, file->base + offset, run);
		else
			err = pread_all(file->fd, out, run, offset);
		if (err)
			return err;
		out += run;
		offset += run;
		len -= run;
	}
	return 0;
}
