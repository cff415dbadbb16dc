/* SPDX-License-Identifier: MIT */
/*
 * vmscope: what operating system runs inside the VM, and what it knows of
 * itself: processes, modules, system figures.
 *
 * Everything is read from guest RAM; nothing runs in the guest. For Linux the
 * first view discovers the kernel (vmcoreinfo, kallsyms, BTF, all in RAM: no
 * profile to build) and keeps what it learned on the handle. Guest data is
 * untrusted: every walk is bounded; a view fails as a whole (with
 * vms_last_error) only when its anchor is unreadable, and otherwise skips
 * or marks the entries it cannot read.
 *
 * The VM keeps running while a view reads it, so a view of a busy VM may mix
 * instants; call vms_vm_pause() around it for one consistent instant.
 */
#ifndef VMSCOPE_OS_H
#define VMSCOPE_OS_H

#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMS_BANNER_MAX 512

struct vms_os_ident {
	char os[16];		     /* "linux" */
	char release[65];	     /* e.g. "6.1.0-56-cloud-amd64" */
	char banner[VMS_BANNER_MAX]; /* the kernel's banner, without its newline */
	uint64_t banner_gpa;	     /* where the banner was read */
};

/*
 * Find the kernel's banner in guest RAM. Returns -ENOENT when no banner is
 * found (no Linux kernel, or not booted yet).
 */
int vms_os_identify(struct vms_vm *vm, struct vms_os_ident *ret_ident);

struct vms_kernel_info {
	char release[65];
	uint64_t kaslr_offset;	  /* virtual KASLR slide */
	uint64_t page_table_root; /* physical address of init_top_pgt */
	int paging_levels;
	size_t symbols;		  /* decoded from kallsyms */
	int from_cache;		  /* found through the per-build cache, without a RAM scan */
};

/*
 * Discover the guest kernel (once per handle) and say what was found. What a
 * first discovery of a kernel build learns is kept in a per-build cache
 * ($VMSCOPE_KERNEL_CACHE, or $VMSCOPE_CACHE/kernels, or
 * ~/.cache/vmscope/kernels; VMSCOPE_KERNEL_CACHE= turns it off), so the next
 * attach to any VM running that build needs no scan of its RAM.
 */
int vms_linux_kernel(struct vms_vm *vm, struct vms_kernel_info *ret_info);

/* The address of a guest kernel symbol; -ENOENT when there is none. */
int vms_linux_symbol(struct vms_vm *vm, const char *name, uint64_t *ret_addr);

/* -- processes -- */

#define VMS_COMM_MAX 64

struct vms_process {
	int pid;		 /* the thread's id (the process id unless VMS_PS_THREADS) */
	int tgid;		 /* the process id */
	int ppid;		 /* the parent's process id */
	uint32_t uid, gid;	 /* real ids */
	char comm[VMS_COMM_MAX]; /* as /proc/PID/stat: kernel threads by their full name,
				    workqueue workers with their current "+desc" or last "-desc" */
	char state;		 /* as ps: R S D T t X Z P I */
	uint64_t start_time_ns;	 /* since boot (CLOCK_BOOTTIME) */
	int threads;		 /* in its thread group */
	int kernel_thread;
	char *cmdline;		 /* arguments joined by spaces; "" for kernel threads;
				    NULL when the process's memory could not be read */
	uint64_t task;		 /* address of its task_struct */
};

#define VMS_PS_THREADS 1u /* one entry per thread instead of per process */

/* Every process (or thread) of the guest; free the array with vms_processes_free(). */
int vms_os_processes(struct vms_vm *vm, unsigned int flags, struct vms_process **ret_procs,
		     size_t *ret_count);
void vms_processes_free(struct vms_process *procs, size_t count);

/* -- hidden processes (cross-view) -- */

enum vms_process_source {
	VMS_SOURCE_TASK_LIST = 1 << 0, /* init_task.tasks: what ps and /proc walk */
	VMS_SOURCE_RUN_QUEUE = 1 << 1, /* running on a CPU (rq->curr, as its group's leader) */
	VMS_SOURCE_MEMORY = 1 << 2,    /* a task_struct in RAM that its own thread group lists */
	VMS_SOURCE_PID_IDR = 1 << 3,   /* init_pid_ns's IDR: the pid lookups /proc and kill() use */
};

struct vms_seen_process {
	int pid, tgid;
	char comm[16];
	uint64_t task;	      /* address of its task_struct */
	unsigned int sources; /* enum vms_process_source bits */
};

/*
 * Every process (thread group leader) that any source shows, with the
 * sources that show it: one without VMS_SOURCE_TASK_LIST is hidden from the
 * task list (a rootkit's unlinking). *ret_seen is malloc'ed (free()).
 */
int vms_os_cross_check(struct vms_vm *vm, struct vms_seen_process **ret_seen, size_t *ret_count);

/* -- kernel modules -- */

struct vms_module {
	char name[64];
	uint64_t base;	/* where its code starts */
	uint64_t size;	/* bytes, as /proc/modules counts them */
	int refcount;
	char state[12]; /* Live, Loading, Unloading, Unformed */
};

/* Loaded modules, newest first as /proc/modules lists them; free(*ret_mods). */
int vms_os_modules(struct vms_vm *vm, struct vms_module **ret_mods, size_t *ret_count);

/* -- open files -- */

struct vms_open_file {
	int pid;
	int fd;
	char *path;	  /* as /proc/PID/fd shows it: a path, or socket:[INODE], pipe:[INODE],
			     anon_inode:NAME; owned by the array (vms_open_files_free) */
	uint64_t inode;
	uint32_t flags;	  /* open(2) flags */
	uint64_t pos;	  /* file offset */
	uint64_t file;	  /* address of its struct file */
	uint64_t private_data; /* for sockets: the struct socket */
};

/* Open descriptors of every process (pid < 0) or of one; free with vms_open_files_free(). */
int vms_os_open_files(struct vms_vm *vm, int pid, struct vms_open_file **ret_files,
		      size_t *ret_count);
void vms_open_files_free(struct vms_open_file *files, size_t count);

/* -- sockets -- */

struct vms_socket {
	char protocol[8];	   /* tcp, tcp6, udp, udp6 (as the /proc/net file that lists it) */
	char local_address[48];	   /* text: 127.0.0.1, ::, ::ffff:127.0.0.1 */
	int local_port;
	char remote_address[48];
	int remote_port;
	char state[16];		   /* LISTEN, ESTABLISHED, TIME_WAIT, ... (UDP: CLOSE, ESTABLISHED) */
	uint64_t inode;		   /* 0 for time-wait and request sockets */
	int pid, fd;		   /* an owning process and descriptor, or -1 */
	uint64_t sock;		   /* address of its struct sock */
};

/* TCP and UDP sockets, IPv4 and IPv6; free(*ret_socks). */
int vms_os_sockets(struct vms_vm *vm, struct vms_socket **ret_socks, size_t *ret_count);

/* -- mounts -- */

struct vms_mount {
	char device[256];
	char mountpoint[4096];
	char fstype[64];
	int read_only;
	char uuid[40]; /* the filesystem's UUID as its kernel keeps it (super_block.s_uuid); "" none */
};

/* Mounts of init's namespace, in /proc/mounts order; free(*ret_mounts). */
int vms_os_mounts(struct vms_vm *vm, struct vms_mount **ret_mounts, size_t *ret_count);

/* -- kernel log -- */

struct vms_log_record {
	uint64_t seq;	/* the kernel's sequence number */
	uint64_t ts_ns; /* since boot, as dmesg's [seconds.micros] */
	int level;	/* 0 (emerg) to 7 (debug) */
	int facility;
	char *text;	/* without a trailing newline; may hold newlines */
};

/* The records in the printk ring buffer, oldest first. */
int vms_os_dmesg(struct vms_vm *vm, struct vms_log_record **ret_recs, size_t *ret_count);
void vms_log_records_free(struct vms_log_record *recs, size_t count);

/* -- system figures -- */

struct vms_sysinfo {
	char release[65];
	double uptime_s;
	double load[3];		   /* 1, 5 and 15 minutes */
	uint64_t mem_total_bytes;
	uint64_t mem_free_bytes;
	uint64_t mem_available_bytes; /* as /proc/meminfo's MemAvailable */
	uint64_t tasks;		   /* threads in the system */
	uint64_t context_switches; /* since boot */
	uint64_t forks;		   /* since boot */
	int cpus;		   /* possible CPUs */
};

int vms_os_sysinfo(struct vms_vm *vm, struct vms_sysinfo *ret_info);

/*
 * CPU time per possible CPU, in ns, as /proc/stat counts it (its cpuN
 * lines are these divided by 10,000,000): idle and iowait from the tickless
 * idle accounting where the kernel keeps it, up to the timekeeper's last
 * update. An array to free().
 */
struct vms_cpu_time {
	int cpu;
	int online;
	uint64_t user_ns, nice_ns, system_ns, idle_ns, iowait_ns, irq_ns, softirq_ns, steal_ns;
	uint64_t guest_ns, guest_nice_ns;
};

int vms_os_cpu_times(struct vms_vm *vm, struct vms_cpu_time **ret_cpus, size_t *ret_count);

/* Counters of /proc/stat, /proc/vmstat and /proc/meminfo that sysinfo leaves out. */
struct vms_kernel_counters {
	uint64_t running;		/* runnable tasks (procs_running) */
	uint64_t blocked;		/* tasks waiting for I/O (procs_blocked) */
	uint64_t page_faults;		/* pgfault */
	uint64_t major_faults;		/* pgmajfault */
	uint64_t pgpgin_kb, pgpgout_kb; /* pgpgin, pgpgout: KiB to and from block devices */
	uint64_t swap_in, swap_out;	/* pswpin, pswpout: pages */
	uint64_t mem_buffers_bytes;	/* Buffers */
	uint64_t mem_cached_bytes;	/* Cached */
};

int vms_os_kernel_counters(struct vms_vm *vm, struct vms_kernel_counters *ret);

/*
 * I/O per block device and partition, as /proc/diskstats counts it (bytes
 * are its sectors times 512). An array to free(); partial results as the
 * list views.
 */
struct vms_block_stats {
	char name[40]; /* vda, vda1, nvme0n1p1 */
	int partition; /* a partition's I/O is also counted on its whole disk */
	uint64_t read_bytes, write_bytes, read_ios, write_ios;
};

int vms_os_block_stats(struct vms_vm *vm, struct vms_block_stats **ret_stats, size_t *ret_count);

/*
 * Traffic per network interface, as /proc/net/dev counts it, for the
 * drivers whose counters vmscope knows where to find: loopback (per-CPU
 * lstats) and virtio-net (its queues' statistics, laid out by the module's
 * own BTF). Other interfaces are listed with counted 0 and the driver's
 * name. An array to free().
 */
struct vms_net_stats {
	char name[16];
	char driver[32];
	int counted;
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};

int vms_os_net_stats(struct vms_vm *vm, struct vms_net_stats **ret_stats, size_t *ret_count);

/*
 * A view as JSON text (malloc'd; free it with free()), the keys and values
 * vmscope's VIEW --json prints: a list view as {"items": [...], "truncated":
 * false, "warning": null} (truncated and the warning as
 * vms_view_warning() says), sysinfo as one object. Views: those
 * vms_view_name() lists (ps, threads, lsmod, sockets, mounts, lsof, dmesg,
 * sysinfo). -ENOENT for another name; a view's own error otherwise.
 */
#define VMS_JSON_INDENT 1u /* one space a level, for people; else compact */
int vms_view_json(struct vms_vm *vm, const char *view, unsigned int flags, char **ret_json);
/* The i-th view vms_view_json() knows, from 0; NULL past the last. */
const char *vms_view_name(size_t i);

#ifdef __cplusplus
}
#endif
#endif
