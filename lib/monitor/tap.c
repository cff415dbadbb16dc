// SPDX-License-Identifier: MIT
/*
 * A VM's NICs as the host counts them: the tap devices QEMU holds open. A
 * descriptor of QEMU's that is /dev/net/tun names its interface in its
 * fdinfo ("iff:"), however it was opened (by QEMU with ifname=, or passed
 * in by libvirt as fd=); "info network" ties it to the guest's NIC when QEMU
 * knows the name. Counters come from /sys/class/net/IF/statistics and are
 * turned round: what the tap receives, the guest sent. User-mode networking
 * (slirp) has no host device and so no counters here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access/qmp.h"
#include "core/internal.h"
#include "monitor/host.h"

#define MAX_TAPS 64
#define MAX_FDS	 65536

void host_taps_free(struct host_cache *c)
{
	free(c->taps);
	c->taps = NULL;
	c->nr_taps = 0;
}

static int tun_name(int pid, const char *fd, char *ifname, size_t len)
{
	char path[320], target[64], buf[512], *iff;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return -1;
	target[n] = '\0';
	if (strcmp(target, "/dev/net/tun"))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid, fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	iff = strstr(buf, "iff:");
	if (!iff)
		return -1;
	iff += 4;
	iff += strspn(iff, " \t");
	snprintf(ifname, len, "%.*s", (int)strcspn(iff, "\n"), iff);
	return ifname[0] ? 0 : -1;
}

/* "net0: index=0,type=nic,model=...\n \ hostnet0: index=0,type=tap,ifname=tap0,..." */
static void name_devices(struct vms_vm *vm, struct host_cache *c)
{
	char *out = NULL, *line, *save, nic[64] = "";

	if (qmp_hmp(vm->qmp, "info network", &out))
		return;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = line + strspn(line, " \\\t"), *ifname = strstr(line, "ifname=");

		if (strstr(line, "type=nic"))
			snprintf(nic, sizeof(nic), "%.*s", (int)strcspn(p, ":"), p);
		if (!ifname || !nic[0])
			continue;
		ifname += strlen("ifname=");
		for (size_t i = 0; i < c->nr_taps; i++)
			if (!strncmp(c->taps[i].ifname, ifname, strcspn(ifname, ",\r")) &&
			    strlen(c->taps[i].ifname) == strcspn(ifname, ",\r"))
				snprintf(c->taps[i].device, sizeof(c->taps[i].device), "%s", nic);
	}
	free(out);
}

/* QEMU's tun descriptors, each once (multiqueue taps hold several). */
static void find_taps(struct vms_vm *vm, struct host_cache *c, int pid)
{
	char path[64];
	struct dirent *d;
	size_t seen = 0;
	DIR *dir;

	host_taps_free(c);
	c->taps_known = 1;
	c->taps_age = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return;
	c->taps = calloc(MAX_TAPS, sizeof(*c->taps));
	while (c->taps && (d = readdir(dir)) && seen++ < MAX_FDS && c->nr_taps < MAX_TAPS) {
		char ifname[16];
		int dup = 0;

		if (d->d_name[0] == '.' || tun_name(pid, d->d_name, ifname, sizeof(ifname)))
			continue;
		for (size_t i = 0; i < c->nr_taps; i++)
			dup |= !strcmp(c->taps[i].ifname, ifname);
		if (dup)
			continue;
		snprintf(c->taps[c->nr_taps].ifname, sizeof(c->taps[0].ifname), "%s", ifname);
		snprintf(c->taps[c->nr_taps].device, sizeof(c->taps[0].device), "%s", ifname);
		c->nr_taps++;
	}
	closedir(dir);
	if (c->nr_taps)
		name_devices(vm, c);
}

static uint64_t counter(const char *ifname, const char *name)
{
	char path[128], buf[32];
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", ifname, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = strtoull(buf, NULL, 10);
	}
	return v;
}

int host_read_nics(struct vms_vm *vm, struct host_cache *c, int pid, struct vms_host_metrics *m)
{
	if (!c->taps_known || ++c->taps_age >= HOST_REFRESH)
		find_taps(vm, c, pid);
	if (!c->nr_taps)
		return 0;
	m->nics = calloc(c->nr_taps, sizeof(*m->nics));
	if (!m->nics)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_taps; i++) {
		struct vms_host_nic *n = &m->nics[i];
		const char *ifname = c->taps[i].ifname;

		snprintf(n->device, sizeof(n->device), "%s", c->taps[i].device);
		snprintf(n->ifname, sizeof(n->ifname), "%s", ifname);
		/* The tap's transmit side is what reaches the guest. */
		n->rx_bytes = counter(ifname, "tx_bytes");
		n->rx_packets = counter(ifname, "tx_packets");
		n->rx_dropped = counter(ifname, "tx_dropped");
		n->tx_bytes = counter(ifname, "rx_bytes");
		n->tx_packets = counter(ifname, "rx_packets");
		n->tx_dropped = counter(ifname, "rx_dropped");
	}
	m->nr_nics = c->nr_taps;
	return 0;
}
