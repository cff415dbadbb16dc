// SPDX-License-Identifier: MIT
/*
 * vmscoped [--config FILE] [--qmp-dir DIR] [--listen unix:PATH|HOST:PORT]
 *          [--interval S] [--check-config]
 *
 * One daemon for every VM on a host: the VMs of a directory of QMP sockets,
 * each sampled by a worker of its own, all served through one control API.
 * The main thread is the event loop: the source's changes and signals
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
	fprintf(stderr, "usage: vmscoped [--config FILE] [--qmp-dir DIR] "
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
		{ "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config = NULL;
	char why[DAEMON_PATH_MAX + 64];
	int opt;

	optind = 0; /* a reload parses again from the start */
	/* The file first, whatever the order of flags: flags override it. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	if (daemon_config_load(c, config, why, sizeof(why)))
		return fail(why);
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		char *end;

		if (opt == 'c')
			continue;
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

struct running {
	struct daemon_config c;
	struct qmpdir *q;
	struct api *api;
	struct vmset set;
};

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
	if (parse(argc, argv, &next, &check)) {
		fprintf(stderr, "vmscoped: reload refused; the running configuration stays\n");
		goto out;
	}
	vmset_configure(&r->set, &next);
	if (strcmp(next.qmp_dir, r->c.qmp_dir)) {
		struct qmpdir *q;

		if (qmpdir_open(next.qmp_dir, &q, why, sizeof(why))) {
			fprintf(stderr, "vmscoped: reload: %s; still watching %s\n", why,
				r->c.qmp_dir);
			snprintf(next.qmp_dir, sizeof(next.qmp_dir), "%s", r->c.qmp_dir);
		} else {
			qmpdir_close(r->q);
			r->q = q;
		}
	}
	if (strcmp(next.listen, r->c.listen)) {
		struct api *api;

		api_stop(r->api); /* a unix socket path may be the same file: free it first */
		r->api = NULL;
		if (api_start(next.listen, &r->set, &api, why, sizeof(why))) {
			fprintf(stderr, "vmscoped: reload: %s; answering on %s again\n", why,
				r->c.listen);
			snprintf(next.listen, sizeof(next.listen), "%s", r->c.listen);
			api = NULL;
			if (api_start(next.listen, &r->set, &api, why, sizeof(why)))
				fprintf(stderr, "vmscoped: %s\n", why);
		}
		r->api = api;
	}
	r->c = next;
	qmpdir_sync(r->q, &r->set);
	fprintf(stderr, "vmscoped: reloaded: watching %s, answering on %s, interval %g s\n",
		r->c.qmp_dir, r->c.listen, r->c.interval_s);
out:
	sd_notify(0, "READY=1");
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
	vmset_init(&r.set, c);
	if (sfd < 0 || qmpdir_open(c->qmp_dir, &r.q, why, sizeof(why)) ||
	    api_start(c->listen, &r.set, &r.api, why, sizeof(why))) {
		status = fail(sfd < 0 ? strerror(errno) : why);
		goto out;
	}
	fprintf(stderr, "vmscoped: watching %s, answering on %s\n", c->qmp_dir, c->listen);
	qmpdir_sync(r.q, &r.set);
	sd_notify(0, "READY=1");
	for (;;) {
		struct pollfd fds[2] = { { sfd, POLLIN, 0 }, { qmpdir_fd(r.q), POLLIN, 0 } };
		int n = poll(fds, 2, RESCAN_MS);

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
		qmpdir_sync(r.q, &r.set); /* on a change, and every RESCAN_MS regardless */
	}
	sd_notify(0, "STOPPING=1");
	fprintf(stderr, "vmscoped: stopping\n");
out:
	api_stop(r.api);
	vmset_destroy(&r.set);
	qmpdir_close(r.q);
	if (sfd >= 0)
		close(sfd);
	return status;
}

int main(int argc, char **argv)
{
	struct daemon_config c;
	int check = 0, err = parse(argc, argv, &c, &check);

	if (err)
		return err;
	if (check) {
		printf("vmscoped: the configuration is valid (qmp-dir %s, listen %s, interval %g "
		       "s)\n",
		       c.qmp_dir, c.listen, c.interval_s);
		return 0;
	}
	return run(&c, argc, argv);
}
