//  lynx_value: the dynamically typed tree every module passes around.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lynx_msg.h"
#include "lynx_value.h"

//  Each constructor gives an owned value of its type; the type names are those our error
//  messages use.
static void test_constructors(void **state)
{
    (void)state;
    lynx_value_t *values[] = {
        lynx_value_null(),      lynx_value_bool(true),      lynx_value_int(-42),
        lynx_value_double(0.5), lynx_value_string("orbit"), lynx_value_array(),
        lynx_value_map(),
    };
    const char *names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        assert_non_null(values[i]);
        assert_int_equal(lynx_value_type(values[i]), (lynx_value_type_t)i);
        assert_string_equal(lynx_value_type_name(lynx_value_type(values[i])), names[i]);
        lynx_value_destroy(&values[i]);
        assert_null(values[i]);
    }
    //  A NULL string is a null value; destroy and type accept NULL.
    lynx_value_t *value = lynx_value_string(NULL);
    assert_int_equal(lynx_value_type(value), LYNX_VALUE_NULL);
    lynx_value_destroy(&value);
    lynx_value_destroy(&value);
    lynx_value_destroy(NULL);
    assert_int_equal(lynx_value_type(NULL), LYNX_VALUE_NULL);
}

static void test_strings_keep_length(void **state)
{
    (void)state;
    lynx_value_t *value = lynx_value_stringn("a\0b", 3);
    assert_int_equal(lynx_value_string_len(value), 3);
    assert_memory_equal(lynx_value_as_string(value), "a\0b", 4);
    lynx_value_t *empty = lynx_value_string("");
    assert_string_equal(lynx_value_as_string(empty), "");
    assert_int_equal(lynx_value_string_len(empty), 0);
    assert_false(lynx_value_equal(value, empty));
    lynx_value_destroy(&value);
    lynx_value_destroy(&empty);
}

//  Maps keep insertion order; setting an existing key replaces the value in place.
static void test_map_order_and_replace(void **state)
{
    (void)state;
    lynx_value_t *map = lynx_value_map();
    assert_int_equal(lynx_value_set_string(map, "job_id", "j-1"), 0);
    assert_int_equal(lynx_value_set_int(map, "attempt", 1), 0);
    assert_int_equal(lynx_value_set_bool(map, "success", true), 0);
    assert_int_equal(lynx_value_set_int(map, "attempt", 2), 0);
    assert_int_equal(lynx_value_size(map), 3);
    assert_string_equal(lynx_value_key_at(map, 0), "job_id");
    assert_string_equal(lynx_value_key_at(map, 1), "attempt");
    assert_string_equal(lynx_value_key_at(map, 2), "success");
    assert_int_equal(lynx_value_as_int(lynx_value_at(map, 1)), 2);
    assert_null(lynx_value_key_at(map, 3));
    assert_null(lynx_value_at(map, 3));

    //  Removing keeps the order of the rest.
    assert_int_equal(lynx_value_remove(map, "job_id"), 0);
    assert_int_equal(lynx_value_remove(map, "job_id"), -1);
    assert_int_equal(lynx_value_size(map), 2);
    assert_string_equal(lynx_value_key_at(map, 0), "attempt");
    assert_string_equal(lynx_value_key_at(map, 1), "success");
    assert_int_equal(lynx_value_set_null(map, "error_message"), 0);
    assert_string_equal(lynx_value_key_at(map, 2), "error_message");
    lynx_value_destroy(&map);
}

//  append and set take ownership only on success.
static void test_ownership(void **state)
{
    (void)state;
    lynx_value_t *array = lynx_value_array();
    lynx_value_t *item = lynx_value_int(7);
    assert_int_equal(lynx_value_append(array, &item), 0);
    assert_null(item);
    assert_int_equal(lynx_value_size(array), 1);

    item = lynx_value_int(8);
    assert_int_equal(lynx_value_set(array, "x", &item), -1); //  not a map
    assert_non_null(item);
    lynx_value_t *map = lynx_value_map();
    assert_int_equal(lynx_value_append(map, &item), -1); //  not an array
    assert_non_null(item);
    assert_int_equal(lynx_value_set(map, "x", &item), 0);
    assert_null(item);
    assert_int_equal(lynx_value_set_int(array, "x", 1), -1);
    assert_null(lynx_value_key_at(array, 0));

    lynx_value_destroy(&array);
    lynx_value_destroy(&map);
}

static void test_get_path(void **state)
{
    (void)state;
    lynx_value_t *config = lynx_value_map();
    lynx_value_t *compute = lynx_value_map();
    lynx_value_set_int(compute, "max_parallel_jobs", 2);
    lynx_value_set(config, "compute", &compute);
    lynx_value_set_string(config, "name", "basic-orbit");

    assert_int_equal(lynx_value_as_int(lynx_value_get_path(config, "compute.max_parallel_jobs")),
                     2);
    assert_string_equal(lynx_value_as_string(lynx_value_get_path(config, "name")), "basic-orbit");
    assert_non_null(lynx_value_get_path(config, "compute"));
    assert_null(lynx_value_get_path(config, "compute.missing"));
    assert_null(lynx_value_get_path(config, "name.deeper"));
    assert_null(lynx_value_get_path(config, "comp"));
    assert_null(lynx_value_get(config, "comp"));
    assert_null(lynx_value_get(NULL, "name"));
    lynx_value_destroy(&config);
}

//  dup is deep; equal compares deeply, ignores map order and compares numbers by value.
static void test_dup_and_equal(void **state)
{
    (void)state;
    lynx_value_t *result = lynx_value_map();
    lynx_value_set_string(result, "job_id", "j-1");
    lynx_value_set_double(result, "execution_time_secs", 34.5);
    lynx_value_t *files = lynx_value_array();
    lynx_value_t *file = lynx_value_string("summary.json");
    lynx_value_append(files, &file);
    lynx_value_set(result, "output_files", &files);

    lynx_value_t *copy = lynx_value_dup(result);
    assert_true(lynx_value_equal(result, copy));
    //  Changing the copy leaves the original alone.
    lynx_value_set_string(copy, "job_id", "j-9");
    lynx_value_t *more = lynx_value_string("trajectory.csv");
    lynx_value_append(lynx_value_get(copy, "output_files"), &more);
    assert_string_equal(lynx_value_get_string(result, "job_id", NULL), "j-1");
    assert_int_equal(lynx_value_size(lynx_value_get(result, "output_files")), 1);
    assert_false(lynx_value_equal(result, copy));

    //  Same entries in another order are equal.
    lynx_value_t *reordered = lynx_value_map();
    lynx_value_t *files_copy = lynx_value_dup(lynx_value_get(result, "output_files"));
    lynx_value_set(reordered, "output_files", &files_copy);
    lynx_value_set_double(reordered, "execution_time_secs", 34.5);
    lynx_value_set_string(reordered, "job_id", "j-1");
    assert_true(lynx_value_equal(result, reordered));
    lynx_value_set_string(reordered, "job_id", "j-2");
    assert_false(lynx_value_equal(result, reordered));

    lynx_value_t *one = lynx_value_int(1);
    lynx_value_t *one_point_zero = lynx_value_double(1.0);
    lynx_value_t *text = lynx_value_string("1");
    assert_true(lynx_value_equal(one, one_point_zero));
    assert_false(lynx_value_equal(one, text));
    assert_null(lynx_value_dup(NULL));

    lynx_value_t *values[] = {result, copy, reordered, one, one_point_zero, text};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        lynx_value_destroy(&values[i]);
}

//  Accessors never fail: a mismatched type gives a neutral value.
static void test_accessors_and_conversions(void **state)
{
    (void)state;
    lynx_value_t *integer = lynx_value_int(3);
    lynx_value_t *number = lynx_value_double(2.5);
    lynx_value_t *text = lynx_value_string("3");
    assert_true(lynx_value_is_number(integer));
    assert_true(lynx_value_is_number(number));
    assert_false(lynx_value_is_number(text));
    assert_true(lynx_value_as_double(integer) == 3.0);
    assert_int_equal(lynx_value_as_int(number), 0); //  no silent truncation
    assert_int_equal(lynx_value_as_int(text), 0);
    assert_null(lynx_value_as_string(integer));
    assert_false(lynx_value_as_bool(integer));
    assert_int_equal(lynx_value_size(text), 0);
    assert_int_equal(lynx_value_string_len(integer), 0);
    lynx_value_destroy(&integer);
    lynx_value_destroy(&number);
    lynx_value_destroy(&text);
}

//  The map getters return the fallback when the key is missing or holds another type;
//  get_int accepts a double that is an exact integer (JSON has one number type).
static void test_getters_with_fallbacks(void **state)
{
    (void)state;
    lynx_value_t *map = lynx_value_map();
    lynx_value_set_string(map, "name", "ws-07");
    lynx_value_set_int(map, "cpu_cores", 4);
    lynx_value_set_double(map, "memory_gb", 8.0);
    lynx_value_set_double(map, "ratio", 0.25);
    lynx_value_set_bool(map, "gpu_available", true);

    assert_string_equal(lynx_value_get_string(map, "name", "?"), "ws-07");
    assert_string_equal(lynx_value_get_string(map, "cpu_cores", "?"), "?");
    assert_null(lynx_value_get_string(map, "missing", NULL));
    assert_int_equal(lynx_value_get_int(map, "cpu_cores", -1), 4);
    assert_int_equal(lynx_value_get_int(map, "memory_gb", -1), 8);
    assert_int_equal(lynx_value_get_int(map, "ratio", -1), -1);
    assert_int_equal(lynx_value_get_int(map, "name", -1), -1);
    assert_true(lynx_value_get_double(map, "cpu_cores", -1.0) == 4.0);
    assert_true(lynx_value_get_double(map, "ratio", -1.0) == 0.25);
    assert_true(lynx_value_get_double(map, "name", -1.0) == -1.0);
    assert_true(lynx_value_get_bool(map, "gpu_available", false));
    assert_false(lynx_value_get_bool(map, "cpu_cores", false));
    assert_true(lynx_value_get_bool(NULL, "gpu_available", true));
    lynx_value_destroy(&map);
}

static void s_key(char *buffer, size_t size, size_t index)
{
    snprintf(buffer, size, "key-%zu", index);
}

//  Big maps are indexed by hash: 200,000 keys build and look up quickly (a linear scan would
//  take minutes), in insertion order, and replacing or removing keys keeps lookups right.
static void test_large_map(void **state)
{
    (void)state;
    const size_t count = 200000;
    char key[32];
    lynx_value_t *map = lynx_value_map();
    for (size_t i = 0; i < count; i++) {
        s_key(key, sizeof key, i);
        assert_int_equal(lynx_value_set_int(map, key, (int64_t)i), 0);
    }
    assert_int_equal(lynx_value_size(map), count);
    for (size_t i = 0; i < count; i++) {
        s_key(key, sizeof key, i);
        assert_int_equal(lynx_value_get_int(map, key, -1), (int64_t)i);
        assert_string_equal(lynx_value_key_at(map, i), key);
    }
    assert_null(lynx_value_get(map, "key-200000"));
    assert_null(lynx_value_get(map, "key-1x"));
    assert_null(lynx_value_get(map, ""));

    //  Replacing keeps the size and the position.
    for (size_t i = 0; i < count; i += 7) {
        s_key(key, sizeof key, i);
        assert_int_equal(lynx_value_set_int(map, key, -(int64_t)i), 0);
    }
    assert_int_equal(lynx_value_size(map), count);
    assert_int_equal(lynx_value_as_int(lynx_value_at(map, 14)), -14);
    assert_string_equal(lynx_value_key_at(map, 14), "key-14");

    //  Remove every third key from the tail end (cheap shifts); the rest keep their order.
    for (size_t i = count - 3000; i < count; i += 3) {
        s_key(key, sizeof key, i);
        assert_int_equal(lynx_value_remove(map, key), 0);
        assert_int_equal(lynx_value_remove(map, key), -1);
    }
    lynx_value_remove(map, "key-0");
    size_t position = 0;
    for (size_t i = 1; i < count; i++) {
        s_key(key, sizeof key, i);
        bool removed = i >= count - 3000 && (i - (count - 3000)) % 3 == 0;
        int64_t expected = i % 7 == 0 ? -(int64_t)i : (int64_t)i;
        if (removed) {
            assert_null(lynx_value_get(map, key));
            continue;
        }
        assert_int_equal(lynx_value_get_int(map, key, 1), expected);
        assert_string_equal(lynx_value_key_at(map, position), key);
        position++;
    }
    assert_int_equal(lynx_value_size(map), position);

    //  A removed key comes back at the end; paths and copies use the index too.
    assert_int_equal(lynx_value_set_string(map, "key-0", "back"), 0);
    assert_string_equal(lynx_value_key_at(map, position), "key-0");
    assert_string_equal(lynx_value_as_string(lynx_value_get_path(map, "key-0")), "back");
    lynx_value_t *inner = lynx_value_map();
    lynx_value_set_int(inner, "depth", 2);
    lynx_value_set(map, "key.inner", &inner);
    assert_null(lynx_value_get_path(map, "key.inner.depth")); //  dots always separate keys
    assert_non_null(lynx_value_get(map, "key.inner"));
    lynx_value_t *copy = lynx_value_dup(map);
    assert_true(lynx_value_equal(map, copy));
    lynx_value_remove(copy, "key-199");
    assert_false(lynx_value_equal(map, copy));
    lynx_value_destroy(&copy);
    lynx_value_destroy(&map);
}

//  Random sets and removes on maps that cross the size where the index starts, checked
//  against a plain list of keys in insertion order.
static void test_map_against_model(void **state)
{
    (void)state;
    enum { KEYS = 80, STEPS = 20000 };
    int model_keys[KEYS];  //  model: key numbers in insertion order
    int64_t values[KEYS];  //  by key number
    size_t model_size = 0; //  entries in model_keys
    lynx_value_t *map = lynx_value_map();
    srand(7);
    char key[32];
    for (int step = 0; step < STEPS; step++) {
        int number = rand() % KEYS;
        s_key(key, sizeof key, (size_t)number);
        size_t at = 0;
        while (at < model_size && model_keys[at] != number)
            at++;
        //  Grow towards 60 entries in the first half, shrink towards 0 in the second.
        bool grow = step < STEPS / 2 ? rand() % 4 != 0 : rand() % 4 == 0;
        if (grow) {
            assert_int_equal(lynx_value_set_int(map, key, step), 0);
            values[number] = step;
            if (at == model_size)
                model_keys[model_size++] = number;
        } else {
            assert_int_equal(lynx_value_remove(map, key), at < model_size ? 0 : -1);
            if (at < model_size) {
                memmove(model_keys + at, model_keys + at + 1,
                        (model_size - at - 1) * sizeof model_keys[0]);
                model_size--;
            }
        }
        assert_int_equal(lynx_value_size(map), model_size);
        for (size_t i = 0; i < model_size; i++) {
            s_key(key, sizeof key, (size_t)model_keys[i]);
            assert_string_equal(lynx_value_key_at(map, i), key);
            assert_int_equal(lynx_value_get_int(map, key, -1), values[model_keys[i]]);
        }
        bool present[KEYS] = {false};
        for (size_t i = 0; i < model_size; i++)
            present[model_keys[i]] = true;
        for (int other = 0; other < KEYS; other++) {
            s_key(key, sizeof key, (size_t)other);
            assert_true((lynx_value_get(map, key) != NULL) == present[other]);
        }
    }
    lynx_value_destroy(&map);
}

//  A frame whose body has 100,000 distinct keys decodes in linear time; a duplicate among
//  them is still refused.
static void test_decode_many_keys(void **state)
{
    (void)state;
    const uint32_t count = 100000;
    unsigned char *frame = malloc(64 + (size_t)count * 16);
    assert_non_null(frame);
    for (int duplicate = 0; duplicate <= 1; duplicate++) {
        static const char envelope[] = "\x94\xa4LYNX\x01\xa9HEARTBEAT";
        size_t at = sizeof envelope - 1;
        memcpy(frame, envelope, at);
        uint32_t entries = count + 1;
        frame[at++] = 0xdf; //  map 32
        for (int shift = 24; shift >= 0; shift -= 8)
            frame[at++] = (unsigned char)(entries >> shift);
        memcpy(frame + at, "\xa9runner_id\xa2r1", 13);
        at += 13;
        for (uint32_t i = 0; i < count; i++) {
            char key[32];
            s_key(key, sizeof key, duplicate && i == count - 1 ? 12345 : i);
            size_t len = strlen(key);
            frame[at++] = (unsigned char)(0xa0 | len);
            memcpy(frame + at, key, len);
            at += len;
            frame[at++] = (unsigned char)(i & 0x7f);
        }
        lynx_err_t err;
        lynx_msg_t *msg = lynx_msg_decode(frame, at, &err);
        if (duplicate) {
            free(frame);
            assert_null(msg);
            assert_int_equal(err.code, LYNX_EPROTOCOL);
            assert_non_null(strstr(err.message, "duplicate key 'key-12345'"));
            continue;
        }
        if (!msg)
            fail_msg("decode: %s", err.message);
        lynx_value_t *body = lynx_msg_body(msg);
        assert_int_equal(lynx_value_size(body), count + 1);
        assert_string_equal(lynx_value_get_string(body, "runner_id", NULL), "r1");
        assert_int_equal(lynx_value_get_int(body, "key-99999", -1), 99999 & 0x7f);
        assert_string_equal(lynx_value_key_at(body, count), "key-99999");
        lynx_msg_destroy(&msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructors),
        cmocka_unit_test(test_strings_keep_length),
        cmocka_unit_test(test_map_order_and_replace),
        cmocka_unit_test(test_ownership),
        cmocka_unit_test(test_get_path),
        cmocka_unit_test(test_dup_and_equal),
        cmocka_unit_test(test_accessors_and_conversions),
        cmocka_unit_test(test_getters_with_fallbacks),
        cmocka_unit_test(test_large_map),
        cmocka_unit_test(test_map_against_model),
        cmocka_unit_test(test_decode_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
