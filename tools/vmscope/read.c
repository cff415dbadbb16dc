// SPDX-License-Identifier: MIT
/*
 * vmscope read TARGET --phys ADDR LEN | --virt ADDR LEN | --disk NODE OFFSET LEN
 *              [--cr3 X | --vcpu N] [--levels 4|5] [--raw]
 * Guest memory, or a guest disk as the guest sees it, as a hex dump
 * (hexdump -C layout), or raw bytes with --raw.
 */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/disk.h>
#include <vmscope/mem.h>

#include "cli.h"

#define CHUNK_BYTES 65536

struct read_args {
	int virt, phys, raw;
	const char *disk;
	struct vms_disk_reader *reader;
	uint64_t addr, len;
	struct cli_paging paging;
};

struct hexdump {
	uint8_t last[16];
	int have_last, starred;
};

static void hex_line(struct hexdump *h, uint64_t addr, const uint8_t *p, size_t n)
{
	if (n == 16 && h->have_last && !memcmp(h->last, p, 16)) {
		if (!h->starred)
			puts("*");
		h->starred = 1;
		return;
	}
	h->starred = 0;
	h->have_last = n == 16;
	memcpy(h->last, p, n);
	printf("%016" PRIx64 " ", addr);
	for (size_t i = 0; i < 16; i++) {
		if (i < n)
			printf("%s %02x", i == 8 ? " " : "", p[i]);
		else
			printf("%s   ", i == 8 ? " " : "");
	}
	printf("  |");
	for (size_t i = 0; i < n; i++)
		putchar(isprint(p[i]) ? p[i] : '.');
	printf("|\n");
}

static int read_chunk(struct vms_vm *vm, const struct read_args *a, uint64_t addr, uint8_t *buf,
		      size_t n)
{
	if (a->reader)
		return vms_disk_read(a->reader, addr, buf, n);
	if (a->virt)
		return vms_virt_read(vm, a->paging.cr3, addr, buf, n);
	return vms_phys_read(vm, addr, buf, n);
}

static int dump_range(struct vms_vm *vm, const struct read_args *a)
{
	static uint8_t buf[CHUNK_BYTES];
	struct hexdump h = { 0 };
	uint64_t done = 0;

	while (done < a->len) {
		size_t n = a->len - done < CHUNK_BYTES ? (size_t)(a->len - done) : CHUNK_BYTES;

		if (read_chunk(vm, a, a->addr + done, buf, n)) {
			fflush(stdout);
			return cli_fail("%s", vms_last_error(vm));
		}
		if (a->raw)
			fwrite(buf, 1, n, stdout);
		for (size_t off = 0; !a->raw && off < n; off += 16)
			hex_line(&h, a->addr + done + off, buf + off, n - off < 16 ? n - off : 16);
		done += n;
	}
	if (!a->raw && h.starred)
		printf("%016" PRIx64 "\n", a->addr + a->len);
	return 0;
}

static int parse_args(int argc, char **argv, struct read_args *a)
{
	static const struct option options[] = {
		{ "phys", no_argument, NULL, 'p' },
		{ "virt", no_argument, NULL, 'v' },
		{ "raw", no_argument, NULL, 'r' },
		{ "disk", required_argument, NULL, 'k' },
		CLI_PAGING_OPTIONS,
		{ 0 },
	};
	int opt, taken;

	while ((opt = getopt_long(argc, argv, "pvrk:", options, NULL)) != -1) {
		taken = cli_paging_option(&a->paging, opt, optarg);
		if (taken < 0)
			return 1;
		if (opt == 'p')
			a->phys = 1;
		else if (opt == 'v')
			a->virt = 1;
		else if (opt == 'r')
			a->raw = 1;
		else if (opt == 'k')
			a->disk = optarg;
		else if (!taken)
			return cli_usage(&cmd_read);
	}
	if (a->phys + a->virt + !!a->disk != 1 || optind != argc - 3)
		return cli_usage(&cmd_read);
	if (cli_parse_u64(argv[optind + 1], "address", &a->addr) ||
	    cli_parse_u64(argv[optind + 2], "length", &a->len))
		return 1;
	if (a->addr + a->len < a->addr)
		return cli_fail("address 0x%" PRIx64 " + length %" PRIu64 " wraps around", a->addr,
				a->len);
	return 0;
}

static int run_read(int argc, char **argv)
{
	struct read_args a = { 0 };
	struct vms_vm *vm;
	int status;

	status = parse_args(argc, argv, &a);
	if (status)
		return status;
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	if (a.virt)
		status = cli_paging_apply(vm, &a.paging);
	if (!status && a.disk && vms_disk_open(vm, a.disk, &a.reader))
		status = cli_fail("%s", vms_last_error(vm));
	if (!status)
		status = dump_range(vm, &a);
	if (a.reader && vms_disk_close(a.reader) && !status)
		status = cli_fail("%s", vms_last_error(vm));
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_read = {
	.name = "read",
	.usage = "TARGET --phys|--virt ADDR LEN | --disk NODE OFFSET LEN [--raw] [...]",
	.summary = "guest memory, or a disk as the guest sees it, as a hex dump",
	.run = run_read,
};
