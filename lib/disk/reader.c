// SPDX-License-Identifier: MIT
/*
 * Reading a live VM's disk as the guest sees it: QEMU's built-in NBD server
 * exports the block node read-only (nbd-server-start, block-export-add) and
 * nbd_client.c reads it. Whatever the image format (raw, qcow2, a backing
 * chain), the bytes are those the guest would read. Closing removes the
 * export and stops the server again.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmscope/disk.h>

#include "access/qmp.h"
#include "core/internal.h"
#include "core/util.h"
#include "disk/nbd.h"
#include "disk/reader.h"

struct vms_disk_reader {
	struct vms_vm *vm;
	struct nbd_client *client;
	char dir[64], socket[96], export_id[64];
	int server_started, export_added;
};

static int qmp_fail(struct vms_vm *vm, int err)
{
	return vm_error(vm, err, "%s", qmp_error(vm->qmp));
}

/* An export vmscope made ("vmscope-read-PID", "vmscope-bitmap-PID") whose process is gone. */
static int export_is_stale(const char *id)
{
	int pid = 0, n = 0;

	if (sscanf(id, "vmscope-read-%d%n", &pid, &n) != 1 &&
	    sscanf(id, "vmscope-bitmap-%d%n", &pid, &n) != 1)
		return 0;
	return !id[n] && pid_is_gone(pid);
}

/*
 * QEMU runs one NBD server. A vmscope killed while reading leaves its own
 * running: when every export on it is a dead vmscope's, it is taken down.
 * A server with any other export, or none, is someone else's and stays.
 */
static int stop_stale_server(struct vms_vm *vm)
{
	json_t *exports = NULL, *x;
	size_t i, stale = 0;

	if (qmp_execute(vm->qmp, "query-block-exports", NULL, &exports))
		return 0;
	json_array_foreach(exports, i, x)
		stale += export_is_stale(json_string_value(json_object_get(x, "id")) ?: "");
	if (!stale || stale != json_array_size(exports)) {
		json_decref(exports);
		return 0;
	}
	json_array_foreach(exports, i, x)
		qmp_execute(vm->qmp, "block-export-del",
			    json_pack("{s:s,s:s}", "id",
				      json_string_value(json_object_get(x, "id")), "mode", "hard"),
			    NULL);
	json_decref(exports);
	return !qmp_execute(vm->qmp, "nbd-server-stop", NULL, NULL);
}

static int start_server(struct vms_disk_reader *r)
{
	struct vms_vm *vm = r->vm;
	int err;

	for (int tries = 0;; tries++) {
		err = qmp_execute(vm->qmp, "nbd-server-start",
				  json_pack("{s:{s:s,s:{s:s}}}", "addr", "type", "unix", "data",
					    "path", r->socket),
				  NULL);
		if (!err || tries || !stop_stale_server(vm))
			break;
	}
	return err;
}

static int export_node(struct vms_disk_reader *r, const char *node)
{
	struct vms_vm *vm = r->vm;
	int err = start_server(r);

	if (err)
		return qmp_fail(vm, err);
	r->server_started = 1;
	err = qmp_execute(vm->qmp, "block-export-add",
			  json_pack("{s:s,s:s,s:s,s:s,s:b}", "type", "nbd", "id", r->export_id,
				    "node-name", node, "name", r->export_id, "writable", 0),
			  NULL);
	if (err)
		return qmp_fail(vm, err);
	r->export_added = 1;
	err = nbd_client_open(r->socket, r->export_id, &r->client);
	if (err)
		return vm_error(vm, err, "cannot read QEMU's export of %s: %s", node, strerror(-err));
	return 0;
}

int vms_disk_open(struct vms_vm *vm, const char *node, struct vms_disk_reader **ret_reader)
{
	struct vms_disk_reader *r;
	int err;

	if (!vm->qmp)
		return vm_error(vm, -EOPNOTSUPP, "reading a disk needs a live VM (qmp:)");
	r = calloc(1, sizeof(*r));
	if (!r)
		return vm_error(vm, -ENOMEM, "out of memory");
	r->vm = vm;
	snprintf(r->export_id, sizeof(r->export_id), "vmscope-read-%d", (int)getpid());
	snprintf(r->dir, sizeof(r->dir), "/tmp/vmscope-read-%d-XXXXXX", (int)getpid());
	if (!mkdtemp(r->dir)) {
		free(r);
		return vm_error(vm, -errno, "cannot make a directory for the NBD socket");
	}
	snprintf(r->socket, sizeof(r->socket), "%s/qemu-nbd.sock", r->dir);
	err = vm_lend_to_qemu(vm, r->dir);
	if (!err)
		err = export_node(r, node);
	if (err) {
		char why[VMS_ERROR_MAX];

		snprintf(why, sizeof(why), "%s", vm->error);
		vms_disk_close(r);
		return vm_error(vm, err, "%s", why);
	}
	*ret_reader = r;
	return 0;
}

const char *disk_reader_socket(const struct vms_disk_reader *r)
{
	return r->socket;
}

uint64_t vms_disk_size(const struct vms_disk_reader *r)
{
	return nbd_client_size(r->client);
}

int vms_disk_read(struct vms_disk_reader *r, uint64_t offset, void *buf, size_t len)
{
	int err = nbd_client_read(r->client, offset, buf, len);

	if (err)
		return vm_error(r->vm, err, "cannot read the disk at %llu+%zu: %s",
				(unsigned long long)offset, len, strerror(-err));
	return 0;
}

int vms_disk_close(struct vms_disk_reader *r)
{
	int err = 0;

	if (!r)
		return 0;
	nbd_client_close(r->client);
	if (r->export_added)
		err = qmp_execute(r->vm->qmp, "block-export-del",
				  json_pack("{s:s}", "id", r->export_id), NULL);
	if (r->server_started) {
		int stop = qmp_execute(r->vm->qmp, "nbd-server-stop", NULL, NULL);

		err = err ? err : stop;
	}
	if (err)
		qmp_fail(r->vm, err);
	unlink(r->socket);
	rmdir(r->dir);
	free(r);
	return err;
}
