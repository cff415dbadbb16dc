// SPDX-License-Identifier: MIT
/*
 * vmscoped [--config FILE] [--qmp-dir DIR] [--libvirt URI]...
 *          [--listen unix:PATH|HOST:PORT] [--interval S] [--check-config]
 *
 * One daemon for every VM on a host: the VMs of a directory of QMP sockets
 * and the running domains of libvirt URIs, each sampled by a worker of its own, all served through
 * one control API. The main thread is the event loop: the source's changes and signals
 * (SIGINT/SIGTERM end it, cleanly; SIGHUP reads the configuration again and
 * applies it without dropping a running VM). Flags override the config
 * file. Under systemd (Type=notify) it says when it is ready, reloading and
 * stopping (sd_notify).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"

#define RESCAN_MS 5000 /* a rescan even without notifications (a socket made by a rename) */

static int usage(void)
{
	fprintf(stderr, "usage: vmscoped [--config FILE] [--qmp-dir DIR] [--libvirt URI]... "
			"[--listen unix:PATH|HOST:PORT] [--interval S] [--check-config]\n");
	return 2;
}

static int fail(const char *why)
{
	fprintf(stderr, "vmscoped: %s\n", why);
	return 2;
}

static int parse(int argc, char **argv, struct daemon_config *c, int *check)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "qmp-dir", required_argument, NULL, 'q' },
		{ "libvirt", required_argument, NULL, 'v' },
		{ "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config = NULL;
	char why[DAEMON_PATH_MAX + 64];
	int opt, libvirt_flags = 0;

	optind = 0; /* a reload parses again from the start */
	/* The file first, whatever the order of flags: flags override it. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	if (daemon_config_load(c, config, why, sizeof(why)))
		return fail(why); /* nothing kept */
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		char *end;

		if (opt == 'c')
			continue;
		if (opt == 'v') {
			if (!libvirt_flags++)
				c->nr_libvirt = 0; /* the flags' URIs replace the file's */
			if (daemon_config_add_libvirt(c, optarg, why, sizeof(why)))
				return fail(why);
			continue;
		}
		if (opt == 'q')
			snprintf(c->qmp_dir, sizeof(c->qmp_dir), "%s", optarg);
		else if (opt == 'l')
			snprintf(c->listen, sizeof(c->listen), "%s", optarg);
		else if (opt == 'i' && (c->interval_s = strtod(optarg, &end)) >= 0.05 && !*end &&
			 c->interval_s <= 3600)
			continue;
		else if (opt == 'i')
			return fail("--interval: seconds from 0.05 to 3600");
		else if (opt == 'C')
			*check = 1;
		else
			return usage();
	}
	if (optind != argc)
		return usage();
	if (daemon_config_check(c, why, sizeof(why)))
		return fail(why);
	return 0;
}

/* The flags and file, all or nothing: on failure nothing is left to release. */
static int parse_config(int argc, char **argv, struct daemon_config *c, int *check)
{
	int err = parse(argc, argv, c, check);

	if (err)
		daemon_config_release(c);
	return err;
}

struct running {
	struct daemon_config c;
	struct qmpdir *q; /* NULL without a QMP directory */
	struct lvsource *lv[DAEMON_LIBVIRT_MAX];
	int nr_lv;
	struct api *api;
	struct events events;
	struct vmset set;
};

#define CONFIG_SOURCE "config" /* the source of the VMs the file lists */

/* The VMs [vm NAME] sections list with a target: a source like the others. */
static void sync_listed(struct running *r)
{
	vmset_unsee(&r->set, CONFIG_SOURCE);
	for (int i = 0; i < r->c.nr_sections; i++) {
		const struct daemon_section *s = &r->c.sections[i];

		if (s->target[0] && !vmset_see(&r->set, CONFIG_SOURCE, s->pattern, s->target))
			vmset_add(&r->set, CONFIG_SOURCE, s->pattern, s->target);
	}
	vmset_sweep(&r->set, CONFIG_SOURCE);
}

static void sync_sources(struct running *r)
{
	sync_listed(r);
	if (r->q)
		qmpdir_sync(r->q, &r->set);
	for (int i = 0; i < r->nr_lv; i++)
		lvsource_sync(r->lv[i], &r->set);
}

static int has_uri(const struct daemon_config *c, const char *uri)
{
	for (int i = 0; i < c->nr_libvirt; i++)
		if (!strcmp(c->libvirt[i], uri))
			return 1;
	return 0;
}

/* The libvirt sources of next: the ones kept stay open, the gone lose their VMs. */
static void switch_libvirt(struct running *r, const struct daemon_config *next)
{
	char why[DAEMON_PATH_MAX + 128];
	int kept = 0;

	for (int i = 0; i < r->nr_lv; i++) {
		if (has_uri(next, lvsource_uri(r->lv[i]))) {
			r->lv[kept++] = r->lv[i];
			continue;
		}
		vmset_drop_source(&r->set, lvsource_uri(r->lv[i]));
		lvsource_close(r->lv[i]);
	}
	r->nr_lv = kept;
	for (int i = 0; i < next->nr_libvirt; i++) {
		int open = 0;

		for (int k = 0; k < kept; k++)
			open |= !strcmp(lvsource_uri(r->lv[k]), next->libvirt[i]);
		if (!open && lvsource_open(next->libvirt[i], &r->lv[r->nr_lv], why, sizeof(why)))
			fprintf(stderr, "vmscoped: %s\n", why);
		else if (!open)
			r->nr_lv++;
	}
}

/* The QMP directory of next, once it opens; the old one's VMs go with it. */
static void switch_qmp_dir(struct running *r, struct daemon_config *next)
{
	char why[DAEMON_PATH_MAX + 128];
	struct qmpdir *q = NULL;

	if (!strcmp(next->qmp_dir, r->c.qmp_dir))
		return;
	if (next->qmp_dir[0] && qmpdir_open(next->qmp_dir, &q, why, sizeof(why))) {
		fprintf(stderr, "vmscoped: reload: %s; still watching %s\n", why,
			r->c.qmp_dir[0] ? r->c.qmp_dir : "no directory");
		snprintf(next->qmp_dir, sizeof(next->qmp_dir), "%s", r->c.qmp_dir);
		return;
	}
	if (r->q)
		vmset_drop_source(&r->set, r->c.qmp_dir);
	qmpdir_close(r->q);
	r->q = q;
}

static void say_sources(const char *what, const struct daemon_config *c)
{
	fprintf(stderr, "vmscoped: %s: watching %s", what,
		c->qmp_dir[0] ? c->qmp_dir : "no directory");
	for (int i = 0; i < c->nr_libvirt; i++)
		fprintf(stderr, ", libvirt %s", c->libvirt[i]);
	fprintf(stderr, "; answering on %s, interval %g s\n", c->listen, c->interval_s);
}

/*
 * SIGHUP: the file and flags again. Intervals and timeouts apply to every
 * VM at its next turn; a new directory or listener replaces the old one
 * only once it works. Nothing running is dropped for a bad file.
 */
static void reload(struct running *r, int argc, char **argv)
{
	struct daemon_config next;
	char why[DAEMON_PATH_MAX + 128];
	int check = 0;

	sd_notify(0, "RELOADING=1");
	if (parse_config(argc, argv, &next, &check)) {
		fprintf(stderr, "vmscoped: reload refused; the running configuration stays\n");
		goto out;
	}
	if (vmset_configure(&r->set, &next)) {
		fprintf(stderr, "vmscoped: reload refused: out of memory\n");
		daemon_config_release(&next);
		goto out;
	}
	if (events_configure(&r->events, &next, why, sizeof(why))) {
		/* what runs stays: the log as it was, a forwarder that would not start */
		fprintf(stderr, "vmscoped: reload: %s; the rest applies\n", why);
		snprintf(next.log_dir, sizeof(next.log_dir), "%s", r->events.log_dir);
		next.log_max_bytes = r->events.log_max_bytes;
		next.log_max_age_s = r->events.log_max_age_s;
	}
	switch_qmp_dir(r, &next);
	switch_libvirt(r, &next);
	if (api_changed(&next, &r->c)) {
		struct api *api;

		api_stop(r->api); /* a unix socket path may be the same file: free it first */
		r->api = NULL;
		if (api_start(&next, &r->set, &api, why, sizeof(why))) {
			fprintf(stderr, "vmscoped: reload: %s; answering on %s again\n", why,
				r->c.listen);
			memcpy(next.listen, r->c.listen, sizeof(next.listen));
			memcpy(next.tls_cert, r->c.tls_cert, sizeof(next.tls_cert));
			memcpy(next.tls_key, r->c.tls_key, sizeof(next.tls_key));
			memcpy(next.token_file, r->c.token_file, sizeof(next.token_file));
			api = NULL;
			if (api_start(&next, &r->set, &api, why, sizeof(why)))
				fprintf(stderr, "vmscoped: %s\n", why);
		}
		r->api = api;
	}
	daemon_config_release(&r->c);
	r->c = next;
	sync_sources(r);
	say_sources("reloaded", &r->c);
out:
	sd_notify(0, "READY=1");
}

static int open_sources(struct running *r, char *why, size_t why_len)
{
	if (r->c.qmp_dir[0] && qmpdir_open(r->c.qmp_dir, &r->q, why, why_len))
		return -1;
	for (int i = 0; i < r->c.nr_libvirt; i++) {
		if (lvsource_open(r->c.libvirt[i], &r->lv[i], why, why_len))
			return -1;
		r->nr_lv++;
	}
	return 0;
}

static void close_sources(struct running *r)
{
	qmpdir_close(r->q);
	for (int i = 0; i < r->nr_lv; i++)
		lvsource_close(r->lv[i]);
	r->nr_lv = 0;
}

/* Signals on fds[0], then every source's descriptor; how many. */
static int source_fds(const struct running *r, int sfd, struct pollfd *fds)
{
	int n = 0;

	fds[n++] = (struct pollfd){ sfd, POLLIN, 0 };
	if (r->q)
		fds[n++] = (struct pollfd){ qmpdir_fd(r->q), POLLIN, 0 };
	for (int i = 0; i < r->nr_lv; i++)
		fds[n++] = (struct pollfd){ lvsource_fd(r->lv[i]), POLLIN, 0 };
	return n;
}

static int run(const struct daemon_config *c, int argc, char **argv)
{
	struct running r = { .c = *c };
	char why[DAEMON_PATH_MAX + 128];
	sigset_t mask;
	int sfd, status = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &mask, NULL); /* before any thread: they inherit it */
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		daemon_config_release(&r.c);
		return fail(strerror(errno));
	}
	if (events_init(&r.events, c, why, sizeof(why))) {
		close(sfd);
		daemon_config_release(&r.c);
		return fail(why);
	}
	vmset_init(&r.set, c, &r.events);
	if (open_sources(&r, why, sizeof(why)) || api_start(c, &r.set, &r.api, why, sizeof(why))) {
		status = fail(why);
		goto out;
	}
	say_sources("started", c);
	sync_sources(&r);
	sd_notify(0, "READY=1");
	for (;;) {
		struct pollfd fds[2 + DAEMON_LIBVIRT_MAX];
		int n_fds = source_fds(&r, sfd, fds);
		int n = poll(fds, (nfds_t)n_fds, RESCAN_MS);

		if (n < 0 && errno != EINTR) {
			status =
				fail(strerror(errno)); /* systemd's Restart=on-failure takes over */
			break;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si) || si.ssi_signo == SIGPIPE)
				continue;
			if (si.ssi_signo != SIGHUP)
				break;
			reload(&r, argc, argv);
			continue;
		}
		/*
		 * The directory on a change and every RESCAN_MS regardless; a
		 * libvirt URI on its events only, or while it is disconnected.
		 */
		if (r.q)
			qmpdir_sync(r.q, &r.set);
		for (int i = 0; i < r.nr_lv; i++)
			if ((fds[n_fds - r.nr_lv + i].revents & POLLIN) ||
			    !lvsource_connected(r.lv[i]))
				lvsource_sync(r.lv[i], &r.set);
	}
	sd_notify(0, "STOPPING=1");
	fprintf(stderr, "vmscoped: stopping\n");
out:
	api_stop(r.api);
	vmset_destroy(&r.set);
	events_close(&r.events);
	close_sources(&r);
	close(sfd);
	daemon_config_release(&r.c);
	return status;
}

int main(int argc, char **argv)
{
	struct daemon_config c;
	int check = 0, err = parse_config(argc, argv, &c, &check);

	if (err)
		return err;
	if (check) {
		printf("vmscoped: the configuration is valid (qmp-dir %s",
		       c.qmp_dir[0] ? c.qmp_dir : "none");
		for (int i = 0; i < c.nr_libvirt; i++)
			printf(", libvirt %s", c.libvirt[i]);
		printf(", listen %s, interval %g s, log %s, %d [vm] sections)\n", c.listen,
		       c.interval_s, c.log_dir[0] ? c.log_dir : "none", c.nr_sections);
		daemon_config_release(&c);
		return 0;
	}
	return run(&c, argc, argv);
}
