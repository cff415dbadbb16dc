// SPDX-License-Identifier: MIT
/*
 * Record/replay beside the command line: QEMU's replay controls over QMP,
 * checkpoints of the guest's state, the replay log's compression, and the
 * QEMU build's identity.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <xxhash.h>
#include <zstd.h>

#include <vmscope/os.h>
#include <vmscope/replay.h>

#include "access/qmp.h"
#include "core/internal.h"

int vms_rr_query(struct vms_vm *vm, char mode[16], uint64_t *ret_icount)
{
	json_t *r = NULL;
	int err;

	if (!vm->qmp)
		return vm_error(vm, -EOPNOTSUPP, "not a live QEMU");
	err = qmp_execute(vm->qmp, "query-replay", NULL, &r);
	if (err)
		return vm_error(vm, err, "query-replay: %s", qmp_error(vm->qmp));
	snprintf(mode, 16, "%s", json_string_value(json_object_get(r, "mode")) ?: "none");
	*ret_icount = (uint64_t)json_integer_value(json_object_get(r, "icount"));
	json_decref(r);
	return 0;
}

/* A QMP command that answers nothing worth keeping. */
static int command(struct vms_vm *vm, const char *name, json_t *args)
{
	int err;

	if (!vm->qmp) {
		json_decref(args);
		return vm_error(vm, -EOPNOTSUPP, "not a live QEMU");
	}
	err = qmp_execute(vm->qmp, name, args, NULL);
	return err ? vm_error(vm, err, "%s: %s", name, qmp_error(vm->qmp)) : 0;
}

int vms_rr_break(struct vms_vm *vm, uint64_t icount)
{
	return command(vm, "replay-break", json_pack("{s:I}", "icount", (json_int_t)icount));
}

int vms_rr_continue(struct vms_vm *vm)
{
	return command(vm, "cont", NULL);
}

/* "/machine/peripheral/vda/virtio-backend" and the like: a virtio device's own node. */
static unsigned int queue_in_use(struct vms_vm *vm, const char *qdev)
{
	unsigned int inuse = 0;

	if (!strstr(qdev, "virtio"))
		return 0;
	for (int q = 0; q < 64; q++) {
		json_t *r = NULL;

		if (qmp_execute(vm->qmp, "x-query-virtio-queue-status",
				json_pack("{s:s,s:i}", "path", qdev, "queue", q), &r))
			break; /* past the last queue */
		inuse += (unsigned int)json_integer_value(json_object_get(r, "inuse"));
		json_decref(r);
	}
	return inuse;
}

int vms_rr_io_in_flight(struct vms_vm *vm, unsigned int *ret_count)
{
	json_t *list = NULL, *dev;
	size_t i;
	int err;

	*ret_count = 0;
	if (!vm->qmp)
		return vm_error(vm, -EOPNOTSUPP, "not a live QEMU");
	err = qmp_execute(vm->qmp, "query-block", NULL, &list);
	if (err)
		return vm_error(vm, err, "query-block: %s", qmp_error(vm->qmp));
	json_array_foreach(list, i, dev) {
		const char *qdev = json_string_value(json_object_get(dev, "qdev"));

		if (qdev && json_object_get(dev, "inserted"))
			*ret_count += queue_in_use(vm, qdev);
	}
	json_decref(list);
	return 0;
}

int vms_rr_quit(struct vms_vm *vm)
{
	int err = command(vm, "quit", NULL);

	/* QEMU may close the connection before it answers. */
	return err == -EPIPE || err == -ECONNRESET ? 0 : err;
}

static int by_pid(const void *a, const void *b)
{
	const struct vms_process *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

int vms_rr_checkpoint_take(struct vms_vm *vm, uint64_t icount, struct vms_rr_checkpoint *ret)
{
	struct vms_process *procs;
	struct vms_sysinfo si;
	size_t n, len = 0, cap;
	char *text;
	int err;

	memset(ret, 0, sizeof(*ret));
	err = vms_os_processes(vm, 0, &procs, &n);
	if (err)
		return err;
	err = vms_os_sysinfo(vm, &si);
	if (err) {
		vms_processes_free(procs, n);
		return err;
	}
	if (n) /* none yet at the very start: procs is NULL */
		qsort(procs, n, sizeof(*procs), by_pid);
	cap = n * (VMS_COMM_MAX + 24) + 1;
	text = malloc(cap);
	if (!text) {
		vms_processes_free(procs, n);
		return vm_error(vm, -ENOMEM, "out of memory");
	}
	text[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s%d:%d:%s", i ? " " : "",
					procs[i].pid, procs[i].ppid, procs[i].comm);
	vms_processes_free(procs, n);
	ret->icount = icount;
	ret->processes = n;
	ret->forks = si.forks;
	ret->context_switches = si.context_switches;
	ret->process_list = text;
	{
		uint64_t counters[2] = { si.forks, si.context_switches };

		ret->hash = XXH3_64bits_withSeed(text, len, XXH3_64bits(counters, sizeof(counters)));
	}
	return 0;
}

void vms_rr_checkpoint_release(struct vms_rr_checkpoint *cp)
{
	free(cp->process_list);
	cp->process_list = NULL;
}

/* The first process entry of a's list that b lacks, into out. */
static void first_missing(const char *a, const char *b, char *out, size_t len)
{
	char *copy = strdup(a ? a : ""), *save = NULL;

	out[0] = '\0';
	for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save)) {
		const char *hit = b ? strstr(b, t) : NULL;
		size_t n = strlen(t);

		while (hit && ((hit != b && hit[-1] != ' ') || (hit[n] && hit[n] != ' ')))
			hit = strstr(hit + 1, t);
		if (!hit) {
			snprintf(out, len, "%s", t);
			break;
		}
	}
	free(copy);
}

void vms_rr_checkpoint_diff(const struct vms_rr_checkpoint *a, const struct vms_rr_checkpoint *b,
			    char *buf, size_t len)
{
	char gone[96], extra[96];

	first_missing(a->process_list, b->process_list, gone, sizeof(gone));
	first_missing(b->process_list, a->process_list, extra, sizeof(extra));
	snprintf(buf, len, "recorded %" PRIu64 " processes, %" PRIu64 " forks, %" PRIu64
		 " context switches; replayed %" PRIu64 ", %" PRIu64 ", %" PRIu64 "%s%s%s%s",
		 a->processes, a->forks, a->context_switches, b->processes, b->forks,
		 b->context_switches, gone[0] ? "; only recorded: pid:ppid:comm " : "", gone,
		 extra[0] ? "; only replayed: " : "", extra);
}

/* Stream in to out through a zstd compressing (or decompressing) context. */
static int zstd_stream(FILE *in, FILE *out, int compress)
{
	size_t in_cap = compress ? ZSTD_CStreamInSize() : ZSTD_DStreamInSize();
	size_t out_cap = compress ? ZSTD_CStreamOutSize() : ZSTD_DStreamOutSize();
	void *ib = malloc(in_cap), *ob = malloc(out_cap);
	ZSTD_CCtx *cc = compress ? ZSTD_createCCtx() : NULL;
	ZSTD_DCtx *dc = compress ? NULL : ZSTD_createDCtx();
	int err = (!ib || !ob || (!cc && !dc)) ? -ENOMEM : 0;
	size_t got, rest = 1;

	if (cc)
		ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 9);
	while (!err && (got = fread(ib, 1, in_cap, in)) > 0) {
		ZSTD_inBuffer ibuf = { ib, got, 0 };

		while (!err && ibuf.pos < ibuf.size) {
			ZSTD_outBuffer obuf = { ob, out_cap, 0 };

			rest = cc ? ZSTD_compressStream2(cc, &obuf, &ibuf, ZSTD_e_continue)
				  : ZSTD_decompressStream(dc, &obuf, &ibuf);
			if (ZSTD_isError(rest) || fwrite(ob, 1, obuf.pos, out) != obuf.pos)
				err = -EIO;
		}
	}
	while (!err && cc) {
		ZSTD_inBuffer ibuf = { ib, 0, 0 };
		ZSTD_outBuffer obuf = { ob, out_cap, 0 };

		rest = ZSTD_compressStream2(cc, &obuf, &ibuf, ZSTD_e_end);
		if (ZSTD_isError(rest) || fwrite(ob, 1, obuf.pos, out) != obuf.pos)
			err = -EIO;
		if (!rest)
			break;
	}
	if (!err && (ferror(in) || (dc && rest)))
		err = -EIO; /* a read error, or a compressed stream cut short */
	ZSTD_freeCCtx(cc);
	ZSTD_freeDCtx(dc);
	free(ib);
	free(ob);
	return err;
}

static int zstd_file(const char *from, const char *to, int compress)
{
	FILE *in = fopen(from, "rb"), *out;
	int err;

	if (!in)
		return -errno;
	out = fopen(to, "wb");
	if (!out) {
		err = -errno;
		fclose(in);
		return err;
	}
	err = zstd_stream(in, out, compress);
	fclose(in);
	if (fflush(out) || fsync(fileno(out)))
		err = err ?: -errno;
	if (fclose(out))
		err = err ?: -errno;
	if (err)
		unlink(to);
	return err;
}

int vms_rr_compress(const char *path)
{
	char zst[4200];
	int err;

	snprintf(zst, sizeof(zst), "%s.zst", path);
	err = zstd_file(path, zst, 1);
	if (!err && unlink(path))
		err = -errno;
	return err;
}

int vms_rr_decompress(const char *zst_path, const char *out_path)
{
	return zstd_file(zst_path, out_path, 0);
}

int vms_rr_file_sha256(const char *path, char out[65])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
	unsigned int len = 0;
	ssize_t n;

	if (fd < 0 || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		err = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	if (n < 0 || !EVP_DigestFinal_ex(ctx, md, &len))
		err = -EIO;
	for (unsigned int i = 0; !err && i < len && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
out:
	EVP_MD_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return err;
}
