// SPDX-License-Identifier: MIT
/*
 * vmscope ps TARGET [--threads] [--json]   processes (or threads) of the guest
 * vmscope pstree TARGET                    the same as a tree of parents
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <vmscope/os.h>

#include "cli.h"

static const char *shown_cmdline(const struct vms_process *p)
{
	if (p->kernel_thread || !p->cmdline)
		return NULL;
	return p->cmdline;
}

static void print_table(const struct vms_process *procs, size_t n, int threads)
{
	if (threads)
		printf("%7s %7s ", "PID", "TID");
	else
		printf("%7s ", "PID");
	printf("%7s %6s %6s S %4s %10s %-16s %s\n", "PPID", "UID", "GID", "THR", "START", "COMM",
	       "CMDLINE");
	for (size_t i = 0; i < n; i++) {
		const struct vms_process *p = &procs[i];
		const char *cmd = shown_cmdline(p);

		if (threads)
			printf("%7d %7d ", p->tgid, p->pid);
		else
			printf("%7d ", p->tgid);
		printf("%7d %6u %6u %c %4d %10.2f %-16s ", p->ppid, p->uid, p->gid, p->state,
		       p->threads, (double)p->start_time_ns / 1e9, p->comm);
		if (cmd)
			printf("%s\n", cmd);
		else
			printf(p->kernel_thread ? "[%s]\n" : "? (%s: memory unreadable)\n", p->comm);
	}
}

static void print_subtree(const struct vms_process *procs, size_t n, int pid, int depth)
{
	for (size_t i = 0; i < n; i++) {
		const struct vms_process *p = &procs[i];
		const char *cmd = shown_cmdline(p);

		if (p->ppid != pid || p->tgid == pid || depth > 64)
			continue;
		printf("%*s%d %s\n", depth * 2, "", p->tgid, cmd && *cmd ? cmd : p->comm);
		print_subtree(procs, n, p->tgid, depth + 1);
	}
}

static int run(int argc, char **argv, const struct cli_command *cmd, int tree)
{
	static const struct option options[] = {
		{ "threads", no_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "cross-check", no_argument, NULL, 'x' },
		{ 0 },
	};
	struct vms_process *procs = NULL;
	int opt, json = 0, threads = 0, cross = 0, status = 0;
	struct vms_vm *vm;
	size_t n;

	while ((opt = getopt_long(argc, argv, "tj", options, NULL)) != -1) {
		if (opt == 't' && !tree)
			threads = 1;
		else if (opt == 'j' && !tree)
			json = 1;
		else if (opt == 'x' && !tree)
			cross = 1;
		else
			return cli_usage(cmd);
	}
	if (optind != argc - 1)
		return cli_usage(cmd);
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (cross) {
		status = cli_cross_check(vm, json);
		vms_vm_free(vm);
		return status;
	}
	if (json) {
		status = cli_print_view_json(vm, threads ? "threads" : "ps");
		n = 0;
	} else if (vms_os_processes(vm, threads ? VMS_PS_THREADS : 0, &procs, &n)) {
		status = cli_fail("%s", vms_last_error(vm));
	} else if (tree) {
		print_subtree(procs, n, 0, 0);
	} else {
		print_table(procs, n, threads);
	}
	if (!status)
		cli_view_warning(vm);
	vms_processes_free(procs, procs ? n : 0);
	vms_vm_free(vm);
	return status;
}

static int run_ps(int argc, char **argv)
{
	return run(argc, argv, &cmd_ps, 0);
}

static int run_pstree(int argc, char **argv)
{
	return run(argc, argv, &cmd_pstree, 1);
}

const struct cli_command cmd_ps = {
	.name = "ps",
	.usage = "TARGET [--threads | --cross-check] [--json]",
	.summary = "processes (or threads) of a Linux guest",
	.run = run_ps,
};

const struct cli_command cmd_pstree = {
	.name = "pstree",
	.usage = "TARGET",
	.summary = "processes of a Linux guest as a tree",
	.run = run_pstree,
};
