/* SPDX-License-Identifier: MIT */
/*
 * libvirt-managed VMs: attach with the target libvirt:DOMAIN (and the URI in
 * vms_attach_opts, else $LIBVIRT_DEFAULT_URI, else qemu:///system).
 */
#ifndef VMSCOPE_LIBVIRT_H
#define VMSCOPE_LIBVIRT_H

#ifdef __cplusplus
extern "C" {
#endif

/* How vmscope reaches a libvirt domain's QEMU monitor (vms_attach_opts.libvirt_monitor). */
enum vms_libvirt_monitor {
	/* The second monitor if the domain's XML declares one, else the passthrough. */
	VMS_LIBVIRT_MONITOR_AUTO = 0,
	/* libvirt's monitor passthrough: nothing to add to the domain; taints it "custom-monitor".
	 */
	VMS_LIBVIRT_MONITOR_PASSTHROUGH,
	/* Only the domain's own second QMP monitor (<qemu:commandline> -qmp unix:PATH,...). */
	VMS_LIBVIRT_MONITOR_SECOND,
};

/*
 * Start libvirt's default event loop on a thread of its own, once per
 * process (later calls return the first call's result). vmscope needs it for
 * the domain's lifecycle events and keepalives; a program that uses libvirt
 * itself calls this instead of virEventRegisterDefaultImpl(). It also
 * silences libvirt's default printing of errors to stderr: vmscope reports
 * them through vms_last_error(). 0 or a negative errno.
 */
int vms_libvirt_event_loop(void);

#ifdef __cplusplus
}
#endif

#endif
