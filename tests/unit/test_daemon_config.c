// SPDX-License-Identifier: MIT
/*
 * vmscoped's configuration file: [defaults] and [vm PATTERN] sections
 * resolved for a VM in the order of the file, list keys replaced rather
 * than merged, sizes and probes parsed, and each bad line refused with its
 * number and cause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <vmscope/disk.h>
#include <vmscope/trace.h>

#include "daemon.h"

static char path[64];

static int load(const char *text, struct daemon_config *c, char *why, size_t len)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/vmscoped-config-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	fd = daemon_config_load(c, path, why, len);
	unlink(path);
	return fd;
}

static void test_resolve_order(void **state)
{
	struct daemon_config c;
	struct daemon_vmconf v;
	char why[512] = "";

	(void)state;
	assert_int_equal(load("[daemon]\nqmp-dir = /run/vms\nlisten = unix:/run/c.sock\n"
			      "[defaults]\nviews = processes, sockets\nview-interval = 2\n"
			      "fswatch-path = /etc/*\n"
			      "[vm web-*]\ntrace = default\nfswatch = disk0 disk1\n"
			      "fswatch-path = /srv/*\nfswatch-path = /var/www/*\n"
			      "[vm web-2]\nviews = none\nmemory = 64M\ntrace = exec open\n"
			      "fswatch-mode = blocking\n",
			      &c, why, sizeof(why)),
			 0);
	assert_int_equal(daemon_config_check(&c, why, sizeof(why)), 0);
	assert_int_equal(c.nr_sections, 2);

	daemon_vmconf_resolve(&c, "db", &v); /* defaults only */
	assert_int_equal(v.views, VMS_POLL_PROCESSES | VMS_POLL_SOCKETS);
	assert_true(v.view_interval_s == 2);
	assert_int_equal(v.trace, 0);
	assert_int_equal(v.fswatch.nr, 0);
	assert_int_equal(v.fswatch_paths.nr, 1);
	assert_string_equal(v.fswatch_paths.glob[0], "/etc/*");
	assert_int_equal(v.fswatch_mode, VMS_CAPTURE_BITMAP);
	assert_int_equal(v.memory, 16u << 20);
	assert_int_equal(v.metrics, 1);

	daemon_vmconf_resolve(&c, "web-1", &v); /* the glob's section over the defaults */
	assert_int_equal(v.trace, VMS_PROBES_DEFAULT);
	assert_int_equal(v.fswatch.nr, 2);
	assert_string_equal(v.fswatch.node[1], "disk1");
	assert_int_equal(v.fswatch_paths.nr, 2); /* replaced, not added to the defaults' */
	assert_string_equal(v.fswatch_paths.glob[0], "/srv/*");
	assert_string_equal(v.fswatch_paths.glob[1], "/var/www/*");
	assert_int_equal(v.views, VMS_POLL_PROCESSES | VMS_POLL_SOCKETS);

	daemon_vmconf_resolve(&c, "web-2", &v); /* both sections, the later one last */
	assert_int_equal(v.views, 0);
	assert_int_equal(v.memory, 64u << 20);
	assert_int_equal(v.trace, (1u << VMS_PROBE_EXEC) | (1u << VMS_PROBE_OPEN));
	assert_int_equal(v.fswatch.nr, 2);
	assert_int_equal(v.fswatch_mode, VMS_CAPTURE_BLOCKING);
	daemon_config_release(&c);
}

static void test_listed_and_copy(void **state)
{
	struct daemon_config c, copy = { 0 };
	struct daemon_vmconf v;
	char why[512] = "";

	(void)state;
	assert_int_equal(load("[daemon]\nlisten = unix:/run/c.sock\nlog-dir = /var/log/v\n"
			      "log-max-size = 2G\nlog-max-age = 86400\n"
			      "[vm build]\ntarget = qmp:/run/build.qmp\nmetrics = no\nlog = no\n",
			      &c, why, sizeof(why)),
			 0);
	/* a listed VM is a source: no qmp-dir or libvirt needed */
	assert_int_equal(daemon_config_check(&c, why, sizeof(why)), 0);
	assert_string_equal(c.sections[0].target, "qmp:/run/build.qmp");
	assert_int_equal(c.log_max_bytes, 2ull << 30);
	assert_int_equal(c.log_max_age_s, 86400);
	assert_int_equal(c.nats_replicas, 1); /* the defaults */
	assert_int_equal(c.backlog_events, 10000);
	assert_true(c.host[0] &&
		    strspn(c.host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789-_") == strlen(c.host));
	assert_int_equal(daemon_config_copy_vms(&copy, &c), 0);
	daemon_config_release(&c);
	daemon_vmconf_resolve(&copy, "build", &v); /* the copy stands alone */
	assert_int_equal(v.metrics, 0);
	assert_int_equal(v.log, 0);
	daemon_config_release(&copy);
}

static void refused(const char *text, const char *needle)
{
	struct daemon_config c;
	char why[512] = "";
	char full[1024];

	snprintf(full, sizeof(full), "[daemon]\nlisten = unix:/c.sock\nqmp-dir = /q\n%s", text);
	if (!load(full, &c, why, sizeof(why))) {
		int bad = daemon_config_check(&c, why, sizeof(why));

		daemon_config_release(&c);
		assert_int_equal(bad, -1);
	}
	if (!strstr(why, needle))
		fail_msg("%s: want \"%s\" in \"%s\"", text, needle, why);
}

static void test_refusals(void **state)
{
	(void)state;
	refused("[defaults]\nviews = threads\n", "line 5: views = threads");
	refused("[defaults]\nviews = processes,,modules sockets x\n", "views = processes,,modules");
	refused("[defaults]\ntrace = exec bogus\n", "trace = exec bogus");
	refused("[defaults]\ntrace = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"trace =");
	refused("[defaults]\nmemory = 3M\n", "a size from 4M to 4G");
	refused("[defaults]\nmemory = 5X\n", "a size from 4M to 4G");
	refused("[defaults]\nmemory = -8M\n", "a size from 4M to 4G");
	refused("[defaults]\nmemory = 1e30\n", "a size from 4M to 4G");
	refused("[defaults]\nview-interval = 0.01\n", "seconds from 0.1 to 3600");
	refused("[defaults]\nmetrics = maybe\n", "yes or no");
	refused("[defaults]\nfswatch-mode = sometimes\n", "bitmap, blocking or background");
	refused("[defaults]\ntarget = qmp:/x\n", "unknown key target");
	refused("[vm a*]\ntarget = qmp:/x\n", "not a glob");
	refused("[vm .hidden]\ntarget = qmp:/x\n", "not a glob");
	refused("[vm a]\ntarget = dump:/x\n", "qmp:SOCKET or libvirt:DOMAIN");
	refused("[vm a]\nlog = yes\n", "[vm a]: log = yes, but [daemon] has no log-dir");
	refused("[vm ]\nviews = none\n", "[vm NAME]: a name or glob of 1 to");
	refused("[vms x]\nviews = none\n", "unknown section [vms x]");
	/* after an error nothing more is applied (libinih reads on): no crash, the first reason */
	refused("[vm ]\nviews = none\nlog = no\nmetrics = no\n", "line 5: [vm NAME]");
	refused("[vm aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\nviews = "
		"none\n",
		"a section name of 48 characters at most");
	refused("[defaults]\nfswatch-path = "
		"/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"x"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
		"line 5: longer than 198 characters");
	refused("[daemon]\nlog-max-size = lots\n", "log-max-size = lots");
	refused("[daemon]\nlog-dir = relative\n", "an absolute path");
	refused("[vm x]\ncolour = blue\n", "line 5: unknown key colour");
	refused("[defaults]\nfswatch-path = \n", "fswatch-path");
	refused("[daemon]\nhost = rack.4\n", "host = rack.4: letters, digits");
	refused("[daemon]\nhost = a\"b\n", "host = a\"b: letters, digits");
	refused("[daemon]\nnats = 10.0.0.1:4222\n", "nats = 10.0.0.1:4222: nats://HOST:PORT");
	refused("[daemon]\nnats-replicas = 7\n", "nats-replicas = 7: 1 to 5");
	refused("[daemon]\nnats-replicas = 2.5\n", "nats-replicas = 2.5: 1 to 5");
	refused("[daemon]\nredis = redis://h:6379\n", "redis://HOST:PORT/STREAM");
	refused("[daemon]\nbacklog = 0\n", "backlog = 0: events");
}

/* More sections than fit: refused once, not grown without bound. */
static void test_many_sections(void **state)
{
	size_t len = 64 + (DAEMON_SECTIONS_MAX + 1) * 32;
	char *text = malloc(len), why[512] = "";
	struct daemon_config c;
	size_t used;

	(void)state;
	used = (size_t)snprintf(text, len, "[daemon]\nlisten = unix:/c.sock\n");
	for (int i = 0; i <= DAEMON_SECTIONS_MAX; i++)
		used += (size_t)snprintf(text + used, len - used, "[vm v%d]\nviews = none\n", i);
	assert_int_equal(load(text, &c, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "more than 1024 [vm] sections"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_order),
		cmocka_unit_test(test_listed_and_copy),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_many_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
