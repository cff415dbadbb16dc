/* SPDX-License-Identifier: MIT */
/* Shared by the vmscope subcommands: one file each, registered in main.c. */
#ifndef VMSCOPE_CLI_H
#define VMSCOPE_CLI_H

#include <vmscope/vm.h>

struct cli_command {
	const char *name;
	const char *usage; /* arguments after the command name */
	const char *summary;
	int (*run)(int argc, char **argv);
};

extern const struct cli_command cmd_info;

/* Print "vmscope: <message>" on stderr; returns the exit status 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print the usage line of cmd on stderr; returns the exit status 2. */
int cli_usage(const struct cli_command *cmd);

/* Open and attach a handle to target; on failure print why and return NULL. */
struct vms_vm *cli_attach(const char *target);

#endif
