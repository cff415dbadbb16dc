/* SPDX-License-Identifier: MIT */
/* What `vmscope record` and `vmscope replay` share (rr.c). */
#ifndef VMSCOPE_CLI_RR_H
#define VMSCOPE_CLI_RR_H

#include <sys/types.h>

#include <jansson.h>

#include <vmscope/replay.h>
#include <vmscope/ring.h>
#include <vmscope/sink.h>
#include <vmscope/trace.h>


struct rr_run {
	struct vms_rr_command cmd;
	pid_t pid;
	int status;
	const char *log_path; /* QEMU's stdout and stderr */
	struct vms_vm *vm;
	int json;
	/* --poll: the views diffed at each checkpoint, the VM held there. */
	int poll;
	struct vms_poll *poller;
	struct vms_ring *ring;
	struct vms_sink *sink; /* where the events go besides text on stdout (NULL: none) */
	uint64_t events;
};

double rr_now_s(void);
int rr_find_program(const char *name, char *out, size_t len);
void rr_qemu_version(const char *binary, char *out, size_t len);
int rr_spawn(struct rr_run *run, const char *log_path);
int rr_exited(struct rr_run *run);
/* Wait for QEMU's monitors and attach (prints why and returns 1 on failure). */
int rr_attach(struct rr_run *run);
void rr_stop_qemu(struct rr_run *run);
void rr_close(struct rr_run *run);
/* The guest's state now (held still for it unless already_stopped). */
int rr_checkpoint(struct rr_run *run, struct vms_rr_checkpoint *cp, int already_stopped);
json_t *rr_checkpoint_json(const struct vms_rr_checkpoint *cp);
int rr_checkpoint_from_json(const json_t *j, struct vms_rr_checkpoint *cp);
/*
 * --poll at a checkpoint (the VM held at icount): process, module and
 * socket starts and ends since the last one, each with the instruction
 * count, to stdout (JSON lines with --json) and run->sink. The first call
 * takes the first snapshot. A replay gives the same events at the same counts.
 */
int rr_poll_at(struct rr_run *run, uint64_t icount);

/*
 * The files QEMU boots from (-kernel, -initrd, -bios, -dtb) with their
 * SHA-256 (null for one that is no file here, such as a -bios name QEMU
 * looks up itself), as a JSON array for recording.json; NULL on failure
 * (the one-line error said). A replay over a changed file would diverge at
 * once, so rr_check_boot_files() refuses it, naming the file.
 */
json_t *rr_boot_files(char *const *argv, size_t argc);
int rr_check_boot_files(const json_t *files);

/* Why --trace is refused in record and replay (QEMU 7.2). */
extern const char rr_no_trace[];

#endif
