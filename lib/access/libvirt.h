/* SPDX-License-Identifier: MIT */
/*
 * A libvirt domain's QEMU monitor. libvirt holds the domain's only QMP
 * socket; vmscope speaks through its passthrough (libvirt-qemu's
 * virDomainQemuMonitorCommand), or finds the second monitor the domain's XML
 * declares (<qemu:commandline> -qmp unix:PATH,...) and uses that directly.
 */
#ifndef VMSCOPE_ACCESS_LIBVIRT_H
#define VMSCOPE_ACCESS_LIBVIRT_H

#include <stddef.h>

struct lv_monitor;
struct qmp;

/*
 * A QMP connection to libvirt domain's QEMU, by mode (enum
 * vms_libvirt_monitor): the second monitor is used directly, once QEMU names
 * itself as the domain; the passthrough is a qmp_transport whose peer pid
 * comes from the vCPU threads QEMU reports.
 */
int qmp_connect_libvirt(const char *uri, const char *domain, int mode, int timeout_ms,
			struct qmp **ret_qmp, char *errbuf, size_t errbuf_len);

/*
 * Connect to uri (NULL: $LIBVIRT_DEFAULT_URI, else qemu:///system) and find
 * the running domain name. On failure a sentence goes to errbuf.
 */
int lv_monitor_open(const char *uri, const char *name, struct lv_monitor **ret_lv, char *errbuf,
		    size_t errbuf_len);
void lv_monitor_close(struct lv_monitor *lv);

/*
 * Run one QMP command (JSON text) through libvirt's passthrough, handing
 * pass_fd (if >= 0) to QEMU with it. *ret_reply is QEMU's reply as text,
 * malloc'ed. This is what taints the domain ("custom-monitor").
 */
int lv_monitor_command(struct lv_monitor *lv, const char *json, int pass_fd, char **ret_reply,
		       char *errbuf, size_t errbuf_len);

/*
 * The unix socket of the second QMP monitor the domain's XML declares, into
 * path: 0, -ENOENT when there is none, or another -errno.
 */
int lv_monitor_second(struct lv_monitor *lv, char *path, size_t path_len, char *errbuf,
		      size_t errbuf_len);

/* Counts the domain's resumes (libvirt lifecycle events): a change means it ran. */
const unsigned long *lv_monitor_resumes(const struct lv_monitor *lv);

#endif
