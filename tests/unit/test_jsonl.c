// SPDX-License-Identifier: MIT
/* The JSON-lines sink, read back with jansson; and draining a ring into it. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vmscope/sink.h>

struct capture {
	char *text;
	size_t len;
	FILE *out;
};

static void capture_open(struct capture *c)
{
	c->text = NULL;
	c->len = 0;
	c->out = open_memstream(&c->text, &c->len);
	assert_non_null(c->out);
}

static void capture_close(struct capture *c)
{
	fclose(c->out);
	free(c->text);
}

/* Parse line number n (0-based) of the captured output. */
static json_t *line_json(struct capture *c, int n)
{
	json_error_t jerr;
	json_t *obj;
	char *line;

	fflush(c->out);
	line = c->text;
	assert_non_null(line);
	for (int i = 0; i < n; i++) {
		line = strchr(line, '\n');
		assert_non_null(line);
		line++;
	}
	assert_non_null(strchr(line, '\n'));
	obj = json_loadb(line, (size_t)(strchr(line, '\n') - line), 0, &jerr);
	if (!obj)
		fail_msg("not JSON: %s", jerr.text);
	return obj;
}

static void test_event_becomes_one_json_object(void **state)
{
	struct vms_sink *sink;
	struct vms_event ev;
	struct capture c;
	json_t *obj;

	(void)state;
	capture_open(&c);
	assert_int_equal(vms_sink_jsonl_new(c.out, &sink), 0);
	vms_event_init(&ev, "db-7", VMS_SOURCE_DISK, "rename");
	ev.time_ns = 1700000000123456789ull;
	vms_event_add_str(&ev, "path", "/data/new \"name\"\n");
	vms_event_add_int(&ev, "uid", -5);
	vms_event_add_uint(&ev, "big", UINT64_MAX);
	vms_event_add_bool(&ev, "dir", 0);
	vms_event_add_double(&ev, "ratio", 1.5);
	assert_int_equal(vms_sink_write(sink, &ev), 0);
	assert_int_equal(vms_sink_flush(sink), 0);

	obj = line_json(&c, 0);
	assert_string_equal(json_string_value(json_object_get(obj, "time")),
			    "2023-11-14T22:13:20.123456789Z");
	assert_int_equal(json_integer_value(json_object_get(obj, "time_ns")),
			 1700000000123456789ll);
	assert_string_equal(json_string_value(json_object_get(obj, "vm")), "db-7");
	assert_string_equal(json_string_value(json_object_get(obj, "source")), "disk");
	assert_string_equal(json_string_value(json_object_get(obj, "type")), "rename");
	assert_string_equal(json_string_value(json_object_get(obj, "path")),
			    "/data/new \"name\"\n");
	assert_int_equal(json_integer_value(json_object_get(obj, "uid")), -5);
	assert_string_equal(json_string_value(json_object_get(obj, "big")), "18446744073709551615");
	assert_true(json_is_false(json_object_get(obj, "dir")));
	assert_true(json_real_value(json_object_get(obj, "ratio")) == 1.5);
	json_decref(obj);
	vms_sink_free(sink);
	capture_close(&c);
}

/* Guest bytes that are not UTF-8 (or hold NULs) still make valid JSON. */
static void test_hostile_bytes_become_valid_json(void **state)
{
	static const char comm[] = "ev\xff\xfeil\0x\xc0\xaf\xed\xa0\x80ok\xe2\x82";
	struct vms_sink *sink;
	struct vms_event ev;
	struct capture c;
	json_t *obj;

	(void)state;
	capture_open(&c);
	assert_int_equal(vms_sink_jsonl_new(c.out, &sink), 0);
	vms_event_init(&ev, "vm\xff", VMS_SOURCE_INTROSPECT, "process");
	vms_event_add_strn(&ev, "comm", comm, sizeof(comm) - 1);
	assert_int_equal(vms_sink_write(sink, &ev), 0);
	obj = line_json(&c, 0);
	assert_string_equal(json_string_value(json_object_get(obj, "comm")),
			    "ev\xef\xbf\xbd\xef\xbf\xbdil\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbd"
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdok\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(json_string_value(json_object_get(obj, "vm")), "vm\xef\xbf\xbd");
	json_decref(obj);
	vms_sink_free(sink);
	capture_close(&c);
}

static void test_drain_moves_ring_to_sink_in_order(void **state)
{
	struct vms_ring *ring;
	struct vms_sink *sink;
	struct vms_event ev;
	struct capture c;
	size_t moved;

	(void)state;
	capture_open(&c);
	assert_int_equal(vms_ring_new(8, &ring), 0);
	assert_int_equal(vms_sink_jsonl_new(c.out, &sink), 0);
	for (int i = 0; i < 5; i++) {
		vms_event_init(&ev, "vm", VMS_SOURCE_POLL, "tick");
		vms_event_add_int(&ev, "n", i);
		assert_int_equal(vms_ring_push(ring, &ev), 0);
	}
	assert_int_equal(vms_sink_drain(sink, ring, 2, &moved), 0);
	assert_int_equal(moved, 2);
	assert_int_equal(vms_sink_drain(sink, ring, 0, &moved), 0);
	assert_int_equal(moved, 3);
	assert_null(vms_ring_peek(ring));
	for (int i = 0; i < 5; i++) {
		json_t *obj = line_json(&c, i);

		assert_int_equal(json_integer_value(json_object_get(obj, "n")), i);
		json_decref(obj);
	}
	vms_sink_free(sink);
	vms_ring_free(ring);
	capture_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_becomes_one_json_object),
		cmocka_unit_test(test_hostile_bytes_become_valid_json),
		cmocka_unit_test(test_drain_moves_ring_to_sink_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
