//  lynx_msgpack: lynx_value <-> msgpack. Storage values round-trip exactly; the pieces the
//  envelope codec uses (array header, one value at an offset, the writer) behave as documented.
//  Malformed input as a whole is covered by lynx_msg_test (tests/data/frames and its fuzz).
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lynx_json.h"
#include "lynx_msgpack.h"

static lynx_value_t *s_parse(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    if (!value)
        fail_msg("bad fixture %s: %s", text, err.message);
    return value;
}

//  Same JSON text: same types (1 and 1.0 differ), same order.
static void s_assert_same(const lynx_value_t *a, const lynx_value_t *b)
{
    char *text_a = lynx_json_dump(a, 0), *text_b = lynx_json_dump(b, 0);
    assert_string_equal(text_a, text_b);
    free(text_a);
    free(text_b);
}

static void s_assert_protocol_err(const lynx_err_t *err, const char *field, const char *message)
{
    if (err->code != LYNX_EPROTOCOL || strcmp(err->field, field) != 0 ||
        strcmp(err->message, message) != 0)
        fail_msg("got %s '%s' '%s', expected protocol_error '%s' '%s'", lynx_code_name(err->code),
                 err->field, err->message, field, message);
}

//  lynx_msgpack_pack/unpack take any value; doubles stay doubles, integers integers.
static void test_msgpack_storage(void **state)
{
    (void)state;
    const char *documents[] = {
        "null",
        "true",
        "-9223372036854775808",
        "9223372036854775807",
        "1.0",
        "-0.5",
        "\"\"",
        "[1, 2.5, \"three\", [], {}]",
        "{\"job_id\": \"a1b2\", \"success\": false, \"output_files\": [], \"z\": 1, \"a\": 2}",
    };
    for (size_t i = 0; i < sizeof documents / sizeof documents[0]; i++) {
        lynx_value_t *value = s_parse(documents[i]);
        unsigned char *data;
        size_t size;
        assert_int_equal(lynx_msgpack_pack(value, &data, &size), 0);
        lynx_err_t err;
        lynx_value_t *back = lynx_msgpack_unpack(data, size, &err);
        assert_non_null(back);
        s_assert_same(value, back);
        lynx_value_destroy(&back);

        //  The same limits as frames: no trailing bytes.
        data = realloc(data, size + 1);
        data[size] = 0x01;
        assert_null(lynx_msgpack_unpack(data, size + 1, &err));
        s_assert_protocol_err(&err, "", "trailing bytes after message");
        free(data);
        lynx_value_destroy(&value);
    }
    //  Nothing deeper than the decoder accepts is ever written.
    lynx_value_t *nested = lynx_value_array();
    for (int level = 2; level <= LYNX_MSGPACK_MAX_DEPTH + 1; level++) {
        lynx_value_t *outer = lynx_value_array();
        lynx_value_append(outer, &nested);
        nested = outer;
    }
    unsigned char *data = NULL;
    size_t size = 0;
    assert_int_equal(lynx_msgpack_pack(nested, &data, &size), -1);
    assert_null(data);
    lynx_value_destroy(&nested);
}

//  The envelope's pieces: an array header, then values one at a time at their offsets.
static void test_writer_and_reading_at_offsets(void **state)
{
    (void)state;
    lynx_msgpack_writer_t *writer = lynx_msgpack_writer_new();
    assert_non_null(writer);
    lynx_value_t *body = s_parse("{\"runs\": [1, 2.5], \"name\": \"a\"}");
    assert_int_equal(lynx_msgpack_write_array(writer, 3), 0);
    assert_int_equal(lynx_msgpack_write_string(writer, "LYNX"), 0);
    assert_int_equal(lynx_msgpack_write_int(writer, -42), 0);
    assert_int_equal(lynx_msgpack_write_value(writer, body), 0);
    size_t size = 0;
    const unsigned char *data = lynx_msgpack_writer_data(writer, &size);
    assert_true(size > 0);

    uint64_t count = 0;
    size_t offset = 0;
    lynx_err_t err;
    assert_int_equal(lynx_msgpack_read_array(data, size, &count, &offset, &err), 0);
    assert_int_equal(count, 3);
    lynx_value_t *magic = lynx_msgpack_unpack_at(data, size, &offset, "magic", &err);
    assert_string_equal(lynx_value_as_string(magic), "LYNX");
    lynx_value_t *number = lynx_msgpack_unpack_at(data, size, &offset, "version", &err);
    assert_int_equal(lynx_value_as_int(number), -42);
    lynx_value_t *back = lynx_msgpack_unpack_at(data, size, &offset, "body", &err);
    assert_non_null(back);
    s_assert_same(body, back);
    assert_int_equal(offset, size);
    //  Past the end: truncated, named by the path given.
    assert_null(lynx_msgpack_unpack_at(data, size, &offset, "extra", &err));
    assert_int_equal(err.code, LYNX_EPROTOCOL);
    assert_string_equal(err.field, "extra");

    //  A value that is not an array is told apart from a truncated header.
    assert_int_equal(lynx_msgpack_read_array(data + 1, 5, &count, &offset, &err), 1);
    assert_int_equal(lynx_msgpack_read_array(data, 0, &count, &offset, &err), -1);
    lynx_value_destroy(&magic);
    lynx_value_destroy(&number);
    lynx_value_destroy(&back);
    lynx_value_destroy(&body);
    lynx_msgpack_writer_destroy(&writer);
    lynx_msgpack_writer_destroy(&writer); //  NULL-safe
}

static void test_depth_and_size_limits(void **state)
{
    (void)state;
    lynx_value_t *flat = s_parse("{\"a\": 1}");
    assert_int_equal(lynx_msgpack_depth(flat), 1);
    lynx_value_t *deep = s_parse("[[[[]]]]");
    assert_int_equal(lynx_msgpack_depth(deep), 4);
    lynx_err_t err;
    assert_int_equal(lynx_msgpack_check_size(0, &err), -1);
    s_assert_protocol_err(&err, "", "empty frame");
    assert_int_equal(lynx_msgpack_check_size(LYNX_MSGPACK_MAX_BYTES + 1, &err), -1);
    assert_non_null(strstr(err.message, "exceeds limit of 67108864"));
    assert_int_equal(lynx_msgpack_check_size(LYNX_MSGPACK_MAX_BYTES, &err), 0);
    lynx_value_destroy(&flat);
    lynx_value_destroy(&deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgpack_storage),
        cmocka_unit_test(test_writer_and_reading_at_offsets),
        cmocka_unit_test(test_depth_and_size_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
