// SPDX-License-Identifier: MIT
/* Building events: typed attributes, reserved keys, and running out of room. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <vmscope/event.h>

static void test_attributes_round_trip(void **state)
{
	struct vms_event ev, copy;
	const struct vms_attr *a;

	(void)state;
	vms_event_init(&ev, "web-1", VMS_SOURCE_DISK, "create");
	assert_true(ev.time_ns > 1600000000ull * 1000000000ull);
	assert_int_equal(vms_event_add_str(&ev, "path", "/etc/passwd"), 0);
	assert_int_equal(vms_event_add_int(&ev, "uid", -1), 0);
	assert_int_equal(vms_event_add_uint(&ev, "inode", 1ull << 40), 0);
	assert_int_equal(vms_event_add_bool(&ev, "sync", 7), 0);
	assert_int_equal(vms_event_add_double(&ev, "load", 0.25), 0);
	assert_int_equal(vms_event_add_strn(&ev, "raw", "a\0b", 3), 0);

	memset(&copy, 0xa5, sizeof(copy));
	vms_event_copy(&copy, &ev);
	assert_int_equal(copy.nr_attrs, 6);
	assert_string_equal(copy.vm, "web-1");
	assert_string_equal(copy.type, "create");
	a = vms_event_find(&copy, "path");
	assert_non_null(a);
	assert_int_equal(a->type, VMS_ATTR_STR);
	assert_string_equal(copy.arena + a->v.str, "/etc/passwd");
	assert_int_equal(vms_event_find(&copy, "uid")->v.i, -1);
	assert_int_equal(vms_event_find(&copy, "inode")->v.u, 1ull << 40);
	assert_int_equal(vms_event_find(&copy, "sync")->v.b, 1);
	assert_true(vms_event_find(&copy, "load")->v.d == 0.25);
	a = vms_event_find(&copy, "raw");
	assert_int_equal(a->str_len, 3);
	assert_memory_equal(copy.arena + a->v.str, "a\0b", 3);
	assert_null(vms_event_find(&copy, "missing"));
	assert_true(vms_event_size(&ev) < sizeof(ev));
}

static void test_reserved_and_empty_keys_refused(void **state)
{
	struct vms_event ev;

	(void)state;
	vms_event_init(&ev, "vm", VMS_SOURCE_TRACE, "exit");
	assert_int_equal(vms_event_add_int(&ev, "type", 1), -EINVAL);
	assert_int_equal(vms_event_add_str(&ev, "time", "x"), -EINVAL);
	assert_int_equal(vms_event_add_int(&ev, "", 1), -EINVAL);
	assert_int_equal(vms_event_add_int(&ev, NULL, 1), -EINVAL);
	assert_int_equal(ev.nr_attrs, 0);
}

static void test_full_event_refuses_whole_attributes(void **state)
{
	static char big[VMS_EVENT_ARENA_BYTES];
	struct vms_event ev;
	char key[16];
	uint32_t used;

	(void)state;
	vms_event_init(&ev, "vm", VMS_SOURCE_TRACE, "exec");
	for (int i = 0; i < VMS_EVENT_MAX_ATTRS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(vms_event_add_int(&ev, key, i), 0);
	}
	assert_int_equal(vms_event_add_int(&ev, "one_more", 1), -ENOSPC);
	assert_int_equal(ev.nr_attrs, VMS_EVENT_MAX_ATTRS);

	vms_event_init(&ev, "vm", VMS_SOURCE_TRACE, "exec");
	memset(big, 'x', sizeof(big));
	assert_int_equal(vms_event_add_strn(&ev, "argv", big, sizeof(big)), -ENOSPC);
	assert_int_equal(vms_event_add_strn(&ev, "argv", big, 4000), 0);
	used = ev.arena_used;
	assert_int_equal(vms_event_add_strn(&ev, "more", big, 4000), -ENOSPC);
	assert_int_equal(ev.arena_used, used);
	assert_int_equal(ev.nr_attrs, 1);
}

static void test_long_names_are_cut_not_overflowed(void **state)
{
	char long_name[300];
	struct vms_event ev;

	(void)state;
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	vms_event_init(&ev, long_name, 42, long_name);
	assert_int_equal(strlen(ev.vm), VMS_EVENT_VM_MAX - 1);
	assert_int_equal(strlen(ev.type), VMS_EVENT_TYPE_MAX - 1);
	assert_string_equal(vms_event_source_name(ev.source), "unknown");
	assert_string_equal(vms_event_source_name(VMS_SOURCE_DISK), "disk");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attributes_round_trip),
		cmocka_unit_test(test_reserved_and_empty_keys_refused),
		cmocka_unit_test(test_full_event_refuses_whole_attributes),
		cmocka_unit_test(test_long_names_are_cut_not_overflowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
