/* SPDX-License-Identifier: MIT */
#ifndef VMSCOPE_ACCESS_RAMFILE_H
#define VMSCOPE_ACCESS_RAMFILE_H

#include <stddef.h>
#include <stdint.h>

struct ram_file;

/* Open and map a memory-backend file of at least size bytes; why on failure in errbuf. */
int ram_file_open(const char *path, uint64_t size, struct ram_file **ret_file, char *errbuf,
		  size_t errbuf_len);
void ram_file_close(struct ram_file *file);

/* Copy len bytes at offset; never makes the file allocate memory. */
int ram_file_read(struct ram_file *file, uint64_t offset, void *buf, size_t len);

/* The mapped 4 KiB page at offset if it exists in the file (reading it allocates nothing), or NULL. */
const uint8_t *ram_file_page(struct ram_file *file, uint64_t offset);

/* What was learned about which pages exist may be stale (the VM ran). */
void ram_file_forget(struct ram_file *file);

#endif
