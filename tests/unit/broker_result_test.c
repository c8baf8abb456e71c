//  broker_result: what the broker stores of a runner's result: the documented fields only, of
//  their documented types, and output_files without paths outside the job's output directory.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "broker_result.h"
#include "lynx_json.h"

#define S_JOB "01a23e91-397e-7001-afba-4b6ddf64c71c"

static lynx_value_t *s_json(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    assert_non_null(value);
    return value;
}

static void test_output_files_outside_the_job_directory_are_dropped(void **state)
{
    (void)state;
    lynx_value_t *sent =
        s_json("{\"output_files\": [\"/tmp/tetryx-runs/" S_JOB "/summary.json\","
               " \"/tmp/tetryx-runs/" S_JOB "/plots/a.png\","
               " \"../../../../etc/passwd\", \"/etc/shadow\", \"/tmp/tetryx-runs/" S_JOB "/../x\","
               " \"/tmp/tetryx-runs/" S_JOB "/./y\", \"/tmp/tetryx-runs/other-job/z\","
               " \"/tmp/tetryx-runs//" S_JOB "/w\", \"relative/" S_JOB "/v\", 42,"
               " \"/tmp/tetryx-runs/" S_JOB "\"]}");
    lynx_value_t *result = broker_result_clean(S_JOB, sent, true, NULL);
    const lynx_value_t *files = lynx_value_get(result, "output_files");
    assert_int_equal(lynx_value_size(files), 2);
    assert_string_equal(lynx_value_as_string(lynx_value_at(files, 0)),
                        "/tmp/tetryx-runs/" S_JOB "/summary.json");
    assert_string_equal(lynx_value_as_string(lynx_value_at(files, 1)),
                        "/tmp/tetryx-runs/" S_JOB "/plots/a.png");
    lynx_value_destroy(&result);
    lynx_value_destroy(&sent);
}

static void test_only_documented_fields_of_documented_types(void **state)
{
    (void)state;
    lynx_value_t *sent = s_json("{\"success\": false, \"execution_time_secs\": 2.5,"
                                " \"output_files\": \"not a list\", \"telemetry_data\": [1],"
                                " \"metadata\": {\"engine\": \"basilisk\"}, \"extra\": 1,"
                                " \"artifacts\": [{\"name\": \"a\"}], \"artifacts_skipped\": 3}");
    lynx_value_t *result = broker_result_clean(S_JOB, sent, true, "ignored when success");
    assert_string_equal(lynx_value_get_string(result, "job_id", ""), S_JOB);
    assert_true(lynx_value_get_bool(result, "success", false)); //  the broker decides
    assert_true(lynx_value_get_double(result, "execution_time_secs", 0) == 2.5);
    assert_int_equal(lynx_value_type(lynx_value_get(result, "output_files")), LYNX_VALUE_ARRAY);
    assert_int_equal(lynx_value_size(lynx_value_get(result, "output_files")), 0);
    assert_int_equal(lynx_value_type(lynx_value_get(result, "telemetry_data")), LYNX_VALUE_NULL);
    assert_string_equal(lynx_value_get_string(lynx_value_get(result, "metadata"), "engine", ""),
                        "basilisk");
    assert_null(lynx_value_get(result, "extra"));
    assert_int_equal(lynx_value_size(lynx_value_get(result, "artifacts")), 1);
    assert_int_equal(lynx_value_type(lynx_value_get(result, "artifacts_skipped")),
                     LYNX_VALUE_ARRAY);
    assert_int_equal(lynx_value_type(lynx_value_get(result, "error_message")), LYNX_VALUE_NULL);
    lynx_value_destroy(&result);

    result = broker_result_clean(S_JOB, NULL, false, "scenario failed: exit status 2");
    assert_false(lynx_value_get_bool(result, "success", true));
    assert_string_equal(lynx_value_get_string(result, "error_message", ""),
                        "scenario failed: exit status 2");
    assert_int_equal(lynx_value_size(lynx_value_get(result, "output_files")), 0);
    lynx_value_destroy(&result);
    lynx_value_destroy(&sent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_files_outside_the_job_directory_are_dropped),
        cmocka_unit_test(test_only_documented_fields_of_documented_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
