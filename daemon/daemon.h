/* SPDX-License-Identifier: MIT */
/*
 * vmscoped: one daemon for every VM on a host. The pieces, one file each:
 * config.c (the INI file and its defaults), vms.c (the set of VMs, a worker
 * thread each), caps.c (a worker's views, trace and fswatch), events.c (the
 * hub of every VM's events: the log, the live stream), qmpdir.c (a source
 * of VMs: a directory of QMP sockets), libvirt.c (another: the running
 * domains of a libvirt URI), api.c (the control API over HTTP: a unix
 * socket, or TCP on loopback).
 */
#ifndef VMSCOPED_DAEMON_H
#define VMSCOPED_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define DAEMON_NAME_MAX	  128
#define DAEMON_PATH_MAX	  4096
#define DAEMON_REASON_MAX 256
#define DAEMON_LIBVIRT_MAX 8 /* libvirt URIs */
#define DAEMON_URI_MAX	   512
#define DAEMON_DISKS_MAX    4 /* fswatch'ed disks per VM */
#define DAEMON_NODE_MAX	    64
#define DAEMON_GLOBS_MAX    16 /* fswatch-path lines per VM */
#define DAEMON_GLOB_MAX	    256
#define DAEMON_SECTIONS_MAX 1024 /* [vm PATTERN] sections */

struct daemon_disks {
	int nr;
	char node[DAEMON_DISKS_MAX][DAEMON_NODE_MAX];
};

struct daemon_globs {
	int nr;
	char glob[DAEMON_GLOBS_MAX][DAEMON_GLOB_MAX];
};

/* What the daemon does with one VM: [defaults], then each [vm PATTERN] that names it. */
struct daemon_vmconf {
	int metrics;	    /* sample the host's figures every interval */
	unsigned int views; /* VMS_POLL_*: views polled and diffed into events; 0 none */
	double view_interval_s;
	unsigned int trace;	     /* a bit per enum vms_probe; 0: no tracing */
	struct daemon_disks fswatch; /* block nodes whose ext4 writes become file events */
	int fswatch_mode;	     /* enum vms_capture_mode */
	struct daemon_globs fswatch_paths;
	int log;	 /* its events into the log (log-dir) */
	uint64_t memory; /* bytes for its events: rings and spools */
};

struct daemon_section {
	char pattern[DAEMON_NAME_MAX];	  /* fnmatch(3) over VM names */
	char target[DAEMON_PATH_MAX + 8]; /* "" unless the section lists a VM itself */
	unsigned int set;		  /* a bit per key it sets (config.c's table) */
	struct daemon_vmconf v;
};

struct daemon_config {
	char qmp_dir[DAEMON_PATH_MAX]; /* "" none */
	char libvirt[DAEMON_LIBVIRT_MAX][DAEMON_URI_MAX];
	int nr_libvirt;
	char listen[DAEMON_PATH_MAX];  /* "unix:PATH" or "HOST:PORT" (loopback only) */
	double interval_s;	       /* between a VM's samples */
	int timeout_ms;		       /* per QMP exchange */
	char log_dir[DAEMON_PATH_MAX]; /* the event log; "" none */
	uint64_t log_max_bytes, log_max_age_s; /* its retention; 0 keep */
	char host[64];			       /* this host's name, in subjects and labels */
	char nats[DAEMON_URI_MAX];	       /* nats://HOST:PORT[,...]; "" none */
	char nats_stream[64];
	int nats_replicas;
	char redis[DAEMON_URI_MAX]; /* redis://HOST:PORT/STREAM; "" none */
	size_t backlog_events;	    /* each forwarder's, through an outage */
	char tls_cert[DAEMON_PATH_MAX], tls_key[DAEMON_PATH_MAX]; /* PEM files; "" no TLS */
	char token_file[DAEMON_PATH_MAX]; /* the bearer token every request must carry */
	struct daemon_vmconf defaults;
	struct daemon_section *sections; /* malloc'd: daemon_config_release() */
	int nr_sections;
};

/*
 * Defaults, then the file (when path is set), then nothing else: the
 * caller applies its flags after. 0, or -1 with a one-line reason in why.
 */
int daemon_config_load(struct daemon_config *c, const char *path, char *why, size_t why_len);
int daemon_config_check(const struct daemon_config *c, char *why, size_t why_len);
/* One more libvirt URI: 0, or a positive count with the reason in why. */
int daemon_config_add_libvirt(struct daemon_config *c, const char *uri, char *why, size_t why_len);
void daemon_config_release(struct daemon_config *c);
/* A deep copy of src's per-VM part (defaults and sections) into dst: 0 or -ENOMEM. */
int daemon_config_copy_vms(struct daemon_config *dst, const struct daemon_config *src);
/* What to do with the VM called name. */
void daemon_vmconf_resolve(const struct daemon_config *c, const char *name,
			   struct daemon_vmconf *ret);

/* The hub every VM's events go through (events.c). */
struct vms_event;
struct vms_log;
struct vms_sink;
struct recent; /* an event as JSON, kept for the event stream */
struct forwarder;
enum { FORWARD_NATS, FORWARD_REDIS, FORWARDERS };
struct events {
	pthread_mutex_t lock;
	pthread_cond_t more; /* an event was published, or the stream's readers must go */
	pthread_mutex_t log_lock; /* log and its counts: an append may wait for the disk */
	struct vms_log *log; /* NULL: no log-dir */
	char log_dir[DAEMON_PATH_MAX];
	uint64_t log_max_bytes, log_max_age_s;
	uint64_t published, logged, log_errors, unformatted;
	struct vms_sink *json;	      /* formats each event once, for every reader */
	struct recent *recent;	      /* the last RECENT_MAX events, by sequence number */
	uint64_t first_seq, next_seq; /* held: [first_seq, next_seq) */
	size_t recent_bytes;
	unsigned int readers;
	struct forwarder *forward[FORWARDERS];		     /* NULL: not configured */
	char forward_conf[FORWARDERS][DAEMON_URI_MAX + 160]; /* what each was started from */
};

int events_init(struct events *e, const struct daemon_config *c, char *why, size_t why_len);
/* A reload: the log moved or its retention changed. On failure the old one stays. */
int events_configure(struct events *e, const struct daemon_config *c, char *why, size_t why_len);
void events_publish(struct events *e, const struct vms_event *ev, int to_log);
void events_metrics(struct events *e, FILE *f);
void events_close(struct events *e);

/* What a reader of the event stream wants: a VM (or all), types (or all). */
#define EVENTS_TYPES_MAX 16
struct events_filter {
	char vm[DAEMON_NAME_MAX]; /* "" every VM */
	char type[EVENTS_TYPES_MAX][32];
	int nr_types;
};

/*
 * Server-sent events from *pos on (a sequence number; UINT64_MAX: from the
 * next one published), into buf: each "id: N", "event: TYPE", "data: JSON"
 * and a blank line. Waits up to wait_ms for one; returns the bytes written,
 * a keepalive comment when none came, or 0 once *stop is set. Events older
 * than the hub still holds are announced as a comment, then skipped.
 */
size_t events_read(struct events *e, uint64_t *pos, const struct events_filter *f, char *buf,
		   size_t len, int wait_ms, const _Atomic int *stop);
/*
 * The next event after *pos into ev (a whole struct vms_event), waiting up
 * to wait_ms: 1, 0 when none came, -1 once *stop is set. Events the hub no
 * longer holds are added to *missed and skipped.
 */
int events_next(struct events *e, uint64_t *pos, struct vms_event *ev, uint64_t *missed,
		int wait_ms, const _Atomic int *stop);
uint64_t events_position(struct events *e); /* the next event's sequence number */
/* Readers blocked in events_read() or events_next() look at their stop flag now. */
void events_kick(struct events *e);

/* Forwarders (forward.c): the hub's events to NATS JetStream or Redis, a thread each. */
struct forward_figures {
	const char *name;
	uint64_t written, acknowledged, dropped, missed, buffered, connects;
};
/* The URL of that kind in c ("" none). */
const char *forwarder_url(int kind, const struct daemon_config *c);
int forwarder_start(int kind, struct events *hub, const struct daemon_config *c,
		    struct forwarder **ret, char *why, size_t why_len);
void forwarder_stop(struct forwarder *f); /* what still waits gets 2 s; NULL ok */
void forwarder_figures(struct forwarder *f, struct forward_figures *ret);

/* What a VM does besides its metrics, each with a state the API shows (caps.c). */
enum dcap { DCAP_VIEWS, DCAP_TRACE, DCAP_FSWATCH, DCAP__COUNT };

struct dcap_status {
	char state[12]; /* "off" (not wanted), "starting", "on", "failed" */
	char reason[DAEMON_REASON_MAX];
	uint64_t events;
};

const char *dcap_name(enum dcap cap);

/* One VM: its worker samples it; the API reads what the last sample rendered. */
struct dvm {
	char name[DAEMON_NAME_MAX];
	char target[DAEMON_PATH_MAX + 8]; /* "qmp:PATH" or "libvirt:DOMAIN" */
	char source[DAEMON_PATH_MAX];	  /* what found it: its QMP directory, or libvirt URI */
	struct vmset *set;
	pthread_t thread;
	_Atomic int stopping;
	pthread_mutex_t wake_lock; /* with wake: a stop ends the worker's pause at once */
	pthread_cond_t wake;
	pthread_mutex_t lock; /* the fields below */
	char state[16];	      /* "attaching", "up", "down" */
	char reason[DAEMON_REASON_MAX];
	char *text; /* the last rendering (vms_prom_render), by family */
	size_t *offsets;
	uint64_t samples, failures;
	double last_sample_s;
	struct dcap_status cap[DCAP__COUNT];
	uint64_t dropped; /* events lost: a ring or a spool was full */
	struct history *hist; /* the last hour of its figures, for the web page (lock) */
	/* A view the API asked for, read by the worker between its steps (vmset_view). */
	_Atomic int req_state; /* enum dvm_request */
	char req_view[32];
	char *req_json;
	int req_err, req_abandoned, users; /* users: API threads holding it (lock) */
	char req_why[DAEMON_REASON_MAX];
	pthread_cond_t req_done; /* with lock */
	int seen; /* the source's last scan named it */
	struct dvm *next;
};

enum dvm_request { REQ_IDLE, REQ_ASKED, REQ_TAKEN, REQ_DONE };
struct vms_vm;
/* The worker: a view asked for, read now (vm NULL: the VM is down). */
void dvm_serve_request(struct dvm *v, struct vms_vm *vm);

/*
 * A worker's capabilities (caps.c), its own: configured from the VM's
 * settings, started once attached (one that fails is tried again later),
 * run between samples, stopped before detaching.
 */
struct caps;
int caps_new(struct caps **ret);
/* New settings: capabilities whose settings changed stop (to start anew). */
void caps_configure(struct caps *k, struct dvm *v, struct vms_vm *vm,
		    const struct daemon_vmconf *conf);
void caps_start(struct caps *k, struct dvm *v, struct vms_vm *vm);
/* Poll the views if due, let the trace run (or sleep) until until_s, hand on the events. */
void caps_run(struct caps *k, struct dvm *v, struct vms_vm *vm, double until_s);
/* Stop each (a watched disk's last writes turned into events first, when clean). */
void caps_stop(struct caps *k, struct dvm *v, int clean);
void caps_free(struct caps *k);
double daemon_now_s(void); /* CLOCK_MONOTONIC */
/* CLOCK_MONOTONIC ms from now, for pthread_cond_timedwait() on a monotonic cond. */
void daemon_deadline(struct timespec *until, int ms);

struct vmset {
	pthread_mutex_t lock; /* the list */
	struct dvm *head;
	size_t nr;
	/* what the workers read each turn: a reload changes them under running VMs */
	_Atomic double interval_s;
	_Atomic int timeout_ms;
	pthread_mutex_t conf_lock; /* conf: what to do with each VM */
	struct daemon_config conf; /* its defaults and sections only */
	/* The control API's own unix socket: never taken for a VM's (0: none). */
	_Atomic unsigned long own_dev, own_ino;
	char host[64];		   /* the host label of every sample (conf_lock) */
	struct events *events;
};

void vmset_init(struct vmset *s, const struct daemon_config *config, struct events *events);
/* 0, or -ENOMEM: the old settings stay. */
int vmset_configure(struct vmset *s, const struct daemon_config *config);
/* The settings of the VM called name, now. */
void vmset_vmconf(struct vmset *s, const char *name, struct daemon_vmconf *ret);
/*
 * Each source of VMs keeps its own: a VM is added by one, under name (a
 * worker starts), unless one has that name: 0, 1 when new.
 */
int vmset_add(struct vmset *s, const char *source, const char *name, const char *target);
/* Stop its worker and forget it: 0, or -ENOENT. */
int vmset_remove(struct vmset *s, const char *name);
/* Before a source's scan: its VMs unseen; after it, vmset_sweep() removes its unseen. */
void vmset_unsee(struct vmset *s, const char *source);
/* 1 when a VM of that name watches that target (now seen); one watching another is removed. */
int vmset_see(struct vmset *s, const char *source, const char *name, const char *target);
void vmset_sweep(struct vmset *s, const char *source);
/* Every VM of a source that is no more. */
void vmset_drop_source(struct vmset *s, const char *source);
void vmset_destroy(struct vmset *s);
/* The Prometheus text of every VM, families merged; the JSON list of VMs (malloc'd). */
char *vmset_metrics(struct vmset *s, size_t *ret_len);
char *vmset_json(struct vmset *s);
/* One VM's object of that list (malloc'd), or NULL when there is none of that name. */
char *vmset_vm_json(struct vmset *s, const char *name);
/*
 * The last hour of a VM's figures, a point each HISTORY_STEP_S: {"time":
 * [unix s], "cpu_percent": [of one core, QEMU's whole process], "rss_bytes":
 * [...]} (malloc'd), or NULL when there is no VM of that name.
 */
#define HISTORY_STEP_S 5
#define HISTORY_POINTS 720
char *vmset_history(struct vmset *s, const char *name);
/*
 * A view of the VM called name (vms_view_json()), read by its worker within
 * timeout_ms: 0 with the JSON (malloc'd); -ENOENT no such VM, -ENOTCONN it
 * is down, -ETIMEDOUT, or the view's error; why says which.
 */
int vmset_view(struct vmset *s, const char *name, const char *view, int timeout_ms, char **ret_json,
	       char *why, size_t why_len);

/* The QMP-socket directory: every socket in it is a VM named after the file. */
struct qmpdir;
int qmpdir_open(const char *dir, struct qmpdir **ret, char *why, size_t why_len);
int qmpdir_fd(const struct qmpdir *q); /* readable when the directory changed */
/* Read the changes, rescan, add and remove VMs to match. */
void qmpdir_sync(struct qmpdir *q, struct vmset *s);
void qmpdir_close(struct qmpdir *q);
/*
 * 0 when name[0..n) is one the API carries: letters, digits, "-_.", no
 * leading dot, under 64 bytes (what an event keeps of a VM's name).
 */
int daemon_name_check(const char *name, size_t n);

/*
 * A libvirt URI as a source (libvirt.c): its running domains are VMs, by
 * name. Lifecycle events make the fd readable; so does a lost connection,
 * which the next sync opens again (libvirtd restarts; its domains run on).
 */
struct lvsource;
int lvsource_open(const char *uri, struct lvsource **ret, char *why, size_t why_len);
int lvsource_fd(const struct lvsource *l);
void lvsource_sync(struct lvsource *l, struct vmset *s);
const char *lvsource_uri(const struct lvsource *l);
int lvsource_connected(const struct lvsource *l); /* else each turn tries again */
void lvsource_close(struct lvsource *l);

struct api;
/*
 * c's listen, with its TLS certificate and key and its token when set; an
 * address beyond loopback only with all three.
 */
int api_start(const struct daemon_config *c, struct vmset *s, struct api **ret, char *why,
	      size_t why_len);
/* 1 when a and b listen differently (a reload restarts the API). */
int api_changed(const struct daemon_config *a, const struct daemon_config *b);
void api_stop(struct api *a);

#endif
