//  lynx_check: the field-checking kit. Each getter reports through the check with the field
//  path, and every problem of a document is collected, not just the first.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lynx_check.h"
#include "lynx_json.h"

typedef struct {
    lynx_value_t *doc;
    lynx_value_t *errors;
    lynx_value_t *warnings;
    lynx_check_t check;
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    const char *text = "{\"name\": \"\", \"runs\": 500.0, \"big\": 1e300, \"neg\": -3,"
                       " \"flag\": true, \"list\": [1], \"obj\": {}, \"nothing\": null,"
                       " \"pi\": 3.5, \"word\": \"orbit\", \"extra\": 1}";
    lynx_err_t err;
    fx->doc = lynx_json_parse(text, strlen(text), &err);
    fx->errors = lynx_value_array();
    fx->warnings = lynx_value_array();
    fx->check = (lynx_check_t){.errors = fx->errors, .warnings = fx->warnings};
    *state = fx;
    return fx->doc ? 0 : -1;
}

static int s_teardown(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    lynx_value_destroy(&fx->doc);
    lynx_value_destroy(&fx->errors);
    lynx_value_destroy(&fx->warnings);
    free(fx);
    return 0;
}

//  The last problem in list is {field, message}.
static void s_assert_last(const lynx_value_t *list, const char *field, const char *message)
{
    const lynx_value_t *last = lynx_value_at(list, lynx_value_size(list) - 1);
    assert_string_equal(lynx_value_get_string(last, "field", ""), field);
    assert_string_equal(lynx_value_get_string(last, "message", ""), message);
}

static void test_strings_and_presence(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    lynx_check_t *check = &fx->check;
    const char *value = "default";
    assert_int_equal(lynx_check_get_string(check, fx->doc, "config", "word", 0, &value), 1);
    assert_string_equal(value, "orbit");
    //  null and absent are both "use the default".
    value = "default";
    assert_int_equal(lynx_check_get_string(check, fx->doc, "config", "nothing", 0, &value), 0);
    assert_int_equal(lynx_check_get_string(check, fx->doc, "config", "missing", 0, &value), 0);
    assert_string_equal(value, "default");
    assert_int_equal(check->error_count, 0);

    assert_int_equal(
        lynx_check_get_string(check, fx->doc, "config", "missing", LYNX_CHECK_REQUIRED, &value),
        -1);
    s_assert_last(fx->errors, "config.missing", "required");
    assert_int_equal(lynx_check_get_string(check, fx->doc, "config", "name",
                                           LYNX_CHECK_REQUIRED | LYNX_CHECK_NON_EMPTY, &value),
                     -1);
    s_assert_last(fx->errors, "config.name", "must not be empty");
    assert_int_equal(lynx_check_get_string(check, fx->doc, "config", "runs", 0, &value), -1);
    s_assert_last(fx->errors, "config.runs", "must be a string");
    assert_int_equal(check->error_count, 3);
}

static void test_numbers(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    lynx_check_t *check = &fx->check;
    int64_t integer = 0;
    //  500.0 is an integer: JSON has one number type.
    assert_int_equal(lynx_check_get_integer(check, fx->doc, "c", "runs", 0, 1, 1000, &integer), 1);
    assert_int_equal(integer, 500);
    assert_int_equal(lynx_check_get_integer(check, fx->doc, "c", "pi", 0, 1, 10, &integer), -1);
    s_assert_last(fx->errors, "c.pi", "must be an integer");
    assert_int_equal(lynx_check_get_integer(check, fx->doc, "c", "big", 0, 1, 10, &integer), -1);
    s_assert_last(fx->errors, "c.big", "must be between 1 and 10");
    assert_int_equal(lynx_check_get_integer(check, fx->doc, "c", "neg", LYNX_CHECK_NO_MAX, 1,
                                            INT64_MAX, &integer),
                     -1);
    s_assert_last(fx->errors, "c.neg", "must be >= 1");

    double number = 0;
    assert_int_equal(lynx_check_get_positive(check, fx->doc, "c", "pi", &number), 1);
    assert_true(number == 3.5);
    assert_int_equal(lynx_check_get_positive(check, fx->doc, "c", "neg", &number), -1);
    s_assert_last(fx->errors, "c.neg", "must be > 0");
    lynx_value_t *nan = lynx_value_double(NAN);
    assert_int_equal(lynx_check_number(check, nan, "c", "x", &number), -1);
    s_assert_last(fx->errors, "c.x", "must be a finite number");
    lynx_value_destroy(&nan);
    assert_int_equal(check->error_count, 5);
}

static void test_containers_bools_and_unknown_fields(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    lynx_check_t *check = &fx->check;
    const lynx_value_t *member = NULL;
    assert_int_equal(lynx_check_get_array(check, fx->doc, "c", "list", 0, &member), 1);
    assert_int_equal(lynx_check_get_object(check, fx->doc, "c", "obj", 0, &member), 1);
    assert_int_equal(lynx_check_get_object(check, fx->doc, "c", "list", 0, &member), -1);
    s_assert_last(fx->errors, "c.list", "must be an object");
    bool flag = false;
    assert_int_equal(lynx_check_get_bool(check, fx->doc, "c", "flag", &flag), 1);
    assert_true(flag);
    assert_int_equal(lynx_check_get_bool(check, fx->doc, "c", "word", &flag), -1);
    s_assert_last(fx->errors, "c.word", "must be a boolean");

    const char *const known[] = {"name", "runs",    "big", "neg",  "flag", "list",
                                 "obj",  "nothing", "pi",  "word", NULL};
    lynx_check_warn_unknown(check, fx->doc, "config", known);
    assert_int_equal(lynx_value_size(fx->warnings), 1);
    s_assert_last(fx->warnings, "config.extra", "unknown field (ignored)");
    assert_int_equal(check->error_count, 2); //  warnings are not errors

    char *path = lynx_check_path_join(check, "config.dispersions", NULL, 3);
    assert_string_equal(path, "config.dispersions[3]");
    free(path);
    char names[64];
    const char *const methods[] = {"monte_carlo", "sobol", NULL};
    assert_string_equal(lynx_check_name_list(names, sizeof names, methods), "monte_carlo, sobol");
    assert_int_equal(lynx_check_name_index("sobol", methods), 1);
    assert_int_equal(lynx_check_name_index("grid", methods), -1);
}

//  NULL lists only count: a caller that wants a yes or no need not collect messages.
static void test_counting_without_lists(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    lynx_check_t check = {0};
    const char *value = NULL;
    assert_int_equal(lynx_check_get_string(&check, fx->doc, "c", "runs", 0, &value), -1);
    lynx_check_warn(&check, "c", "x", "ignored");
    assert_int_equal(check.error_count, 1);
    assert_false(check.out_of_memory);
}

//  --- typed fields: one sentence per field, from a document member or from text -------------

static const lynx_check_type_t s_jobs = {LYNX_CHECK_KIND_INTEGER, 1, 1024};
static const lynx_check_type_t s_positive = {LYNX_CHECK_KIND_POSITIVE, 0, 0};
static const lynx_check_type_t s_bool = {LYNX_CHECK_KIND_BOOL, 0, 0};
static const lynx_check_type_t s_string = {LYNX_CHECK_KIND_STRING, 0, 0};
static const lynx_check_type_t s_strings = {LYNX_CHECK_KIND_STRINGS, 0, 0};
static const lynx_check_type_t s_args = {LYNX_CHECK_KIND_ARGS, 0, 0};

//  Check text as type: 1 or -1 as lynx_check_text returns; a failure's message must be
//  "must be " + the type's expectation, reported at key.
static int s_text(const char *text, const lynx_check_type_t *type, lynx_check_value_t *value)
{
    lynx_value_t *errors = lynx_value_array();
    lynx_check_t check = {.errors = errors};
    int rc = lynx_check_text(&check, text, "cfg", "field", type, value);
    if (rc < 0) {
        char expected[128], message[160];
        snprintf(message, sizeof message, "must be %s",
                 lynx_check_expected(type, expected, sizeof expected));
        assert_int_equal(check.error_count, 1);
        s_assert_last(errors, "cfg.field", message);
    }
    lynx_value_destroy(&errors);
    return rc;
}

static void test_typed_text(void **state)
{
    (void)state;
    lynx_check_value_t value;
    assert_int_equal(s_text("64", &s_jobs, &value), 1);
    assert_int_equal(value.integer, 64);
    const char *bad_integers[] = {
        "abc", "4x", "", " 4", "2.5", "0", "1025", "-1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_integers / sizeof *bad_integers; i++)
        assert_int_equal(s_text(bad_integers[i], &s_jobs, &value), -1);

    assert_int_equal(s_text("0.25", &s_positive, &value), 1);
    assert_true(value.number == 0.25);
    const char *bad_numbers[] = {"0", "-1", "nan", "inf", "1e999", "", "1,5"};
    for (size_t i = 0; i < sizeof bad_numbers / sizeof *bad_numbers; i++)
        assert_int_equal(s_text(bad_numbers[i], &s_positive, &value), -1);

    assert_int_equal(s_text("true", &s_bool, &value), 1);
    assert_true(value.boolean);
    assert_int_equal(s_text("false", &s_bool, &value), 1);
    assert_false(value.boolean);
    assert_int_equal(s_text("yes", &s_bool, &value), -1);
    assert_int_equal(s_text("", &s_string, &value), -1);
    assert_int_equal(s_text("orbit", &s_string, &value), 1);
    assert_string_equal(value.text, "orbit");
}

//  A list as text: STRINGS trims and skips empty items, ARGS splits at every comma and keeps
//  the rest as written.
static void test_typed_lists_from_text(void **state)
{
    (void)state;
    lynx_check_value_t value;
    assert_int_equal(s_text(" orbit, ,gpu,,\t", &s_strings, &value), 1);
    assert_int_equal(value.count, 2);
    assert_string_equal(value.items[0], "orbit");
    assert_string_equal(value.items[1], "gpu");
    assert_null(value.items[2]);
    lynx_check_items_free(value.items, value.count);

    assert_int_equal(s_text("-c,echo hi,, x", &s_args, &value), 1);
    assert_int_equal(value.count, 4);
    assert_string_equal(value.items[1], "echo hi");
    assert_string_equal(value.items[2], "");
    assert_string_equal(value.items[3], " x");
    lynx_check_items_free(value.items, value.count);

    assert_int_equal(s_text("", &s_args, &value), 1);
    assert_int_equal(value.count, 0);
    assert_non_null(value.items);
    lynx_check_items_free(value.items, value.count);
}

//  Members are strictly typed: "4" is not an integer and "true" not a boolean, while 500.0
//  is an integer (JSON has one number type) and null is absent.
static void test_typed_members(void **state)
{
    (void)state;
    const char *text = "{\"jobs\": 8, \"real\": 500.0, \"quoted\": \"4\", \"half\": 2.5,"
                       " \"on\": true, \"word\": \"true\", \"tags\": [\"a\", \"b\"],"
                       " \"holes\": [\"a\", \"\"], \"mixed\": [\"a\", 3], \"csv\": \"a, b\","
                       " \"nothing\": null, \"huge\": 1e300}";
    lynx_err_t err;
    lynx_value_t *doc = lynx_json_parse(text, strlen(text), &err);
    assert_non_null(doc);
    lynx_value_t *errors = lynx_value_array();
    lynx_check_t check = {.errors = errors};
    lynx_check_value_t value;
#define S_MEMBER(key, type)                                                                        \
    lynx_check_value(&check, lynx_value_get(doc, key), "c", key, type, &value)
    assert_int_equal(S_MEMBER("jobs", &s_jobs), 1);
    assert_int_equal(value.integer, 8);
    assert_int_equal(S_MEMBER("real", &s_jobs), 1);
    assert_int_equal(value.integer, 500);
    assert_int_equal(S_MEMBER("quoted", &s_jobs), -1);
    s_assert_last(errors, "c.quoted", "must be an integer between 1 and 1024");
    assert_int_equal(S_MEMBER("half", &s_jobs), -1);
    assert_int_equal(S_MEMBER("huge", &s_jobs), -1);
    assert_int_equal(S_MEMBER("on", &s_bool), 1);
    assert_true(value.boolean);
    assert_int_equal(S_MEMBER("word", &s_bool), -1);
    s_assert_last(errors, "c.word", "must be true or false");
    assert_int_equal(S_MEMBER("nothing", &s_jobs), 0);
    assert_int_equal(S_MEMBER("absent", &s_jobs), 0);
    assert_int_equal(S_MEMBER("jobs", &s_string), -1);
    s_assert_last(errors, "c.jobs", "must be a non-empty string");

    assert_int_equal(S_MEMBER("tags", &s_strings), 1);
    assert_int_equal(value.count, 2);
    assert_string_equal(value.items[1], "b");
    lynx_check_items_free(value.items, value.count);
    assert_int_equal(S_MEMBER("csv", &s_strings), 1);
    assert_int_equal(value.count, 2);
    assert_string_equal(value.items[1], "b");
    lynx_check_items_free(value.items, value.count);
    assert_int_equal(S_MEMBER("holes", &s_strings), -1);
    s_assert_last(errors, "c.holes", "must be a list of strings or a comma-separated string");
    assert_int_equal(S_MEMBER("holes", &s_args), 1); //  arguments may be empty
    lynx_check_items_free(value.items, value.count);
    assert_int_equal(S_MEMBER("mixed", &s_args), -1);
    assert_int_equal(S_MEMBER("jobs", &s_strings), -1);
#undef S_MEMBER
    assert_int_equal(check.error_count, 8);
    assert_false(check.out_of_memory);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&doc);
}

static void test_parse_whole_strings(void **state)
{
    (void)state;
    int64_t integer = 0;
    double number = 0;
    assert_true(lynx_check_parse_integer("-42", &integer));
    assert_int_equal(integer, -42);
    assert_true(lynx_check_parse_integer("+7", &integer));
    assert_int_equal(integer, 7);
    assert_false(lynx_check_parse_integer(NULL, &integer));
    assert_false(lynx_check_parse_integer("\t5", &integer));
    assert_false(lynx_check_parse_integer("5 ", &integer));
    assert_false(lynx_check_parse_integer("0x10", &integer));
    assert_true(lynx_check_parse_number("1e-3", &number));
    assert_true(number == 1e-3);
    assert_false(lynx_check_parse_number(" 1", &number));
    assert_false(lynx_check_parse_number("1 ", &number));
    assert_false(lynx_check_parse_number("", &number));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_strings_and_presence),
        S_TEST(test_numbers),
        S_TEST(test_containers_bools_and_unknown_fields),
        S_TEST(test_counting_without_lists),
#undef S_TEST
        cmocka_unit_test(test_typed_text),
        cmocka_unit_test(test_typed_lists_from_text),
        cmocka_unit_test(test_typed_members),
        cmocka_unit_test(test_parse_whole_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
