// SPDX-License-Identifier: MIT
/*
 * The daemon's configuration: an INI file read by libinih, for the
 * settings system administrators keep in /etc, under flags for the common
 * cases. [daemon] holds the daemon's own keys; [defaults] what is done
 * with every VM; each [vm PATTERN] overrides those for the VMs whose
 * names match the glob, later sections over earlier ones, and with a
 * target key lists a VM itself. Each key is a row of a table (its field
 * and its parser); an unknown section or key is an error, not a silent
 * typo.
 */
#include <errno.h>
#include <fnmatch.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmscope/disk.h>
#include <vmscope/trace.h>

#include "daemon.h"

#define WHY_MAX 256
/* libinih's own limits (ini.c, as Debian builds it): longer is cut, silently. */
#define INI_SECTION_MAX 50
#define TOKEN_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

typedef int (*parse_fn)(void *field, size_t size, const char *value, char *why);

struct key {
	const char *name;
	size_t offset, size; /* of the field, in struct daemon_config or struct daemon_vmconf */
	parse_fn parse;
};

/* -1, with the reason (fmt's one %s is value) in why. */
#define bad(why, fmt, value) (snprintf(why, WHY_MAX, fmt, value), -1)

static int number(const char *text, double min, double max, double *ret)
{
	char *end;
	double v = strtod(text, &end);

	if (end == text || *end || !(v >= min && v <= max))
		return -1;
	*ret = v;
	return 0;
}

static int parse_string(void *field, size_t size, const char *value, char *why)
{
	if (strlen(value) >= size)
		return bad(why, "%s: too long", value);
	memcpy(field, value, strlen(value) + 1);
	return 0;
}

static int parse_dir(void *field, size_t size, const char *value, char *why)
{
	if (value[0] != '/')
		return bad(why, "%s: an absolute path, please", value);
	return parse_string(field, size, value, why);
}

static int parse_interval(void *field, size_t size, const char *value, char *why)
{
	(void)size;
	if (number(value, 0.05, 3600, field))
		return bad(why, "%s: seconds from 0.05 to 3600", value);
	return 0;
}

static int parse_timeout(void *field, size_t size, const char *value, char *why)
{
	double v;

	(void)size;
	if (number(value, 10, 600000, &v))
		return bad(why, "%s: milliseconds from 10 to 600000", value);
	*(int *)field = (int)v;
	return 0;
}

static int parse_libvirt(void *field, size_t size, const char *value, char *why)
{
	(void)size;
	return daemon_config_add_libvirt(field, value, why, WHY_MAX) ? -1 : 0;
}

/* 4096, 64K, 16M, 2G (powers of 1024); whole bytes. */
static int size_of(const char *text, uint64_t *ret)
{
	static const char units[] = "KMGT";
	char *end;
	double v = strtod(text, &end);
	const char *u = *end ? strchr(units, *end) : NULL;

	if (end == text || !(v >= 0) || (*end && (!u || end[1])))
		return -1;
	for (int i = 0; u && i <= u - units; i++)
		v *= 1024;
	if (v >= 18e18)
		return -1;
	*ret = (uint64_t)v;
	return 0;
}

static int parse_size(void *field, size_t size, const char *value, char *why)
{
	(void)size;
	if (size_of(value, field))
		return bad(why, "%s: a size such as 512M or 2G", value);
	return 0;
}

static int parse_age(void *field, size_t size, const char *value, char *why)
{
	double v;

	(void)size;
	if (number(value, 0, 1e10, &v))
		return bad(why, "%s: seconds", value);
	*(uint64_t *)field = (uint64_t)v;
	return 0;
}

static int parse_bool(void *field, size_t size, const char *value, char *why)
{
	(void)size;
	if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "on"))
		*(int *)field = 1;
	else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "off"))
		*(int *)field = 0;
	else
		return bad(why, "%s: yes or no", value);
	return 0;
}

/* Words separated by blanks or commas: each() for each; "none" alone is no word. */
static int words(const char *value, int (*each)(void *field, const char *word, size_t n),
		 void *field)
{
	const char *p = value;

	if (!strcmp(value, "none"))
		return 0;
	while (*p) {
		size_t n = strcspn(p, " \t,");

		if (n && each(field, p, n))
			return -1;
		p += n;
		p += strspn(p, " \t,");
	}
	return 0;
}

static int one_view(void *field, const char *word, size_t n)
{
	static const char *const names[] = { "processes", "modules", "sockets" };

	for (unsigned int i = 0; i < 3; i++)
		if (strlen(names[i]) == n && !strncmp(word, names[i], n)) {
			*(unsigned int *)field |= 1u << i; /* VMS_POLL_PROCESSES, ... in order */
			return 0;
		}
	return -1;
}

static int parse_views(void *field, size_t size, const char *value, char *why)
{
	(void)size;
	*(unsigned int *)field = 0;
	if (words(value, one_view, field))
		return bad(why, "%s: processes, modules, sockets (any of them), or none", value);
	return 0;
}

static int parse_view_interval(void *field, size_t size, const char *value, char *why)
{
	(void)size;
	if (number(value, 0.1, 3600, field))
		return bad(why, "%s: seconds from 0.1 to 3600", value);
	return 0;
}

static int one_probe(void *field, const char *word, size_t n)
{
	char name[32];
	int probe;

	if (n >= sizeof(name))
		return -1;
	memcpy(name, word, n);
	name[n] = 0;
	if (!strcmp(name, "default")) {
		*(unsigned int *)field |= VMS_PROBES_DEFAULT;
		return 0;
	}
	probe = vms_probe_by_name(name);
	if (probe < 0)
		return -1;
	*(unsigned int *)field |= 1u << probe;
	return 0;
}

static int parse_trace(void *field, size_t size, const char *value, char *why)
{
	(void)size;
	*(unsigned int *)field = 0;
	if (words(value, one_probe, field))
		return bad(why,
			   "%s: default, or probes among exec fork exit module_load "
			   "module_unload open connect accept, or none",
			   value);
	return 0;
}

static int one_disk(void *field, const char *word, size_t n)
{
	struct daemon_disks *d = field;

	if (d->nr == DAEMON_DISKS_MAX || n >= DAEMON_NODE_MAX)
		return -1;
	memcpy(d->node[d->nr], word, n);
	d->node[d->nr++][n] = 0;
	return 0;
}

static int parse_disks(void *field, size_t size, const char *value, char *why)
{
	(void)size;
	memset(field, 0, sizeof(struct daemon_disks));
	if (words(value, one_disk, field)) {
		snprintf(why, WHY_MAX,
			 "%s: up to %d block node names (each under %d bytes), or none", value,
			 DAEMON_DISKS_MAX, DAEMON_NODE_MAX);
		return -1;
	}
	return 0;
}

static int parse_mode(void *field, size_t size, const char *value, char *why)
{
	enum vms_capture_mode mode;

	(void)size;
	if (vms_capture_mode_parse(value, &mode))
		return bad(why, "%s: bitmap, blocking or background", value);
	*(int *)field = (int)mode;
	return 0;
}

/* One glob a line: the lines of one section make its list (see on_vm_key). */
static int parse_glob(void *field, size_t size, const char *value, char *why)
{
	struct daemon_globs *g = field;

	(void)size;
	if (g->nr == DAEMON_GLOBS_MAX)
		return bad(why, "%s: more than 16 fswatch-path lines", value);
	if (!*value || strlen(value) >= DAEMON_GLOB_MAX)
		return bad(why, "%s: a glob of 1 to 255 bytes", value);
	memcpy(g->glob[g->nr++], value, strlen(value) + 1);
	return 0;
}

static int parse_memory(void *field, size_t size, const char *value, char *why)
{
	uint64_t v;

	(void)size;
	if (size_of(value, &v) || v < (4u << 20) || v > (4ull << 30))
		return bad(why, "%s: a size from 4M to 4G", value);
	*(uint64_t *)field = v;
	return 0;
}

/* A NATS subject token and a label value: letters, digits, "-" and "_". */
static int parse_token(void *field, size_t size, const char *value, char *why)
{
	if (!*value || strspn(value, TOKEN_CHARS) != strlen(value) || strlen(value) >= size)
		return bad(why, "%s: letters, digits, \"-\" and \"_\" only", value);
	memcpy(field, value, strlen(value) + 1);
	return 0;
}

static int parse_nats(void *field, size_t size, const char *value, char *why)
{
	if (strncmp(value, "nats://", 7))
		return bad(why, "%s: nats://HOST:PORT, or several, comma-separated", value);
	return parse_string(field, size, value, why);
}

static int parse_redis(void *field, size_t size, const char *value, char *why)
{
	if (strncmp(value, "redis://", 8) || !strchr(value + 8, '/'))
		return bad(why, "%s: redis://HOST:PORT/STREAM", value);
	return parse_string(field, size, value, why);
}

static int parse_replicas(void *field, size_t size, const char *value, char *why)
{
	double v;

	(void)size;
	if (number(value, 1, 5, &v) || v != (int)v)
		return bad(why, "%s: 1 to 5", value);
	*(int *)field = (int)v;
	return 0;
}

static int parse_backlog(void *field, size_t size, const char *value, char *why)
{
	double v;

	(void)size;
	if (number(value, 1, 10000000, &v) || v != (size_t)v)
		return bad(why, "%s: events, 1 to 10000000", value);
	*(size_t *)field = (size_t)v;
	return 0;
}

#define DKEY(name, field, parse)                                                                   \
	{                                                                                          \
		name, offsetof(struct daemon_config, field),                                       \
			sizeof(((struct daemon_config *)0)->field), parse                          \
	}
#define VKEY(name, field, parse)                                                                   \
	{                                                                                          \
		name, offsetof(struct daemon_vmconf, field),                                       \
			sizeof(((struct daemon_vmconf *)0)->field), parse                          \
	}

static const struct key daemon_keys[] = {
	DKEY("qmp-dir", qmp_dir, parse_string),
	{ "libvirt", 0, sizeof(struct daemon_config), parse_libvirt }, /* the whole config */
	DKEY("listen", listen, parse_string),
	DKEY("interval", interval_s, parse_interval),
	DKEY("timeout", timeout_ms, parse_timeout),
	DKEY("log-dir", log_dir, parse_dir),
	DKEY("log-max-size", log_max_bytes, parse_size),
	DKEY("log-max-age", log_max_age_s, parse_age),
	DKEY("host", host, parse_token),
	DKEY("nats", nats, parse_nats),
	DKEY("nats-stream", nats_stream, parse_token),
	DKEY("nats-replicas", nats_replicas, parse_replicas),
	DKEY("redis", redis, parse_redis),
	DKEY("backlog", backlog_events, parse_backlog),
	DKEY("tls-cert", tls_cert, parse_dir),
	DKEY("tls-key", tls_key, parse_dir),
	DKEY("token-file", token_file, parse_dir),
};

/* The order is the bit in struct daemon_section's set. */
static const struct key vm_keys[] = {
	VKEY("metrics", metrics, parse_bool),
	VKEY("views", views, parse_views),
	VKEY("view-interval", view_interval_s, parse_view_interval),
	VKEY("trace", trace, parse_trace),
	VKEY("fswatch", fswatch, parse_disks),
	VKEY("fswatch-mode", fswatch_mode, parse_mode),
	VKEY("fswatch-path", fswatch_paths, parse_glob),
	VKEY("log", log, parse_bool),
	VKEY("memory", memory, parse_memory),
};

#define NR(a) (sizeof(a) / sizeof((a)[0]))

static const struct key *find_key(const struct key *keys, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

struct parse {
	struct daemon_config *c;
	FILE *f;
	int line, long_line; /* the first line longer than libinih reads whole */
	char why[WHY_MAX];
	int fresh; /* the key opens a section: inih says nothing else of sections */
	char section[DAEMON_NAME_MAX + 8];
	int cap; /* of c->sections */
};

static int key_value(void *base, const struct key *k, const char *value, char *why)
{
	char sub[WHY_MAX];

	if (!k->parse((char *)base + k->offset, k->size, value, sub))
		return 0;
	snprintf(why, WHY_MAX, "%s = %.*s", k->name, (int)(WHY_MAX - 16 - strlen(k->name)), sub);
	return -1;
}

/* "[vm PATTERN]": a new section each time one opens, the open one's for its other keys. */
static struct daemon_section *vm_section(struct parse *p, const char *section)
{
	struct daemon_config *c = p->c;
	const char *pattern = section + 3;
	struct daemon_section *s;

	if (!p->fresh)
		return &c->sections[c->nr_sections - 1];
	if (!*pattern || strlen(pattern) >= DAEMON_NAME_MAX) {
		snprintf(p->why, sizeof(p->why), "[vm NAME]: a name or glob of 1 to %d bytes",
			 DAEMON_NAME_MAX - 1);
		return NULL;
	}
	if (c->nr_sections == DAEMON_SECTIONS_MAX) {
		snprintf(p->why, sizeof(p->why), "more than %d [vm] sections", DAEMON_SECTIONS_MAX);
		return NULL;
	}
	if (c->nr_sections == p->cap) {
		int cap = p->cap ? 2 * p->cap : 8;

		s = realloc(c->sections, (size_t)cap * sizeof(*s));
		if (!s) {
			snprintf(p->why, sizeof(p->why), "out of memory");
			return NULL;
		}
		c->sections = s;
		p->cap = cap;
	}
	s = &c->sections[c->nr_sections++];
	memset(s, 0, sizeof(*s));
	snprintf(s->pattern, sizeof(s->pattern), "%s", pattern);
	return s;
}

static int section_target(struct daemon_section *s, const char *value, char *why)
{
	if (strpbrk(s->pattern, "*?[") || daemon_name_check(s->pattern, strlen(s->pattern)))
		return bad(why,
			   "target: only in a [vm NAME] section whose NAME is a VM's "
			   "(letters, digits, \"-_.\"), not a glob (%s)",
			   s->pattern);
	if (strncmp(value, "qmp:", 4) && strncmp(value, "libvirt:", 8))
		return bad(why, "target = %s: qmp:SOCKET or libvirt:DOMAIN", value);
	if (strlen(value) >= sizeof(s->target))
		return bad(why, "target = %s: too long", value);
	memcpy(s->target, value, strlen(value) + 1);
	return 0;
}

static int on_vm_key(struct parse *p, const char *section, const char *key, const char *value)
{
	const struct key *k = find_key(vm_keys, NR(vm_keys), key);
	struct daemon_section *s = NULL;
	struct daemon_vmconf *v = &p->c->defaults;

	if (strcmp(section, "defaults")) {
		s = vm_section(p, section);
		if (!s)
			return -1;
		v = &s->v;
		if (!strcmp(key, "target"))
			return section_target(s, value, p->why);
	}
	if (!k)
		return bad(p->why, "unknown key %s", key);
	if (key_value(v, k, value, p->why))
		return -1;
	if (s)
		s->set |= 1u << (k - vm_keys);
	return 0;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	const struct key *k;
	int err;

	/* libinih reads on after an error: the first one stands, nothing more is applied */
	if (p->why[0])
		return 0;
	if (strlen(section) >= INI_SECTION_MAX - 1) {
		snprintf(p->why, sizeof(p->why),
			 "[%.20s...]: a section name of %d characters at most (libinih cuts longer "
			 "ones)",
			 section, INI_SECTION_MAX - 2);
		return 0;
	}
	p->fresh = strncmp(p->section, section, sizeof(p->section)) != 0;
	if (p->fresh) {
		size_t n = strnlen(section, sizeof(p->section) - 1);

		memcpy(p->section, section, n);
		p->section[n] = 0;
	}
	if (!strcmp(section, "daemon")) {
		k = find_key(daemon_keys, NR(daemon_keys), key);
		err = k ? key_value(p->c, k, value, p->why)
			: bad(p->why, "unknown key %s in [daemon]", key);
	} else if (!strcmp(section, "defaults") || !strncmp(section, "vm ", 3)) {
		err = on_vm_key(p, section, key, value);
	} else {
		err = bad(p->why, "unknown section [%s]: [daemon], [defaults] or [vm NAME]",
			  section);
	}
	return !err; /* inih: 0 stops at the first error */
}

int daemon_config_add_libvirt(struct daemon_config *c, const char *uri, char *why, size_t why_len)
{
	if (!*uri)
		return snprintf(why, why_len, "libvirt: an empty URI");
	for (int i = 0; i < c->nr_libvirt; i++)
		if (!strcmp(c->libvirt[i], uri))
			return snprintf(why, why_len, "libvirt %s: given twice", uri);
	if (c->nr_libvirt == DAEMON_LIBVIRT_MAX)
		return snprintf(why, why_len, "more than %d libvirt URIs", DAEMON_LIBVIRT_MAX);
	if (strlen(uri) >= sizeof(c->libvirt[0]))
		return snprintf(why, why_len, "libvirt: the URI is too long");
	memcpy(c->libvirt[c->nr_libvirt++], uri, strlen(uri) + 1);
	return 0;
}

/* fgets for libinih, noting a line it would cut (INI_MAX_LINE) rather than misread it. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	char *s = fgets(str, num, p->f);
	size_t n = s ? strlen(s) : 0;

	if (!s)
		return NULL;
	p->line++;
	if (n == (size_t)num - 1 && s[n - 1] != '\n' && !feof(p->f) && !p->long_line)
		p->long_line = p->line;
	return s;
}

int daemon_config_load(struct daemon_config *c, const char *path, char *why, size_t why_len)
{
	struct parse p = { .c = c };
	int r;

	memset(c, 0, sizeof(*c));
	c->interval_s = 1;
	c->timeout_ms = 2000;
	c->nats_replicas = 1;
	c->backlog_events = 10000;
	if (gethostname(c->host, sizeof(c->host) - 1) || !c->host[0])
		snprintf(c->host, sizeof(c->host), "localhost");
	for (char *h = c->host; *h; h++) /* a subject token, a label value */
		if (!strchr(TOKEN_CHARS, *h))
			*h = '_';
	c->defaults = (struct daemon_vmconf){
		.metrics = 1,
		.view_interval_s = 5,
		.fswatch_mode = VMS_CAPTURE_BITMAP, /* the guest never waits for the daemon */
		.log = 1,
		.memory = 16u << 20,
	};
	if (!path)
		return 0;
	p.f = fopen(path, "re");
	r = p.f ? ini_parse_stream(read_line, &p, on_key, &p) : -1;
	if (p.f)
		fclose(p.f);
	if (p.long_line && (!r || r > p.long_line)) {
		r = p.long_line;
		snprintf(p.why, sizeof(p.why), "longer than %d characters (libinih's limit)",
			 INI_MAX_LINE - 2);
	}
	if (r == -1)
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
	else if (r == -2)
		snprintf(why, why_len, "%s: out of memory", path);
	else if (r)
		snprintf(why, why_len, "%s: line %d: %s", path, r, p.why[0] ? p.why : "not INI");
	if (r)
		daemon_config_release(c);
	return r ? -1 : 0;
}

void daemon_config_release(struct daemon_config *c)
{
	free(c->sections);
	c->sections = NULL;
	c->nr_sections = 0;
}

int daemon_config_copy_vms(struct daemon_config *dst, const struct daemon_config *src)
{
	struct daemon_section *s = NULL;

	if (src->nr_sections) {
		s = malloc((size_t)src->nr_sections * sizeof(*s));
		if (!s)
			return -ENOMEM;
		memcpy(s, src->sections, (size_t)src->nr_sections * sizeof(*s));
	}
	daemon_config_release(dst);
	dst->defaults = src->defaults;
	dst->sections = s;
	dst->nr_sections = src->nr_sections;
	return 0;
}

void daemon_vmconf_resolve(const struct daemon_config *c, const char *name,
			   struct daemon_vmconf *ret)
{
	*ret = c->defaults;
	for (int i = 0; i < c->nr_sections; i++) {
		const struct daemon_section *s = &c->sections[i];

		if (fnmatch(s->pattern, name, 0))
			continue;
		for (size_t k = 0; k < NR(vm_keys); k++)
			if (s->set & (1u << k))
				memcpy((char *)ret + vm_keys[k].offset,
				       (const char *)&s->v + vm_keys[k].offset, vm_keys[k].size);
	}
}

static int check_vmconf(const struct daemon_config *c, const struct daemon_vmconf *v,
			const char *where, int log_set, char *why, size_t why_len)
{
	if (v->log && log_set && !c->log_dir[0]) {
		snprintf(why, why_len, "%s: log = yes, but [daemon] has no log-dir", where);
		return -1;
	}
	return 0;
}

int daemon_config_check(const struct daemon_config *c, char *why, size_t why_len)
{
	unsigned int log_bit = 1u << (find_key(vm_keys, NR(vm_keys), "log") - vm_keys);
	int listed = 0;

	for (int i = 0; i < c->nr_sections; i++) {
		const struct daemon_section *s = &c->sections[i];
		char where[DAEMON_NAME_MAX + 8];

		snprintf(where, sizeof(where), "[vm %s]", s->pattern);
		listed |= !!s->target[0];
		if (check_vmconf(c, &s->v, where, !!(s->set & log_bit), why, why_len))
			return -1;
	}
	if (check_vmconf(c, &c->defaults, "[defaults]", 0, why, why_len))
		return -1;
	if (!c->qmp_dir[0] && !c->nr_libvirt && !listed) {
		snprintf(why, why_len,
			 "no source of VMs: give --qmp-dir DIR or --libvirt URI "
			 "(or qmp-dir = DIR, libvirt = URI, or a [vm NAME] with a target)");
		return -1;
	}
	if (!c->listen[0]) {
		snprintf(why, why_len, "nowhere to answer: give --listen unix:PATH or HOST:PORT");
		return -1;
	}
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		snprintf(why, why_len, "TLS needs both tls-cert and tls-key");
		return -1;
	}
	if (c->tls_cert[0] && !strncmp(c->listen, "unix:", 5)) {
		snprintf(why, why_len, "tls-cert: TLS is for TCP listeners, not unix:PATH");
		return -1;
	}
	return 0;
}
