/* SPDX-License-Identifier: MIT */
/*
 * A client of QEMU's gdbstub (the GDB remote serial protocol) over a unix
 * socket: no-ack mode, registers, memory, software and hardware
 * breakpoints, continue, interrupt, detach. One connection, one thread.
 */
#ifndef VMSCOPE_ACCESS_GDB_H
#define VMSCOPE_ACCESS_GDB_H

#include <stddef.h>
#include <stdint.h>

#define GDB_PACKET_MAX 4096

struct gdb_conn;

/* The x86-64 registers a probe decodes, as QEMU's 'g' packet orders them. */
struct gdb_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip;
	uint32_t eflags;
	uint64_t fs_base, gs_base, kernel_gs_base;
	uint64_t cr0, cr2, cr3, cr4;
};

/* Connect and negotiate (no-ack mode). The VM stops when a debugger connects. */
int gdb_connect(const char *path, struct gdb_conn **ret);
/* The same over an already connected socket, which it then owns (tests, fuzzing). */
int gdb_attach_fd(int fd, struct gdb_conn **ret);
/* The same, with a reply's time limit other than the default 10 s (tests). */
int gdb_attach_fd_timeout(int fd, int io_timeout_ms, struct gdb_conn **ret);
/* Detach (QEMU resumes the VM) and close; NULL is allowed. */
int gdb_detach(struct gdb_conn *g);

/* type 0: software breakpoint, 1: hardware; set or remove. */
int gdb_breakpoint(struct gdb_conn *g, int type, uint64_t addr, int set);
/*
 * Watch len bytes at addr: GDB_WATCH_WRITE, _READ or _ACCESS (x86 hardware,
 * hence KVM, has no read-only kind: use access). The stop comes after the
 * instruction that touched them.
 */
#define GDB_WATCH_WRITE	 2
#define GDB_WATCH_READ	 3
#define GDB_WATCH_ACCESS 4
int gdb_watchpoint(struct gdb_conn *g, int type, uint64_t addr, unsigned int len, int set);
int gdb_read_regs(struct gdb_conn *g, struct gdb_regs *ret);
/* The vCPUs, as the stub numbers its threads: at most max ids; the count or -errno. */
#define GDB_MAX_THREADS 1024
int gdb_threads(struct gdb_conn *g, long *ids, int max);
/*
 * Registers of n vCPUs of the stopped VM, into ret[0..n), in one round trip
 * (each selected with 'Hg'; the next stop selects the stopped one again).
 * Resuming is not affected.
 */
int gdb_read_threads_regs(struct gdb_conn *g, const long *threads, int n, struct gdb_regs *ret);
/* Set one 64-bit register of the stopped vCPU ('P'); GDB_REG_RIP is the program counter. */
#define GDB_REG_RIP 16
int gdb_write_reg(struct gdb_conn *g, unsigned int regnum, uint64_t value);
/* Guest-virtual memory as the stopped vCPU sees it (its current page tables). */
int gdb_read_mem(struct gdb_conn *g, uint64_t addr, void *buf, size_t len);

/* Execute one instruction (interrupts held off) and wait for the stop after it. */
int gdb_step(struct gdb_conn *g, int timeout_ms);
/* Resume; the next stop is collected with gdb_wait_stop(). */
int gdb_continue(struct gdb_conn *g);
/* Resume at addr (the 'c ADDR' form: one packet instead of a 'P' and a 'c'). */
int gdb_continue_at(struct gdb_conn *g, uint64_t addr);
/*
 * Wait up to timeout_ms for the VM to stop: 1 when it did (*ret_signal
 * set), 0 on timeout, <0 on error.
 */
int gdb_wait_stop(struct gdb_conn *g, int timeout_ms, int *ret_signal);
/* Resume one vCPU only (its gdb thread id), the others staying stopped. */
int gdb_continue_thread(struct gdb_conn *g, long thread);
/* The vCPU (gdb thread id) of the last stop, or -1 when the stub did not say. */
long gdb_stopped_thread(const struct gdb_conn *g);
/* Ask a running VM to stop (the stop still has to be waited for). */
int gdb_interrupt(struct gdb_conn *g);

/* Round trips and the bytes moved, for figures. */
uint64_t gdb_round_trips(const struct gdb_conn *g);

/* For fuzzing and tests: decode a 'g' reply (hex) into regs. */
int gdb_parse_regs(const char *hex, size_t len, struct gdb_regs *ret);

#endif
