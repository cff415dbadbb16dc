// SPDX-License-Identifier: MIT
/*
 * A frame: a 64-byte header, then one zstd frame of records.
 *
 *   magic:4 stored_len:4 raw_len:4 count:4 min_ns:8 max_ns:8
 *   type_mask:8 vm_mask:8 payload_hash:8 header_hash:8
 *
 * The header checks itself (header_hash over the 56 bytes before it), so a
 * reader can skip a frame it does not want on the header alone; the payload
 * is checked (payload_hash over the stored bytes) before zstd sees it.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "log/format.h"

uint64_t log_hash(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

uint64_t log_name_bit(const char *name)
{
	return 1ull << (log_hash(name, strlen(name)) % 64);
}

void log_frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_BYTES])
{
	put32(out, FRAME_MAGIC);
	put32(out + 4, h->stored_len);
	put32(out + 8, h->raw_len);
	put32(out + 12, h->count);
	put64(out + 16, h->min_ns);
	put64(out + 24, h->max_ns);
	put64(out + 32, h->type_mask);
	put64(out + 40, h->vm_mask);
	put64(out + 48, h->payload_hash);
	put64(out + 56, log_hash(out, 56));
}

int log_frame_hdr_decode(const uint8_t in[FRAME_HDR_BYTES], struct frame_hdr *h)
{
	if (get32(in) != FRAME_MAGIC || get64(in + 56) != log_hash(in, 56))
		return -EBADMSG;
	h->stored_len = get32(in + 4);
	h->raw_len = get32(in + 8);
	h->count = get32(in + 12);
	h->min_ns = get64(in + 16);
	h->max_ns = get64(in + 24);
	h->type_mask = get64(in + 32);
	h->vm_mask = get64(in + 40);
	h->payload_hash = get64(in + 48);
	/* A record is at least 18 bytes: a count the raw bytes cannot hold is a lie. */
	if (!h->count || !h->stored_len || h->raw_len > FRAME_MAX_RAW ||
	    h->stored_len > ZSTD_compressBound(FRAME_MAX_RAW) || h->count > h->raw_len / 18 ||
	    h->min_ns > h->max_ns)
		return -EBADMSG;
	return 0;
}

int log_read_exact(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG; /* short: the file ends inside the frame */
		done += (size_t)n;
	}
	return 0;
}

int log_frame_load(int fd, uint64_t off, const struct frame_hdr *h, uint8_t **raw)
{
	uint8_t *stored = malloc(h->stored_len), *out = malloc(h->raw_len ? h->raw_len : 1);
	size_t n;
	int err;

	*raw = NULL;
	if (!stored || !out) {
		err = -ENOMEM;
		goto fail;
	}
	err = log_read_exact(fd, stored, h->stored_len, off + FRAME_HDR_BYTES);
	if (err)
		goto fail;
	err = -EBADMSG;
	if (log_hash(stored, h->stored_len) != h->payload_hash)
		goto fail;
	/* Exactly raw_len bytes, or the frame is not what its header says. */
	if (ZSTD_getFrameContentSize(stored, h->stored_len) != h->raw_len)
		goto fail;
	n = ZSTD_decompress(out, h->raw_len, stored, h->stored_len);
	if (ZSTD_isError(n) || n != h->raw_len)
		goto fail;
	free(stored);
	*raw = out;
	return 0;
fail:
	free(stored);
	free(out);
	return err;
}
