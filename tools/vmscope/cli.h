/* SPDX-License-Identifier: MIT */
/* Shared by the vmscope subcommands: one file each, registered in main.c. */
#ifndef VMSCOPE_CLI_H
#define VMSCOPE_CLI_H

#include <pthread.h>
#include <stdint.h>

#include <vmscope/disk.h>
#include <vmscope/monitor.h>
#include <vmscope/ring.h>
#include <vmscope/sink.h>
#include <vmscope/vm.h>

struct cli_command {
	const char *name;
	const char *usage; /* arguments after the command name */
	const char *summary;
	int (*run)(int argc, char **argv);
};

extern const struct cli_command cmd_info;
extern const struct cli_command cmd_dump;
extern const struct cli_command cmd_read;
extern const struct cli_command cmd_regs;
extern const struct cli_command cmd_maps;
extern const struct cli_command cmd_translate;
extern const struct cli_command cmd_ps;
extern const struct cli_command cmd_pstree;
extern const struct cli_command cmd_lsmod;
extern const struct cli_command cmd_sysinfo;
extern const struct cli_command cmd_kernel;
extern const struct cli_command cmd_dmesg;
extern const struct cli_command cmd_mounts;
extern const struct cli_command cmd_disks;
extern const struct cli_command cmd_lsof;
extern const struct cli_command cmd_sockets;
extern const struct cli_command cmd_capture;
extern const struct cli_command cmd_fswatch;
extern const struct cli_command cmd_trace;
extern const struct cli_command cmd_metrics;
extern const struct cli_command cmd_record_metrics;
extern const struct cli_command cmd_model;
extern const struct cli_command cmd_exporter;
extern const struct cli_command cmd_top;
extern const struct cli_command cmd_remote;
extern const struct cli_command cmd_log;
extern const struct cli_command cmd_record;
extern const struct cli_command cmd_replay;

/* SIGINT and SIGTERM set a flag that long-running commands poll (cli_stopping()). */
void cli_stop_on_signals(void);
int cli_stopping(void);

/* Print "vmscope: <message>" on stderr; returns the exit status 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ps --cross-check (crosscheck.c). */
int cli_cross_check(struct vms_vm *vm, int json);

/* After a view: one warning line on stderr if it returned only part of the guest's answer. */
void cli_view_warning(const struct vms_vm *vm);

/* Print the usage line of cmd on stderr; returns the exit status 2. */
int cli_usage(const struct cli_command *cmd);

/* Parse a decimal or 0x-hex number; on error print why and return -1. */
int cli_parse_u64(const char *text, const char *what, uint64_t *ret);
/* Seconds above 0 (fractions allowed); on error print why and return -1. */
int cli_parse_seconds(const char *text, const char *what, double *ret);

/* --cr3 X | --vcpu N (whose CR3; default vCPU 0) and --levels 4|5. */
struct cli_paging {
	uint64_t cr3;
	int have_cr3;
	uint64_t vcpu;
	int levels;
};

enum { CLI_OPT_CR3 = 0x100, CLI_OPT_VCPU, CLI_OPT_LEVELS };

#define CLI_PAGING_OPTIONS                                          \
	{ "cr3", required_argument, NULL, CLI_OPT_CR3 },            \
		{ "vcpu", required_argument, NULL, CLI_OPT_VCPU },  \
	{                                                           \
		"levels", required_argument, NULL, CLI_OPT_LEVELS   \
	}

/* 1: opt was a paging option and is taken; 0: not one; -1: bad value (printed). */
int cli_paging_option(struct cli_paging *p, int opt, const char *arg);
/* Apply --levels and find the CR3 to use; prints why on failure (returns 1). */
int cli_paging_apply(struct vms_vm *vm, struct cli_paging *p);

/*
 * Parse "TARGET [--json]" for the commands that take nothing else: -1 and
 * *ret_json to go on (argv[optind] is the target), else the exit status.
 */
int cli_target_args(int argc, char **argv, const struct cli_command *cmd, int *ret_json);

/* Print a JSON value (stolen) on stdout, indented, with a newline. */
int cli_print_json(void *json_value);

/*
 * Print a view's list as {"items": [...], "truncated": BOOL, "warning": WHY}
 * (WHY null unless vms_view_warning() has one); takes the list.
 */
int cli_print_list_json(const struct vms_vm *vm, void *json_list);

/*
 * A view command: "NAME TARGET [--json]" fetches a list of items from the
 * guest and prints them as text or JSON. One runner does the rest.
 */
struct cli_view {
	const struct cli_command *cmd;
	int (*fetch)(struct vms_vm *vm, void **ret_items, size_t *ret_count);
	void (*print_text)(const void *items, size_t count);
	const char *json_view; /* its --json: vms_view_json()'s view of that name */
	void (*release)(void *items, size_t count);	    /* NULL: free() */
};

int cli_run_view(int argc, char **argv, const struct cli_view *view);
/* vms_view_json()'s view on stdout, for people; 0, or 1 with why on stderr. */
int cli_print_view_json(struct vms_vm *vm, const char *view);

/* Open and attach a handle to target; on failure print why and return NULL. */
struct vms_vm *cli_attach(const char *target);

/* opts for vms_vm_attach(), with the global options' libvirt URI and monitor mode. */
struct vms_attach_opts *cli_attach_opts(struct vms_attach_opts *opts, int timeout_ms);

/*
 * Streaming commands (stream.c). cli_stream_open: an event ring, a sink
 * from "jsonl" or "redis://HOST:PORT/STREAM" and the VM (prints why on
 * failure and returns 1). cli_stream: move events from ring to sink until
 * the duration (0: none) ends or SIGINT/SIGTERM. cli_stream_finish: drain
 * what is left and end the summary line with the sink's figures.
 */
/*
 * --log DIR [--log-sync MS] [--log-acks] on every command that makes events:
 * the events also go to a durable log (vmscope/log.h). CLI_LOG_OPTIONS goes
 * in a getopt_long table; cli_log_option() takes its codes (1 if the option
 * was one of them, -1 on a bad value, 0 otherwise).
 */
struct cli_log {
	const char *dir;
	unsigned int sync_ms;
	int acks; /* "log: N events durable" on stderr after each sync */
};

#define CLI_LOG_OPTIONS                                           \
	{ "log", required_argument, NULL, 0x4c01 },               \
	{ "log-sync", required_argument, NULL, 0x4c02 },          \
	{ "log-acks", no_argument, NULL, 0x4c03 }
#define CLI_LOG_USAGE "[--log DIR [--log-sync MS] [--log-acks]]"

int cli_log_option(struct cli_log *log, int opt, const char *arg);
/* The log's sink for log->dir (prints why and returns 1 on failure). */
int cli_log_open(const struct cli_log *log, struct vms_sink **ret_sink);
/* "log: N events durable, B bytes stored (R before compression)" on stderr. */
void cli_log_summary(struct vms_sink *log_sink);
/* Sync, print the log's line ("vmscope: log: ..."); 1 if the log failed. */
int cli_log_finish(struct vms_sink *log_sink);

/* A sink from "jsonl" (stdout) or "redis://HOST:PORT/STREAM" (prints why and returns 1). */
int cli_sink_open(const char *url, struct vms_sink **ret_sink);

/* "type key=value key=value ..." for people (with_time: "TIME VM " first). */
void cli_print_event(const struct vms_event *ev, int with_time);

struct cli_stream {
	struct vms_ring *ring;
	struct vms_sink *sink; /* the output sink, teed into the log when there is one */
	struct vms_sink *log;  /* owned by sink */
	struct vms_vm *vm;
	const char *sink_url;
	/* when set, asked each round: non-zero ends the stream (the producer has failed) */
	int (*failed)(void *ctx);
	void *failed_ctx;
};

int cli_stream_open(struct cli_stream *st, const char *target, const char *sink_url,
		    const struct cli_log *log);
void cli_stream_close(struct cli_stream *st);
int cli_stream(struct cli_stream *st, double duration);
void cli_stream_finish(struct cli_stream *st);
/* --mode MODE of capture and fswatch: 0, or 1 after a one-line error naming the modes. */
int cli_parse_capture_mode(const char *text, enum vms_capture_mode *ret);
/* --interval MS, within the library's bounds; refused for a mode that does not poll. */
int cli_parse_interval(const char *text, uint32_t *ret);
int cli_check_interval(enum vms_capture_mode mode, uint32_t interval_ms);

/*
 * Draw a fitted model (plot.c, through gnuplot): measured y and simulated
 * yhat over time, the first ntrain rows training, and the impulse response
 * to the first input. SVG or PNG by path's extension.
 */
int cli_plot_fit(const char *path, const double *time, const double *y, const double *yhat,
		 size_t n, size_t ntrain, const char *yname, const double *impulse, size_t nimp,
		 const char *uname);

/* One sample of both sides of a VM (metrics.c); either may be absent, with why. */
struct cli_sample {
	struct vms_host_metrics host;
	struct vms_guest_metrics guest;
	int has_host, has_guest;
	char host_absent[VMS_NAME_MAX + 256], guest_absent[VMS_NAME_MAX + 256];
};

/* 0 when at least one side was read. */
int cli_sample(struct vms_vm *vm, struct cli_sample *ret);
/* The same, the guest's side only if guest (host figures are what every turn needs). */
int cli_sample_sides(struct vms_vm *vm, struct cli_sample *ret, int guest);
void cli_sample_release(struct cli_sample *sample);
/* {"vm", "time_ns", "host", "guest"} as `vmscope metrics --json` prints it (a new json_t). */
void *cli_sample_json(const char *vm_name, const struct cli_sample *sample);
/*
 * A turn's series (vms_monitor_series()) as events into the log: per side
 * "host_metrics" / "guest_metrics" (source monitor) with each finite series
 * under its name without the side's prefix, split into parts ("part": 0, 1,
 * ...) of at most VMS_EVENT_MAX_ATTRS - 1 values.
 */
int cli_log_series(struct vms_sink *log, const char *vm, const double *values,
		   uint64_t time_ns);

/*
 * A thread per VM, sampling it every interval (collect.c): the host's side
 * every turn, the guest's every turn or, with guest_every N > 2, in pairs of
 * consecutive turns every N (a pair gives the guest's rates over one turn,
 * as the host's are). on_turn runs in the VM's thread after each turn, with
 * this turn's sample (NULL, and c->why, when the VM could not be sampled)
 * and the previous turn's (NULL after a failure); c->guest is the latest
 * guest side read, however old. c->name is the VM's name once attached (the
 * target until then). All of it belongs to that thread.
 */
struct cli_collectors;

struct cli_collector {
	const char *target;
	size_t index;
	char name[VMS_NAME_MAX];
	char why[VMS_NAME_MAX + 256];
	double last_good_s; /* Unix time of the last good sample, 0: none yet */
	pthread_t thread;
	struct cli_collectors *group;
	unsigned long turns;
	struct cli_sample prev;
	int has_prev;
	struct vms_guest_metrics guest; /* the latest guest side read */
	int has_guest;
	void *state; /* the command's, per VM */
};

struct cli_collectors {
	double interval_s;
	int timeout_ms;
	unsigned guest_every; /* 0 or 1: every turn */
	void (*on_turn)(struct cli_collector *c, const struct cli_sample *prev,
			const struct cli_sample *sample, double start_s, double duration_s);
	void (*on_end)(struct cli_collector *c); /* in its thread, as it ends (may be NULL) */
	void *ctx;
	struct cli_collector *vms;
	size_t nr_vms, started;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	int stop;
};

/* Start one collector per target (interval_s, timeout_ms, on_turn, ctx set); prints why not. */
int cli_collectors_start(struct cli_collectors *g, char **targets, size_t n);
/* Stop and join them (each ends its turn first: at most the QMP deadline). */
void cli_collectors_stop(struct cli_collectors *g);
double cli_realtime_s(void);

#endif
