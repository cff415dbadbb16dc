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
	/* Tracing, when probes: started once the kernel can be found. */
	unsigned int probes;
	struct vms_trace *trace;
	struct vms_ring *ring;
	struct vms_sink *sink; /* the recording's event log, and --json's sink */
	int json;
	uint64_t events;
	double next_trace_try;
	int (*hold)(void *ctx);
	void *hold_ctx;
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
void rr_try_trace(struct rr_run *run);
void rr_drain(struct rr_run *run);
/* The guest's state now (held still for it unless already_stopped). */
int rr_checkpoint(struct rr_run *run, struct vms_rr_checkpoint *cp, int already_stopped);
json_t *rr_checkpoint_json(const struct vms_rr_checkpoint *cp);
int rr_checkpoint_from_json(const json_t *j, struct vms_rr_checkpoint *cp);
int rr_parse_events(const char *list, unsigned int *ret);

#endif
