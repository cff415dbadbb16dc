// SPDX-License-Identifier: MIT
/*
 * The counters a monitoring agent would read from /proc, from the variables
 * /proc reads them from:
 *   cpu times   per-CPU kernel_cpustat; idle and iowait from tick_cpu_sched
 *               when the tick is off in idle (get_cpu_idle_time_us())
 *   running     rq->nr_running and rq->nr_iowait summed over online CPUs
 *   vm events   per-CPU vm_event_states, indices from enum vm_event_item
 *   buffers     the page cache of every block device inode (nr_blockdev_pages())
 *   cached      NR_FILE_PAGES less the swap cache and buffers
 *   disks       each block device's per-CPU disk_stats (5.11 on: bd_stats)
 * Block devices are the inodes of blockdev_superblock, a list the guest
 * writes: walked bounded, and partial results marked as the views do.
 */
#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"
#include "os/linux/list.h"

#define MAX_CPUS     8192
#define MAX_BDEVS    65536
#define PAGE_BYTES   4096
#define SECTOR_BYTES 512
/* Per-CPU reads a view may make in all (64 disks on 1,024 CPUs); 65,536 on 8,192 would be 2 G. */
#define MAX_PERCPU_READS (256u << 10)

enum { CPUTIME_USER, CPUTIME_NICE, CPUTIME_SYSTEM, CPUTIME_SOFTIRQ, CPUTIME_IRQ, CPUTIME_IDLE,
       CPUTIME_IOWAIT, CPUTIME_STEAL, CPUTIME_GUEST, CPUTIME_GUEST_NICE, NR_CPUTIME };

struct stats_layout {
	uint64_t per_cpu_offset, nr_cpu_ids, online_mask, cpustat, tick_sched, nohz_active;
	uint64_t vm_events, runqueues, node_stat, bdev_super;
	struct kfield ts_idle_active, ts_flags, ts_idle_entry, ts_idle_sleep, ts_iowait_sleep;
	struct kfield rq_running, rq_iowait;
	struct kfield sb_inodes, inode_sb_list, inode_mapping, mapping_nrpages;
	struct kfield cpustat_array, kcs_dyntick, kcs_entry;
	struct kfield bdev_stats, bdev_partno, bdev_flags, bdev_part, part_stats, part_partno;
	struct kfield bdev_disk, bdev_inode, disk_name, stats_sectors, stats_ios;
	int64_t ev[6], file_pages, swapcache;
	int idle_in_tick_sched, idle_in_cpustat, has_disk_stats;
};

/* What every kernel from 5.4 on has. */
static int find_required(struct linux_kernel *k, struct stats_layout *l)
{
	const char *syms[] = { "__per_cpu_offset", "nr_cpu_ids", "__cpu_online_mask",
			       "kernel_cpustat", "vm_event_states", "runqueues", "vm_node_stat",
			       "blockdev_superblock" };
	uint64_t *addrs[] = { &l->per_cpu_offset, &l->nr_cpu_ids, &l->online_mask, &l->cpustat,
			      &l->vm_events, &l->runqueues, &l->node_stat, &l->bdev_super };
	const char *events[] = { "PGPGIN", "PGPGOUT", "PSWPIN", "PSWPOUT", "PGFAULT",
				 "PGMAJFAULT" };
	const struct kfield_want want[] = {
		{ &l->rq_running, "rq", "nr_running" },
		{ &l->rq_iowait, "rq", "nr_iowait" },
		{ &l->sb_inodes, "super_block", "s_inodes" },
		{ &l->inode_sb_list, "inode", "i_sb_list" },
		{ &l->inode_mapping, "inode", "i_mapping" },
		{ &l->mapping_nrpages, "address_space", "nrpages" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(syms); i++)
		if (ksym_require(k, syms[i], addrs[i]))
			return -ENOENT;
	for (size_t i = 0; i < ARRAY_SIZE(events); i++)
		if (kbtf_enum_value(k->btf, events[i], &l->ev[i]))
			return vm_error(k->vm, -ENOENT, "the guest kernel has no %s", events[i]);
	if (kbtf_enum_value(k->btf, "NR_FILE_PAGES", &l->file_pages))
		return vm_error(k->vm, -ENOENT, "the guest kernel has no NR_FILE_PAGES");
	if (kbtf_enum_value(k->btf, "NR_SWAPCACHE", &l->swapcache)) /* 5.13 on */
		l->swapcache = -1;
	return kfields_require(k, want, ARRAY_SIZE(want));
}

/*
 * Tickless idle time: in tick_cpu_sched up to 6.x; 7.x keeps it in
 * kernel_cpustat itself, with the open idle period's start beside it.
 */
static void find_idle(struct linux_kernel *k, struct stats_layout *l)
{
	l->tick_sched = kallsyms_lookup(&k->ksyms, "tick_cpu_sched");
	l->nohz_active = kallsyms_lookup(&k->ksyms, "tick_nohz_active");
	l->idle_in_cpustat = !kbtf_member(k->btf, "kernel_cpustat", "idle_dyntick", &l->kcs_dyntick) &&
			     !kbtf_member(k->btf, "kernel_cpustat", "idle_entrytime", &l->kcs_entry);
	l->idle_in_tick_sched =
		!l->idle_in_cpustat && l->tick_sched && l->nohz_active &&
		(!kbtf_member(k->btf, "tick_sched", "idle_active", &l->ts_idle_active) ||
		 !kbtf_member(k->btf, "tick_sched", "flags", &l->ts_flags)) &&
		!kbtf_member(k->btf, "tick_sched", "idle_entrytime", &l->ts_idle_entry) &&
		!kbtf_member(k->btf, "tick_sched", "idle_sleeptime", &l->ts_idle_sleep) &&
		!kbtf_member(k->btf, "tick_sched", "iowait_sleeptime", &l->ts_iowait_sleep);
}

/*
 * Per-device statistics: bdev->bd_stats from 5.11, the partition's
 * hd_struct dkstats before; the partition number in bd_partno, in the low
 * byte of __bd_flags from 6.10, or in hd_struct before 5.11.
 */
static void find_disks(struct linux_kernel *k, struct stats_layout *l)
{
	int stats, partno;

	if (!kbtf_member(k->btf, "block_device", "bd_stats", &l->bdev_stats))
		stats = 1;
	else
		stats = !kbtf_member(k->btf, "block_device", "bd_part", &l->bdev_part) &&
			!kbtf_member(k->btf, "hd_struct", "dkstats", &l->part_stats) &&
			!kbtf_member(k->btf, "hd_struct", "partno", &l->part_partno);
	partno = l->bdev_part.found || !kbtf_member(k->btf, "block_device", "bd_partno",
						    &l->bdev_partno) ||
		 !kbtf_member(k->btf, "block_device", "__bd_flags", &l->bdev_flags);
	l->has_disk_stats = stats && partno &&
			    !kbtf_member(k->btf, "block_device", "bd_disk", &l->bdev_disk) &&
			    !kbtf_member(k->btf, "bdev_inode", "vfs_inode", &l->bdev_inode) &&
			    !kbtf_member(k->btf, "gendisk", "disk_name", &l->disk_name) &&
			    !kbtf_member(k->btf, "disk_stats", "sectors", &l->stats_sectors) &&
			    !kbtf_member(k->btf, "disk_stats", "ios", &l->stats_ios) &&
			    l->stats_sectors.size >= 16 && l->stats_ios.size >= 16;
}

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct stats_layout *l = layout;
	int err = find_required(k, l);

	if (err)
		return err;
	if (kfield_require(k, "kernel_cpustat", "cpustat", &l->cpustat_array))
		return -ENOENT;
	if (l->cpustat_array.size < NR_CPUTIME * 8)
		return vm_error(k->vm, -EPROTO, "the guest's kernel_cpustat is too small");
	find_idle(k, l);
	find_disks(k, l);
	return 0;
}

static const struct stats_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->stats_layout, sizeof(struct stats_layout), find_layout);
}

/* Every figure starts here: the kernel, a fresh partial-result note, the layout. */
static int begin(struct vms_vm *vm, struct linux_kernel **k, const struct stats_layout **l)
{
	int err = linux_kernel_get(vm, k);

	if (err)
		return err;
	view_begin(vm);
	*l = layout(*k);
	return *l ? 0 : -ENOENT;
}

static int possible_cpus(struct linux_kernel *k, const struct stats_layout *l)
{
	uint32_t n = 0;

	kread_u32(k, l->nr_cpu_ids, &n);
	return n > MAX_CPUS ? MAX_CPUS : (int)n;
}

static int cpu_offset(struct linux_kernel *k, const struct stats_layout *l, int cpu, uint64_t *ret)
{
	return kread_u64(k, l->per_cpu_offset + 8 * (uint64_t)cpu, ret);
}

static int cpu_online(struct linux_kernel *k, const struct stats_layout *l, int cpu)
{
	uint64_t word = 0;

	kread_u64(k, l->online_mask + 8 * (uint64_t)(cpu / 64), &word);
	return (int)((word >> (cpu % 64)) & 1);
}

/* get_cpu_idle_time_us() and get_cpu_iowait_time_us(): the open idle period counts too. */
static void tickless_idle(struct linux_kernel *k, const struct stats_layout *l, uint64_t off,
			  uint64_t now, struct vms_cpu_time *c)
{
	uint8_t ts[256];
	uint32_t iowait = 0;
	uint64_t open = 0, active;
	int64_t entry;

	const struct kfield *flag = l->ts_idle_active.found ? &l->ts_idle_active : &l->ts_flags;

	if (l->ts_iowait_sleep.offset + 8 > sizeof(ts) || l->ts_idle_entry.offset + 8 > sizeof(ts) ||
	    l->ts_idle_sleep.offset + 8 > sizeof(ts) || flag->offset + 8 > sizeof(ts) ||
	    kread(k, l->tick_sched + off, ts, sizeof(ts)))
		return;
	entry = (int64_t)kfield_get(&l->ts_idle_entry, ts);
	/* 6.9 on: idle_active is bit 2 of flags (TS_FLAG_IDLE_ACTIVE). */
	active = l->ts_idle_active.found ? kfield_get(&l->ts_idle_active, ts)
					 : (kfield_get(&l->ts_flags, ts) >> 2) & 1;
	if (active && entry > 0 && now > (uint64_t)entry)
		open = now - (uint64_t)entry;
	kread_u32(k, l->runqueues + off + l->rq_iowait.offset, &iowait);
	c->idle_ns = kfield_get(&l->ts_idle_sleep, ts) + (iowait ? 0 : open);
	c->iowait_ns = kfield_get(&l->ts_iowait_sleep, ts) + (iowait ? open : 0);
	/* /proc/stat has microseconds of these. */
	c->idle_ns -= c->idle_ns % 1000;
	c->iowait_ns -= c->iowait_ns % 1000;
}

static int nohz_active(struct linux_kernel *k, const struct stats_layout *l)
{
	uint8_t active = 0;

	if (l->idle_in_cpustat)
		return 1;
	return l->idle_in_tick_sched && !kread(k, l->nohz_active, &active, 1) && active;
}

/* 7.x: kernel_cpustat's idle and iowait lack only the idle period still open. */
static void open_idle(struct linux_kernel *k, const struct stats_layout *l, uint64_t off,
		      uint64_t now, struct vms_cpu_time *c)
{
	uint8_t dyntick = 0;
	uint64_t entry = 0;
	uint32_t iowait = 0;

	if (kread(k, l->cpustat + off + l->kcs_dyntick.offset, &dyntick, 1) || !dyntick ||
	    kread_u64(k, l->cpustat + off + l->kcs_entry.offset, &entry) || !entry || now <= entry)
		return;
	kread_u32(k, l->runqueues + off + l->rq_iowait.offset, &iowait);
	if (iowait)
		c->iowait_ns += now - entry;
	else
		c->idle_ns += now - entry;
}

int vms_os_cpu_times(struct vms_vm *vm, struct vms_cpu_time **ret_cpus, size_t *ret_count)
{
	const struct stats_layout *l;
	struct linux_kernel *k;
	struct vms_cpu_time *cpus;
	uint64_t now = 0;
	int n, nohz, err = begin(vm, &k, &l);

	if (err)
		return err;
	n = possible_cpus(k, l);
	if (n <= 0)
		return vm_error(vm, -EFAULT, "the guest kernel's CPU count is unreadable");
	cpus = calloc((size_t)n, sizeof(*cpus));
	if (!cpus)
		return vm_error(vm, -ENOMEM, "out of memory");
	nohz = nohz_active(k, l);
	if (nohz)
		linux_monotonic_ns(k, &now);
	for (int cpu = 0; cpu < n; cpu++) {
		struct vms_cpu_time *c = &cpus[cpu];
		uint64_t off, t[NR_CPUTIME] = { 0 };

		c->cpu = cpu;
		if (cpu_offset(k, l, cpu, &off) ||
		    kread(k, l->cpustat + off + l->cpustat_array.offset, t, sizeof(t)))
			continue;
		c->online = cpu_online(k, l, cpu);
		c->user_ns = t[CPUTIME_USER];
		c->nice_ns = t[CPUTIME_NICE];
		c->system_ns = t[CPUTIME_SYSTEM];
		c->softirq_ns = t[CPUTIME_SOFTIRQ];
		c->irq_ns = t[CPUTIME_IRQ];
		c->idle_ns = t[CPUTIME_IDLE];
		c->iowait_ns = t[CPUTIME_IOWAIT];
		c->steal_ns = t[CPUTIME_STEAL];
		c->guest_ns = t[CPUTIME_GUEST];
		c->guest_nice_ns = t[CPUTIME_GUEST_NICE];
		if (nohz && c->online && l->idle_in_cpustat)
			open_idle(k, l, off, now, c);
		else if (nohz && c->online)
			tickless_idle(k, l, off, now, c);
	}
	*ret_cpus = cpus;
	*ret_count = (size_t)n;
	return 0;
}

#define MAX_PAGES (1ll << 48)

static int64_t node_stat(struct linux_kernel *k, const struct stats_layout *l, int64_t item)
{
	int64_t v = 0;

	if (item >= 0)
		kread(k, l->node_stat + 8 * (uint64_t)item, &v, sizeof(v));
	/* Pages: past MAX_PAGES the guest lies, and sums of them could overflow. */
	return v < 0 ? 0 : v > MAX_PAGES ? MAX_PAGES : v;
}

/* Block device inodes, as blockdev_superblock lists them: bounded, each once. */
static int bdev_inodes(struct linux_kernel *k, const struct stats_layout *l, uint64_t **ret,
		       size_t *ret_n)
{
	uint64_t sb = 0;
	int err;

	if (kread_u64(k, l->bdev_super, &sb) || !sb)
		return vm_error(k->vm, -EFAULT, "the guest's block device list is unreadable");
	*ret = NULL;
	*ret_n = 0;
	err = list_collect(k, sb + l->sb_inodes.offset, l->inode_sb_list.offset, MAX_BDEVS, ret,
			   ret_n);
	if (err == -ENOMEM)
		return vm_error(k->vm, err, "out of memory");
	if (err == -EFAULT && !*ret_n && !*ret)
		return vm_error(k->vm, err, "the guest's block device list is unreadable");
	if (err)
		view_partial(k->vm, "the block device list %s: %zu read",
			     err == -ELOOP ? "does not end" : "breaks", *ret_n);
	return 0;
}

/* nr_blockdev_pages(): the page cache of block devices themselves. */
static uint64_t blockdev_pages(struct linux_kernel *k, const struct stats_layout *l,
			       const uint64_t *inodes, size_t n)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t mapping = 0, pages = 0;

		if (!kread_u64(k, inodes[i] + l->inode_mapping.offset, &mapping) && mapping &&
		    !kread_u64(k, mapping + l->mapping_nrpages.offset, &pages) && pages < (1ull << 40))
			total += pages;
	}
	return total < (uint64_t)MAX_PAGES ? total : (uint64_t)MAX_PAGES;
}

static uint64_t sum_cpus(struct linux_kernel *k, const struct stats_layout *l, uint64_t base,
			 int cpus)
{
	uint64_t total = 0;

	for (int cpu = 0; cpu < cpus; cpu++) {
		uint64_t off, v = 0;

		if (!cpu_offset(k, l, cpu, &off) && !kread_u64(k, base + off, &v))
			total += v;
	}
	return total;
}

static void run_queues(struct linux_kernel *k, const struct stats_layout *l, int cpus,
		       struct vms_kernel_counters *c)
{
	for (int cpu = 0; cpu < cpus; cpu++) {
		uint64_t off;
		uint32_t running = 0, iowait = 0;

		if (!cpu_online(k, l, cpu) || cpu_offset(k, l, cpu, &off))
			continue;
		kread_u32(k, l->runqueues + off + l->rq_running.offset, &running);
		kread_u32(k, l->runqueues + off + l->rq_iowait.offset, &iowait);
		c->running += running;
		c->blocked += iowait;
	}
}

int vms_os_kernel_counters(struct vms_vm *vm, struct vms_kernel_counters *ret)
{
	struct vms_kernel_counters c = { 0 };
	const struct stats_layout *l;
	struct linux_kernel *k;
	uint64_t *inodes = NULL, ev[6];
	size_t n = 0;
	int64_t cached;
	int cpus, err = begin(vm, &k, &l);

	if (err)
		return err;
	cpus = possible_cpus(k, l);
	run_queues(k, l, cpus, &c);
	for (int i = 0; i < 6; i++)
		ev[i] = sum_cpus(k, l, l->vm_events + 8 * (uint64_t)l->ev[i], cpus);
	c.pgpgin_kb = ev[0] / 2; /* sectors to KiB, as /proc/vmstat does */
	c.pgpgout_kb = ev[1] / 2;
	c.swap_in = ev[2];
	c.swap_out = ev[3];
	c.page_faults = ev[4];
	c.major_faults = ev[5];
	if (bdev_inodes(k, l, &inodes, &n))
		return -EFAULT;
	c.mem_buffers_bytes = blockdev_pages(k, l, inodes, n) * PAGE_BYTES;
	free(inodes);
	cached = node_stat(k, l, l->file_pages) - node_stat(k, l, l->swapcache) -
		 (int64_t)(c.mem_buffers_bytes / PAGE_BYTES);
	c.mem_cached_bytes = cached > 0 ? (uint64_t)cached * PAGE_BYTES : 0;
	*ret = c;
	return 0;
}

/* bdevname(): a partition of a disk whose name ends in a digit takes a 'p'. */
static void bdev_name(const char *disk, uint8_t partno, char *buf, size_t len)
{
	size_t n = strlen(disk);

	if (!partno)
		snprintf(buf, len, "%s", disk);
	else
		snprintf(buf, len, "%.32s%s%u", disk, n && isdigit((unsigned char)disk[n - 1]) ? "p" : "",
			 partno);
}

/* Where a block device's statistics are, and its partition number. */
static int bdev_place(struct linux_kernel *k, const struct stats_layout *l, uint64_t bdev,
		      uint64_t *stats, unsigned *partno)
{
	uint64_t part = 0;
	uint32_t v = 0;

	if (l->bdev_stats.found)
		return kread_u64(k, bdev + l->bdev_stats.offset, stats) ||
		       kread_u32(k, bdev + (l->bdev_partno.found ? l->bdev_partno.offset
								 : l->bdev_flags.offset),
				 &v) ||
		       !(*partno = v & 0xff, 1);
	if (kread_u64(k, bdev + l->bdev_part.offset, &part) || !part ||
	    kread_u64(k, part + l->part_stats.offset, stats) ||
	    kread_u32(k, part + l->part_partno.offset, &v))
		return -EFAULT;
	*partno = v & 0xff;
	return 0;
}

static int read_bdev(struct linux_kernel *k, const struct stats_layout *l, uint64_t inode,
		     int cpus, struct vms_block_stats *s)
{
	uint64_t bdev = inode - l->bdev_inode.offset, stats = 0, disk = 0;
	char name[33] = "";
	unsigned partno = 0;

	if (bdev_place(k, l, bdev, &stats, &partno) || !stats ||
	    kread_u64(k, bdev + l->bdev_disk.offset, &disk) || !disk ||
	    kread_string(k, disk + l->disk_name.offset, name,
			 l->disk_name.size < sizeof(name) ? l->disk_name.size + 1 : sizeof(name)) ||
	    !name[0])
		return -EFAULT;
	bdev_name(name, (uint8_t)partno, s->name, sizeof(s->name));
	s->partition = partno != 0;
	/* Index 0 is READ, 1 WRITE (enum stat_group). */
	s->read_bytes = sum_cpus(k, l, stats + l->stats_sectors.offset, cpus) * SECTOR_BYTES;
	s->write_bytes = sum_cpus(k, l, stats + l->stats_sectors.offset + 8, cpus) * SECTOR_BYTES;
	s->read_ios = sum_cpus(k, l, stats + l->stats_ios.offset, cpus);
	s->write_ios = sum_cpus(k, l, stats + l->stats_ios.offset + 8, cpus);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct vms_block_stats *)a)->name,
		      ((const struct vms_block_stats *)b)->name);
}

int vms_os_block_stats(struct vms_vm *vm, struct vms_block_stats **ret_stats, size_t *ret_count)
{
	const struct stats_layout *l;
	struct vms_block_stats *out;
	struct linux_kernel *k;
	uint64_t *inodes = NULL;
	size_t n = 0, got = 0;
	int cpus, err = begin(vm, &k, &l);

	if (err)
		return err;
	if (!l->has_disk_stats)
		return vm_error(vm, -ENOTSUP, "the guest kernel %s has none of the block device "
			       "layouts vmscope knows for disk statistics", k->release);
	if (bdev_inodes(k, l, &inodes, &n))
		return -EFAULT;
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out) {
		free(inodes);
		return vm_error(vm, -ENOMEM, "out of memory");
	}
	cpus = possible_cpus(k, l);
	for (size_t i = 0; i < n; i++) {
		if ((uint64_t)(i + 1) * (uint64_t)cpus * 4 > MAX_PERCPU_READS) {
			view_partial(vm, "disk statistics stop at %zu of %zu block devices (%d CPUs "
					 "each: the read budget)", i, n, cpus);
			break;
		}
		if (!read_bdev(k, l, inodes[i], cpus, &out[got]))
			got++;
	}
	free(inodes);
	sort_array(out, got, sizeof(*out), by_name);
	*ret_stats = out;
	*ret_count = got;
	return 0;
}
