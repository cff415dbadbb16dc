// SPDX-License-Identifier: MIT
/*
 * The Linux driver's cost on a live guest, beside baselines from the same run:
 *
 *   cold attach   a new handle: attach, then discover the kernel (vmcoreinfo
 *                 scan, kallsyms decoding, BTF), against one sequential read
 *                 of all guest RAM (the scan's floor)
 *   warm attach   the same through the per-build cache (no scan), against
 *                 the same baseline
 *   warm ps       the full process list with command lines on a handle that
 *                 has discovered, against reading two 4 KiB pages per process
 *                 (about what any walker must touch)
 *
 * Usage: bench_linux TARGET [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vmscope/mem.h>
#include <vmscope/os.h>
#include <vmscope/vcpu.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static struct vms_vm *attach(const char *target)
{
	struct vms_vm *vm;

	if (vms_vm_new(&vm) || vms_vm_attach(vm, target, NULL)) {
		fprintf(stderr, "bench_linux: %s\n", vms_last_error(vm));
		exit(1);
	}
	return vm;
}

static double read_all_ram(struct vms_vm *vm)
{
	static uint8_t buf[1 << 20];
	struct vms_vm_info info;
	double t0 = now_s();

	vms_vm_query_info(vm, &info);
	for (uint64_t off = 0; off + sizeof(buf) <= info.ram_bytes && off < (2ull << 30);
	     off += sizeof(buf))
		vms_phys_read(vm, off, buf, sizeof(buf));
	return now_s() - t0;
}

static double cold_attach(const char *target)
{
	struct vms_kernel_info info;
	double t0 = now_s();
	struct vms_vm *vm = attach(target);

	if (vms_linux_kernel(vm, &info)) {
		fprintf(stderr, "bench_linux: %s\n", vms_last_error(vm));
		exit(1);
	}
	t0 = now_s() - t0;
	vms_vm_free(vm);
	return t0;
}

static double page_reads(struct vms_vm *vm, const struct vms_process *procs, size_t n)
{
	static uint8_t page[4096];
	struct vms_kernel_info info;
	double t0;

	vms_linux_kernel(vm, &info);
	t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		vms_virt_read(vm, info.page_table_root, procs[i].task & ~4095ull, page, 4096);
		vms_virt_read(vm, info.page_table_root, (procs[i].task & ~4095ull) + 4096, page, 4096);
	}
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 2 ? atoi(argv[2]) : 10;
	double *cold, *ram, *warm, *base, *cached;
	char cache[] = "/tmp/vmscope-bench-cache.XXXXXX";
	struct vms_process *procs;
	struct vms_vm *vm;
	size_t n = 0;

	if (argc < 2 || rounds < 1) {
		fprintf(stderr, "usage: bench_linux TARGET [ROUNDS]\n");
		return 2;
	}
	cold = calloc((size_t)rounds, sizeof(double));
	cached = calloc((size_t)rounds, sizeof(double));
	ram = calloc((size_t)rounds, sizeof(double));
	warm = calloc((size_t)rounds * 5, sizeof(double));
	base = calloc((size_t)rounds * 5, sizeof(double));
	/* QEMU serves one QMP client at a time: no handle may stay open meanwhile. */
	setenv("VMSCOPE_KERNEL_CACHE", "", 1); /* no cache: every attach scans */
	for (int i = 0; i < rounds; i++)
		cold[i] = cold_attach(argv[1]);
	if (!mkdtemp(cache))
		return 1;
	setenv("VMSCOPE_KERNEL_CACHE", cache, 1);
	cold_attach(argv[1]); /* fills the cache */
	for (int i = 0; i < rounds; i++)
		cached[i] = cold_attach(argv[1]);
	vm = attach(argv[1]);
	for (int i = 0; i < rounds; i++)
		ram[i] = read_all_ram(vm);
	for (int i = 0; i < rounds * 5; i++) {
		double t0 = now_s();

		if (vms_os_processes(vm, 0, &procs, &n)) {
			fprintf(stderr, "bench_linux: %s\n", vms_last_error(vm));
			return 1;
		}
		warm[i] = now_s() - t0;
		base[i] = page_reads(vm, procs, n);
		vms_processes_free(procs, n);
	}
	printf("target %s: %zu processes, median of %d rounds (ps: %d)\n", argv[1], n, rounds,
	       rounds * 5);
	printf("%-40s %10s %10s %8s\n", "what", "ms", "base ms", "ratio");
	printf("%-40s %10.2f %10.2f %8.2f\n", "cold attach (discovery) / read all RAM",
	       median(cold, rounds) * 1e3, median(ram, rounds) * 1e3,
	       median(cold, rounds) / median(ram, rounds));
	printf("%-40s %10.2f %10.2f %8.2f\n", "warm attach (per-build cache) / read RAM",
	       median(cached, rounds) * 1e3, median(ram, rounds) * 1e3,
	       median(cached, rounds) / median(ram, rounds));
	printf("%-40s %10.3f %10.3f %8.2f\n", "warm ps / 2 page reads per process",
	       median(warm, rounds * 5) * 1e3, median(base, rounds * 5) * 1e3,
	       median(warm, rounds * 5) / median(base, rounds * 5));
	vms_vm_free(vm);
	free(cold);
	free(cached);
	{
		char command[128];

		snprintf(command, sizeof(command), "rm -rf '%s'", cache);
		if (system(command))
			return 1;
	}
	free(ram);
	free(warm);
	free(base);
	return 0;
}
