/* SPDX-License-Identifier: MIT */
/*
 * vmscoped: one daemon for every VM on a host. The pieces, one file each:
 * config.c (the INI file and its defaults), vms.c (the set of VMs, a worker
 * thread each), qmpdir.c (a source of VMs: a directory of QMP sockets),
 * libvirt.c (another: the running domains of a libvirt URI),
 * api.c (the control API over HTTP: a unix socket, or TCP on loopback).
 */
#ifndef VMSCOPED_DAEMON_H
#define VMSCOPED_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define DAEMON_NAME_MAX	  128
#define DAEMON_PATH_MAX	  4096
#define DAEMON_REASON_MAX 256
#define DAEMON_LIBVIRT_MAX 8 /* libvirt URIs */
#define DAEMON_URI_MAX	   512

struct daemon_config {
	char qmp_dir[DAEMON_PATH_MAX]; /* "" none */
	char libvirt[DAEMON_LIBVIRT_MAX][DAEMON_URI_MAX];
	int nr_libvirt;
	char listen[DAEMON_PATH_MAX];  /* "unix:PATH" or "HOST:PORT" (loopback only) */
	double interval_s;	       /* between a VM's samples */
	int timeout_ms;		       /* per QMP exchange */
};

/*
 * Defaults, then the file (when path is set), then nothing else: the
 * caller applies its flags after. 0, or -1 with a one-line reason in why.
 */
int daemon_config_load(struct daemon_config *c, const char *path, char *why, size_t why_len);
int daemon_config_check(const struct daemon_config *c, char *why, size_t why_len);
/* One more libvirt URI: 0, or a positive count with the reason in why. */
int daemon_config_add_libvirt(struct daemon_config *c, const char *uri, char *why, size_t why_len);

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
	int seen; /* the source's last scan named it */
	struct dvm *next;
};

struct vmset {
	pthread_mutex_t lock; /* the list */
	struct dvm *head;
	size_t nr;
	/* what the workers read each turn: a reload changes them under running VMs */
	_Atomic double interval_s;
	_Atomic int timeout_ms;
};

void vmset_init(struct vmset *s, const struct daemon_config *config);
void vmset_configure(struct vmset *s, const struct daemon_config *config);
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

/* The QMP-socket directory: every socket in it is a VM named after the file. */
struct qmpdir;
int qmpdir_open(const char *dir, struct qmpdir **ret, char *why, size_t why_len);
int qmpdir_fd(const struct qmpdir *q); /* readable when the directory changed */
/* Read the changes, rescan, add and remove VMs to match. */
void qmpdir_sync(struct qmpdir *q, struct vmset *s);
void qmpdir_close(struct qmpdir *q);
/* 0 when name[0..n) is one the API carries (letters, digits, "-_."; no leading dot). */
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
int api_start(const char *listen, struct vmset *s, struct api **ret, char *why, size_t why_len);
void api_stop(struct api *a);

#endif
