// SPDX-License-Identifier: MIT
/*
 * TCP and UDP sockets, IPv4 and IPv6, as /proc/net/{tcp,tcp6,udp,udp6} list
 * them, from the kernel's own hash tables:
 *   tcp_hashinfo.lhash2[]  listening sockets, chained through
 *                          sock_common.skc_nulls_node (before Linux 5.19,
 *                          icsk_listen_portaddr_node: BTF tells)
 *   tcp_hashinfo.ehash[]   every other TCP socket (time-wait ones too),
 *                          chained through sock_common.skc_nulls_node
 *   udp_table.hash[]       UDP sockets, chained through sock_common.skc_node
 * "nulls" chains end in an odd marker instead of NULL. The owning process is
 * found from the other side: the socket inode named by an open descriptor.
 * Chains and tables are guest data: the whole view has one budget of reads
 * (MAX_STEPS) and of sockets (MAX_SOCKETS), table sizes and chain lengths are
 * capped, and a chain that breaks or does not end is left after what was
 * read, the others still walked: the view then says it is partial.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "core/util.h"
#include "os/linux/linux.h"

#define MAX_BUCKETS   (1u << 24)
#define MAX_CHAIN     65536
#define MAX_SOCKETS   (1u << 20)
#define MAX_STEPS     (1u << 24) /* bucket heads and chain links read, in all */
#define AF_INET_GUEST  2
#define AF_INET6_GUEST 10

struct socket_layout {
	struct kfield daddr, rcv_saddr, dport, num, family, state, v6_daddr, v6_rcv_saddr,
		nulls_node, node, sk_socket, listen_node, vfs_inode, i_ino;
	struct kfield ehash, ehash_mask, lhash2, lhash2_mask, lbucket_head, udp_hash, udp_mask,
		hslot_head;
	uint32_t ehash_bucket_bytes, lbucket_bytes, hslot_bytes;
	uint32_t common_span; /* the bytes of sock_common read_sock() uses */
	uint64_t tcp_hashinfo, udp_table;
};

struct socket_walk {
	struct linux_kernel *k;
	const struct socket_layout *l;
	struct vms_socket *socks;
	size_t n, cap;
	uint64_t steps;
	char partial[160]; /* the first thing left out, if any */
};

/* Note what was left out (the first cause is kept); returns ret. */
static int left_out(struct socket_walk *w, int ret, const char *what)
{
	if (!w->partial[0])
		snprintf(w->partial, sizeof(w->partial), "%s", what);
	return ret;
}

/* One more read of the view's budget; -E2BIG ends the whole walk. */
static int spend(struct socket_walk *w)
{
	if (++w->steps <= MAX_STEPS)
		return 0;
	return left_out(w, -E2BIG, "the socket tables take more reads than the view's budget");
}

static const char *const tcp_states[] = {
	"UNKNOWN",    "ESTABLISHED", "SYN_SENT", "SYN_RECV",   "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE",      "CLOSE_WAIT",  "LAST_ACK", "LISTEN",     "CLOSING",   "NEW_SYN_RECV",
};

#define COMMON_MAX 256

/* Where a member read as `bytes` bytes ends (kfield_get reads at most 8 of it). */
static uint32_t field_end(const struct kfield *f, uint32_t bytes)
{
	return f->offset + (bytes ? bytes : (f->size < 8 ? f->size : 8));
}

/* Every sock_common member read_sock() takes from its copy, within the copy. */
static int measure_common(struct linux_kernel *k, struct socket_layout *l)
{
	const struct {
		const struct kfield *f;
		uint32_t bytes;
	} used[] = {
		{ &l->family, 0 },   { &l->state, 0 },	 { &l->num, 0 },
		{ &l->dport, 2 },    { &l->daddr, 4 },	 { &l->rcv_saddr, 4 },
		{ &l->v6_daddr, 16 }, { &l->v6_rcv_saddr, 16 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(used); i++) {
		uint32_t end = field_end(used[i].f, used[i].bytes);

		if (end > COMMON_MAX)
			return vm_error(k->vm, -EPROTO,
					"the guest's BTF puts sock_common's addresses beyond %d bytes",
					COMMON_MAX);
		if (end > l->common_span)
			l->common_span = end;
	}
	return 0;
}

static int find_layout(struct linux_kernel *k, void *layout)
{
	struct socket_layout *l = layout;
	const struct kfield_want want[] = {
		{ &l->daddr, "sock_common", "skc_daddr" },
		{ &l->rcv_saddr, "sock_common", "skc_rcv_saddr" },
		{ &l->dport, "sock_common", "skc_dport" },
		{ &l->num, "sock_common", "skc_num" },
		{ &l->family, "sock_common", "skc_family" },
		{ &l->state, "sock_common", "skc_state" },
		{ &l->v6_daddr, "sock_common", "skc_v6_daddr" },
		{ &l->v6_rcv_saddr, "sock_common", "skc_v6_rcv_saddr" },
		{ &l->nulls_node, "sock_common", "skc_nulls_node" },
		{ &l->node, "sock_common", "skc_node" },
		{ &l->sk_socket, "sock", "sk_socket" },
		{ &l->vfs_inode, "socket_alloc", "vfs_inode" },
		{ &l->i_ino, "inode", "i_ino" },
		{ &l->ehash, "inet_hashinfo", "ehash" },
		{ &l->ehash_mask, "inet_hashinfo", "ehash_mask" },
		{ &l->lhash2, "inet_hashinfo", "lhash2" },
		{ &l->lhash2_mask, "inet_hashinfo", "lhash2_mask" },
		{ &l->lbucket_head, "inet_listen_hashbucket", "nulls_head" },
		{ &l->udp_hash, "udp_table", "hash" },
		{ &l->udp_mask, "udp_table", "mask" },
		{ &l->hslot_head, "udp_hslot", "head" },
	};

	if (kfields_require(k, want, ARRAY_SIZE(want)))
		return -ENOENT;
	if (measure_common(k, l))
		return -EPROTO;
	if (kbtf_member(k->btf, "inet_connection_sock", "icsk_listen_portaddr_node",
			&l->listen_node))
		l->listen_node = l->nulls_node;
	l->ehash_bucket_bytes = kbtf_size(k->btf, "inet_ehash_bucket");
	l->lbucket_bytes = kbtf_size(k->btf, "inet_listen_hashbucket");
	l->hslot_bytes = kbtf_size(k->btf, "udp_hslot");
	if (!l->ehash_bucket_bytes || !l->lbucket_bytes || !l->hslot_bytes)
		return vm_error(k->vm, -ENOENT, "the guest kernel's socket tables are unknown");
	if (ksym_require(k, "tcp_hashinfo", &l->tcp_hashinfo) ||
	    ksym_require(k, "udp_table", &l->udp_table))
		return -ENOENT;
	return 0;
}

static struct socket_layout *layout(struct linux_kernel *k)
{
	return linux_layout(k, &k->sockets_layout, sizeof(struct socket_layout), find_layout);
}

static void format_address(int family, const uint8_t *v4, const uint8_t *v6, char *out,
			   size_t len)
{
	if (family == AF_INET6_GUEST)
		inet_ntop(AF_INET6, v6, out, (socklen_t)len);
	else
		inet_ntop(AF_INET, v4, out, (socklen_t)len);
}

/* The sock_common at sk into *s; 1 if not an IPv4 or IPv6 socket. */
static int read_sock(struct linux_kernel *k, const struct socket_layout *l, uint64_t sk, int udp,
		     struct vms_socket *s)
{
	uint8_t common[COMMON_MAX];
	uint64_t family, state, sock = 0;
	uint16_t dport;

	if (kread(k, sk, common, l->common_span))
		return -EFAULT;
	family = kfield_get(&l->family, common);
	state = kfield_get(&l->state, common);
	if (family != AF_INET_GUEST && family != AF_INET6_GUEST)
		return 1;
	memset(s, 0, sizeof(*s));
	s->pid = -1;
	s->fd = -1;
	snprintf(s->protocol, sizeof(s->protocol), "%s%s", udp ? "udp" : "tcp",
		 family == AF_INET6_GUEST ? "6" : "");
	format_address((int)family, common + l->rcv_saddr.offset, common + l->v6_rcv_saddr.offset,
		       s->local_address, sizeof(s->local_address));
	format_address((int)family, common + l->daddr.offset, common + l->v6_daddr.offset,
		       s->remote_address, sizeof(s->remote_address));
	memcpy(&dport, common + l->dport.offset, 2);
	s->remote_port = ntohs(dport);
	s->local_port = (int)kfield_get(&l->num, common);
	snprintf(s->state, sizeof(s->state), "%s",
		 state < ARRAY_SIZE(tcp_states) ? tcp_states[state] : "UNKNOWN");
	s->sock = sk;
	/* Time-wait and request sockets are only a sock_common: no struct sock beyond. */
	if (state != 6 && state != 12 && !kread_u64(k, sk + l->sk_socket.offset, &sock) && sock)
		kread_u64(k, sock + l->vfs_inode.offset + l->i_ino.offset, &s->inode);
	return 0;
}

int linux_sock_read(struct linux_kernel *k, uint64_t sk, int udp, struct vms_socket *ret)
{
	const struct socket_layout *l = layout(k);
	int r;

	if (!l)
		return -ENOENT;
	r = read_sock(k, l, sk, udp, ret);
	return r > 0 ? -EAFNOSUPPORT : r;
}

/* Read the sock_common at sk; 0 if added, 1 if not a socket we list. */
static int add_socket(struct socket_walk *w, uint64_t sk, int udp)
{
	struct vms_socket *s, one;
	int r = read_sock(w->k, w->l, sk, udp, &one);

	if (r)
		return r;
	if (w->n == MAX_SOCKETS)
		return left_out(w, -E2BIG, "more sockets than the view lists");
	s = array_grow(w->socks, &w->cap, w->n, sizeof(*s));
	if (!s)
		return -ENOMEM;
	w->socks = s;
	w->socks[w->n++] = one;
	return 0;
}

/*
 * Walk one chain starting at first; member is where the chain node sits in
 * the socket. A chain that breaks or does not end is left there (0);
 * -E2BIG or -ENOMEM end the whole walk.
 */
static int walk_chain(struct socket_walk *w, uint64_t first, uint32_t member, int nulls, int udp)
{
	uint64_t node = first;

	for (uint32_t n = 0; node && !(nulls && (node & 1)); n++) {
		int err = spend(w);

		if (err)
			return err;
		if (n == MAX_CHAIN)
			return left_out(w, 0, "a socket hash chain does not end (cycle?)");
		err = add_socket(w, node - member, udp);
		if (err == -E2BIG || err == -ENOMEM)
			return err;
		if (err < 0)
			return left_out(w, 0, "a socket in a hash chain is unreadable");
		if (kread_u64(w->k, node, &node)) /* hlist node: next comes first */
			return left_out(w, 0, "a socket hash chain breaks");
	}
	return 0;
}

static int walk_table(struct socket_walk *w, uint64_t table, uint64_t buckets,
		      uint32_t bucket_bytes, uint32_t head_offset, uint32_t member, int nulls,
		      int udp)
{
	if (buckets > MAX_BUCKETS) {
		left_out(w, 0, "a socket hash table claims more buckets than any kernel has");
		buckets = MAX_BUCKETS;
	}
	for (uint64_t b = 0; b < buckets; b++) {
		uint64_t first = 0;
		int err = spend(w);

		if (err)
			return err;
		if (kread_u64(w->k, table + b * bucket_bytes + head_offset, &first))
			return left_out(w, 0, "a socket hash table is unreadable");
		err = walk_chain(w, first, member, nulls, udp);
		if (err)
			return err;
	}
	return 0;
}

static int walk_all(struct socket_walk *w)
{
	const struct socket_layout *l = w->l;
	uint64_t ehash = 0, lhash2 = 0, udp_hash = 0;
	uint32_t ehash_mask = 0, lhash2_mask = 0, udp_mask = 0;
	int err;

	if (kread_u64(w->k, l->tcp_hashinfo + l->ehash.offset, &ehash) ||
	    kread_u32(w->k, l->tcp_hashinfo + l->ehash_mask.offset, &ehash_mask) ||
	    kread_u64(w->k, l->tcp_hashinfo + l->lhash2.offset, &lhash2) ||
	    kread_u32(w->k, l->tcp_hashinfo + l->lhash2_mask.offset, &lhash2_mask) ||
	    kread_u64(w->k, l->udp_table + l->udp_hash.offset, &udp_hash) ||
	    kread_u32(w->k, l->udp_table + l->udp_mask.offset, &udp_mask))
		return vm_error(w->k->vm, -EFAULT, "the socket hash tables are unreadable");
	err = walk_table(w, lhash2, (uint64_t)lhash2_mask + 1, l->lbucket_bytes,
			 l->lbucket_head.offset, l->listen_node.offset, 1, 0);
	if (!err)
		err = walk_table(w, ehash, (uint64_t)ehash_mask + 1, l->ehash_bucket_bytes, 0,
				 l->nulls_node.offset, 1, 0);
	if (!err)
		err = walk_table(w, udp_hash, (uint64_t)udp_mask + 1, l->hslot_bytes,
				 l->hslot_head.offset, l->node.offset, 0, 1);
	if (err == -ENOMEM)
		return vm_error(w->k->vm, err, "out of memory");
	return 0; /* -E2BIG: the budget ended the walk, what was read stands */
}

static int by_inode(const void *a, const void *b)
{
	const struct vms_socket *x = *(const struct vms_socket *const *)a;
	const struct vms_socket *y = *(const struct vms_socket *const *)b;

	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* Where the first socket with this inode is (or would be) in the sorted index. */
static size_t lower_bound(struct vms_socket *const *index, size_t n, uint64_t inode)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (index[mid]->inode < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Owners: the descriptors whose path names the socket's inode (n log n). */
static void find_owners(struct vms_vm *vm, struct vms_socket *socks, size_t n)
{
	struct vms_open_file *files = NULL;
	struct vms_socket **index;
	size_t nfiles = 0;

	if (!n || vms_os_open_files(vm, -1, &files, &nfiles))
		return; /* sockets without owners are still sockets */
	index = malloc(n * sizeof(*index));
	for (size_t i = 0; index && i < n; i++)
		index[i] = &socks[i];
	if (index)
		qsort(index, n, sizeof(*index), by_inode);
	for (size_t f = 0; index && f < nfiles; f++) {
		uint64_t inode = files[f].inode;

		if (!inode || strncmp(files[f].path, "socket:[", 8))
			continue;
		/* Each socket with this inode gets the first descriptor naming it. */
		for (size_t i = lower_bound(index, n, inode); i < n && index[i]->inode == inode;
		     i++) {
			if (index[i]->pid < 0) {
				index[i]->pid = files[f].pid;
				index[i]->fd = files[f].fd;
			}
		}
	}
	free(index);
	vms_open_files_free(files, nfiles);
}

int vms_os_sockets(struct vms_vm *vm, struct vms_socket **ret_socks, size_t *ret_count)
{
	struct socket_walk w = { 0 };
	int err = linux_kernel_get(vm, &w.k);

	if (err)
		return err;
	w.l = layout(w.k);
	if (!w.l)
		return -ENOENT;
	err = walk_all(&w);
	if (err) {
		free(w.socks);
		return err;
	}
	find_owners(vm, w.socks, w.n); /* a view of its own: it resets the warning */
	if (w.partial[0])
		view_partial(vm, "%s: %zu sockets listed", w.partial, w.n);
	*ret_socks = w.socks;
	*ret_count = w.n;
	return 0;
}
