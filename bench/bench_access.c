// SPDX-License-Identifier: MIT
/*
 * Guest memory access speed on a live (or dumped) guest, each figure beside
 * the same work done on plain host memory in the same run:
 *
 *   8-byte virtual reads, warm cache   random reads inside 512 mapped kernel pages
 *                                      vs random 8-byte loads inside 512 host pages
 *   4 KiB virtual reads                whole pages from that set vs memcpy of host pages
 *   sequential physical reads          all guest RAM in 1 MiB reads vs memcpy of as
 *                                      much host memory
 *
 * The machines are shared and noisy: each pair is measured ROUNDS times,
 * alternating vmscope and host, and the best rate of each is reported.
 *
 * Usage: bench_access TARGET [SECONDS_PER_MEASUREMENT]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vmscope/mem.h>
#include <vmscope/vcpu.h>

#define SET_PAGES 512
#define ROUNDS	  5
#define SEQ_CHUNK (1u << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t next_random(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

struct page_set {
	uint64_t va[SET_PAGES];
	int n;
	uint64_t ram_bytes;
	uint64_t seen;
};

/* Kernel 4 KiB-or-larger mappings of RAM: pick pages spread over them. */
static int collect(uint64_t va, const struct vms_translation *t, void *ctx)
{
	struct page_set *set = ctx;

	if (t->user || t->gpa + t->page_bytes > set->ram_bytes)
		return 0;
	for (uint64_t off = 0; off < t->page_bytes && set->n < SET_PAGES; off += 4096) {
		if (set->seen++ % 7 == 0)
			set->va[set->n++] = va + off;
	}
	return set->n == SET_PAGES;
}

static volatile uint64_t sink;

static double host_random_reads(const uint8_t *mem, double seconds)
{
	uint64_t n = 0, sum = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < 100000; i++) {
			uint64_t r = next_random(), v;
			uint64_t off = (r % SET_PAGES) * 4096 + ((r >> 32) & 4088);

			memcpy(&v, mem + off, 8);
			sum += v;
		}
		n += 100000;
		t = now_s() - t0;
	} while (t < seconds);
	sink = sum;
	return (double)n / t;
}

static double vm_random_reads(struct vms_vm *vm, uint64_t cr3, const struct page_set *set,
			      double seconds)
{
	uint64_t n = 0, sum = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < 100000; i++) {
			uint64_t r = next_random(), v;

			if (vms_virt_read(vm, cr3, set->va[r % SET_PAGES] + ((r >> 32) & 4088), &v, 8))
				return -1;
			sum += v;
		}
		n += 100000;
		t = now_s() - t0;
	} while (t < seconds);
	sink = sum;
	return (double)n / t;
}

static double host_page_reads(const uint8_t *mem, uint8_t *out, double seconds)
{
	uint64_t n = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < 10000; i++)
			memcpy(out, mem + (next_random() % SET_PAGES) * 4096, 4096);
		n += 10000;
		t = now_s() - t0;
		sink = out[n % 4096];
	} while (t < seconds);
	return (double)n / t;
}

static double vm_page_reads(struct vms_vm *vm, uint64_t cr3, const struct page_set *set,
			    uint8_t *out, double seconds)
{
	uint64_t n = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < 10000; i++)
			if (vms_virt_read(vm, cr3, set->va[next_random() % SET_PAGES], out, 4096))
				return -1;
		n += 10000;
		t = now_s() - t0;
	} while (t < seconds);
	return (double)n / t;
}

static double host_sequential(const uint8_t *mem, uint64_t bytes, uint8_t *out)
{
	double t0 = now_s();

	for (uint64_t off = 0; off + SEQ_CHUNK <= bytes; off += SEQ_CHUNK)
		memcpy(out, mem + off, SEQ_CHUNK);
	sink = out[123];
	return (double)bytes / (now_s() - t0);
}

static double vm_sequential(struct vms_vm *vm, uint64_t bytes, uint8_t *out)
{
	double t0 = now_s();

	for (uint64_t off = 0; off + SEQ_CHUNK <= bytes; off += SEQ_CHUNK)
		if (vms_phys_read(vm, off, out, SEQ_CHUNK))
			return -1;
	return (double)bytes / (now_s() - t0);
}

static void row(const char *what, const char *unit, double ours, double base)
{
	printf("%-34s %14.0f %14.0f %-8s %6.2f\n", what, ours, base, unit, ours / base);
}

enum test { RANDOM_8, PAGES_4K, SEQUENTIAL };

struct bench {
	struct vms_vm *vm;
	uint64_t cr3, seq_bytes;
	const struct page_set *set;
	uint8_t *host, *out;
	double seconds;
};

static double measure(const struct bench *b, enum test test, int on_host)
{
	switch (test) {
	case RANDOM_8:
		return on_host ? host_random_reads(b->host, b->seconds)
			       : vm_random_reads(b->vm, b->cr3, b->set, b->seconds);
	case PAGES_4K:
		return on_host ? host_page_reads(b->host, b->out, b->seconds)
			       : vm_page_reads(b->vm, b->cr3, b->set, b->out, b->seconds);
	case SEQUENTIAL:
		return (on_host ? host_sequential(b->host, b->seq_bytes, b->out)
				: vm_sequential(b->vm, b->seq_bytes, b->out)) / 1e6;
	}
	return 0;
}

static void best_of(const struct bench *b, enum test test, const char *what, const char *unit)
{
	double ours = 0, base = 0;

	for (int i = 0; i < ROUNDS; i++) {
		double v = measure(b, test, 0), h = measure(b, test, 1);

		ours = v > ours ? v : ours;
		base = h > base ? h : base;
	}
	row(what, unit, ours, base);
}

int main(int argc, char **argv)
{
	double seconds = argc > 2 ? atof(argv[2]) : 0.3;
	struct page_set set = { 0 };
	struct vms_vcpu_regs *regs;
	struct vms_vm_info info;
	struct vms_vm *vm;
	uint8_t *host, *out;
	uint64_t seq_bytes, cr3;
	int count;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_access TARGET [SECONDS_PER_TEST]\n");
		return 2;
	}
	if (vms_vm_new(&vm) || vms_vm_attach(vm, argv[1], NULL) || vms_vm_query_info(vm, &info) ||
	    vms_vcpu_get_regs(vm, &regs, &count)) {
		fprintf(stderr, "bench_access: %s\n", vms_last_error(vm));
		return 1;
	}
	cr3 = regs[0].cr3;
	free(regs);
	set.ram_bytes = info.ram_bytes < (2ull << 30) ? info.ram_bytes : (2ull << 30);
	vms_for_each_mapping(vm, cr3, 0, UINT64_MAX, 0, collect, &set);
	seq_bytes = set.ram_bytes & ~(uint64_t)(SEQ_CHUNK - 1);
	host = malloc(seq_bytes);
	out = malloc(SEQ_CHUNK);
	if (set.n < SET_PAGES || !host || !out) {
		fprintf(stderr, "bench_access: found %d kernel pages of RAM\n", set.n);
		return 1;
	}
	memset(host, 1, seq_bytes);
	vm_random_reads(vm, cr3, &set, 0.1); /* warm the translation cache */

	printf("target %s: %" PRIu64 " MiB RAM, %d-level paging, %d pages in the random set, "
	       "best of %d\n",
	       argv[1], info.ram_bytes >> 20, vms_vm_paging_levels(vm), set.n, ROUNDS);
	printf("%-34s %14s %14s %-8s %6s\n", "what", "vmscope", "host memory", "unit", "ratio");
	struct bench b = { vm, cr3, seq_bytes, &set, host, out, seconds };

	best_of(&b, RANDOM_8, "8-byte virtual reads, warm", "reads/s");
	best_of(&b, PAGES_4K, "4 KiB virtual reads", "reads/s");
	best_of(&b, SEQUENTIAL, "sequential physical reads", "MB/s");
	free(host);
	free(out);
	vms_vm_free(vm);
	return 0;
}
