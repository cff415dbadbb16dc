// SPDX-License-Identifier: MIT
/*
 * A source of VMs: a directory of QMP sockets (as QEMU makes them with
 * -qmp unix:DIR/NAME.qmp,server). Every unix socket in it is a VM named
 * after the file (less a ".qmp" suffix); one that appears is added, one
 * that goes is removed. inotify says when the directory changed, and each
 * change rescans it whole, so that a missed or coalesced notification
 * costs nothing. Entries are names from a directory anyone with write
 * access to it controls: only sockets count, names are bounded, and the
 * scan stops at a budget.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmscope/event.h>

#include "daemon.h"

#define SCAN_MAX 4096 /* entries a scan looks at */

struct qmpdir {
	char dir[DAEMON_PATH_MAX];
	int fd;
};

int qmpdir_open(const char *dir, struct qmpdir **ret, char *why, size_t why_len)
{
	struct qmpdir *q = calloc(1, sizeof(*q));
	struct stat st;

	if (!q) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode) || strlen(dir) >= sizeof(q->dir)) {
		snprintf(why, why_len, "--qmp-dir %s: not a directory", dir);
		free(q);
		return -ENOTDIR;
	}
	snprintf(q->dir, sizeof(q->dir), "%s", dir);
	q->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (q->fd < 0 || inotify_add_watch(q->fd, dir,
					   IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
						   IN_ATTRIB) < 0) {
		snprintf(why, why_len, "--qmp-dir %s: cannot watch it: %s", dir, strerror(errno));
		if (q->fd >= 0)
			close(q->fd);
		free(q);
		return -errno;
	}
	*ret = q;
	return 0;
}

int daemon_name_check(const char *name, size_t n)
{
	/* an event carries at most VMS_EVENT_VM_MAX - 1 bytes of it: longer would be cut */
	if (!n || n >= VMS_EVENT_VM_MAX || name[0] == '.')
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || strchr("-_.", name[i])))
			return -1;
	return 0;
}

int qmpdir_fd(const struct qmpdir *q)
{
	return q->fd;
}

/* "NAME.qmp" or "NAME" -> NAME, when it is a name the API can carry. */
static int vm_name(const char *file, char *out, size_t len)
{
	size_t n = strlen(file);

	if (n > 4 && !strcmp(file + n - 4, ".qmp"))
		n -= 4;
	if (n >= len || daemon_name_check(file, n))
		return -1;
	memcpy(out, file, n);
	out[n] = 0;
	return 0;
}

void qmpdir_sync(struct qmpdir *q, struct vmset *s)
{
	char events[4096];
	struct dirent *e;
	DIR *d;
	int budget = SCAN_MAX;

	while (read(q->fd, events, sizeof(events)) > 0)
		; /* what changed does not matter: the scan looks at everything */
	d = opendir(q->dir);
	if (!d)
		return; /* gone for now: keep what we have */
	vmset_unsee(s, q->dir);
	while ((e = readdir(d)) && budget-- > 0) {
		char name[DAEMON_NAME_MAX], path[DAEMON_PATH_MAX + DAEMON_NAME_MAX + 8];
		struct stat st;

		if (vm_name(e->d_name, name, sizeof(name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", q->dir, e->d_name);
		if (stat(path, &st) || !S_ISSOCK(st.st_mode) ||
		    (st.st_ino == s->own_ino && st.st_dev == s->own_dev))
			continue; /* not a socket, or the daemon's own control socket */
		char target[sizeof(path) + 8];

		snprintf(target, sizeof(target), "qmp:%s", path);
		if (!vmset_see(s, q->dir, name, target))
			vmset_add(s, q->dir, name, target);
	}
	closedir(d);
	if (budget >= 0)
		vmset_sweep(s, q->dir); /* a scan cut short saw too little to drop anything */
}

void qmpdir_close(struct qmpdir *q)
{
	if (!q)
		return;
	close(q->fd);
	free(q);
}
