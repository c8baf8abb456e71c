//  lynx_value: the dynamically typed tree every module passes around.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
