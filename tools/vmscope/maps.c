// SPDX-License-Identifier: MIT
/*
 * vmscope maps TARGET [--cr3 X|--vcpu N] [--levels 4|5] [--json]: the virtual
 * address space of one set of page tables, as ranges. Neighbouring pages are
 * shown as one range when both their virtual and physical addresses follow
 * on, and their page size and rights are the same.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>

#include <vmscope/mem.h>

#include "cli.h"

struct range {
	uint64_t va, gpa, bytes;
	struct vms_translation t;
	int open;
};

struct maps_out {
	struct range cur;
	json_t *list; /* NULL for text */
	uint64_t ranges;
};

static json_t *hex(uint64_t v)
{
	char text[24];

	snprintf(text, sizeof(text), "0x%" PRIx64, v);
	return json_string(text);
}

static void emit(struct maps_out *out)
{
	const struct range *r = &out->cur;

	if (!r->open)
		return;
	out->ranges++;
	if (!out->list) {
		printf("%016" PRIx64 "-%016" PRIx64 " %016" PRIx64 " %5" PRIu64 "%c %c%c%c\n", r->va,
		       r->va + r->bytes, r->gpa,
		       r->t.page_bytes >= (1u << 30) ? r->t.page_bytes >> 30
		       : r->t.page_bytes >= (1u << 20) ? r->t.page_bytes >> 20
						       : r->t.page_bytes >> 10,
		       r->t.page_bytes >= (1u << 30) ? 'G' : r->t.page_bytes >= (1u << 20) ? 'M' : 'K',
		       r->t.user ? 'u' : '-', r->t.writable ? 'w' : '-', r->t.executable ? 'x' : '-');
		return;
	}
	json_array_append_new(out->list,
			      json_pack("{s:o,s:o,s:o,s:I,s:b,s:b,s:b}", "va", hex(r->va), "end",
					hex(r->va + r->bytes), "gpa", hex(r->gpa), "page_bytes",
					(json_int_t)r->t.page_bytes, "user", r->t.user, "writable",
					r->t.writable, "executable", r->t.executable));
}

static int on_mapping(uint64_t va, const struct vms_translation *t, void *ctx)
{
	struct maps_out *out = ctx;
	struct range *r = &out->cur;

	if (r->open && va == r->va + r->bytes && t->gpa == r->gpa + r->bytes &&
	    t->page_bytes == r->t.page_bytes && t->user == r->t.user &&
	    t->writable == r->t.writable && t->executable == r->t.executable) {
		r->bytes += t->page_bytes;
		return 0;
	}
	emit(out);
	*r = (struct range){ va, t->gpa, t->page_bytes, *t, 1 };
	return 0;
}

static int run_maps(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		CLI_PAGING_OPTIONS,
		{ 0 },
	};
	struct cli_paging paging = { 0 };
	struct maps_out out = { 0 };
	struct vms_vm *vm;
	int opt, taken, json = 0, status;

	while ((opt = getopt_long(argc, argv, "j", options, NULL)) != -1) {
		taken = cli_paging_option(&paging, opt, optarg);
		if (taken < 0)
			return 1;
		if (opt == 'j')
			json = 1;
		else if (!taken)
			return cli_usage(&cmd_maps);
	}
	if (optind != argc - 1)
		return cli_usage(&cmd_maps);
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	status = cli_paging_apply(vm, &paging);
	if (!status && json)
		out.list = json_array();
	if (!status && vms_for_each_mapping(vm, paging.cr3, 0, UINT64_MAX, 0, on_mapping, &out) < 0)
		status = cli_fail("%s", vms_last_error(vm));
	if (!status) {
		emit(&out);
		if (json) {
			json_dumpf(out.list, stdout, JSON_INDENT(1));
			putchar('\n');
		}
	}
	json_decref(out.list);
	vms_vm_free(vm);
	return status;
}

const struct cli_command cmd_maps = {
	.name = "maps",
	.usage = "TARGET [--cr3 X|--vcpu N] [--levels 4|5] [--json]",
	.summary = "virtual address ranges mapped by a vCPU's page tables",
	.run = run_maps,
};
