// SPDX-License-Identifier: MIT
/*
 * System figures as /proc/uptime, /proc/loadavg, /proc/meminfo and
 * /proc/stat compute them, from the same kernel variables:
 *   uptime          the timekeeper's monotonic base plus offs_boot
 *   load            avenrun[], fixed point with 11 fraction bits
 *   memory          _totalram_pages, vm_zone_stat[NR_FREE_PAGES], and
 *                   MemAvailable by si_mem_available()'s formula
 *   tasks, forks    nr_threads, total_forks
 *   switches        runqueues.nr_switches summed over possible CPUs
 * Indices of the statistics arrays come from the kernel's BTF enums.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "os/linux/linux.h"

#define FSHIFT	    11
#define FIXED_1	    (1 << FSHIFT)
#define PAGE_BYTES  4096
#define MAX_CPUS    8192
#define MAX_NODES   1024
#define WMARK_LOW   1

struct sysinfo_layout {
	struct kfield release, tk_base, tk_nsec, tk_shift, tk_offs_boot, rq_switches;
	struct kfield zone_watermark, zone_boost, pgdat_zones;
	uint64_t init_uts_ns, tk_core, timekeeper_offset, avenrun, totalram, zone_stat, node_stat;
	uint64_t nr_threads, total_forks, nr_cpu_ids, per_cpu_offset, runqueues, totalreserve;
	uint64_t node_data;
	int64_t nr_free, active_file, inactive_file, slab_reclaimable, misc_reclaimable, zones;
	uint32_t zone_bytes;
};

/* tk_core is { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; ... }. */
static int timekeeper_offset(struct linux_kernel *k, uint64_t *ret)
{
	struct kfield f;
	uint32_t seq;

	if (!kbtf_member(k->btf, "tk_data", "timekeeper", &f)) { /* Linux 6.11+ names it */
		*ret = f.offset;
		return 0;
	}
	seq = kbtf_size(k->btf, "seqcount_raw_spinlock");
	if (!seq)
		return vm_error(k->vm, -ENOENT, "cannot place the timekeeper in tk_core");
	*ret = (seq + 7u) & ~7u;
	return 0;
}

static int find_enums(struct linux_kernel *k, struct sysinfo_layout *l)
{
	struct {
		const char *name;
		int64_t *value;
	} want[] = {
		{ "NR_FREE_PAGES", &l->nr_free },
		{ "NR_ACTIVE_FILE", &l->active_file },
		{ "NR_INACTIVE_FILE", &l->inactive_file },
		{ "NR_SLAB_RECLAIMABLE_B", &l->slab_reclaimable },
		{ "NR_KERNEL_MISC_RECLAIMABLE", &l->misc_reclaimable },
		{ "__MAX_NR_ZONES", &l->zones },
	};

	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		if (kbtf_enum_value(k->btf, want[i].name, want[i].value))
			return vm_error(k->vm, -ENOENT, "the guest kernel has no %s", want[i].name);
	return 0;
}

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct sysinfo_layout *l = layout;
	/* 6.13 on: tk_core is timekeeper_data[TIMEKEEPER_CORE], the first. */
	const char *syms[] = { "init_uts_ns", "tk_core|timekeeper_data", "avenrun",	     "_totalram_pages",
			       "vm_zone_stat", "vm_node_stat", "nr_threads", "total_forks",
			       "nr_cpu_ids", "__per_cpu_offset", "runqueues", "totalreserve_pages",
			       "node_data" };
	uint64_t *addrs[] = { &l->init_uts_ns, &l->tk_core, &l->avenrun, &l->totalram,
			      &l->zone_stat, &l->node_stat, &l->nr_threads, &l->total_forks,
			      &l->nr_cpu_ids, &l->per_cpu_offset, &l->runqueues, &l->totalreserve,
			      &l->node_data };

	for (size_t i = 0; i < ARRAY_SIZE(syms); i++)
		if (ksym_require(k, syms[i], addrs[i]))
			return -ENOENT;
	if (kfield_require(k, "uts_namespace", "name.release", &l->release) ||
	    kfield_require(k, "timekeeper", "tkr_mono.base", &l->tk_base) ||
	    kfield_require(k, "timekeeper", "tkr_mono.xtime_nsec", &l->tk_nsec) ||
	    kfield_require(k, "timekeeper", "tkr_mono.shift", &l->tk_shift) ||
	    kfield_require(k, "timekeeper", "offs_boot", &l->tk_offs_boot) ||
	    kfield_require(k, "rq", "nr_switches", &l->rq_switches) ||
	    kfield_require(k, "zone", "_watermark", &l->zone_watermark) ||
	    kfield_require(k, "zone", "watermark_boost", &l->zone_boost) ||
	    kfield_require(k, "pglist_data", "node_zones", &l->pgdat_zones))
		return -ENOENT;
	l->zone_bytes = kbtf_size(k->btf, "zone");
	if (!l->zone_bytes)
		return vm_error(k->vm, -ENOENT, "the guest kernel has no struct zone");
	if (timekeeper_offset(k, &l->timekeeper_offset))
		return -ENOENT;
	return find_enums(k, l);
}

static const struct sysinfo_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->sysinfo_layout, sizeof(struct sysinfo_layout), find_layout);
}

#define MAX_PAGES (1ll << 48)

/*
 * A count of pages as the kernel reads it (global_*_page_state: never below
 * 0), and never above MAX_PAGES, so that the sums below cannot overflow.
 */
static int64_t pages(int64_t v)
{
	return v < 0 ? 0 : v > MAX_PAGES ? MAX_PAGES : v;
}

static int64_t read_stat(struct linux_kernel *k, uint64_t array, int64_t index)
{
	int64_t v = 0;

	kread(k, array + 8 * (uint64_t)index, &v, sizeof(v));
	return pages(v);
}

/* Sum of every zone's low watermark (with its boost), over online nodes. */
static int64_t low_watermarks(struct linux_kernel *k, const struct sysinfo_layout *l)
{
	int64_t total = 0;

	for (uint64_t node = 0; node < MAX_NODES; node++) {
		uint64_t pgdat;

		if (kread_u64(k, l->node_data + 8 * node, &pgdat) || !pgdat)
			continue;
		for (int64_t z = 0; z < l->zones && z < 8; z++) {
			uint64_t zone = pgdat + l->pgdat_zones.offset + (uint64_t)z * l->zone_bytes;
			uint64_t mark = 0, boost = 0;

			kread_u64(k, zone + l->zone_watermark.offset + 8 * WMARK_LOW, &mark);
			if (l->zone_boost.size == 8)
				kread_u64(k, zone + l->zone_boost.offset, &boost);
			mark = mark < (uint64_t)MAX_PAGES ? mark : (uint64_t)MAX_PAGES;
			boost = boost < (uint64_t)MAX_PAGES ? boost : (uint64_t)MAX_PAGES;
			total = pages(total + (int64_t)mark + (int64_t)boost);
		}
	}
	return total;
}

/* si_mem_available(), in pages. */
static int64_t mem_available(struct linux_kernel *k, const struct sysinfo_layout *l)
{
	int64_t wmark_low = low_watermarks(k, l), reserve = 0, pagecache, reclaimable, available;

	kread(k, l->totalreserve, &reserve, sizeof(reserve));
	reserve = pages(reserve);
	available = read_stat(k, l->zone_stat, l->nr_free) - reserve;
	pagecache = read_stat(k, l->node_stat, l->active_file) +
		    read_stat(k, l->node_stat, l->inactive_file);
	pagecache -= pagecache / 2 < wmark_low ? pagecache / 2 : wmark_low;
	available += pagecache;
	/* NR_SLAB_RECLAIMABLE_B counts pages despite its name (global_node_page_state_pages). */
	reclaimable = read_stat(k, l->node_stat, l->slab_reclaimable) +
		      read_stat(k, l->node_stat, l->misc_reclaimable);
	reclaimable -= reclaimable / 2 < wmark_low ? reclaimable / 2 : wmark_low;
	available += reclaimable;
	return available < 0 ? 0 : available;
}

static uint64_t context_switches(struct linux_kernel *k, const struct sysinfo_layout *l,
				 int cpus)
{
	uint64_t total = 0;

	for (int cpu = 0; cpu < cpus; cpu++) {
		uint64_t offset, switches = 0;

		if (kread_u64(k, l->per_cpu_offset + 8 * (uint64_t)cpu, &offset))
			continue;
		if (!kread_u64(k, l->runqueues + offset + l->rq_switches.offset, &switches))
			total += switches;
	}
	return total;
}

static void loads(struct linux_kernel *k, const struct sysinfo_layout *l, double load[3])
{
	uint64_t avenrun[3] = { 0 };

	kread(k, l->avenrun, avenrun, sizeof(avenrun));
	for (int i = 0; i < 3; i++) {
		/* /proc/loadavg rounds to two decimals by adding FIXED_1/200 first. */
		uint64_t v = avenrun[i] + FIXED_1 / 200;

		load[i] = (double)(v >> FSHIFT) + (double)(((v & (FIXED_1 - 1)) * 100) >> FSHIFT) / 100;
	}
}

/*
 * CLOCK_MONOTONIC at the timekeeper's last update: whole seconds in
 * tkr_mono.base, the rest in xtime_nsec (shifted); CLOCK_BOOTTIME adds
 * offs_boot. What passed since that update is only in the guest's clock
 * hardware.
 */
static uint64_t monotonic_ns(struct linux_kernel *k, const struct sysinfo_layout *l)
{
	uint64_t tk = l->tk_core + l->timekeeper_offset, base = 0, nsec = 0;
	uint32_t shift = 0;

	kread_u64(k, tk + l->tk_base.offset, &base);
	kread_u64(k, tk + l->tk_nsec.offset, &nsec);
	kread_u32(k, tk + l->tk_shift.offset, &shift);
	return base + (shift < 64 ? nsec >> shift : 0);
}

static uint64_t uptime_ns(struct linux_kernel *k, const struct sysinfo_layout *l)
{
	uint64_t boot = 0;

	kread_u64(k, l->tk_core + l->timekeeper_offset + l->tk_offs_boot.offset, &boot);
	return monotonic_ns(k, l) + boot;
}

int linux_monotonic_ns(struct linux_kernel *k, uint64_t *ret)
{
	const struct sysinfo_layout *l = layout(k);

	if (!l)
		return -ENOENT;
	*ret = monotonic_ns(k, l);
	return 0;
}

int vms_os_sysinfo(struct vms_vm *vm, struct vms_sysinfo *ret_info)
{
	struct vms_sysinfo info = { 0 };
	const struct sysinfo_layout *l;
	struct linux_kernel *k;
	uint64_t value = 0;
	uint32_t cpus = 0, threads = 0;
	int err = linux_kernel_get(vm, &k);

	if (err)
		return err;
	l = layout(k);
	if (!l)
		return -ENOENT;
	if (kread_string(k, l->init_uts_ns + l->release.offset, info.release, sizeof(info.release)) ||
	    kread_u32(k, l->nr_cpu_ids, &cpus))
		return vm_error(vm, -EFAULT, "the guest kernel's identity is unreadable");
	info.cpus = cpus > MAX_CPUS ? MAX_CPUS : (int)cpus;
	info.uptime_s = (double)uptime_ns(k, l) / 1e9;
	loads(k, l, info.load);
	if (!kread_u64(k, l->totalram, &value))
		info.mem_total_bytes = value * PAGE_BYTES;
	info.mem_free_bytes = (uint64_t)read_stat(k, l->zone_stat, l->nr_free) * PAGE_BYTES;
	info.mem_available_bytes = (uint64_t)mem_available(k, l) * PAGE_BYTES;
	if (!kread_u32(k, l->nr_threads, &threads))
		info.tasks = threads;
	kread_u64(k, l->total_forks, &info.forks);
	info.context_switches = context_switches(k, l, info.cpus);
	*ret_info = info;
	return 0;
}
