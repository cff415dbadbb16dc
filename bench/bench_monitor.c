// SPDX-License-Identifier: MIT
/*
 * The cost of one full sample of a VM's figures: vms_monitor_host() (one QMP
 * exchange under TCG, three under KVM, and a few /proc reads) and
 * vms_monitor_guest() (introspection),
 * in CPU time of this process and in wall time, beside baselines taken in the
 * same run on the same VM:
 *   QMP round trip   one query-status through the same connection
 *                    (vms_vm_query_info does two: status and name)
 *   /proc read       reading /proc/self/stat once
 * Target: at most 200 us of vmscope CPU per VM per sample (500 VMs at 1 Hz
 * within 10 % of one core).
 *
 * Usage: bench_monitor TARGET [SAMPLES]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <vmscope/monitor.h>
#include <vmscope/vm.h>

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct cost {
	double cpu_us, wall_us;
};

typedef int (*op_fn)(struct vms_vm *vm);

static int op_host(struct vms_vm *vm)
{
	struct vms_host_metrics m;
	int err = vms_monitor_host(vm, &m);

	vms_host_metrics_release(&m);
	return err;
}

static int op_guest(struct vms_vm *vm)
{
	struct vms_guest_metrics m;
	int err = vms_monitor_guest(vm, &m);

	vms_guest_metrics_release(&m);
	return err;
}

static int op_both(struct vms_vm *vm)
{
	return op_host(vm) || op_guest(vm);
}

static int op_qmp(struct vms_vm *vm)
{
	struct vms_vm_info info;

	return vms_vm_query_info(vm, &info);
}

static int op_proc(struct vms_vm *vm)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY), ok;

	(void)vm;
	ok = fd >= 0 && read(fd, buf, sizeof(buf)) > 0;
	if (fd >= 0)
		close(fd);
	return !ok;
}

static struct cost measure(struct vms_vm *vm, op_fn op, int n)
{
	double cpu = now(CLOCK_PROCESS_CPUTIME_ID), wall = now(CLOCK_MONOTONIC);

	for (int i = 0; i < n; i++)
		if (op(vm)) {
			fprintf(stderr, "bench_monitor: %s\n", vms_last_error(vm));
			exit(1);
		}
	return (struct cost){ (now(CLOCK_PROCESS_CPUTIME_ID) - cpu) / n * 1e6,
			      (now(CLOCK_MONOTONIC) - wall) / n * 1e6 };
}

int main(int argc, char **argv)
{
	struct {
		const char *name;
		op_fn op;
	} ops[] = {
		{ "/proc read (baseline)", op_proc },
		{ "QMP round trips x2 (baseline)", op_qmp },
		{ "host sample", op_host },
		{ "guest sample", op_guest },
		{ "full sample (host + guest)", op_both },
	};
	int n = argc > 2 ? atoi(argv[2]) : 200;
	struct vms_vm *vm = NULL;
	struct cost qmp = { 0 };

	if (argc < 2 || vms_vm_new(&vm) || vms_vm_attach(vm, argv[1], NULL)) {
		fprintf(stderr, "usage: bench_monitor TARGET [SAMPLES]%s%s\n", vm ? ": " : "",
			vm ? vms_last_error(vm) : "");
		return 1;
	}
	op_guest(vm); /* discover the kernel first: the cost of a sample, not of attaching */
	printf("%d samples each, mean per sample\n", n);
	printf("%-32s %10s %10s %12s\n", "what", "CPU us", "wall us", "CPU / QMP x2");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct cost c = measure(vm, ops[i].op, n);

		if (ops[i].op == op_qmp)
			qmp = c;
		printf("%-32s %10.1f %10.1f %12s", ops[i].name, c.cpu_us, c.wall_us,
		       qmp.cpu_us > 0 ? "" : "-");
		if (qmp.cpu_us > 0)
			printf("%12.2f", c.cpu_us / qmp.cpu_us);
		putchar('\n');
	}
	vms_vm_free(vm);
	return 0;
}
