// SPDX-License-Identifier: MIT
/*
 * The gdbstub client against a live QEMU, step by step, for test_trace.py:
 *   gdb_client QMP_SOCKET
 * switches the gdbstub on, then reads registers and memory (compared with
 * what vmscope reads from guest RAM directly), lists the vCPUs and reads all
 * their registers at once, stops on a hardware and then a software
 * breakpoint at __x64_sys_execve (the test makes the guest exec once
 * "armed" is printed), single-steps, writes rip, interrupts a running VM, removes
 * every breakpoint and detaches. Each fact is printed as "name value"; the
 * Python side judges them. Exit status 0 unless the set-up failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmscope/vm.h>

#include "access/gdb.h"
#include "access/qmp.h"
#include "core/internal.h"
#include "os/linux/linux.h"

#define HIT_WAIT_MS 60000
#define HW 1
#define SW 0

/* Continue, wait for a stop at addr; print whether it came there. */
static int stop_at(struct gdb_conn *g, const char *name, uint64_t addr)
{
	struct gdb_regs r;
	int sig = 0, got = gdb_continue(g) ?: gdb_wait_stop(g, HIT_WAIT_MS, &sig);

	if (got != 1 || gdb_read_regs(g, &r))
		return printf("%s none\n", name), -1;
	printf("%s %d signal %d\n", name, r.rip == addr, sig);
	return 0;
}

/* The vCPU list, and every vCPU's registers in one go: each has its own per-CPU area. */
static void vcpus(struct gdb_conn *g)
{
	struct gdb_regs regs[8];
	long ids[8];
	int n = gdb_threads(g, ids, 8), distinct = 1;

	if (n < 1 || gdb_read_threads_regs(g, ids, n, regs)) {
		printf("vcpus none\n");
		return;
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			distinct &= regs[i].gs_base != regs[j].gs_base;
	printf("vcpus %d distinct_gs_base %d\n", n, distinct);
}

/*
 * Stopped at fn: move rip past its first instruction when that has no
 * effect (endbr64, the NOP Linux writes over it, ftrace's 5-byte NOP), as
 * trace does, and read it back.
 */
static void write_rip(struct gdb_conn *g, uint64_t fn)
{
	static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa }, nop4[] = { 0x66, 0x0f, 0x1f, 0x00 },
			     nop5[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	struct gdb_regs r;
	uint8_t code[5];
	unsigned int len;

	if (gdb_read_mem(g, fn, code, sizeof(code)))
		len = 0;
	else if (!memcmp(code, endbr64, 4) || !memcmp(code, nop4, 4))
		len = 4;
	else
		len = memcmp(code, nop5, 5) ? 0 : 5;
	if (!len) {
		printf("write_rip skipped\n");
		return;
	}
	printf("write_rip %d\n", !gdb_write_reg(g, GDB_REG_RIP, fn + len) && !gdb_read_regs(g, &r) &&
				      r.rip == fn + len);
}

static void check(struct gdb_conn *g, struct linux_kernel *k)
{
	uint64_t execve = kallsyms_lookup(&k->ksyms, "__x64_sys_execve");
	uint64_t banner = kallsyms_lookup(&k->ksyms, "linux_banner");
	uint8_t direct[64], via_gdb[64];
	struct gdb_regs r;
	int sig;

	if (!gdb_read_regs(g, &r))
		printf("regs rip_kernel %d cr3_set %d\n", r.rip >= 0xffff800000000000ull, r.cr3 != 0);
	if (!kread(k, banner, direct, sizeof(direct)) &&
	    !gdb_read_mem(g, banner, via_gdb, sizeof(via_gdb)))
		printf("memory equal %d banner %d\n", !memcmp(direct, via_gdb, sizeof(direct)),
		       !memcmp(via_gdb, "Linux version", 13));
	vcpus(g);
	printf("hw_set %d\n", !gdb_breakpoint(g, HW, execve, 1));
	printf("armed\n");
	fflush(stdout);
	if (stop_at(g, "hw_hit", execve))
		return;
	if (!gdb_step(g, HIT_WAIT_MS) && !gdb_read_regs(g, &r))
		printf("step moved %d\n", r.rip != execve && r.rip - execve < 16);
	printf("hw_removed %d\n", !gdb_breakpoint(g, HW, execve, 0));
	printf("sw_set %d\n", !gdb_breakpoint(g, SW, execve, 1));
	if (stop_at(g, "sw_hit", execve))
		return;
	write_rip(g, execve);
	printf("sw_removed %d\n", !gdb_breakpoint(g, SW, execve, 0));
	/* The guest keeps exec'ing: a running VM is stopped on request. */
	gdb_continue(g);
	usleep(200 * 1000);
	printf("interrupt %d\n", !gdb_interrupt(g) && gdb_wait_stop(g, HIT_WAIT_MS, &sig) == 1);
}

int main(int argc, char **argv)
{
	char command[160], dir[] = "/tmp/vmscope-gdbclient-XXXXXX", path[96], *out = NULL;
	struct linux_kernel *k;
	struct gdb_conn *g;
	struct vms_vm *vm;

	if (argc != 2 || !mkdtemp(dir))
		return 2;
	snprintf(path, sizeof(path), "%s/gdb.sock", dir);
	snprintf(command, sizeof(command), "qmp:%s", argv[1]);
	if (vms_vm_new(&vm) || vms_vm_attach(vm, command, NULL) || linux_kernel_get(vm, &k)) {
		fprintf(stderr, "gdb_client: cannot attach: %s\n", vm ? vm->error : "");
		return 1;
	}
	snprintf(command, sizeof(command), "gdbserver unix:%s,server=on,wait=off", path);
	if (qmp_hmp(vm->qmp, command, &out) || gdb_connect(path, &g)) {
		fprintf(stderr, "gdb_client: no gdbstub at %s\n", path);
		return 1;
	}
	free(out);
	check(g, k);
	printf("detached %d\n", !gdb_detach(g));
	if (!qmp_hmp(vm->qmp, "gdbserver none", &out))
		free(out);
	unlink(path);
	rmdir(dir);
	vms_vm_free(vm);
	return 0;
}
