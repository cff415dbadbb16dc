// SPDX-License-Identifier: MIT
/*
 * A libvirt domain's QEMU monitor (libvirt.h): the connection, the domain,
 * its lifecycle events, and the second monitor its XML may declare.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <vmscope/libvirt.h>

#include "access/libvirt.h"
#include "access/qmp.h"

#define DEFAULT_URI	"qemu:///system"
#define QEMU_XML_NS	"http://libvirt.org/schemas/domain/qemu/1.0"
#define KEEPALIVE_S	5
#define KEEPALIVE_COUNT 3

/* What the event thread writes: freed by libvirt once the callback is gone. */
struct lv_events {
	unsigned long resumes;
	int closed; /* the connection to libvirtd is lost */
};

struct lv_monitor {
	virConnectPtr conn;
	virDomainPtr dom;
	int callback; /* the lifecycle registration, or -1 */
	struct lv_events *events;
	char uri[512];
	char name[256];
};

static pthread_once_t loop_once = PTHREAD_ONCE_INIT;
static int loop_status;

static void quiet(void *opaque, virErrorPtr error)
{
	(void)opaque;
	(void)error;
}

static void *run_loop(void *arg)
{
	(void)arg;
	for (;;)
		virEventRunDefaultImpl();
	return NULL;
}

static void start_loop(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t thread;

	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
		loop_status = -EIO;
		return;
	}
	virSetErrorFunc(NULL, quiet);
	/* No signal of the program's may land on this thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	loop_status = -pthread_create(&thread, &attr, run_loop, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!loop_status)
		pthread_setname_np(thread, "vms-libvirt");
}

int vms_libvirt_event_loop(void)
{
	pthread_once(&loop_once, start_loop);
	return loop_status;
}

static const char *last_error(void)
{
	const char *msg = virGetLastErrorMessage();

	return msg && *msg ? msg : "unknown error";
}

/* Guest RAM is read through /proc: only a URI without a host reaches it. */
static int is_local(const char *uri)
{
	const char *slashes = strstr(uri, "://");

	return slashes && slashes[3] == '/';
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct lv_events *events = opaque;

	(void)conn;
	(void)dom;
	(void)detail;
	if (event == VIR_DOMAIN_EVENT_RESUMED || event == VIR_DOMAIN_EVENT_STARTED)
		__atomic_add_fetch(&events->resumes, 1, __ATOMIC_RELAXED);
	return 0;
}

static int find_domain(struct lv_monitor *lv, char *errbuf, size_t errbuf_len)
{
	int active;

	lv->dom = virDomainLookupByName(lv->conn, lv->name);
	if (!lv->dom) {
		snprintf(errbuf, errbuf_len, "libvirt at %s has no domain \"%s\"", lv->uri,
			 lv->name);
		return -ENOENT;
	}
	active = virDomainIsActive(lv->dom);
	if (active != 1) {
		snprintf(errbuf, errbuf_len, "libvirt domain \"%s\" is not running%s%s", lv->name,
			 active < 0 ? ": " : "", active < 0 ? last_error() : "");
		return -ENOTCONN;
	}
	return 0;
}

/* A lost connection: nothing more will say the VM ran, so say it may have. */
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct lv_events *events = opaque;

	(void)conn;
	(void)reason;
	__atomic_store_n(&events->closed, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&events->resumes, 1, __ATOMIC_RELAXED);
}

static int watch_lifecycle(struct lv_monitor *lv, char *errbuf, size_t errbuf_len)
{
	lv->events = calloc(1, sizeof(*lv->events));
	if (!lv->events) {
		snprintf(errbuf, errbuf_len, "out of memory");
		return -ENOMEM;
	}
	lv->callback = virConnectDomainEventRegisterAny(
		lv->conn, lv->dom, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
		VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), lv->events, free);
	if (lv->callback < 0) {
		free(lv->events);
		lv->events = NULL;
		snprintf(errbuf, errbuf_len, "libvirt at %s refused lifecycle events: %s", lv->uri,
			 last_error());
		return -EIO;
	}
	/* events outlives both registrations: the lifecycle one frees it, after this one */
	virConnectRegisterCloseCallback(lv->conn, on_close, lv->events, NULL);
	return 0;
}

static int connect_libvirt(struct lv_monitor *lv, char *errbuf, size_t errbuf_len)
{
	int err = vms_libvirt_event_loop();

	if (err) {
		snprintf(errbuf, errbuf_len, "cannot start libvirt's event loop: %s",
			 strerror(-err));
		return err;
	}
	if (!is_local(lv->uri)) {
		snprintf(errbuf, errbuf_len,
			 "%s names another host: vmscope reads guest RAM on the VM's own host",
			 lv->uri);
		return -EINVAL;
	}
	lv->conn = virConnectOpen(lv->uri);
	if (!lv->conn) {
		snprintf(errbuf, errbuf_len, "cannot connect to libvirt at %s: %s", lv->uri,
			 last_error());
		return -ECONNREFUSED;
	}
	/* A libvirtd that stops answering fails our calls instead of holding them. */
	virConnectSetKeepAlive(lv->conn, KEEPALIVE_S, KEEPALIVE_COUNT);
	return 0;
}

int lv_monitor_open(const char *uri, const char *name, struct lv_monitor **ret_lv, char *errbuf,
		    size_t errbuf_len)
{
	struct lv_monitor *lv = calloc(1, sizeof(*lv));
	int err;

	if (!lv) {
		snprintf(errbuf, errbuf_len, "out of memory");
		return -ENOMEM;
	}
	lv->callback = -1;
	if (!uri || !*uri)
		uri = getenv("LIBVIRT_DEFAULT_URI");
	snprintf(lv->uri, sizeof(lv->uri), "%s", uri && *uri ? uri : DEFAULT_URI);
	if (strlen(name) >= sizeof(lv->name)) {
		snprintf(errbuf, errbuf_len, "libvirt domain name is too long");
		free(lv);
		return -ENAMETOOLONG;
	}
	snprintf(lv->name, sizeof(lv->name), "%s", name);
	err = connect_libvirt(lv, errbuf, errbuf_len);
	if (!err)
		err = find_domain(lv, errbuf, errbuf_len);
	if (!err)
		err = watch_lifecycle(lv, errbuf, errbuf_len);
	if (err) {
		lv_monitor_close(lv);
		return err;
	}
	*ret_lv = lv;
	return 0;
}

void lv_monitor_close(struct lv_monitor *lv)
{
	if (!lv)
		return;
	if (lv->events)
		virConnectUnregisterCloseCallback(lv->conn, on_close);
	if (lv->callback >= 0)
		virConnectDomainEventDeregisterAny(lv->conn, lv->callback);
	if (lv->dom)
		virDomainFree(lv->dom);
	if (lv->conn)
		virConnectClose(lv->conn);
	free(lv);
}

int lv_monitor_command(struct lv_monitor *lv, const char *json, int pass_fd, char **ret_reply,
		       char *errbuf, size_t errbuf_len)
{
	char *result = NULL;
	int rc;

	if (__atomic_load_n(&lv->events->closed, __ATOMIC_RELAXED)) {
		snprintf(errbuf, errbuf_len,
			 "libvirt domain \"%s\": the connection to libvirt is lost", lv->name);
		return -ENOTCONN;
	}
	if (pass_fd >= 0)
		rc = virDomainQemuMonitorCommandWithFiles(lv->dom, json, 1, &pass_fd, NULL, NULL,
							  &result, 0);
	else
		rc = virDomainQemuMonitorCommand(lv->dom, json, &result, 0);
	if (rc < 0) {
		virErrorPtr e = virGetLastError();
		int gone = (e &&
			    (e->code == VIR_ERR_OPERATION_INVALID || e->code == VIR_ERR_NO_DOMAIN ||
			     e->code == VIR_ERR_SYSTEM_ERROR || e->code == VIR_ERR_RPC)) ||
			   virConnectIsAlive(lv->conn) != 1;

		snprintf(errbuf, errbuf_len, "libvirt domain \"%s\": monitor command failed: %s",
			 lv->name, last_error());
		return gone ? -ENOTCONN : -EIO;
	}
	*ret_reply = result;
	return 0;
}

/* "unix:PATH[,option...]" into path (QEMU writes a comma in PATH as ",,"), or -ENOENT. */
static int unix_address(const char *value, char *path, size_t path_len)
{
	size_t len = 0;

	if (strncmp(value, "unix:", 5))
		return -ENOENT;
	for (value += 5; *value && (*value != ',' || value[1] == ','); value++) {
		if (len + 1 >= path_len)
			return -ENAMETOOLONG;
		path[len++] = *value;
		value += *value == ',';
	}
	path[len] = '\0';
	return len ? 0 : -EINVAL;
}

/* Walk the <qemu:arg value=...> list for "-qmp unix:PATH,...". */
static int scan_args(xmlNodeSetPtr args, char *path, size_t path_len)
{
	int nr = args ? args->nodeNr : 0;

	for (int i = 0; i + 1 < nr; i++) {
		xmlChar *flag = xmlNodeGetContent(args->nodeTab[i]);
		xmlChar *value = xmlNodeGetContent(args->nodeTab[i + 1]);
		int err = -ENOENT;

		if (flag && value && !strcmp((char *)flag, "-qmp"))
			err = unix_address((char *)value, path, path_len);
		xmlFree(flag);
		xmlFree(value);
		if (err != -ENOENT)
			return err;
	}
	return -ENOENT;
}

static int find_second(const char *xml, char *path, size_t path_len)
{
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr args = NULL;
	xmlDocPtr doc;
	int err = -EPROTO;

	doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
	if (!doc)
		return -EPROTO;
	ctx = xmlXPathNewContext(doc);
	if (ctx && !xmlXPathRegisterNs(ctx, BAD_CAST "qemu", BAD_CAST QEMU_XML_NS))
		args = xmlXPathEvalExpression(BAD_CAST "/domain/qemu:commandline/qemu:arg/@value",
					      ctx);
	if (args)
		err = scan_args(args->nodesetval, path, path_len);
	xmlXPathFreeObject(args);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return err;
}

int lv_monitor_second(struct lv_monitor *lv, char *path, size_t path_len, char *errbuf,
		      size_t errbuf_len)
{
	char *xml = virDomainGetXMLDesc(lv->dom, 0);
	int err;

	if (!xml) {
		snprintf(errbuf, errbuf_len, "cannot read libvirt domain \"%s\"'s XML: %s",
			 lv->name, last_error());
		return -EIO;
	}
	err = find_second(xml, path, path_len);
	free(xml);
	if (err == -ENOENT)
		snprintf(errbuf, errbuf_len,
			 "libvirt domain \"%s\" declares no second QMP monitor "
			 "(<qemu:commandline> with -qmp unix:PATH,server=on,wait=off)",
			 lv->name);
	else if (err == -ENAMETOOLONG)
		snprintf(errbuf, errbuf_len,
			 "libvirt domain \"%s\": its second monitor's path is too long for a unix "
			 "socket",
			 lv->name);
	else if (err)
		snprintf(errbuf, errbuf_len,
			 "libvirt domain \"%s\": cannot read its <qemu:commandline>", lv->name);
	return err;
}

const unsigned long *lv_monitor_resumes(const struct lv_monitor *lv)
{
	return &lv->events->resumes;
}

static int transport_exchange(void *ctx, const char *json, int pass_fd, char **ret_reply,
			      char *errbuf, size_t errbuf_len)
{
	return lv_monitor_command(ctx, json, pass_fd, ret_reply, errbuf, errbuf_len);
}

static const unsigned long *transport_resumes(void *ctx)
{
	return lv_monitor_resumes(ctx);
}

static int transport_reopen(void *ctx, int timeout_ms, struct qmp **ret_qmp, char *errbuf,
			    size_t errbuf_len)
{
	const struct lv_monitor *lv = ctx;

	return qmp_connect_libvirt(lv->uri, lv->name, VMS_LIBVIRT_MONITOR_PASSTHROUGH, timeout_ms,
				   ret_qmp, errbuf, errbuf_len);
}

static void transport_close(void *ctx)
{
	lv_monitor_close(ctx);
}

static const struct qmp_transport passthrough = {
	.exchange = transport_exchange,
	.resumes = transport_resumes,
	.reopen = transport_reopen,
	.close = transport_close,
};

/* The process a thread belongs to (its Tgid), or -1. */
static int thread_group(long tid)
{
	char path[64], line[128];
	int pid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &pid) == 1)
			break;
	fclose(f);
	return pid;
}

/* Whether process pid was started by libvirt as domain: "-name guest=DOMAIN[,...]". */
static int named_as(int pid, const char *domain)
{
	char path[64], args[8192];
	size_t n, len = strlen(domain);
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(args, 1, sizeof(args) - 1, f);
	fclose(f);
	args[n] = '\0';
	for (size_t at = 0; at < n && !found; at += strlen(args + at) + 1) {
		const char *value = args + at + strlen(args + at) + 1;

		if (strcmp(args + at, "-name") || value >= args + n)
			continue;
		found = !strncmp(value, "guest=", 6) && !strncmp(value + 6, domain, len) &&
			(value[6 + len] == ',' || !value[6 + len]);
	}
	return found;
}

/*
 * libvirt does not say which process runs the domain; QEMU does: its vCPU
 * threads' ids. A QEMU is not to be trusted blindly (a guest may have broken
 * out into it), so every vCPU must be a thread of one process, and that
 * process must be the one libvirt started for this domain.
 */
static int find_qemu_pid(struct qmp *qmp, const char *domain)
{
	json_t *cpus = NULL, *cpu;
	size_t i;
	int pid = -1;

	if (qmp_execute(qmp, "query-cpus-fast", NULL, &cpus))
		return -1;
	json_array_foreach(cpus, i, cpu) {
		json_int_t tid = json_integer_value(json_object_get(cpu, "thread-id"));
		int tgid = tid > 0 && tid < INT32_MAX ? thread_group((long)tid) : -1;

		if (tgid <= 0 || (pid > 0 && tgid != pid)) {
			pid = -1;
			break;
		}
		pid = tgid;
	}
	json_decref(cpus);
	return pid > 0 && named_as(pid, domain) ? pid : -1;
}

static int connect_passthrough(struct lv_monitor *lv, int timeout_ms, struct qmp **ret_qmp,
			       char *errbuf, size_t errbuf_len)
{
	char name[300];
	struct qmp *qmp;
	int err, pid;

	snprintf(name, sizeof(name), "libvirt:%s", lv->name);
	err = qmp_connect_transport(&passthrough, lv, name, timeout_ms, &qmp);
	if (err) {
		snprintf(errbuf, errbuf_len, "%s", strerror(-err));
		return err;
	}
	pid = find_qemu_pid(qmp, lv->name);
	if (pid < 0) {
		snprintf(errbuf, errbuf_len,
			 "libvirt domain \"%s\": its QEMU's vCPU threads belong to no process "
			 "started as this domain",
			 lv->name);
		qmp_close(qmp);
		return -ESRCH;
	}
	qmp_set_peer_pid(qmp, pid);
	*ret_qmp = qmp;
	return 0;
}

/*
 * The second monitor, checked to be this domain's: names repeat across
 * libvirt URIs, UUIDs do not, and libvirt gives QEMU the domain's (-uuid).
 */
static int connect_second(const char *path, const char *domain, const char *uuid, int timeout_ms,
			  struct qmp **ret_qmp, char *errbuf, size_t errbuf_len)
{
	json_t *ret = NULL;
	const char *have;
	struct qmp *qmp;
	int err;

	err = qmp_connect(path, timeout_ms, &qmp, errbuf, errbuf_len);
	if (err)
		return err;
	err = qmp_execute(qmp, "query-uuid", NULL, &ret);
	have = json_string_value(json_object_get(ret, "UUID"));
	if (err)
		snprintf(errbuf, errbuf_len, "%s", qmp_error(qmp));
	else if (!have || strcasecmp(have, uuid))
		err = -ESRCH;
	if (err == -ESRCH)
		snprintf(errbuf, errbuf_len,
			 "the QMP monitor %s is another VM's (UUID %.40s), not libvirt domain "
			 "\"%s\"'s",
			 path, have ? have : "none", domain);
	json_decref(ret);
	if (err) {
		qmp_close(qmp);
		return err;
	}
	*ret_qmp = qmp;
	return 0;
}

int qmp_connect_libvirt(const char *uri, const char *domain, int mode, int timeout_ms,
			struct qmp **ret_qmp, char *errbuf, size_t errbuf_len)
{
	char path[108], uuid[VIR_UUID_STRING_BUFLEN];
	struct lv_monitor *lv;
	int err;

	err = lv_monitor_open(uri, domain, &lv, errbuf, errbuf_len);
	if (err)
		return err;
	if (mode == VMS_LIBVIRT_MONITOR_PASSTHROUGH)
		return connect_passthrough(lv, timeout_ms, ret_qmp, errbuf, errbuf_len);
	err = lv_monitor_second(lv, path, sizeof(path), errbuf, errbuf_len);
	if (err == -ENOENT && mode == VMS_LIBVIRT_MONITOR_AUTO)
		return connect_passthrough(lv, timeout_ms, ret_qmp, errbuf, errbuf_len);
	if (!err && virDomainGetUUIDString(lv->dom, uuid) < 0) {
		snprintf(errbuf, errbuf_len, "libvirt domain \"%s\": no UUID: %s", domain,
			 last_error());
		err = -EIO;
	}
	lv_monitor_close(lv);
	if (err)
		return err;
	return connect_second(path, domain, uuid, timeout_ms, ret_qmp, errbuf, errbuf_len);
}
