// SPDX-License-Identifier: MIT
/*
 * The views as JSON, one row of a table each: what `vmscope VIEW --json`
 * prints, and what the daemon serves and the bindings return, from one
 * place so that their keys cannot drift apart. A list comes in an envelope
 * that says whether the guest's lists were read whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "core/internal.h"
#include "core/utf8.h"

/*
 * Guest bytes as a JSON string (NULL: null). jansson takes valid UTF-8 only,
 * and a guest names its processes, mounts and modules as it likes: a byte
 * that is not UTF-8 becomes U+FFFD rather than failing the whole view.
 */
static json_t *gstr(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *buf = s ? malloc(3 * n + 1) : NULL;
	json_t *j;

	if (!s)
		return json_null();
	if (!buf)
		return NULL;
	n = utf8_sanitize(buf, s, n);
	j = json_stringn(buf, n);
	free(buf);
	return j;
}

static json_t *process(const struct vms_process *p)
{
	char task[24], state[2] = { p->state, 0 };

	snprintf(task, sizeof(task), "0x%llx", (unsigned long long)p->task);
	return json_pack("{s:i,s:i,s:i,s:I,s:I,s:o,s:o,s:I,s:i,s:b,s:o,s:s}", "pid", p->tgid, "tid",
			 p->pid, "ppid", p->ppid, "uid", (json_int_t)p->uid, "gid",
			 (json_int_t)p->gid, "comm", gstr(p->comm), "state", gstr(state),
			 "start_time_ns", (json_int_t)p->start_time_ns, "threads", p->threads,
			 "kernel_thread", p->kernel_thread, "cmdline", gstr(p->cmdline), "task",
			 task);
}

static int tasks(struct vms_vm *vm, unsigned int flags, json_t *list)
{
	struct vms_process *procs = NULL;
	size_t n = 0;
	int err = vms_os_processes(vm, flags, &procs, &n);

	for (size_t i = 0; !err && i < n; i++)
		if (json_array_append_new(list, process(&procs[i])))
			err = -ENOMEM;
	vms_processes_free(procs, procs ? n : 0);
	return err;
}

static int ps(struct vms_vm *vm, json_t *list)
{
	return tasks(vm, 0, list);
}

static int threads(struct vms_vm *vm, json_t *list)
{
	return tasks(vm, VMS_PS_THREADS, list);
}

static int lsmod(struct vms_vm *vm, json_t *list)
{
	struct vms_module *m = NULL;
	size_t n = 0;
	int err = vms_os_modules(vm, &m, &n);

	for (size_t i = 0; !err && i < n; i++) {
		char base[24];

		snprintf(base, sizeof(base), "0x%" PRIx64, m[i].base);
		if (json_array_append_new(
			    list, json_pack("{s:o,s:I,s:s,s:i,s:o}", "name", gstr(m[i].name),
					    "size", (json_int_t)m[i].size, "base", base, "refcount",
					    m[i].refcount, "state", gstr(m[i].state))))
			err = -ENOMEM;
	}
	free(m);
	return err;
}

static json_t *or_null(int v)
{
	return v >= 0 ? json_integer(v) : json_null();
}

static int sockets(struct vms_vm *vm, json_t *list)
{
	struct vms_socket *s = NULL;
	size_t n = 0;
	int err = vms_os_sockets(vm, &s, &n);

	for (size_t i = 0; !err && i < n; i++)
		if (json_array_append_new(
			    list, json_pack("{s:s,s:s,s:i,s:s,s:i,s:s,s:I,s:o,s:o}", "protocol",
					    s[i].protocol, "local_address", s[i].local_address,
					    "local_port", s[i].local_port, "remote_address",
					    s[i].remote_address, "remote_port", s[i].remote_port,
					    "state", s[i].state, "inode", (json_int_t)s[i].inode,
					    "pid", or_null(s[i].pid), "fd", or_null(s[i].fd))))
			err = -ENOMEM;
	free(s);
	return err;
}

static int mounts(struct vms_vm *vm, json_t *list)
{
	struct vms_mount *m = NULL;
	size_t n = 0;
	int err = vms_os_mounts(vm, &m, &n);

	for (size_t i = 0; !err && i < n; i++)
		if (json_array_append_new(list, json_pack("{s:o,s:o,s:o,s:b,s:o}", "device",
							  gstr(m[i].device), "mountpoint",
							  gstr(m[i].mountpoint), "fstype",
							  gstr(m[i].fstype), "read_only",
							  m[i].read_only, "uuid", gstr(m[i].uuid))))
			err = -ENOMEM;
	free(m);
	return err;
}

static int dmesg(struct vms_vm *vm, json_t *list)
{
	struct vms_log_record *r = NULL;
	size_t n = 0;
	int err = vms_os_dmesg(vm, &r, &n);

	for (size_t i = 0; !err && i < n; i++)
		if (json_array_append_new(
			    list, json_pack("{s:I,s:I,s:i,s:i,s:o}", "seq", (json_int_t)r[i].seq,
					    "ts_ns", (json_int_t)r[i].ts_ns, "level", r[i].level,
					    "facility", r[i].facility, "text", gstr(r[i].text))))
			err = -ENOMEM;
	vms_log_records_free(r, r ? n : 0);
	return err;
}

static int lsof(struct vms_vm *vm, json_t *list)
{
	struct vms_open_file *f = NULL;
	size_t n = 0;
	int err = vms_os_open_files(vm, -1, &f, &n);

	for (size_t i = 0; !err && i < n; i++)
		if (json_array_append_new(list,
					  json_pack("{s:i,s:i,s:o,s:I,s:i,s:I}", "pid", f[i].pid,
						    "fd", f[i].fd, "path", gstr(f[i].path), "inode",
						    (json_int_t)f[i].inode, "flags",
						    (int)f[i].flags, "pos", (json_int_t)f[i].pos)))
			err = -ENOMEM;
	vms_open_files_free(f, f ? n : 0);
	return err;
}

/* Not a list: one object, no envelope. */
static int sysinfo_object(struct vms_vm *vm, json_t **ret)
{
	struct vms_sysinfo s;
	int err = vms_os_sysinfo(vm, &s);

	if (err)
		return err;
	*ret = json_pack("{s:o,s:f,s:[f,f,f],s:I,s:I,s:I,s:I,s:I,s:I,s:i}", "release",
			 gstr(s.release), "uptime_s", s.uptime_s, "load", s.load[0], s.load[1],
			 s.load[2], "mem_total_bytes", (json_int_t)s.mem_total_bytes,
			 "mem_free_bytes", (json_int_t)s.mem_free_bytes, "mem_available_bytes",
			 (json_int_t)s.mem_available_bytes, "tasks", (json_int_t)s.tasks,
			 "context_switches", (json_int_t)s.context_switches, "forks",
			 (json_int_t)s.forks, "cpus", s.cpus);
	return *ret ? 0 : vm_error(vm, -ENOMEM, "out of memory");
}

static const struct view {
	const char *name;
	int (*list)(struct vms_vm *vm, json_t *list); /* NULL: sysinfo */
} views[] = {
	{ "ps", ps },	      { "threads", threads }, { "lsmod", lsmod }, { "sockets", sockets },
	{ "mounts", mounts }, { "lsof", lsof },	      { "dmesg", dmesg }, { "sysinfo", NULL },
};

const char *vms_view_name(size_t i)
{
	return i < sizeof(views) / sizeof(views[0]) ? views[i].name : NULL;
}

static const struct view *find(const char *name)
{
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
		if (!strcmp(views[i].name, name))
			return &views[i];
	return NULL;
}

static int envelope(struct vms_vm *vm, const struct view *v, json_t **ret)
{
	json_t *list = json_array();
	const char *why;
	int err = list ? v->list(vm, list) : -ENOMEM;

	if (err) {
		json_decref(list);
		return err == -ENOMEM ? vm_error(vm, err, "out of memory") : err;
	}
	why = vms_view_warning(vm);
	*ret = json_pack("{s:o,s:b,s:s?}", "items", list, "truncated", why != NULL, "warning", why);
	return *ret ? 0 : vm_error(vm, -ENOMEM, "out of memory");
}

int vms_view_json(struct vms_vm *vm, const char *name, unsigned int flags, char **ret_json)
{
	const struct view *v = name ? find(name) : NULL;
	json_t *value = NULL;
	int err;

	*ret_json = NULL;
	if (!v)
		return vm_error(vm, -ENOENT, "no view called \"%s\"", name ? name : "");
	err = v->list ? envelope(vm, v, &value) : sysinfo_object(vm, &value);
	if (err)
		return err;
	*ret_json =
		json_dumps(value, JSON_PRESERVE_ORDER | ((flags & VMS_JSON_INDENT) ? JSON_INDENT(1)
										   : JSON_COMPACT));
	json_decref(value);
	return *ret_json ? 0 : vm_error(vm, -ENOMEM, "out of memory");
}
