// SPDX-License-Identifier: MIT
/*
 * vmscope remote [--token-file FILE] [--cacert FILE] ADDRESS ...:
 * vmscope remote ADDRESS vms|metrics
 * vmscope remote ADDRESS status NAME
 * vmscope remote ADDRESS VIEW NAME          (ps, threads, lsmod, sockets, ...)
 * vmscope remote ADDRESS events [--vm NAME] [--type T,...] [--count N] [--duration S]
 *
 * The client of vmscoped's control API (ADDRESS as its --listen: unix:PATH
 * or HOST:PORT; https://HOST:PORT when it serves TLS, checked against the
 * system's CAs or --cacert; the bearer token from --token-file), over
 * libcurl: the VM list, a VM's status and any view as
 * JSON, the metrics as Prometheus text, the live event stream as JSON lines
 * (one per server-sent event) until the count or the duration is reached.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/os.h>

#include "cli.h"

#define BODY_MAX (256u << 20) /* a reply larger than this is refused, not held */

static const char *cacert;
static char bearer[4200]; /* "Authorization: Bearer TOKEN" */

struct reply {
	char *body;
	size_t len;
	int too_big;
};

/* The event stream: lines split as they come, each event's data printed. */
struct sse {
	char line[1u << 20];
	size_t used;
	unsigned long long count, max;
	int overlong; /* the line so far did not fit: it is dropped */
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct reply *r = ctx;
	size_t len = size * n;
	char *body;

	if (r->len + len > BODY_MAX) {
		r->too_big = 1;
		return 0;
	}
	body = realloc(r->body, r->len + len + 1);
	if (!body)
		return 0;
	memcpy(body + r->len, data, len);
	r->body = body;
	r->len += len;
	r->body[r->len] = 0;
	return len;
}

/* One line of the stream: "data: JSON" printed; comments, ids and names passed over. */
static int sse_line(struct sse *s)
{
	s->line[s->used] = 0;
	if (!strncmp(s->line, "data: ", 6)) {
		puts(s->line + 6);
		fflush(stdout);
		if (s->max && ++s->count >= s->max)
			return -1;
	}
	return 0;
}

static size_t on_stream(char *data, size_t size, size_t n, void *ctx)
{
	struct sse *s = ctx;
	size_t len = size * n;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			if (!s->overlong && sse_line(s))
				return 0; /* enough: curl ends the transfer */
			s->used = 0;
			s->overlong = 0;
		} else if (s->used + 1 < sizeof(s->line)) {
			s->line[s->used++] = data[i];
		} else {
			s->overlong = 1;
		}
	}
	return len;
}

/* https://HOST:PORT: a colon after the scheme, no path. */
static int host_port(const char *url)
{
	const char *rest = strstr(url, "://");

	return rest && strchr(rest + 3, ':') && !strchr(rest + 3, '/');
}

static void cleanup(CURL *curl)
{
	struct curl_slist *h = NULL;

	if (curl && curl_easy_getinfo(curl, CURLINFO_PRIVATE, (char **)&h) == CURLE_OK)
		curl_slist_free_all(h);
	curl_easy_cleanup(curl);
}

/* ADDRESS and an API path as what curl needs: unix socket or host, and the URL. */
static int set_address(CURL *curl, const char *address, const char *path)
{
	char url[4096];

	if (!strncmp(address, "unix:", 5)) {
		if (!address[5])
			return cli_fail("remote: unix:PATH needs a path");
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, address + 5);
		snprintf(url, sizeof(url), "http://localhost%s", path);
	} else if (!strncmp(address, "https://", 8) && host_port(address)) {
		if ((size_t)snprintf(url, sizeof(url), "%s%s", address, path) >= sizeof(url))
			return cli_fail("remote: the address is too long");
		if (cacert)
			curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
	} else if (strchr(address, ':') && !strchr(address, '/')) {
		if ((size_t)snprintf(url, sizeof(url), "http://%s%s", address, path) >= sizeof(url))
			return cli_fail("remote: the address is too long");
	} else {
		return cli_fail("remote %s: unix:PATH, HOST:PORT or https://HOST:PORT", address);
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	if (bearer[0]) {
		struct curl_slist *h = curl_slist_append(NULL, bearer);

		if (!h)
			return cli_fail("remote: out of memory");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(curl, CURLOPT_PRIVATE, h); /* freed with the handle, below */
	}
	return 0;
}

/* The reply's error (the API's {"error": ...}), or the status alone. */
static int http_failed(long status, const struct reply *r)
{
	json_t *o = r->body ? json_loads(r->body, 0, NULL) : NULL;
	const char *why = json_string_value(json_object_get(o, "error"));

	if (!why && r->body && status == 404)
		why = "not found";
	cli_fail("remote: %s (HTTP %ld)", why ? why : "failed", status);
	json_decref(o);
	return 1;
}

static int print_reply(const struct reply *r, int is_json)
{
	json_t *value;

	if (!is_json) {
		fwrite(r->body ? r->body : "", 1, r->len, stdout);
		return 0;
	}
	value = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
	if (!value)
		return cli_fail("remote: the daemon's reply is not JSON");
	return cli_print_json(value);
}

static int get(const char *address, const char *path, int is_json)
{
	struct reply r = { 0 };
	CURL *curl = curl_easy_init();
	long status = 0;
	CURLcode rc;
	int err;

	if (!curl)
		return cli_fail("remote: cannot start libcurl");
	err = set_address(curl, address, path);
	if (!err) {
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
		rc = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (rc != CURLE_OK)
			err = cli_fail("remote %s: %s", address,
				       r.too_big ? "the reply is too large"
						 : curl_easy_strerror(rc));
		else if (status != 200)
			err = http_failed(status, &r);
		else
			err = print_reply(&r, is_json);
	}
	cleanup(curl);
	free(r.body);
	return err;
}

static int events(const char *address, int argc, char **argv)
{
	static const struct option options[] = {
		{ "vm", required_argument, NULL, 'v' },
		{ "type", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ 0 },
	};
	const char *vm = NULL, *types = NULL;
	struct sse *s = calloc(1, sizeof(*s));
	CURL *curl = curl_easy_init();
	double duration = 0;
	char path[1024];
	uint64_t count = 0;
	long status = 0;
	int opt, err = 0;
	CURLcode rc;

	if (!s || !curl) {
		free(s);
		cleanup(curl);
		return cli_fail("remote: out of memory");
	}
	optind = 1;
	while (!err && (opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'v')
			vm = optarg;
		else if (opt == 't')
			types = optarg;
		else if (opt == 'n')
			err = cli_parse_u64(optarg, "--count", &count);
		else if (opt == 'd' && cli_parse_seconds(optarg, "--duration", &duration))
			err = 1;
		else if (opt != 'd')
			err = cli_usage(&cmd_remote);
	}
	if (!err && optind != argc)
		err = cli_usage(&cmd_remote);
	if (!err) {
		char *v = vm ? curl_easy_escape(curl, vm, 0) : NULL;
		char *t = types ? curl_easy_escape(curl, types, 0) : NULL;

		snprintf(path, sizeof(path), "/api/v1/events?%s%s%s%s", v ? "vm=" : "", v ? v : "",
			 t ? "&type=" : "", t ? t : "");
		curl_free(v);
		curl_free(t);
		err = set_address(curl, address, path);
	}
	if (!err) {
		s->max = count;
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_stream);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
		if (duration > 0)
			curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(duration * 1000));
		rc = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		/* the count reached (the callback stopped it) or the duration over: done */
		if (status && status != 200)
			err = cli_fail("remote: the event stream was refused (HTTP %ld)", status);
		else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && s->max) &&
			 !(rc == CURLE_OPERATION_TIMEDOUT && duration > 0))
			err = cli_fail("remote %s: %s", address, curl_easy_strerror(rc));
	}
	cleanup(curl);
	free(s);
	return err;
}

static int known_view(const char *name)
{
	for (size_t i = 0; vms_view_name(i); i++)
		if (!strcmp(vms_view_name(i), name))
			return 1;
	return 0;
}

/* A VM name goes into the URL path: the daemon's own alphabet only. */
static int check_name(const char *name)
{
	if (!*name ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_.") != strlen(name) ||
	    name[0] == '.')
		return cli_fail("remote: \"%s\" is no VM name (letters, digits, \"-_.\")", name);
	return 0;
}

static int read_token(const char *path)
{
	FILE *f = fopen(path, "re");
	char token[4096] = "";

	if (!f)
		return cli_fail("remote: --token-file %s: %m", path);
	if (!fgets(token, sizeof(token), f))
		token[0] = 0;
	fclose(f);
	token[strcspn(token, "\r\n")] = 0;
	if (!token[0])
		return cli_fail("remote: --token-file %s: no token on its first line", path);
	snprintf(bearer, sizeof(bearer), "Authorization: Bearer %s", token);
	return 0;
}

static int run_remote(int argc, char **argv)
{
	const char *address, *what;
	char path[512];
	int err;

	while (argc > 2 && (!strcmp(argv[1], "--token-file") || !strcmp(argv[1], "--cacert"))) {
		if (!strcmp(argv[1], "--cacert")) {
			cacert = argv[2];
		} else if (read_token(argv[2])) {
			return 1;
		}
		argc -= 2;
		argv += 2;
	}
	if (argc < 3)
		return cli_usage(&cmd_remote);
	address = argv[1];
	what = argv[2];
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return cli_fail("remote: cannot start libcurl");
	if (!strcmp(what, "events")) {
		err = events(address, argc - 2, argv + 2);
	} else if (argc == 3 && (!strcmp(what, "vms") || !strcmp(what, "metrics"))) {
		err = get(address, !strcmp(what, "vms") ? "/api/v1/vms" : "/metrics",
			  !strcmp(what, "vms"));
	} else if (argc == 4 && (!strcmp(what, "status") || known_view(what))) {
		err = check_name(argv[3]);
		snprintf(path, sizeof(path), "/api/v1/vms/%s%s%s", argv[3],
			 strcmp(what, "status") ? "/" : "", strcmp(what, "status") ? what : "");
		if (!err)
			err = get(address, path, 1);
	} else {
		err = cli_usage(&cmd_remote);
	}
	curl_global_cleanup();
	return err;
}

const struct cli_command cmd_remote = {
	.name = "remote",
	.usage = "[--token-file FILE] [--cacert FILE] ADDRESS vms | metrics | status NAME | "
		 "VIEW NAME | events [--vm NAME] "
		 "[--type T,...] [--count N] [--duration S]   (VIEW: ps, threads, lsmod, sockets, "
		 "mounts, lsof, dmesg, sysinfo)",
	.summary = "ask vmscoped (its control API at ADDRESS) for its VMs, views and events",
	.run = run_remote,
};
