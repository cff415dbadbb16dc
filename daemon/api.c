// SPDX-License-Identifier: MIT
/*
 * The daemon's control API, HTTP over libmicrohttpd: /metrics (Prometheus,
 * every VM), /api/v1/vms (JSON: each VM's name, target, state and why),
 * /api/v1/vms/NAME (one), /api/v1/vms/NAME/VIEW (a view read on demand by
 * the VM's worker), /api/v1/events (the live event stream, server-sent
 * events). A thread per connection (a bounded number of them): a stream
 * waits for events on its own thread, and a view waits for its VM's worker
 * without holding up any other request.
 *
 * It listens on a unix socket only its owner may use (made under umask
 * 077, then checked), or on TCP at a loopback address (for a local
 * Prometheus). Any other address would expose the guests to the network:
 * it is served only with TLS (GnuTLS, through libmicrohttpd) and a bearer
 * token every request must carry, compared in constant time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <vmscope/os.h>

#include "daemon.h"
#include "web.h"

#define CONNECTIONS_MAX 128
#define VIEW_TIMEOUT_MS 15000 /* a view of a busy guest under TCG takes seconds */
#define STREAM_WAIT_MS	5000  /* a keepalive comment this often, under the connection timeout */
#define STREAM_BLOCK	(64u << 10)

#define TOKEN_MIN 16
#define PEM_MAX	  (1u << 20)

struct api {
	struct MHD_Daemon *mhd;
	struct vmset *set;
	_Atomic int stopping;
	char *cert, *key;   /* PEM, alive as long as the daemon (libmicrohttpd keeps pointers) */
	char *token;	    /* NULL: none asked */
	char mhd_said[256]; /* libmicrohttpd's last complaint while starting */
	_Atomic int started;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One reader of the event stream. */
struct stream {
	struct api *api;
	struct events_filter filter;
	uint64_t pos;
};

/* body (malloc'd; freed by libmicrohttpd) as type, with one more header when given. */
static enum MHD_Result reply_with(struct MHD_Connection *conn, unsigned int status, char *body,
				  size_t len, const char *type, const char *header,
				  const char *value)
{
	struct MHD_Response *resp =
		body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
	enum MHD_Result ret;

	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	if (header)
		MHD_add_response_header(resp, header, value);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, char *body,
			     size_t len, const char *type)
{
	return reply_with(conn, status, body, len, type, NULL, NULL);
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned int status, const char *msg)
{
	char *body = strdup(msg);

	return body ? reply(conn, status, body, strlen(body), "text/plain; charset=utf-8") : MHD_NO;
}

static enum MHD_Result json(struct MHD_Connection *conn, unsigned int status, char *body)
{
	return body ? reply(conn, status, body, strlen(body), "application/json") : MHD_NO;
}

/* {"error": why}; why may hold guest bytes that are not UTF-8. */
static enum MHD_Result error(struct MHD_Connection *conn, unsigned int status, const char *why)
{
	json_t *o = json_pack("{s:s}", "error", why);
	char *body;

	if (!o)
		o = json_pack("{s:s}", "error", "(the reason is not UTF-8)");
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return json(conn, status, body);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	size_t n;

	(void)pos;
	n = events_read(s->api->set->events, &s->pos, &s->filter, buf, max, STREAM_WAIT_MS,
			&s->api->stopping);
	return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static int add_type(struct events_filter *f, const char *word, size_t n)
{
	if (!n)
		return 0;
	if (f->nr_types == EVENTS_TYPES_MAX || n >= sizeof(f->type[0]))
		return -1;
	memcpy(f->type[f->nr_types], word, n);
	f->type[f->nr_types++][n] = 0;
	return 0;
}

/* ?vm=NAME&type=A,B, and Last-Event-ID to resume after the last one seen. */
static int stream_filter(struct MHD_Connection *conn, struct stream *s)
{
	const char *vm = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "vm");
	const char *types = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "type");
	const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
	const char *from = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "from");
	char *end;

	if (vm && (strlen(vm) >= sizeof(s->filter.vm) || daemon_name_check(vm, strlen(vm))))
		return -1;
	if (vm)
		memcpy(s->filter.vm, vm, strlen(vm) + 1);
	for (const char *p = types; p && *p;) {
		size_t n = strcspn(p, ",");

		if (add_type(&s->filter, p, n))
			return -1;
		p += n + (p[n] == ',');
	}
	s->pos = UINT64_MAX; /* from the next event on */
	if (from && *from) { /* ?from=N: from event N on, those still held (0: all) */
		unsigned long long id = strtoull(from, &end, 10);

		if (*end || id == UINT64_MAX || *from == '-')
			return -1;
		s->pos = id;
	}
	if (last && *last) { /* resuming: after the last one seen */
		unsigned long long id = strtoull(last, &end, 10);

		if (*end || id == UINT64_MAX || *last == '-')
			return -1;
		s->pos = id + 1;
	}
	return 0;
}

static enum MHD_Result events_stream(struct api *a, struct MHD_Connection *conn)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!s)
		return MHD_NO;
	s->api = a;
	if (stream_filter(conn, s)) {
		free(s);
		return error(conn, MHD_HTTP_BAD_REQUEST,
			     "?vm=NAME (a VM's name), ?type=A,B (up to 16 event types), ?from=N, "
			     "and a numeric Last-Event-ID");
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, s,
						 free);
	if (!resp) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The web page's files: the page itself may only load its own scripts. */
static enum MHD_Result page(struct MHD_Connection *conn, const char *name)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	for (const struct web_asset *w = web_assets; w->name; w++) {
		if (strcmp(w->name, name))
			continue;
		resp = MHD_create_response_from_buffer(w->len, (void *)w->data,
						       MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Type", w->type);
		MHD_add_response_header(resp, "Content-Security-Policy",
					"default-src 'self'; style-src 'self' 'unsafe-inline'");
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
		ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	return text(conn, MHD_HTTP_NOT_FOUND, "no such file\n");
}

static unsigned int view_status(int err)
{
	switch (err) {
	case -ENOENT:
		return MHD_HTTP_NOT_FOUND;
	case -ENOTCONN:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	case -ETIMEDOUT:
		return MHD_HTTP_GATEWAY_TIMEOUT;
	default:
		return MHD_HTTP_BAD_GATEWAY; /* the guest's view could not be read */
	}
}

static int known_view(const char *name)
{
	for (size_t i = 0; vms_view_name(i); i++)
		if (!strcmp(vms_view_name(i), name))
			return 1;
	return 0;
}

/* /api/v1/vms/NAME or /api/v1/vms/NAME/VIEW */
static enum MHD_Result one_vm(struct api *a, struct MHD_Connection *conn, const char *path)
{
	char name[DAEMON_NAME_MAX], why[DAEMON_REASON_MAX + 64];
	const char *slash = strchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : strlen(path);
	char *body;
	int err;

	if (n >= sizeof(name) || daemon_name_check(path, n))
		return error(conn, MHD_HTTP_NOT_FOUND, "not a VM's name");
	memcpy(name, path, n);
	name[n] = 0;
	if (!slash) {
		body = vmset_vm_json(a->set, name);
		return body ? json(conn, MHD_HTTP_OK, body)
			    : error(conn, MHD_HTTP_NOT_FOUND, "no VM of that name");
	}
	if (!strcmp(slash + 1, "history")) {
		body = vmset_history(a->set, name);
		return body ? json(conn, MHD_HTTP_OK, body)
			    : error(conn, MHD_HTTP_NOT_FOUND, "no VM of that name");
	}
	if (!known_view(slash + 1))
		return error(conn, MHD_HTTP_NOT_FOUND,
			     "no such view: ps, threads, lsmod, sockets, mounts, lsof, dmesg, "
			     "sysinfo (or history)");
	err = vmset_view(a->set, name, slash + 1, VIEW_TIMEOUT_MS, &body, why, sizeof(why));
	return err ? error(conn, view_status(err), why) : json(conn, MHD_HTTP_OK, body);
}

/* "Bearer TOKEN", compared without an early exit: timing says nothing of the token. */
static int authorized(const struct api *a, struct MHD_Connection *conn)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	size_t want = strlen(a->token), got;
	unsigned char diff = 0;

	if (!h || strncmp(h, "Bearer ", 7))
		return 0;
	h += 7;
	got = strlen(h);
	for (size_t i = 0; i < want; i++)
		diff |= (unsigned char)(a->token[i] ^ (i < got ? h[i] : 0));
	return !diff && got == want;
}

static enum MHD_Result unauthorized(struct MHD_Connection *conn)
{
	char *body = strdup("{\"error\":\"a bearer token is needed (Authorization: Bearer ...)\"}");

	return reply_with(conn, MHD_HTTP_UNAUTHORIZED, body, body ? strlen(body) : 0,
			  "application/json", "WWW-Authenticate", "Bearer realm=\"vmscoped\"");
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct api *a = cls;
	size_t len = 0;
	char *body;

	(void)version, (void)upload, (void)upload_len, (void)state;
	if (a->token && !authorized(a, conn))
		return unauthorized(conn);
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	if (!strcmp(url, "/metrics")) {
		body = vmset_metrics(a->set, &len);
		return body ? reply(conn, MHD_HTTP_OK, body, len,
				    "text/plain; version=0.0.4; charset=utf-8")
			    : MHD_NO;
	}
	if (!strcmp(url, "/api/v1/vms"))
		return json(conn, MHD_HTTP_OK, vmset_json(a->set));
	if (!strncmp(url, "/api/v1/vms/", 12))
		return one_vm(a, conn, url + 12);
	if (!strcmp(url, "/api/v1/events"))
		return events_stream(a, conn);
	if (!strcmp(url, "/") || !strncmp(url, "/static/", 8))
		return page(conn, !strcmp(url, "/") ? "index.html" : url + 8);
	return text(conn, MHD_HTTP_NOT_FOUND,
		    "vmscoped: /, /metrics, /api/v1/vms, /api/v1/vms/NAME[/VIEW|/history], "
		    "/api/v1/events\n");
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
	a->set->own_dev = st.st_dev; /* a QMP directory holding it is not to take it for a VM */
	a->set->own_ino = st.st_ino;
	return fd;
fail:
	snprintf(why, why_len, "--listen unix:%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* HOST:PORT; beyond loopback only when secured (TLS and a token). */
static int listen_tcp(const char *listen_addr, int secured, struct addrinfo **ret, char *why,
		      size_t why_len)
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
	if (!secured &&
	    (((*ret)->ai_family == AF_INET &&
	      (ntohl(((struct sockaddr_in *)(*ret)->ai_addr)->sin_addr.s_addr) >> 24) != 127) ||
	     ((*ret)->ai_family == AF_INET6 &&
	      !IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)(*ret)->ai_addr)->sin6_addr)))) {
		snprintf(why, why_len,
			 "--listen %s: not a loopback address; serving the network "
			 "needs TLS and a token (tls-cert, tls-key and token-file)",
			 listen_addr);
		freeaddrinfo(*ret);
		*ret = NULL;
		return -1;
	}
	return 0;
}

/*
 * libmicrohttpd's complaints: one line each on stderr (the journal) once it
 * runs; while it starts, the last one is kept for the one-line reason.
 */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct api *a = cls;
	char line[sizeof(a->mhd_said)];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strcspn(line, "\n");
	line[n] = 0;
	if (!a->started) {
		if (!a->mhd_said[0]) /* the first says why; the rest say it failed */
			memcpy(a->mhd_said, line, n + 1);
		return;
	}
	fprintf(stderr, "vmscoped: http: %s\n", line);
}

/* A whole small file: a PEM or a token; NULL with why on failure. */
static char *slurp(const char *path, const char *what, char *why, size_t why_len)
{
	FILE *f = fopen(path, "re");
	char *text = f ? calloc(1, PEM_MAX + 1) : NULL;
	size_t n = text ? fread(text, 1, PEM_MAX + 1, f) : 0;
	int err = errno;

	if (f)
		fclose(f);
	if (!text || n > PEM_MAX || !n) {
		snprintf(why, why_len, "%s %s: %s", what, path,
			 !f	 ? strerror(err)
			 : !text ? "out of memory"
			 : n	 ? "too large"
				 : "empty");
		free(text);
		return NULL;
	}
	return text;
}

static int load_token(struct api *a, const char *path, char *why, size_t why_len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789-._~+/=";
	struct stat st;

	a->token = slurp(path, "token-file", why, why_len);
	if (!a->token)
		return -1;
	a->token[strcspn(a->token, "\r\n")] = 0;
	if (strlen(a->token) < TOKEN_MIN || strspn(a->token, alphabet) != strlen(a->token)) {
		snprintf(why, why_len,
			 "token-file %s: a token of %d or more characters (letters, digits, "
			 "-._~+/=) on its first line",
			 path, TOKEN_MIN);
		return -1;
	}
	if (!stat(path, &st) && (st.st_mode & 077)) {
		snprintf(why, why_len, "token-file %s: readable by others (chmod 600 it)", path);
		return -1;
	}
	return 0;
}

static int load_secrets(struct api *a, const struct daemon_config *c, char *why, size_t why_len)
{
	if (c->tls_cert[0]) {
		a->cert = slurp(c->tls_cert, "tls-cert", why, why_len);
		a->key = a->cert ? slurp(c->tls_key, "tls-key", why, why_len) : NULL;
		if (!a->key)
			return -1;
	}
	return c->token_file[0] ? load_token(a, c->token_file, why, why_len) : 0;
}

int api_changed(const struct daemon_config *x, const struct daemon_config *y)
{
	return strcmp(x->listen, y->listen) || strcmp(x->tls_cert, y->tls_cert) ||
	       strcmp(x->tls_key, y->tls_key) || strcmp(x->token_file, y->token_file);
}

int api_start(const struct daemon_config *c, struct vmset *s, struct api **ret, char *why,
	      size_t why_len)
{
	/* poll, not select: past 1024 descriptors (hundreds of VMs) select fails. The
	 * ITC wakes the listening thread when a connection's thread ends, so that it
	 * closes that socket then, not at the next connection (one socket kept for ever). */
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
			     MHD_USE_ITC | MHD_USE_ERROR_LOG;
	const char *listen_addr = c->listen;
	struct api *a = calloc(1, sizeof(*a));
	struct MHD_OptionItem opts[9];
	struct addrinfo *ai = NULL;
	int fd = -1, n = 0;

	if (!a) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	a->set = s;
	if (load_secrets(a, c, why, why_len)) {
		api_stop(a);
		return -1;
	}
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, a };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, 10, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, CONNECTIONS_MAX, NULL };
	if (a->cert) {
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, a->cert };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, a->key };
	}
	if (!strncmp(listen_addr, "unix:", 5)) {
		fd = listen_unix(a, listen_addr + 5, why, why_len);
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
	} else if (!listen_tcp(listen_addr, a->cert && a->token, &ai, why, why_len)) {
		if (ai->ai_family == AF_INET6)
			flags |= MHD_USE_IPv6;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr };
		fd = -2;
	}
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	if (fd != -1)
		a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, a, MHD_OPTION_ARRAY, opts,
					  MHD_OPTION_END);
	if (ai)
		freeaddrinfo(ai);
	if (!a->mhd) {
		if (fd != -1)
			snprintf(why, why_len, "--listen %s: cannot serve there (%s)", listen_addr,
				 a->mhd_said[0] ? a->mhd_said : strerror(errno));
		if (fd >= 0)
			close(fd);
		api_stop(a);
		return -1;
	}
	a->started = 1;
	*ret = a;
	return 0;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	a->stopping = 1; /* streams end; their threads are joined below */
	events_kick(a->set->events);
	if (a->mhd)
		MHD_stop_daemon(a->mhd);
	if (a->unix_path[0])
		unlink(a->unix_path);
	free(a->cert);
	free(a->key);
	free(a->token);
	free(a);
}
