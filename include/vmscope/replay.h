/* SPDX-License-Identifier: MIT */
/*
 * vmscope: VM execution record/replay through QEMU's deterministic mode
 * (icount, TCG, one vCPU), with vmscope attached to the replay as to a live
 * VM. The recording is a directory: QEMU's replay log (zstd-compressed when
 * the recording ends), the command line, the QEMU build, and checkpoints of
 * the guest's state at known instruction counts that a replay must meet.
 */
#ifndef VMSCOPE_REPLAY_H
#define VMSCOPE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include <vmscope/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vms_rr_mode { VMS_RR_RECORD, VMS_RR_REPLAY };

struct vms_rr_command {
	char **argv; /* NULL-terminated; the caller runs it */
	size_t argc;
	char qmp_path[4096];	  /* vmscope's own QMP monitor in it */
	char view_qmp_path[4096]; /* a second one, for views run beside */
	char replay_log[4096];
};

/*
 * The QEMU command line argv[0..argc) made to record into dir or replay from
 * it: -icount shift=auto,rr=MODE,rrfile=dir/replay.bin; every disk a device
 * uses (-blockdev file + raw|qcow2, or -drive file=) put behind blkreplay
 * over a new qcow2 overlay in dir, so the images are never written and every
 * run starts from the same disk; every -netdev given a filter-replay; a QMP
 * monitor of vmscope's own and a second for views; -S (the caller starts
 * the VM once attached).
 * Refused, with the reason in err: KVM, more than one vCPU, multi-threaded
 * TCG, an -icount of its own, and disk or network forms it cannot wrap.
 */
int vms_rr_command(const char *dir, enum vms_rr_mode mode, char *const *argv, size_t argc,
		   struct vms_rr_command *ret, char *err, size_t errlen);
void vms_rr_command_release(struct vms_rr_command *cmd);

/* The VM's replay mode ("none", "record", "play") and instruction count. */
int vms_rr_query(struct vms_vm *vm, char mode[16], uint64_t *ret_icount);
/* In replay: stop the VM when its instruction count reaches icount. */
int vms_rr_break(struct vms_vm *vm, uint64_t icount);
/* Start (or continue) a VM that vmscope holds stopped. */
int vms_rr_continue(struct vms_vm *vm);
/*
 * Guest block requests QEMU has taken from its virtio queues and not yet
 * completed (x-query-virtio-queue-status "inuse", every queue of every
 * virtio disk); devices QEMU cannot say this of count 0. A recording must
 * not be stopped with any: QEMU 7.2 then logs the completion while the VM
 * is stopped, at a point its replay never reaches, and the replay stalls
 * there (docs/replay.md).
 */
int vms_rr_io_in_flight(struct vms_vm *vm, unsigned int *ret_count);
/* End QEMU cleanly (QMP quit): a recording's log is complete then. */
int vms_rr_quit(struct vms_vm *vm);

/*
 * The guest's state at one instant, to compare a replay with its recording:
 * its processes (pid, parent, name), task count, forks and context switches
 * since boot, hashed. Take it with the VM stopped.
 */
struct vms_rr_checkpoint {
	uint64_t icount;
	uint64_t hash;
	uint64_t processes, forks, context_switches;
	char *process_list; /* "pid:ppid:comm" sorted by pid, space-separated; malloc'd */
};

int vms_rr_checkpoint_take(struct vms_vm *vm, uint64_t icount, struct vms_rr_checkpoint *ret);
void vms_rr_checkpoint_release(struct vms_rr_checkpoint *cp);
/* One line: what differs between a (recorded) and b (replayed). */
void vms_rr_checkpoint_diff(const struct vms_rr_checkpoint *a, const struct vms_rr_checkpoint *b,
			    char *buf, size_t len);

/* path into path.zst (zstd), then path removed; and back to out_path. */
int vms_rr_compress(const char *path);
int vms_rr_decompress(const char *zst_path, const char *out_path);
/* A file's SHA-256 as 64 hex digits: the QEMU build a recording is tied to. */
int vms_rr_file_sha256(const char *path, char out[65]);

#ifdef __cplusplus
}
#endif
#endif
