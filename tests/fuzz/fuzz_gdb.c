// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the gdbstub client, the input being what the stub
 * sends: the handshake, then replies to a register read, a memory read and
 * a breakpoint and a watchpoint, the vCPU list and two vCPUs' registers,
 * and a stop.
 */
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/gdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gdb_regs regs, more[2];
	long threads[4];
	struct gdb_conn *g;
	uint8_t mem[64];
	int fds[2], sig;

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
		return 0;
	/* The whole conversation up front, then end of stream: no read waits. */
	if (write(fds[1], data, size) != (ssize_t)size) {
		close(fds[0]);
		close(fds[1]);
		return 0;
	}
	shutdown(fds[1], SHUT_WR);
	if (!gdb_attach_fd(fds[0], &g)) {
		gdb_read_regs(g, &regs);
		gdb_read_mem(g, 0xffffffff81000000ull, mem, sizeof(mem));
		gdb_breakpoint(g, 0, 0xffffffff81000000ull, 1);
		gdb_watchpoint(g, GDB_WATCH_ACCESS, 0xffffffff82000000ull, 4, 1);
		if (gdb_threads(g, threads, 4) > 0)
			gdb_read_threads_regs(g, threads, 2, more);
		gdb_continue_at(g, 0xffffffff81000004ull);
		gdb_wait_stop(g, 0, &sig);
		gdb_detach(g);
	}
	close(fds[1]);
	return 0;
}
