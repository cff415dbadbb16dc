// SPDX-License-Identifier: MIT
/*
 * vmscope: the command-line tool. Dispatches to one subcommand per file; the
 * library does the work, this only parses arguments and prints.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/libvirt.h>

#include "cli.h"

static const struct cli_command *const commands[] = {
	&cmd_info,  &cmd_ps,	    &cmd_pstree,	 &cmd_lsmod,  &cmd_sysinfo,  &cmd_sockets,
	&cmd_lsof,  &cmd_mounts,    &cmd_disks,		 &cmd_dmesg,  &cmd_kernel,   &cmd_regs,
	&cmd_read,  &cmd_translate, &cmd_maps,		 &cmd_dump,   &cmd_capture,  &cmd_fswatch,
	&cmd_trace, &cmd_metrics,   &cmd_record_metrics, &cmd_model,  &cmd_exporter, &cmd_top,
	&cmd_log,   &cmd_record,    &cmd_replay,	 &cmd_remote,
};

static volatile sig_atomic_t stopping;

static void on_stop_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

void cli_stop_on_signals(void)
{
	/* SA_RESTART: a write to a full stdout pipe must resume, not lose half a line. */
	struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int cli_stopping(void)
{
	return stopping;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("vmscope: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

void cli_view_warning(const struct vms_vm *vm)
{
	const char *why = vms_view_warning(vm);

	if (why)
		fprintf(stderr, "vmscope: warning: partial result: %s\n", why);
}

int cli_usage(const struct cli_command *cmd)
{
	fprintf(stderr, "usage: vmscope %s %s\n", cmd->name, cmd->usage);
	return 2;
}

int cli_target_args(int argc, char **argv, const struct cli_command *cmd, int *ret_json)
{
	static const struct option options[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	int opt;

	*ret_json = 0;
	while ((opt = getopt_long(argc, argv, "j", options, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage(cmd);
		*ret_json = 1;
	}
	return optind == argc - 1 ? -1 : cli_usage(cmd);
}

int cli_print_json(void *json_value)
{
	json_t *value = json_value;

	if (!value)
		return cli_fail("cannot build JSON output");
	json_dumpf(value, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(value);
	return 0;
}

int cli_print_list_json(const struct vms_vm *vm, void *json_list)
{
	const char *why = vms_view_warning(vm);

	if (!json_list)
		return cli_fail("cannot build JSON output");
	/* An envelope, so that a partial list says so where scripts look. */
	return cli_print_json(json_pack("{s:o, s:b, s:s?}", "items", (json_t *)json_list,
					"truncated", why != NULL, "warning", why));
}

int cli_print_view_json(struct vms_vm *vm, const char *view)
{
	char *text;

	if (vms_view_json(vm, view, VMS_JSON_INDENT, &text))
		return cli_fail("%s", vms_last_error(vm));
	puts(text);
	free(text);
	return 0;
}

int cli_run_view(int argc, char **argv, const struct cli_view *view)
{
	void *items = NULL;
	struct vms_vm *vm;
	int json, status;
	size_t count = 0;

	status = cli_target_args(argc, argv, view->cmd, &json);
	if (status >= 0)
		return status;
	vm = cli_attach(argv[optind]);
	if (!vm)
		return 1;
	status = 0;
	if (json)
		status = cli_print_view_json(vm, view->json_view);
	else if (view->fetch(vm, &items, &count))
		status = cli_fail("%s", vms_last_error(vm));
	else
		view->print_text(items, count);
	if (!status)
		cli_view_warning(vm);
	if (view->release)
		view->release(items, count);
	else
		free(items);
	vms_vm_free(vm);
	return status;
}

/* vmscope --connect URI --libvirt-monitor MODE COMMAND ...: for every libvirt: target. */
static const char *connect_uri;
static int libvirt_monitor;

struct vms_attach_opts *cli_attach_opts(struct vms_attach_opts *opts, int timeout_ms)
{
	*opts = (struct vms_attach_opts){ .sz = sizeof(*opts),
					  .timeout_ms = timeout_ms,
					  .libvirt_uri = connect_uri,
					  .libvirt_monitor = libvirt_monitor };
	return opts;
}

static int parse_monitor_mode(const char *arg)
{
	static const char *const modes[] = {
		[VMS_LIBVIRT_MONITOR_AUTO] = "auto",
		[VMS_LIBVIRT_MONITOR_PASSTHROUGH] = "passthrough",
		[VMS_LIBVIRT_MONITOR_SECOND] = "second",
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(arg, modes[i])) {
			libvirt_monitor = (int)i;
			return 0;
		}
	return cli_fail("--libvirt-monitor: \"%s\" is not auto, passthrough or second", arg);
}

/* The options before COMMAND; returns how many argv entries they took, or -1. */
static int global_options(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "-h") &&
	       strcmp(argv[i], "--help")) {
		const char *opt = argv[i], *eq = strchr(opt, '=');
		size_t name_len = eq ? (size_t)(eq - opt) : strlen(opt);
		const char *value = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;

		if (!value)
			return cli_fail("%s needs a value", opt), -1;
		if ((name_len == 9 && !strncmp(opt, "--connect", 9)) || (!eq && !strcmp(opt, "-c")))
			connect_uri = value;
		else if (name_len == 17 && !strncmp(opt, "--libvirt-monitor", 17)) {
			if (parse_monitor_mode(value))
				return -1;
		} else
			return cli_fail("unknown option \"%s\" (try vmscope --help)", opt), -1;
		i += eq ? 1 : 2;
	}
	return i - 1;
}

struct vms_vm *cli_attach(const char *target)
{
	struct vms_attach_opts opts;
	struct vms_vm *vm = NULL;
	int err;

	err = vms_vm_new(&vm);
	if (err) {
		cli_fail("out of memory");
		return NULL;
	}
	err = vms_vm_attach(vm, target, cli_attach_opts(&opts, 0));
	if (err) {
		cli_fail("%s", vms_last_error(vm));
		vms_vm_free(vm);
		return NULL;
	}
	return vm;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vmscope [--connect URI] [--libvirt-monitor MODE] COMMAND TARGET "
		"[OPTIONS]\n\n"
		"TARGET is qmp:/path/to/qmp.sock (a live QEMU), libvirt:DOMAIN (a running\n"
		"libvirt domain on this host), dump:/path/to/core (an ELF core from vmscope\n"
		"dump or dump-guest-memory) or raw:/path/to/memory.img\n\n"
		"--connect URI (-c)       libvirt's URI, as virsh's; else $LIBVIRT_DEFAULT_URI,\n"
		"                         else qemu:///system\n"
		"--libvirt-monitor MODE   auto (the domain's second QMP monitor if its XML\n"
		"                         declares one, else libvirt's passthrough),\n"
		"                         passthrough or second (docs/libvirt.md)\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-6s %-44s %s\n", commands[i]->name, commands[i]->usage,
			commands[i]->summary);
}

int main(int argc, char **argv)
{
	int taken = global_options(argc, argv);

	if (taken < 0)
		return 2;
	argv[taken] = argv[0];
	argc -= taken;
	argv += taken;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i]->name))
			return commands[i]->run(argc - 1, argv + 1);
	cli_fail("unknown command \"%s\" (try vmscope --help)", argv[1]);
	return 2;
}
