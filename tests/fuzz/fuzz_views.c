// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: every Linux view on a real guest's RAM, smeared by the
 * input where the views read.
 *
 * At start, the raw RAM image named by $VMSCOPE_FUZZ_RAM (tests/fuzz/
 * run-views-fuzzer makes one from the views guest) is copied into a memfd
 * and attached as a raw target; the kernel is discovered once, and the places
 * the views start from are noted as regions: every task_struct (and the page
 * after it), and the pages around init_task, the module list, the printk
 * ring buffer, the socket tables, init_uts_ns and the timekeeper.
 *
 * Each input is a list of patches, 4 bytes of header (region, offset) and up
 * to 16 bytes each; they are written into the image, every view runs (ps with
 * threads, lsmod, sockets, lsof, mounts, dmesg, sysinfo, the monitoring
 * figures, ps --cross-check), and the original bytes are put back.
 *
 * An input whose first byte is odd patches the kernel's BTF instead, which is
 * guest data too: the same patches land in the type records of the structs
 * the views lay out (their sizes and members' offsets), the patched BTF
 * replaces the kernel's for one run of the views (each finds its layout
 * again), then the original comes back. A view may fail or return part of the
 * answer; it must not crash, hang, leak or overflow.
 */
#include <bpf/btf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmscope/mem.h>
#include <vmscope/monitor.h>
#include <vmscope/os.h>
#include <vmscope/vm.h>

#include "os/linux/linux.h"

#define MAX_REGIONS 4096
#define MAX_PATCHES 16
#define PATCH_BYTES 16

struct region {
	uint64_t gpa, len;
};

static struct vms_vm *vm;
static int ram_fd = -1;
static uint64_t ram_bytes;
static struct region regions[MAX_REGIONS];
static size_t nr_regions;
/* The BTF as the guest has it, and the type records the views read in it. */
static struct linux_kernel *kernel;
static uint8_t *btf_blob;
static uint32_t btf_bytes;
static struct region btf_regions[64];
static size_t nr_btf_regions;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void add_region(struct linux_kernel *k, uint64_t va, uint64_t len)
{
	struct vms_translation t;

	if (nr_regions == MAX_REGIONS || !va || vms_translate(vm, k->root, va, &t))
		return;
	regions[nr_regions].gpa = t.gpa & ~4095ull;
	regions[nr_regions].len = t.gpa + len - (t.gpa & ~4095ull);
	if (regions[nr_regions].gpa + regions[nr_regions].len > ram_bytes)
		regions[nr_regions].len = ram_bytes - regions[nr_regions].gpa;
	nr_regions++;
}

static int copy_image(const char *path)
{
	int in = open(path, O_RDONLY | O_CLOEXEC);
	char buf[1 << 16];
	ssize_t n;

	ram_fd = memfd_create("vmscope-fuzz-ram", 0);
	if (in < 0 || ram_fd < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(ram_fd, buf, (size_t)n) != n)
			return -1;
	close(in);
	ram_bytes = (uint64_t)lseek(ram_fd, 0, SEEK_END);
	return n < 0 ? -1 : 0;
}

static void note_regions(struct linux_kernel *k)
{
	static const char *const syms[] = { "init_task", "modules", "prb", "tcp_hashinfo",
					    "udp_table", "init_uts_ns", "tk_core",
					    "timekeeper_data" };
	struct vms_process *procs = NULL;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
		add_region(k, kallsyms_lookup(&k->ksyms, syms[i]), 4096);
	if (vms_os_processes(vm, VMS_PS_THREADS, &procs, &n))
		return;
	for (size_t i = 0; i < n; i++)
		add_region(k, procs[i].task, 8192);
	vms_processes_free(procs, n);
}

/* Where struct name's record (its btf_type and members) lies in the raw BTF. */
static void add_btf_region(const char *name)
{
	int id = btf__find_by_name_kind(kernel->btf, name, BTF_KIND_STRUCT);
	const struct btf_type *t = id > 0 ? btf__type_by_id(kernel->btf, (__u32)id) : NULL;
	const uint8_t *raw = btf__raw_data(kernel->btf, &btf_bytes);
	uint64_t at;

	if (!t || !raw || nr_btf_regions == sizeof(btf_regions) / sizeof(btf_regions[0]))
		return;
	at = (uint64_t)((const uint8_t *)t - raw);
	if (at >= btf_bytes) /* libbpf keeps its types apart from the raw copy */
		return;
	btf_regions[nr_btf_regions].gpa = at;
	btf_regions[nr_btf_regions].len = sizeof(*t) + btf_vlen(t) * sizeof(struct btf_member);
	nr_btf_regions++;
}

static void note_btf_regions(void)
{
	static const char *const structs[] = {
		"task_struct", "signal_struct", "cred", "mm_struct", "module", "module_memory",
		"sock_common", "sock", "inet_hashinfo", "udp_table", "files_struct", "fdtable",
		"file", "dentry", "inode", "mount", "vfsmount", "printk_ringbuffer",
		"prb_desc_ring", "prb_data_ring", "printk_info", "timekeeper", "tk_read_base",
		"zone", "pglist_data", "rq", "tick_sched", "kernel_cpustat", "net_device",
		"pid_namespace", "xa_node", "pid", "uts_namespace", "new_utsname",
	};
	const void *raw = btf__raw_data(kernel->btf, &btf_bytes);

	btf_blob = raw ? malloc(btf_bytes) : NULL;
	if (!btf_blob)
		return;
	memcpy(btf_blob, raw, btf_bytes);
	for (size_t i = 0; i < sizeof(structs) / sizeof(structs[0]); i++)
		add_btf_region(structs[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *path = getenv("VMSCOPE_FUZZ_RAM");
	struct linux_kernel *k;
	char target[64];

	(void)argc;
	(void)argv;
	if (!path || copy_image(path)) {
		fprintf(stderr, "fuzz_views: set VMSCOPE_FUZZ_RAM to a guest's raw RAM image\n");
		exit(1);
	}
	snprintf(target, sizeof(target), "raw:/proc/self/fd/%d", ram_fd);
	setenv("VMSCOPE_KERNEL_CACHE", "", 1);
	if (vms_vm_new(&vm) || vms_vm_attach(vm, target, NULL) || linux_kernel_get(vm, &k)) {
		fprintf(stderr, "fuzz_views: %s\n", vm ? vms_last_error(vm) : "out of memory");
		exit(1);
	}
	kernel = k;
	note_regions(k);
	note_btf_regions();
	if (!nr_regions || !nr_btf_regions) {
		fprintf(stderr, "fuzz_views: no regions to smear\n");
		exit(1);
	}
	return 0;
}

static void run_views(int cross_check)
{
	struct vms_process *procs = NULL;
	struct vms_module *mods = NULL;
	struct vms_socket *socks = NULL;
	struct vms_open_file *files = NULL;
	struct vms_mount *mounts = NULL;
	struct vms_log_record *recs = NULL;
	struct vms_guest_metrics metrics = { 0 };
	struct vms_seen_process *seen = NULL;
	struct vms_sysinfo info;
	size_t n = 0;

	vms_vm_flush_caches(vm);
	if (!vms_os_processes(vm, VMS_PS_THREADS, &procs, &n))
		vms_processes_free(procs, n);
	if (!vms_os_modules(vm, &mods, &n))
		free(mods);
	if (!vms_os_sockets(vm, &socks, &n))
		free(socks);
	if (!vms_os_open_files(vm, -1, &files, &n))
		vms_open_files_free(files, n);
	if (!vms_os_mounts(vm, &mounts, &n))
		free(mounts);
	if (!vms_os_dmesg(vm, &recs, &n))
		vms_log_records_free(recs, n);
	vms_os_sysinfo(vm, &info);
	/* It scans all of RAM (0.4 s here): one input in 64 runs it. */
	if (cross_check && !vms_os_cross_check(vm, &seen, &n))
		free(seen);
	/* The monitoring figures: CPU times, counters, disks, interfaces (module BTF too). */
	if (!vms_monitor_guest(vm, &metrics))
		vms_guest_metrics_release(&metrics);
}

/*
 * The next patch of the input: 2 bytes of region, 2 of offset in it, 1 of
 * length, then the bytes; NULL when the input or the space (limit) ends.
 */
static const uint8_t *next_patch(const uint8_t **data, size_t *size, const struct region *in,
				 size_t nr, uint64_t limit, uint64_t *ret_at, size_t *ret_len)
{
	const uint8_t *d = *data, *bytes = d + 5;
	const struct region *r;
	size_t len;

	if (*size < 5)
		return NULL;
	r = &in[((size_t)d[0] << 8 | d[1]) % nr];
	*ret_at = r->gpa + (((uint64_t)d[2] << 8 | d[3]) % r->len);
	len = 1 + d[4] % PATCH_BYTES;
	if (len > *size - 5)
		len = *size - 5;
	if (*ret_at + len > limit)
		return NULL;
	*data = bytes + len;
	*size -= 5 + len;
	*ret_len = len;
	return bytes;
}

/* The views over a patched copy of the kernel's BTF, then the kernel's own again. */
static void fuzz_btf(const uint8_t *data, size_t size, int cross_check)
{
	uint8_t *blob = malloc(btf_bytes);
	struct btf *own = kernel->btf, *patched;

	if (!blob)
		return;
	memcpy(blob, btf_blob, btf_bytes);
	for (int n = 0; n < MAX_PATCHES; n++) {
		uint64_t at;
		size_t len;
		const uint8_t *bytes = next_patch(&data, &size, btf_regions, nr_btf_regions,
						  btf_bytes, &at, &len);

		if (!bytes)
			break;
		memcpy(blob + at, bytes, len);
	}
	patched = btf__new(blob, btf_bytes);
	free(blob);
	if (!patched)
		return; /* libbpf's own checks refuse it, as discovery would */
	kernel->btf = patched;
	linux_layouts_forget(kernel);
	run_views(cross_check);
	linux_layouts_forget(kernel);
	kernel->btf = own;
	btf__free(patched);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t hash = 2166136261u; /* FNV-1a: which inputs run the cross-check */
	int cross_check;

	for (size_t i = 0; i < size; i++)
		hash = (hash ^ data[i]) * 16777619u;
	cross_check = hash % 64 == 0;

	struct {
		uint64_t gpa;
		size_t len;
		uint8_t old[PATCH_BYTES];
	} undo[MAX_PATCHES];
	size_t nr_undo = 0;

	if (size && (data[0] & 1)) {
		fuzz_btf(data + 1, size - 1, cross_check);
		return 0;
	}
	while (nr_undo < MAX_PATCHES) {
		uint64_t at;
		size_t len;
		const uint8_t *bytes = next_patch(&data, &size, regions, nr_regions, ram_bytes, &at,
						  &len);

		if (!bytes || pread(ram_fd, undo[nr_undo].old, len, (off_t)at) != (ssize_t)len ||
		    pwrite(ram_fd, bytes, len, (off_t)at) != (ssize_t)len)
			break;
		undo[nr_undo].gpa = at;
		undo[nr_undo++].len = len;
	}
	run_views(cross_check);
	while (nr_undo--) /* newest first, so overlapping patches unwind right */
		if (pwrite(ram_fd, undo[nr_undo].old, undo[nr_undo].len,
			   (off_t)undo[nr_undo].gpa) != (ssize_t)undo[nr_undo].len)
			abort();
	return 0;
}
