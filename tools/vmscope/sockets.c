// SPDX-License-Identifier: MIT
/* vmscope sockets TARGET [--json]: TCP and UDP sockets of the guest, with owning processes. */
#include <stdio.h>
#include <string.h>

#include <vmscope/os.h>

#include "cli.h"

static int fetch(struct vms_vm *vm, void **ret_items, size_t *ret_count)
{
	return vms_os_sockets(vm, (struct vms_socket **)ret_items, ret_count);
}

static void endpoint(char *buf, size_t len, const char *address, int port)
{
	snprintf(buf, len, strchr(address, ':') ? "[%s]:%d" : "%s:%d", address, port);
}

static void print_text(const void *items, size_t n)
{
	const struct vms_socket *s = items;

	printf("%-5s %-28s %-28s %-12s %7s\n", "PROTO", "LOCAL", "REMOTE", "STATE", "PID");
	for (size_t i = 0; i < n; i++) {
		char local[64], remote[64];

		endpoint(local, sizeof(local), s[i].local_address, s[i].local_port);
		endpoint(remote, sizeof(remote), s[i].remote_address, s[i].remote_port);
		printf("%-5s %-28s %-28s %-12s %7d\n", s[i].protocol, local, remote, s[i].state,
		       s[i].pid);
	}
}

static const struct cli_view view = { &cmd_sockets, fetch, print_text, "sockets", NULL };

static int run_sockets(int argc, char **argv)
{
	return cli_run_view(argc, argv, &view);
}

const struct cli_command cmd_sockets = {
	.name = "sockets",
	.usage = "TARGET [--json]",
	.summary = "TCP and UDP sockets of a Linux guest, with owners",
	.run = run_sockets,
};
