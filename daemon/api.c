// SPDX-License-Identifier: MIT
/*
 * The daemon's control API, HTTP over libmicrohttpd: /metrics (Prometheus,
 * every VM), /api/v1/vms (JSON: each VM's name, target, state and why).
 * It listens on a unix socket only its owner may use (made under umask
 * 077, then checked), or on TCP at a loopback address (for a local
 * Prometheus). Any other address would expose the guests' figures to the
 * network: that needs TLS and a bearer token, which are not built yet, so
 * it is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "daemon.h"

struct api {
	struct MHD_Daemon *mhd;
	struct vmset *set;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, char *body,
			     size_t len, const char *type)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned int status, const char *msg)
{
	char *body = strdup(msg);

	return body ? reply(conn, status, body, strlen(body), "text/plain; charset=utf-8") : MHD_NO;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct api *a = cls;
	size_t len = 0;
	char *body;

	(void)version, (void)upload, (void)upload_len, (void)state;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	if (!strcmp(url, "/metrics")) {
		body = vmset_metrics(a->set, &len);
		return body ? reply(conn, MHD_HTTP_OK, body, len,
				    "text/plain; version=0.0.4; charset=utf-8")
			    : MHD_NO;
	}
	if (!strcmp(url, "/api/v1/vms")) {
		body = vmset_json(a->set);
		return body ? reply(conn, MHD_HTTP_OK, body, strlen(body), "application/json")
			    : MHD_NO;
	}
	return text(conn, MHD_HTTP_NOT_FOUND, "vmscoped: /metrics, /api/v1/vms\n");
}

/* A socket only its owner can connect to: made under umask 077, then checked. */
static int listen_unix(struct api *a, const char *path, char *why, size_t why_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(why, why_len, "--listen unix:%s: the path is too long", path);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode)) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live = probe >= 0 && !connect(probe, (struct sockaddr *)&addr, sizeof(addr));

		if (probe >= 0)
			close(probe);
		if (live) {
			snprintf(why, why_len, "--listen unix:%s: something answers there already",
				 path);
			close(fd);
			return -1;
		}
		unlink(path); /* a previous run's, nobody behind it */
	}
	old = umask(077);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		umask(old);
		goto fail;
	}
	umask(old);
	if (stat(path, &st) || listen(fd, 64) || ((st.st_mode & 077) && (errno = EPERM))) {
		unlink(path); /* EPERM: open to others, refused rather than served */
		goto fail;
	}
	snprintf(a->unix_path, sizeof(a->unix_path), "%s", path);
	return fd;
fail:
	snprintf(why, why_len, "--listen unix:%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* HOST:PORT, loopback only. */
static int listen_tcp(const char *listen_addr, struct addrinfo **ret, char *why, size_t why_len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	const char *colon = strrchr(listen_addr, ':');
	char host[256];
	size_t n = colon ? (size_t)(colon - listen_addr) : 0;
	int err;

	if (!colon || !colon[1] || !n || n >= sizeof(host)) {
		snprintf(why, why_len, "--listen %s: unix:PATH, or HOST:PORT on loopback",
			 listen_addr);
		return -1;
	}
	memcpy(host, listen_addr, n);
	host[n] = 0;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = 0;
	}
	err = getaddrinfo(host, colon + 1, &hints, ret);
	if (err) {
		snprintf(why, why_len, "--listen %s: %s", listen_addr, gai_strerror(err));
		return -1;
	}
	if (((*ret)->ai_family == AF_INET &&
	     (ntohl(((struct sockaddr_in *)(*ret)->ai_addr)->sin_addr.s_addr) >> 24) != 127) ||
	    ((*ret)->ai_family == AF_INET6 &&
	     !IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)(*ret)->ai_addr)->sin6_addr))) {
		snprintf(why, why_len,
			 "--listen %s: not a loopback address; serving the network "
			 "needs TLS and a token, which vmscoped does not have yet",
			 listen_addr);
		freeaddrinfo(*ret);
		return -1;
	}
	return 0;
}

int api_start(const char *listen_addr, struct vmset *s, struct api **ret, char *why, size_t why_len)
{
	/* poll or epoll, not select: past 1024 descriptors (hundreds of VMs) select fails */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	struct api *a = calloc(1, sizeof(*a));
	struct addrinfo *ai = NULL;
	int fd = -1;

	if (!a) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	a->set = s;
	if (!strncmp(listen_addr, "unix:", 5)) {
		fd = listen_unix(a, listen_addr + 5, why, why_len);
		if (fd >= 0)
			a->mhd = MHD_start_daemon(
				flags, 0, NULL, NULL, answer, a, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	} else if (!listen_tcp(listen_addr, &ai, why, why_len)) {
		if (ai->ai_family == AF_INET6)
			flags |= MHD_USE_IPv6;
		a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, a, MHD_OPTION_SOCK_ADDR,
					  ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
					  MHD_OPTION_END);
		freeaddrinfo(ai);
		fd = -2;
	}
	if (!a->mhd) {
		if (fd != -1)
			snprintf(why, why_len, "--listen %s: cannot serve there (%s)", listen_addr,
				 strerror(errno));
		if (fd >= 0)
			close(fd);
		api_stop(a);
		return -1;
	}
	*ret = a;
	return 0;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	if (a->mhd)
		MHD_stop_daemon(a->mhd);
	if (a->unix_path[0])
		unlink(a->unix_path);
	free(a);
}
