/* SPDX-License-Identifier: MIT */
/*
 * The Linux monitoring driver's internal interface.
 *
 * Discovery (kernel.c) finds, from guest RAM alone: the vmcoreinfo note
 * (vmcoreinfo.c), the kernel's own page tables and KASLR placement, every
 * symbol (kallsyms.c, decoding the kernel's compressed tables) and every type
 * (btf.c, the kernel's .BTF section through libbpf). Views read kernel
 * structures with offsets found by name in BTF, never with constants.
 */
#ifndef VMSCOPE_OS_LINUX_H
#define VMSCOPE_OS_LINUX_H

#include <stddef.h>
#include <stdint.h>

struct vms_vm;
struct btf;

/* -- the banner ----------------------------------------------------------- */

/*
 * If buf (len bytes) starts with a well-formed kernel banner
 * ("Linux version RELEASE (...) ... #N ...\n\0"), return its length without
 * the newline; otherwise 0.
 */
size_t linux_banner_length(const char *buf, size_t len);

/* -- vmcoreinfo ----------------------------------------------------------- */

/*
 * Call fn(text, gpa, ctx) for each vmcoreinfo-like note in RAM, lowest address
 * first, until fn returns non-zero (returned). At most a bounded number are
 * tried; 0 if there were none, -ENOENT if fn took none of them.
 */
typedef int (*vmcoreinfo_fn)(const char *text, uint64_t gpa, void *ctx);
int vmcoreinfo_each(struct vms_vm *vm, vmcoreinfo_fn fn, void *ctx);
/* The note at gpa, if a well-formed one is there; *ret_text is malloc'ed. */
int vmcoreinfo_at(struct vms_vm *vm, uint64_t gpa, char **ret_text);
int vmcoreinfo_symbol(const char *text, const char *name, uint64_t *ret);
int vmcoreinfo_number(const char *text, const char *name, int64_t *ret);
int vmcoreinfo_string(const char *text, const char *key, char *buf, size_t len);

/* -- kallsyms ------------------------------------------------------------- */

struct ksym {
	const char *name;
	uint64_t addr;
	char type; /* nm-style: T, t, D, d, B, ... */
};

struct kallsyms {
	struct ksym *syms; /* in the kernel's order */
	size_t nr_syms;
	char *names;	   /* every name, NUL-terminated, back to back */
	uint32_t *hash;	   /* open addressing over syms, by name; 0 = empty, else index + 1 */
	size_t hash_size;
};

/*
 * How kallsyms_offsets encodes addresses. Kernels up to 6.x keep 32-bit
 * offsets from kallsyms_relative_base, read either plainly or in x86's
 * "absolute per-CPU" form; 6.15 and later keep each offset relative to its own
 * slot in the table (there is no kallsyms_relative_base).
 */
enum kallsyms_encoding {
	KALLSYMS_ENCODING_UNKNOWN = 0, /* choose: by the check symbol, else by order */
	KALLSYMS_ABSOLUTE_PERCPU,
	KALLSYMS_BASE_RELATIVE,
	KALLSYMS_PC_RELATIVE,
};

/* Where the kernel's tables are: addresses for the read function given with them. */
struct kallsyms_tables {
	uint64_t num_syms, names, token_table, token_index, offsets;
	uint64_t relative_base;	  /* 0: none (PC-relative offsets) */
	uint64_t check_addr;	  /* a symbol's address known otherwise (vmcoreinfo) ... */
	const char *check_name;	  /* ... and its name, to choose the address encoding */
	uint64_t offsets_va;	  /* PC-relative: kallsyms_offsets' virtual address (0 if not
				   * yet known: addresses are then relative to it) */
	enum kallsyms_encoding encoding; /* set by kallsyms_load when it chose */
	uint64_t names_len;	  /* 0: up to whichever table follows the names */
};

/*
 * Find the tables by their own structure in guest-physical RAM (no
 * vmcoreinfo): the token table and its index, the markers, the names with
 * their count, the offsets, with the token table in guest-physical [low, high)
 * (where the kernel image is, when that is known). Addresses in *ret are
 * guest-physical. Tries at most a bounded number of candidates; -ENOENT if
 * none is whole.
 */
int kallsyms_search(struct vms_vm *vm, uint64_t low, uint64_t high, struct kallsyms_tables *ret,
		    char *errbuf, size_t len);

typedef int (*kread_fn)(void *ctx, uint64_t va, void *buf, size_t len);

/* Decode the tables (t->encoding says, after, which encoding it was); errbuf says why on
 * failure. */
int kallsyms_load(struct kallsyms *ks, struct kallsyms_tables *t, kread_fn read, void *ctx,
		  char *errbuf, size_t errbuf_len);
void kallsyms_release(struct kallsyms *ks);
/* Build the name index over ks->syms (done by kallsyms_load). */
int kallsyms_index(struct kallsyms *ks);
/* The symbol's address, or 0 when the kernel has no such symbol. */
uint64_t kallsyms_lookup(const struct kallsyms *ks, const char *name);
/* Add delta to every address: PC-relative tables decoded before their place was known. */
void kallsyms_rebase(struct kallsyms *ks, uint64_t delta);
/* Where the symbol at addr ends: the next symbol's address (0 if none follows). */
uint64_t kallsyms_end(const struct kallsyms *ks, uint64_t addr);

/* -- BTF ------------------------------------------------------------------ */

/* Where a member lies: byte offset and size; bit_size is 0 unless a bitfield. */
struct kfield {
	uint32_t offset, size;
	uint32_t bit_offset, bit_size;
	int found;
};

/*
 * Find "member" of struct or union "type", looking through anonymous
 * structs and unions; a dotted path ("uid.val") descends into embedded
 * structs. -ENOENT when the kernel has no such member, -EPROTO when its BTF
 * puts it outside the struct (or the struct is implausibly large): every
 * offset and size returned lies within sizeof(struct type).
 */
int kbtf_member(const struct btf *btf, const char *type, const char *path, struct kfield *ret);
/* sizeof(struct type), or 0 when unknown. */
uint32_t kbtf_size(const struct btf *btf, const char *type);
/* The value of an enumerator (enum node_stat_item's NR_ACTIVE_FILE, ...). */
int kbtf_enum_value(const struct btf *btf, const char *name, int64_t *ret);

/* -- the kernel ----------------------------------------------------------- */


struct linux_kernel {
	struct vms_vm *vm;
	uint64_t root;		/* physical address of init_top_pgt */
	int levels;		/* 4 or 5 */
	int64_t phys_base;
	uint64_t kaslr_offset;
	char release[65];
	int from_cache;		/* discovered from the per-build cache, not a scan */
	/* Where the kallsyms names and offsets lie (virtual), to bind cache entries to them. */
	uint64_t names_va, names_len, offsets_va, offsets_len;
	struct kallsyms ksyms;
	struct btf *btf;
	/* What each view found in BTF, computed on its first use (linux_layout()). */
	void *tasks_layout, *modules_layout, *sysinfo_layout, *path_layout, *dmesg_layout,
		*files_layout, *mounts_layout, *sockets_layout, *probes_layout,
		*crosscheck_layout, *stats_layout, *netdev_layout;
};

/* The per-build discovery cache (cache.c). */
int linux_cache_load(struct linux_kernel *k, const char *dir);
void linux_cache_store(struct linux_kernel *k, const char *dir, const char *banner);

/* Find and verify the kernel in k->vm's RAM (discover.c); the error is set on the VM. */
int linux_discover(struct linux_kernel *k);

/* Discover the kernel (once per handle); -ENOENT etc. with the error set on vm. */
int linux_kernel_get(struct vms_vm *vm, struct linux_kernel **ret);
void linux_kernel_free(void *kernel);
/* Drop what the views found in BTF (they find it again on their next use). */
void linux_layouts_forget(struct linux_kernel *k);

/*
 * Do the page tables at k->root map _text and linux_banner where vCPU 0's own
 * CR3 does? 0 if so, or when there is no CPU to ask; -EPROTO if not.
 */
int linux_check_cpu_mapping(struct linux_kernel *k);

/* Where the kernel image is mapped (__START_KERNEL_map and the 1 GiB after it). */
#define LINUX_IMAGE_LOW	 0xffffffff80000000ull
#define LINUX_IMAGE_HIGH 0xffffffffc0000000ull

/* The VA in the image's range where the tables at k->root map gpa; -ENOENT if none. */
int linux_image_va(struct linux_kernel *k, uint64_t gpa, uint64_t *ret_va);

/*
 * Internal flag of vms_os_processes, beside VMS_PS_*: leave cmdline NULL
 * (for a stop that must be short, or a caller that does not print them).
 */
#define LINUX_PS_NO_CMDLINE (1u << 31)

/* netdev.c keeps a module's BTF in its layout. */
void linux_netdev_layout_free(void *layout);

/* CLOCK_MONOTONIC at the timekeeper's last update (ktime_get() then), in ns. */
int linux_monotonic_ns(struct linux_kernel *k, uint64_t *ret);

/* Read kernel virtual memory through init_top_pgt. */
int kread(struct linux_kernel *k, uint64_t va, void *buf, size_t len);
int kread_u64(struct linux_kernel *k, uint64_t va, uint64_t *ret);
int kread_u32(struct linux_kernel *k, uint64_t va, uint32_t *ret);
/* A NUL-terminated string of at most len - 1 bytes; always terminated. */
int kread_string(struct linux_kernel *k, uint64_t va, char *buf, size_t len);

/* Symbol or member lookups that must succeed: the error names what is missing. */
int ksym_require(struct linux_kernel *k, const char *name, uint64_t *ret);
int kfield_require(struct linux_kernel *k, const char *type, const char *path,
		   struct kfield *ret);

/* The path of dentry in mount, as d_path() would give it; 0 or -errno. */
int linux_path(struct linux_kernel *k, uint64_t mount, uint64_t dentry, char *buf, size_t len);
/* The struct mount around a struct vfsmount (0 if the layout is unknown). */
uint64_t linux_mount_of_vfsmount(struct linux_kernel *k, uint64_t vfsmount);

/* One member a view needs: where to put it, and its struct and path. */
struct kfield_want {
	struct kfield *field;
	const char *type, *path;
};

/* kfield_require() for each; the first missing one is the error. */
int kfields_require(struct linux_kernel *k, const struct kfield_want *want, size_t count);

/*
 * A view's layout (what it found in BTF), computed by find on first use and
 * kept in *slot until the kernel is freed. NULL (error set) if find fails.
 */
void *linux_layout(struct linux_kernel *k, void **slot, size_t size,
		   int (*find)(struct linux_kernel *k, void *layout));

/* Read a field of a structure already copied into a buffer. */
uint64_t kfield_get(const struct kfield *f, const void *obj);

/* One task or module at a kernel address, as the views decode them (tracing; a task's
 * cmdline is left NULL). */
struct vms_process;
struct vms_module;
struct vms_socket;
int linux_task_read(struct linux_kernel *k, uint64_t addr, struct vms_process *ret);
int linux_module_read(struct linux_kernel *k, uint64_t addr, struct vms_module *ret);
int linux_module_find(struct linux_kernel *k, const char *name, uint64_t *ret_addr);
/* The struct sock at sk (TCP unless udp): addresses, ports, state, inode. */
int linux_sock_read(struct linux_kernel *k, uint64_t sk, int udp, struct vms_socket *ret);
/* The task running on the CPU whose per-CPU area starts at gs_base (kernel mode). */
int linux_current_task(struct linux_kernel *k, uint64_t gs_base, uint64_t *ret);

#endif
