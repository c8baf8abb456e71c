//  lynx_check: the field-checking kit. Each getter reports through the check with the field
//  path, and every problem of a document is collected, not just the first.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_strings_and_presence),
        S_TEST(test_numbers),
        S_TEST(test_containers_bools_and_unknown_fields),
        S_TEST(test_counting_without_lists),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
