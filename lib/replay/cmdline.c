// SPDX-License-Identifier: MIT
/*
 * A QEMU command line made deterministic: QEMU records only what it can
 * replay, so everything that brings input from outside must go through its
 * replay layer (disks through blkreplay, NICs through filter-replay), and
 * the disks must start each run in the same state: each gets a fresh qcow2
 * overlay in the recording's directory over its image, which is only read.
 * What QEMU 7.2 cannot record (KVM, several vCPUs, multi-threaded TCG) is
 * refused here, in one line, before QEMU would fail less clearly.
 */
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vmscope/replay.h>

extern char **environ;

#define MAX_OPTS 32

/* "a=b,c=d" with ",," for a literal comma, as QEMU's option syntax. */
struct opts {
	char *key[MAX_OPTS], *val[MAX_OPTS];
	int n;
	char *buf;
};

static int opts_parse(struct opts *o, const char *text)
{
	char *w;

	memset(o, 0, sizeof(*o));
	o->buf = w = malloc(strlen(text) + 1);
	if (!w)
		return -ENOMEM;
	while (*text) {
		char *start = w;

		while (*text && !(*text == ',' && text[1] != ',')) {
			if (*text == ',')
				text++; /* ",," */
			*w++ = *text++;
		}
		*w++ = '\0';
		if (*text == ',')
			text++;
		if (o->n == MAX_OPTS) {
			free(o->buf);
			o->buf = NULL;
			return -E2BIG;
		}
		o->key[o->n] = start;
		o->val[o->n] = strchr(start, '=');
		if (o->val[o->n])
			*o->val[o->n]++ = '\0';
		o->n++;
	}
	return 0;
}

static const char *opt(const struct opts *o, const char *key)
{
	for (int i = 0; i < o->n; i++)
		if (o->val[i] && !strcmp(o->key[i], key))
			return o->val[i];
	return NULL;
}

struct builder {
	char **argv;
	size_t argc, cap;
	int err;
};

static void add(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct builder *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (b->err)
		return;
	if (b->argc + 2 > b->cap) {
		char **more = realloc(b->argv, (b->cap = b->cap ? b->cap * 2 : 64) * sizeof(char *));

		if (!more) {
			b->err = -ENOMEM;
			return;
		}
		b->argv = more;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		b->err = -ENOMEM;
	else
		b->argv[b->argc++] = s;
	va_end(ap);
	b->argv[b->argc] = NULL;
}

static int refuse(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int refuse(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* qemu-img create -f qcow2 -b IMAGE -F FORMAT OVERLAY: a fresh, empty overlay. */
static int make_overlay(const char *image, const char *format, const char *overlay)
{
	char *args[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", (char *)image,
			 "-F", (char *)format, (char *)overlay, NULL };
	pid_t pid;
	int status;

	unlink(overlay);
	if (posix_spawnp(&pid, "qemu-img", NULL, NULL, args, environ))
		return -ENOENT;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -EIO;
	return 0;
}

/* The disk node a device uses, as an overlay under blkreplay. */
static int wrap_disk(struct builder *b, const char *dir, const char *node, const char *file,
		     const char *format, char *err, size_t len)
{
	char image[PATH_MAX], overlay[PATH_MAX + 64];

	if (strcmp(format, "raw") && strcmp(format, "qcow2"))
		return refuse(err, len, "disk %s: format %s; vmscope record wraps raw and qcow2 "
			      "images", node, format);
	if (!realpath(file, image))
		return refuse(err, len, "disk %s: %s: %s", node, file, strerror(errno));
	snprintf(overlay, sizeof(overlay), "%s/disk-%s.qcow2", dir, node);
	if (make_overlay(image, format, overlay))
		return refuse(err, len, "disk %s: qemu-img cannot make an overlay over %s", node,
			      image);
	add(b, "-blockdev");
	add(b, "driver=qcow2,node-name=%s-rr,file.driver=file,file.filename=%s", node, overlay);
	add(b, "-blockdev");
	add(b, "driver=blkreplay,image=%s-rr,node-name=%s", node, node);
	return 0;
}

static int is(const char *a, const char *b)
{
	return !strcmp(a, b);
}

/* Options QEMU cannot record with, or that vmscope sets itself. */
static int check_arg(const char *a, const char *v, char *err, size_t len)
{
	if (is(a, "-enable-kvm") || ((is(a, "-accel") || is(a, "-machine") || is(a, "-M")) && v &&
				     strstr(v, "kvm")))
		return refuse(err, len, "QEMU records and replays under TCG only, not KVM");
	if (is(a, "-accel") && v && strstr(v, "thread=multi"))
		return refuse(err, len, "QEMU records single-threaded TCG only (not thread=multi)");
	if (is(a, "-smp") && v) {
		const char *c = strstr(v, "cpus=");
		long n = strtol(c ? c + 5 : v, NULL, 10);

		if (n > 1)
			return refuse(err, len, "QEMU 7.2 records one vCPU only, not -smp %s", v);
	}
	if (is(a, "-icount"))
		return refuse(err, len, "the command line has an -icount of its own; vmscope "
			      "record sets it");
	if (is(a, "-nic") || is(a, "-net") || is(a, "-hda") || is(a, "-hdb") || is(a, "-hdc") ||
	    is(a, "-hdd") || is(a, "-cdrom") || is(a, "-snapshot") || is(a, "-loadvm"))
		return refuse(err, len, "%s: vmscope record wraps disks given as -blockdev or "
			      "-drive file=, and NICs as -netdev, only", a);
	return 0;
}

/* Whether some -device uses node. */
static int used(char *const *argv, size_t argc, const char *node)
{
	for (size_t i = 1; i + 1 < argc; i++) {
		struct opts o;
		const char *d;
		int hit;

		if (!is(argv[i], "-device") || opts_parse(&o, argv[i + 1]))
			continue;
		d = opt(&o, "drive");
		hit = d && is(d, node);
		free(o.buf);
		if (hit)
			return 1;
	}
	return 0;
}

/* The -blockdev whose node-name is name, parsed into *o; its index or 0. */
static size_t find_node(char *const *argv, size_t argc, const char *name, struct opts *o)
{
	for (size_t i = 1; i + 1 < argc; i++) {
		const char *n;

		if (!is(argv[i], "-blockdev") || opts_parse(o, argv[i + 1]))
			continue;
		n = opt(o, "node-name");
		if (n && is(n, name))
			return i + 1;
		free(o->buf);
	}
	return 0;
}

/* -blockdev format node over a file node, used by a device: replaced. */
static int blockdev(struct builder *b, const char *dir, char *const *argv, size_t argc,
		    size_t i, char *err, size_t len)
{
	struct opts o, f = { 0 };
	const char *node, *child, *fmt;
	size_t fi = 0;
	int r = 0;

	if (argv[i][0] == '{')
		return refuse(err, len, "-blockdev in JSON form: vmscope record takes the "
			      "key=value form");
	if (opts_parse(&o, argv[i]))
		return -ENOMEM;
	node = opt(&o, "node-name");
	fmt = opt(&o, "driver");
	if (!node || !used(argv, argc, node)) {
		free(o.buf);
		return 1; /* not a device's disk: kept as it is */
	}
	child = opt(&o, "file");
	if (fmt && child && (fi = find_node(argv, argc, child, &f)) && opt(&f, "driver") &&
	    is(opt(&f, "driver"), "file") && opt(&f, "filename")) {
		r = wrap_disk(b, dir, node, opt(&f, "filename"), fmt, err, len);
	} else {
		r = refuse(err, len, "disk %s: vmscope record wraps a -blockdev raw or qcow2 node "
			   "over a driver=file node", node);
	}
	free(o.buf);
	free(f.buf);
	return r;
}

/* The file nodes under the disks that blockdev() replaces, marked in skip[]. */
static void mark_file_nodes(char *const *argv, size_t argc, unsigned char *skip)
{
	for (size_t i = 1; i + 1 < argc; i++) {
		struct opts o, f;
		const char *node, *child;
		size_t fi;

		if (!is(argv[i], "-blockdev") || argv[i + 1][0] == '{' || opts_parse(&o, argv[i + 1]))
			continue;
		node = opt(&o, "node-name");
		child = opt(&o, "file");
		if (node && child && used(argv, argc, node) && (fi = find_node(argv, argc, child, &f))) {
			if (opt(&f, "driver") && is(opt(&f, "driver"), "file"))
				skip[fi] = 1;
			free(f.buf);
		}
		free(o.buf);
	}
}

static int drive(struct builder *b, const char *dir, const char *v, int n, char *err,
		 size_t len)
{
	struct opts o;
	const char *file, *iface, *id, *fmt;
	char gen[32];
	int r;

	if (opts_parse(&o, v))
		return -ENOMEM;
	file = opt(&o, "file");
	iface = opt(&o, "if");
	id = opt(&o, "id");
	fmt = opt(&o, "format");
	snprintf(gen, sizeof(gen), "vms-rr-drive%d", n);
	if (!file || !fmt || (iface && !is(iface, "none") && !is(iface, "virtio")) ||
	    (!iface))
		r = refuse(err, len, "-drive %s: vmscope record wraps -drive file=...,format=...,"
			   "if=none|virtio", v);
	else
		r = wrap_disk(b, dir, id ? id : gen, file, fmt, err, len);
	if (!r && is(iface, "virtio")) {
		add(b, "-device");
		add(b, "virtio-blk-pci,drive=%s", id ? id : gen);
	}
	free(o.buf);
	return r;
}

static void netdev(struct builder *b, const char *v)
{
	struct opts o;
	const char *id;

	if (opts_parse(&o, v))
		return;
	id = opt(&o, "id");
	if (id) {
		add(b, "-object");
		add(b, "filter-replay,id=vms-rr-%s,netdev=%s", id, id);
	}
	free(o.buf);
}

void vms_rr_command_release(struct vms_rr_command *cmd)
{
	for (size_t i = 0; cmd->argv && i < cmd->argc; i++)
		free(cmd->argv[i]);
	free(cmd->argv);
	memset(cmd, 0, sizeof(*cmd));
}

int vms_rr_command(const char *dir, enum vms_rr_mode mode, char *const *argv, size_t argc,
		   struct vms_rr_command *ret, char *err, size_t errlen)
{
	unsigned char *skip = calloc(argc + 1, 1);
	struct builder b = { 0 };
	int r = 0, drives = 0;

	memset(ret, 0, sizeof(*ret));
	if (!skip)
		return -ENOMEM;
	if (!argc) {
		free(skip);
		return refuse(err, errlen, "no QEMU command line");
	}
	snprintf(ret->qmp_path, sizeof(ret->qmp_path), "%s/qmp.sock", dir);
	snprintf(ret->view_qmp_path, sizeof(ret->view_qmp_path), "%s/qmp-views.sock", dir);
	snprintf(ret->replay_log, sizeof(ret->replay_log), "%s/replay.bin", dir);
	add(&b, "%s", argv[0]);
	mark_file_nodes(argv, argc, skip);
	for (size_t i = 1; !r && i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (is(a, "-blockdev") && v && skip[i + 1]) {
			i++; /* a file node now under an overlay's image */
			continue;
		}
		r = check_arg(a, v, err, errlen);
		if (r)
			break;
		if (is(a, "-S"))
			continue;
		if (is(a, "-blockdev") && v) {
			r = blockdev(&b, dir, argv, argc, i + 1, err, errlen);
			if (r == 1) {
				add(&b, "%s", a);
				add(&b, "%s", v);
				r = 0;
			}
			i++;
		} else if (is(a, "-drive") && v) {
			r = drive(&b, dir, v, drives++, err, errlen);
			i++;
		} else {
			add(&b, "%s", a);
			if (is(a, "-netdev") && v) {
				add(&b, "%s", v);
				netdev(&b, v);
				i++;
			}
		}
	}
	add(&b, "-icount");
	add(&b, "shift=auto,rr=%s,rrfile=%s", mode == VMS_RR_RECORD ? "record" : "replay",
	    ret->replay_log);
	add(&b, "-qmp");
	add(&b, "unix:%s,server=on,wait=off", ret->qmp_path);
	add(&b, "-qmp");
	add(&b, "unix:%s,server=on,wait=off", ret->view_qmp_path);
	add(&b, "-S");
	free(skip);
	ret->argv = b.argv;
	ret->argc = b.argc;
	if (!r && b.err)
		r = refuse(err, errlen, "out of memory");
	if (r)
		vms_rr_command_release(ret);
	return r;
}
