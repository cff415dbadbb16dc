/* SPDX-License-Identifier: MIT */
/*
 * The spool: a single-producer/single-consumer ring of variable-sized
 * records (a captured request and, when wanted, its bytes) between the NBD
 * thread, which must answer the guest at once, and the inference thread.
 * It never overwrites: a record that does not fit is counted and left out,
 * at once (spool_push) or after the producer has waited for room
 * (spool_push_wait: back-pressure, where the producer may wait).
 */
#ifndef VMSCOPE_DISK_SPOOL_H
#define VMSCOPE_DISK_SPOOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct spool_record {
	uint64_t offset, length, seen_ns; /* seen_ns: CLOCK_MONOTONIC at arrival */
	uint32_t payload_len;		  /* 0 when the bytes were not kept */
	uint16_t type;			  /* NBD_CMD_* */
	uint16_t wrap;			  /* internal: skip to the start of the ring */
	uint16_t fs;			  /* the consumer's: which filesystem it is for */
	uint8_t payload[];
};

struct spool {
	uint8_t *buf;
	size_t size; /* a power of two */
	_Atomic uint64_t head, tail;
	_Atomic int sleeping;
	_Atomic uint64_t dropped;
	_Atomic uint64_t peak;	    /* the most bytes held at once */
	_Atomic uint64_t waited_us; /* producer's time waiting for room (spool_push_wait) */
	pthread_mutex_t lock;
	pthread_cond_t wake;
};

int spool_init(struct spool *s, size_t size);
void spool_destroy(struct spool *s);
/* Producer: 0, or -ENOBUFS (counted in dropped) when the record does not fit. */
int spool_push(struct spool *s, const struct spool_record *head, const void *payload);
/* Producer: spool_push(), waiting for room up to wait_ms (< 0: no bound) or *abandon. */
int spool_push_wait(struct spool *s, const struct spool_record *head, const void *payload,
		    long long wait_ms, const _Atomic int *abandon);
/* Consumer: the oldest record or NULL; spool_pop() releases it. */
const struct spool_record *spool_peek(struct spool *s);
void spool_pop(struct spool *s);
/* Consumer: sleep until a record arrives or timeout_ms passes. */
void spool_wait(struct spool *s, int timeout_ms);
/* Wake a waiting consumer (to stop it). */
void spool_kick(struct spool *s);

#endif
