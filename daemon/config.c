// SPDX-License-Identifier: MIT
/*
 * The daemon's configuration: an INI file read by libinih, for the
 * settings system administrators keep in /etc, under flags for the common
 * cases. Section [daemon]: qmp-dir, libvirt (a URI; one line each, up to
 * DAEMON_LIBVIRT_MAX), listen, interval (seconds), timeout (milliseconds). An unknown section or
 * key is an error, not a silent typo.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

struct parse {
	struct daemon_config *c;
	char why[256];
};

static int number(const char *text, double min, double max, double *ret)
{
	char *end;
	double v = strtod(text, &end);

	if (end == text || *end || !(v >= min && v <= max))
		return -1;
	*ret = v;
	return 0;
}

static int copy(char *dst, size_t len, const char *value)
{
	if (strlen(value) >= len)
		return -1;
	memcpy(dst, value, strlen(value) + 1);
	return 0;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	struct daemon_config *c = p->c;
	double v;
	int bad = 0;

	if (strcmp(section, "daemon"))
		bad = snprintf(p->why, sizeof(p->why), "unknown section [%s]", section);
	else if (!strcmp(key, "qmp-dir"))
		bad = copy(c->qmp_dir, sizeof(c->qmp_dir), value)
			      ? snprintf(p->why, sizeof(p->why), "qmp-dir is too long")
			      : 0;
	else if (!strcmp(key, "libvirt"))
		bad = daemon_config_add_libvirt(c, value, p->why, sizeof(p->why));
	else if (!strcmp(key, "listen"))
		bad = copy(c->listen, sizeof(c->listen), value)
			      ? snprintf(p->why, sizeof(p->why), "listen is too long")
			      : 0;
	else if (!strcmp(key, "interval") && !number(value, 0.05, 3600, &v))
		c->interval_s = v;
	else if (!strcmp(key, "timeout") && !number(value, 10, 600000, &v))
		c->timeout_ms = (int)v;
	else if (!strcmp(key, "interval") || !strcmp(key, "timeout"))
		bad = snprintf(p->why, sizeof(p->why), "%s = %s: %s", key, value,
			       !strcmp(key, "interval") ? "seconds from 0.05 to 3600"
							: "milliseconds from 10 to 600000");
	else
		bad = snprintf(p->why, sizeof(p->why), "unknown key %s in [daemon]", key);
	return !bad; /* inih: 0 stops at the first error */
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
	if (copy(c->libvirt[c->nr_libvirt], sizeof(c->libvirt[0]), uri))
		return snprintf(why, why_len, "libvirt: the URI is too long");
	c->nr_libvirt++;
	return 0;
}

int daemon_config_load(struct daemon_config *c, const char *path, char *why, size_t why_len)
{
	struct parse p = { c, "" };
	int r;

	memset(c, 0, sizeof(*c));
	c->interval_s = 1;
	c->timeout_ms = 2000;
	if (!path)
		return 0;
	r = ini_parse(path, on_key, &p);
	if (r == -1)
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
	else if (r == -2)
		snprintf(why, why_len, "%s: out of memory", path);
	else if (r)
		snprintf(why, why_len, "%s: line %d: %s", path, r, p.why[0] ? p.why : "not INI");
	return r ? -1 : 0;
}

int daemon_config_check(const struct daemon_config *c, char *why, size_t why_len)
{
	if (!c->qmp_dir[0] && !c->nr_libvirt) {
		snprintf(why, why_len,
			 "no source of VMs: give --qmp-dir DIR or --libvirt URI "
			 "(or qmp-dir = DIR, libvirt = URI)");
		return -1;
	}
	if (!c->listen[0]) {
		snprintf(why, why_len, "nowhere to answer: give --listen unix:PATH or HOST:PORT");
		return -1;
	}
	return 0;
}
