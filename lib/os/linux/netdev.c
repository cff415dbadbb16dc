// SPDX-License-Identifier: MIT
/*
 * Traffic per network interface, as dev_get_stats() adds it up for
 * /proc/net/dev. Interfaces are init_net's dev_base_head list. The counters
 * are the driver's own:
 *   loopback     per-CPU pcpu_lstats (packets and bytes, rx = tx)
 *   virtio_net   each queue pair's send_queue and receive_queue stats, in
 *                the driver's private data after the net_device; their
 *                layout is in the virtio_net module's own BTF (split BTF
 *                over the kernel's), as the kernel keeps it in btf_modules
 * An interface's driver is its parent device's driver. Every list and
 * count is the guest's and is bounded.
 */
#include <bpf/btf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "os/linux/linux.h"
#include "os/linux/list.h"

#define MAX_NETDEVS   4096
#define MAX_QUEUES    1024
#define MAX_CPUS      8192
#define MAX_MOD_BTF   (8u << 20)
#define MAX_MOD_BTFS  65536
#define IFF_LOOPBACK  0x8
/* Per-CPU and per-queue reads in all (4,096 interfaces on 8,192 CPUs would be 64 M). */
#define MAX_READS     (256u << 10)
#define NETDEV_ALIGN  32

struct virtio_layout {
	struct btf *btf; /* the module's, split over the kernel's */
	uint64_t btf_data;
	struct kfield sq, rq, max_pairs, sq_packets, sq_bytes, rq_packets, rq_bytes;
	uint32_t sq_bytes_each, rq_bytes_each;
};

struct netdev_layout {
	uint64_t init_net, per_cpu_offset, nr_cpu_ids;
	struct kfield base_head, dev_list, name, flags, lstats, parent, driver, driver_name, dev;
	struct kfield lstats_packets, lstats_bytes, priv;
	uint64_t btf_modules; /* 0: no module BTF (before 5.11) */
	struct kfield bm_list, bm_module, bm_btf, btf_data, btf_size;
	uint32_t netdev_bytes;
	struct virtio_layout virtio;
};

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct netdev_layout *l = layout;
	const struct kfield_want want[] = {
		{ &l->base_head, "net", "dev_base_head" },
		{ &l->dev_list, "net_device", "dev_list" },
		{ &l->name, "net_device", "name" },
		{ &l->flags, "net_device", "flags" },
		{ &l->dev, "net_device", "dev" },
		{ &l->parent, "device", "parent" },
		{ &l->driver, "device", "driver" },
		{ &l->driver_name, "device_driver", "name" },
	};

	if (ksym_require(k, "init_net", &l->init_net) ||
	    ksym_require(k, "__per_cpu_offset", &l->per_cpu_offset) ||
	    ksym_require(k, "nr_cpu_ids", &l->nr_cpu_ids) ||
	    kfields_require(k, want, ARRAY_SIZE(want)))
		return -ENOENT;
	l->netdev_bytes = kbtf_size(k->btf, "net_device");
	if (!l->netdev_bytes)
		return vm_error(k->vm, -ENOENT, "the guest kernel has no struct net_device");
	kbtf_member(k->btf, "net_device", "lstats", &l->lstats);
	kbtf_member(k->btf, "pcpu_lstats", "packets", &l->lstats_packets);
	kbtf_member(k->btf, "pcpu_lstats", "bytes", &l->lstats_bytes);
	kbtf_member(k->btf, "net_device", "priv", &l->priv); /* 6.12 on: a flexible array */
	l->btf_modules = kallsyms_lookup(&k->ksyms, "btf_modules");
	if (kbtf_member(k->btf, "btf_module", "list", &l->bm_list) ||
	    kbtf_member(k->btf, "btf_module", "module", &l->bm_module) ||
	    kbtf_member(k->btf, "btf_module", "btf", &l->bm_btf) ||
	    kbtf_member(k->btf, "btf", "data", &l->btf_data) ||
	    kbtf_member(k->btf, "btf", "data_size", &l->btf_size))
		l->btf_modules = 0;
	return 0;
}

void linux_netdev_layout_free(void *layout)
{
	struct netdev_layout *l = layout;

	if (l)
		btf__free(l->virtio.btf);
	free(l);
}

static struct netdev_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->netdev_layout, sizeof(struct netdev_layout), find_layout);
}

/*
 * A module's BTF over the kernel's. libbpf 1.1 (bookworm) parses split BTF
 * only from a file, so the blob goes through a memfd.
 */
static struct btf *split_btf(const uint8_t *blob, uint32_t size, struct btf *base)
{
	struct btf *btf = NULL;
	char path[64];
	int fd = memfd_create("vmscope-btf", MFD_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (write(fd, blob, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		btf = btf__parse_raw_split(path, base); /* NULL on error (libbpf 1.0 on) */
	}
	close(fd);
	return btf;
}

/*
 * Where a module's BTF is: struct module's btf_data is cleared once the
 * module is up (the section is freed with the load image); the kernel's
 * parsed copy stays in btf_modules (5.11 on), its raw data beside it.
 */
static int module_btf(struct linux_kernel *k, const struct netdev_layout *l, uint64_t mod,
		      uint64_t *ret_data, uint32_t *ret_size)
{
	uint64_t node, owner = 0, btf = 0;
	struct list_walk w;

	if (!l->btf_modules || list_walk_start(&w, k, l->btf_modules, MAX_MOD_BTFS))
		return -ENOENT;
	while (list_walk_next(&w, &node) > 0) {
		uint64_t entry = node - l->bm_list.offset;

		if (kread_u64(k, entry + l->bm_module.offset, &owner) || owner != mod ||
		    kread_u64(k, entry + l->bm_btf.offset, &btf) || !btf)
			continue;
		if (kread_u64(k, btf + l->btf_data.offset, ret_data) ||
		    kread_u32(k, btf + l->btf_size.offset, ret_size) || !*ret_data || !*ret_size ||
		    *ret_size > MAX_MOD_BTF)
			return -ENOENT;
		return 0;
	}
	return -ENOENT;
}

/* virtio_net's structures from its module's BTF; kept while the module stays the same. */
static int virtio_layout(struct linux_kernel *k, struct netdev_layout *l)
{
	struct virtio_layout *v = &l->virtio;
	uint64_t mod, data = 0;
	uint32_t size = 0;
	uint8_t *blob;

	if (linux_module_find(k, "virtio_net", &mod) || module_btf(k, l, mod, &data, &size))
		return -ENOENT;
	if (v->btf && v->btf_data == data)
		return 0;
	btf__free(v->btf);
	memset(v, 0, sizeof(*v));
	blob = malloc(size);
	if (!blob)
		return -ENOMEM;
	if (!kread(k, data, blob, size))
		v->btf = split_btf(blob, size, k->btf);
	free(blob);
	if (!v->btf || kbtf_member(v->btf, "virtnet_info", "sq", &v->sq) ||
	    kbtf_member(v->btf, "virtnet_info", "rq", &v->rq) ||
	    kbtf_member(v->btf, "virtnet_info", "max_queue_pairs", &v->max_pairs) ||
	    kbtf_member(v->btf, "send_queue", "stats.packets", &v->sq_packets) ||
	    kbtf_member(v->btf, "send_queue", "stats.bytes", &v->sq_bytes) ||
	    kbtf_member(v->btf, "receive_queue", "stats.packets", &v->rq_packets) ||
	    kbtf_member(v->btf, "receive_queue", "stats.bytes", &v->rq_bytes) ||
	    !(v->sq_bytes_each = kbtf_size(v->btf, "send_queue")) ||
	    !(v->rq_bytes_each = kbtf_size(v->btf, "receive_queue"))) {
		btf__free(v->btf);
		memset(v, 0, sizeof(*v));
		return -ENOENT;
	}
	v->btf_data = data;
	return 0;
}

static uint64_t priv_of(const struct netdev_layout *l, uint64_t dev)
{
	if (l->priv.found)
		return dev + l->priv.offset;
	return dev + ((l->netdev_bytes + NETDEV_ALIGN - 1) & ~(uint64_t)(NETDEV_ALIGN - 1));
}

static int cpus_of(struct linux_kernel *k, const struct netdev_layout *l)
{
	uint32_t n = 0;

	kread_u32(k, l->nr_cpu_ids, &n);
	return n > MAX_CPUS ? MAX_CPUS : (int)n;
}

static int read_loopback(struct linux_kernel *k, const struct netdev_layout *l, uint64_t dev,
			 struct vms_net_stats *s)
{
	uint64_t lstats = 0;

	if (!l->lstats.found || !l->lstats_packets.found ||
	    kread_u64(k, dev + l->lstats.offset, &lstats) || !lstats)
		return -ENOENT;
	for (int cpu = 0; cpu < cpus_of(k, l); cpu++) {
		uint64_t off, packets = 0, bytes = 0;

		if (kread_u64(k, l->per_cpu_offset + 8 * (uint64_t)cpu, &off))
			continue;
		kread_u64(k, lstats + off + l->lstats_packets.offset, &packets);
		kread_u64(k, lstats + off + l->lstats_bytes.offset, &bytes);
		s->rx_packets += packets;
		s->rx_bytes += bytes;
	}
	s->tx_packets = s->rx_packets;
	s->tx_bytes = s->rx_bytes;
	return 0;
}

static int read_virtio(struct linux_kernel *k, struct netdev_layout *l, uint64_t dev,
		       struct vms_net_stats *s)
{
	const struct virtio_layout *v = &l->virtio;
	uint64_t vi = priv_of(l, dev), sq = 0, rq = 0;
	uint16_t pairs = 0;

	if (virtio_layout(k, l) || kread_u64(k, vi + v->sq.offset, &sq) ||
	    kread_u64(k, vi + v->rq.offset, &rq) ||
	    kread(k, vi + v->max_pairs.offset, &pairs, sizeof(pairs)) || !sq || !rq)
		return -ENOENT;
	for (uint16_t i = 0; i < pairs && i < MAX_QUEUES; i++) {
		uint64_t t = sq + (uint64_t)i * v->sq_bytes_each, r = rq + (uint64_t)i * v->rq_bytes_each;
		uint64_t x = 0;

		if (!kread_u64(k, t + v->sq_packets.offset, &x))
			s->tx_packets += x;
		if (!kread_u64(k, t + v->sq_bytes.offset, &x))
			s->tx_bytes += x;
		if (!kread_u64(k, r + v->rq_packets.offset, &x))
			s->rx_packets += x;
		if (!kread_u64(k, r + v->rq_bytes.offset, &x))
			s->rx_bytes += x;
	}
	return 0;
}

/* The interface's parent device's driver, "" when it has none (virtual devices). */
static void driver_of(struct linux_kernel *k, const struct netdev_layout *l, uint64_t dev,
		      char *buf, size_t len)
{
	uint64_t parent = 0, driver = 0, name = 0;

	buf[0] = '\0';
	if (!kread_u64(k, dev + l->dev.offset + l->parent.offset, &parent) && parent &&
	    !kread_u64(k, parent + l->driver.offset, &driver) && driver &&
	    !kread_u64(k, driver + l->driver_name.offset, &name) && name)
		kread_string(k, name, buf, len);
}

static void read_one(struct linux_kernel *k, struct netdev_layout *l, uint64_t dev,
		     struct vms_net_stats *s)
{
	uint32_t flags = 0;

	kread_string(k, dev + l->name.offset, s->name, sizeof(s->name));
	kread_u32(k, dev + l->flags.offset, &flags);
	if (flags & IFF_LOOPBACK) {
		snprintf(s->driver, sizeof(s->driver), "loopback");
		s->counted = !read_loopback(k, l, dev, s);
		return;
	}
	driver_of(k, l, dev, s->driver, sizeof(s->driver));
	if (!strcmp(s->driver, "virtio_net"))
		s->counted = !read_virtio(k, l, dev, s);
}

int vms_os_net_stats(struct vms_vm *vm, struct vms_net_stats **ret_stats, size_t *ret_count)
{
	struct vms_net_stats *out;
	struct netdev_layout *l;
	struct linux_kernel *k;
	uint64_t *devs = NULL;
	size_t n = 0;
	int err = linux_kernel_get(vm, &k);

	if (err)
		return err;
	view_begin(vm);
	l = layout(k);
	if (!l)
		return -ENOENT;
	err = list_collect(k, l->init_net + l->base_head.offset, l->dev_list.offset, MAX_NETDEVS,
			   &devs, &n);
	if (err == -ENOMEM || (err == -EFAULT && !devs)) {
		free(devs);
		return vm_error(vm, err, err == -ENOMEM ? "out of memory"
						       : "the guest's network interfaces are unreadable");
	}
	if (err)
		view_partial(vm, "the list of network interfaces %s: %zu read",
			     err == -ELOOP ? "does not end" : "breaks", n);
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out) {
		free(devs);
		return vm_error(vm, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if ((uint64_t)(i + 1) * (uint64_t)(cpus_of(k, l) > MAX_QUEUES ? cpus_of(k, l)
									  : MAX_QUEUES) * 4 >
		    MAX_READS) {
			view_partial(vm, "interface statistics stop at %zu of %zu interfaces (the "
					 "read budget)", i, n);
			n = i;
			break;
		}
		read_one(k, l, devs[i], &out[i]);
	}
	free(devs);
	*ret_stats = out;
	*ret_count = n;
	return 0;
}
