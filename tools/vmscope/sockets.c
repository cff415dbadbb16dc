// SPDX-License-Identifier: MIT
/* vmscope sockets TARGET [--json]: TCP and UDP sockets of the guest, with owning processes. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "cli.h"

static void endpoint(char *buf, size_t len, const char *address, int port)
{
	snprintf(buf, len, strchr(address, ':') ? "[%s]:%d" : "%s:%d", address, port);
}

static int run_sockets(int argc, char **argv)
{
	struct vms_socket *socks = NULL;
	int json, status = 0;
	struct vms_vm *vm;
	json_t *list;
	size_t n = 0;

	status = cli_target_args(argc, argv, &cmd_sockets, &json);
	if (status >= 0)
		return status;
	status = 0;
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (vms_os_sockets(vm, &socks, &n)) {
		status = cli_fail("%s", vms_last_error(vm));
	} else if (json) {
		list = json_array();
		for (size_t i = 0; i < n; i++) {
			const struct vms_socket *s = &socks[i];

			json_array_append_new(list,
					      json_pack("{s:s,s:s,s:i,s:s,s:i,s:s,s:I,s:o,s:o}",
							"protocol", s->protocol, "local_address",
							s->local_address, "local_port", s->local_port,
							"remote_address", s->remote_address,
							"remote_port", s->remote_port, "state", s->state,
							"inode", (json_int_t)s->inode, "pid",
							s->pid >= 0 ? json_integer(s->pid) : json_null(),
							"fd", s->fd >= 0 ? json_integer(s->fd) : json_null()));
		}
		cli_print_json(list);
	} else {
		printf("%-5s %-28s %-28s %-12s %7s\n", "PROTO", "LOCAL", "REMOTE", "STATE", "PID");
		for (size_t i = 0; i < n; i++) {
			char local[64], remote[64];

			endpoint(local, sizeof(local), socks[i].local_address, socks[i].local_port);
			endpoint(remote, sizeof(remote), socks[i].remote_address, socks[i].remote_port);
			printf("%-5s %-28s %-28s %-12s %7d\n", socks[i].protocol, local, remote,
			       socks[i].state, socks[i].pid);
		}
	}
	free(socks);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_sockets = {
	.name = "sockets",
	.usage = "TARGET [--json]",
	.summary = "TCP and UDP sockets of a Linux guest, with owners",
	.run = run_sockets,
};
