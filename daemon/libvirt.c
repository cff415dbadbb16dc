// SPDX-License-Identifier: MIT
/*
 * A source of VMs: the running domains of one libvirt URI. libvirt's
 * lifecycle events (on the library's event loop thread) only wake the main
 * loop through a pipe; the main loop then lists the running domains and
 * adds and removes VMs to match, so that a missed or coalesced event costs
 * nothing. A connection that dies (libvirtd restarts) is opened again at
 * the next sync; until then its VMs are kept, since their domains run on
 * without libvirtd, and nothing is swept.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <vmscope/libvirt.h>

#include "daemon.h"

#define LIST_MAX 65536 /* domains a sync looks at */

struct lvsource {
	char uri[DAEMON_URI_MAX];
	virConnectPtr conn; /* NULL while libvirtd cannot be reached */
	int callback;	    /* the lifecycle registration, or -1 */
	int wake[2];	    /* the event thread writes, the main loop reads */
	char last_error[DAEMON_REASON_MAX];
};

/*
 * What a callback holds: a descriptor of the pipe's write end of its own,
 * closed by libvirt's free callback once no callback can run, so that a
 * late event never writes to a descriptor that has meanwhile been reused.
 */
static int *waker_new(struct lvsource *l)
{
	int *fd = malloc(sizeof(*fd));

	if (fd && (*fd = fcntl(l->wake[1], F_DUPFD_CLOEXEC, 0)) < 0) {
		free(fd);
		fd = NULL;
	}
	return fd;
}

static void waker_free(void *opaque)
{
	int *fd = opaque;

	close(*fd);
	free(fd);
}

static void wake(void *opaque)
{
	const int *fd = opaque;
	char byte = 1;

	if (write(*fd, &byte, 1) < 0) {
		/* full: a wake-up is pending already */
	}
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	(void)conn;
	(void)dom;
	(void)event;
	(void)detail;
	wake(opaque);
	return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	(void)conn;
	(void)reason;
	wake(opaque);
}

static void disconnect(struct lvsource *l)
{
	if (!l->conn)
		return;
	if (l->callback >= 0)
		virConnectDomainEventDeregisterAny(l->conn, l->callback);
	virConnectUnregisterCloseCallback(l->conn, on_close);
	virConnectClose(l->conn);
	l->conn = NULL;
	l->callback = -1;
}

/* Say why once per change of cause, not once a sync. */
static void report(struct lvsource *l, const char *what)
{
	const char *msg = virGetLastErrorMessage();
	char why[DAEMON_REASON_MAX];

	snprintf(why, sizeof(why), "%s: %s", what, msg && *msg ? msg : "unknown error");
	if (strcmp(why, l->last_error))
		fprintf(stderr, "vmscoped: libvirt %s: %s\n", l->uri, why);
	snprintf(l->last_error, sizeof(l->last_error), "%s", why);
}

static int connect_libvirt(struct lvsource *l)
{
	int *closer, *waker;

	l->conn = virConnectOpen(l->uri);
	if (!l->conn) {
		report(l, "cannot connect");
		return -1;
	}
	virConnectSetKeepAlive(l->conn, 5, 3);
	closer = waker_new(l);
	if (closer && virConnectRegisterCloseCallback(l->conn, on_close, closer, waker_free) < 0)
		waker_free(closer);
	waker = waker_new(l);
	l->callback = !waker ? -1
			     : virConnectDomainEventRegisterAny(
				       l->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
				       VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), waker, waker_free);
	if (l->callback < 0 && waker)
		waker_free(waker);
	if (l->callback < 0) {
		report(l, "no lifecycle events");
		disconnect(l);
		return -1;
	}
	if (l->last_error[0])
		fprintf(stderr, "vmscoped: libvirt %s: connected again\n", l->uri);
	l->last_error[0] = '\0';
	return 0;
}

int lvsource_open(const char *uri, struct lvsource **ret, char *why, size_t why_len)
{
	struct lvsource *l = calloc(1, sizeof(*l));
	int err;

	if (!l) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	l->callback = -1;
	snprintf(l->uri, sizeof(l->uri), "%s", uri);
	err = vms_libvirt_event_loop();
	if (err || pipe2(l->wake, O_CLOEXEC | O_NONBLOCK)) {
		snprintf(why, why_len, "--libvirt %s: %s", uri,
			 err ? "cannot start libvirt's event loop" : strerror(errno));
		free(l);
		return err ?: -errno;
	}
	/* A libvirtd that is not up yet is no error: the source connects when it is. */
	connect_libvirt(l);
	*ret = l;
	return 0;
}

int lvsource_fd(const struct lvsource *l)
{
	return l->wake[0];
}

int lvsource_connected(const struct lvsource *l)
{
	return l->conn != NULL;
}

const char *lvsource_uri(const struct lvsource *l)
{
	return l->uri;
}

static void see_domain(struct lvsource *l, struct vmset *s, virDomainPtr dom)
{
	const char *name = virDomainGetName(dom);
	char target[DAEMON_NAME_MAX + 16];

	if (!name || strlen(name) >= DAEMON_NAME_MAX || daemon_name_check(name, strlen(name)))
		return;
	snprintf(target, sizeof(target), "libvirt:%s", name);
	if (!vmset_see(s, l->uri, name, target))
		vmset_add(s, l->uri, name, target);
}

void lvsource_sync(struct lvsource *l, struct vmset *s)
{
	virDomainPtr *doms = NULL;
	char drain[64];
	int n;

	while (read(l->wake[0], drain, sizeof(drain)) > 0)
		;
	if (l->conn && virConnectIsAlive(l->conn) != 1)
		disconnect(l);
	if (!l->conn && connect_libvirt(l))
		return;
	n = virConnectListAllDomains(l->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0) {
		report(l, "cannot list domains");
		disconnect(l);
		return;
	}
	vmset_unsee(s, l->uri);
	for (int i = 0; i < n; i++) {
		if (i < LIST_MAX)
			see_domain(l, s, doms[i]);
		virDomainFree(doms[i]);
	}
	free(doms);
	if (n <= LIST_MAX)
		vmset_sweep(s, l->uri); /* a list cut short saw too little to drop anything */
}

void lvsource_close(struct lvsource *l)
{
	if (!l)
		return;
	disconnect(l);
	close(l->wake[0]);
	close(l->wake[1]);
	free(l);
}
