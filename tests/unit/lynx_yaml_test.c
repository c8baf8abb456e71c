//  lynx_yaml: YAML text -> lynx_value, typed by the YAML 1.2 core schema.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lynx_yaml.h"

//  configs/lynx-runner-basilisk.yaml from tutorial-basic-orbit.
static const char s_runner_config[] =
    "engines:\n"
    "  - basilisk\n"
    "capabilities:\n"
    "  - basilisk\n"
    "  - orbit\n"
    "  - aerospace\n"
    "\n"
    "working_directory: .\n"
    "output_root: /tmp/tetryx-runs\n"
    "python_executable: python3\n"
    "basilisk_entrypoint: scenarios/aerospace/python/scenario_basic_orbit_lynx.py\n"
    "\n"
    "max_concurrent_jobs: 1\n"
    "heartbeat_interval_secs: 2\n";

static lynx_value_t *s_parse(const char *text, lynx_err_t *err)
{
    return lynx_yaml_parse(text, strlen(text), err);
}

static void test_runner_config(void **state)
{
    (void)state;
    lynx_err_t err;
    lynx_value_t *config = s_parse(s_runner_config, &err);
    assert_non_null(config);
    assert_int_equal(lynx_value_size(config), 8);
    assert_string_equal(lynx_value_key_at(config, 0), "engines");

    lynx_value_t *engines = lynx_value_get(config, "engines");
    assert_int_equal(lynx_value_size(engines), 1);
    assert_string_equal(lynx_value_as_string(lynx_value_at(engines, 0)), "basilisk");
    lynx_value_t *capabilities = lynx_value_get(config, "capabilities");
    assert_int_equal(lynx_value_size(capabilities), 3);
    assert_string_equal(lynx_value_as_string(lynx_value_at(capabilities, 2)), "aerospace");

    assert_string_equal(lynx_value_get_string(config, "working_directory", NULL), ".");
    assert_string_equal(lynx_value_get_string(config, "output_root", NULL), "/tmp/tetryx-runs");
    assert_string_equal(lynx_value_get_string(config, "basilisk_entrypoint", NULL),
                        "scenarios/aerospace/python/scenario_basic_orbit_lynx.py");
    assert_int_equal(lynx_value_type(lynx_value_get(config, "max_concurrent_jobs")),
                     LYNX_VALUE_INT);
    assert_int_equal(lynx_value_get_int(config, "max_concurrent_jobs", 0), 1);
    assert_int_equal(lynx_value_get_int(config, "heartbeat_interval_secs", 0), 2);
    lynx_value_destroy(&config);
}

//  How plain scalars are typed; quoted and block scalars are always strings.
static void test_scalar_typing(void **state)
{
    (void)state;
    const struct {
        const char *yaml;
        lynx_value_type_t type;
        const char *text; //  string value, or the expected number as text
    } cases[] = {
        {"~", LYNX_VALUE_NULL, NULL},
        {"null", LYNX_VALUE_NULL, NULL},
        {"NULL", LYNX_VALUE_NULL, NULL},
        {"", LYNX_VALUE_NULL, NULL},
        {"true", LYNX_VALUE_BOOL, "true"},
        {"False", LYNX_VALUE_BOOL, "false"},
        {"yes", LYNX_VALUE_STRING, "yes"}, //  YAML 1.1 booleans are plain strings in 1.2
        {"on", LYNX_VALUE_STRING, "on"},
        {"42", LYNX_VALUE_INT, "42"},
        {"-17", LYNX_VALUE_INT, "-17"},
        {"+3", LYNX_VALUE_INT, "3"},
        {"007", LYNX_VALUE_INT, "7"},
        {"0o17", LYNX_VALUE_INT, "15"},
        {"0x1F", LYNX_VALUE_INT, "31"},
        {"9223372036854775807", LYNX_VALUE_INT, "9223372036854775807"},
        {"1_000", LYNX_VALUE_STRING, "1_000"},
        {"0b101", LYNX_VALUE_STRING, "0b101"},
        {"2.5", LYNX_VALUE_DOUBLE, "2.5"},
        {"-.5", LYNX_VALUE_DOUBLE, "-0.5"},
        {"1.", LYNX_VALUE_DOUBLE, "1"},
        {"6.95e6", LYNX_VALUE_DOUBLE, "6950000"},
        {"1e-3", LYNX_VALUE_DOUBLE, "0.001"},
        {".inf", LYNX_VALUE_DOUBLE, "inf"},
        {"-.Inf", LYNX_VALUE_DOUBLE, "-inf"},
        {".nan", LYNX_VALUE_DOUBLE, "nan"},
        {"1e", LYNX_VALUE_STRING, "1e"},
        {".", LYNX_VALUE_STRING, "."},
        {"500m", LYNX_VALUE_STRING, "500m"},
        {"< 6371", LYNX_VALUE_STRING, "< 6371"},
        {"1.0.0", LYNX_VALUE_STRING, "1.0.0"},
        {"2026-04-09", LYNX_VALUE_STRING, "2026-04-09"}, //  no timestamps in the core schema
        {"\"42\"", LYNX_VALUE_STRING, "42"},
        {"'true'", LYNX_VALUE_STRING, "true"},
        {"\"\"", LYNX_VALUE_STRING, ""},
        {"|\n  12\n", LYNX_VALUE_STRING, "12\n"},
        {"!!str 12", LYNX_VALUE_STRING, "12"},
        {"!!float 12", LYNX_VALUE_DOUBLE, "12"},
        {"!!int 0x10", LYNX_VALUE_INT, "16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "value: %s", cases[i].yaml);
        lynx_err_t err;
        lynx_value_t *document = s_parse(text, &err);
        if (!document)
            fail_msg("%s: %s", cases[i].yaml, err.message);
        lynx_value_t *value = lynx_value_get(document, "value");
        if (lynx_value_type(value) != cases[i].type)
            fail_msg("%s: typed as %s", cases[i].yaml,
                     lynx_value_type_name(lynx_value_type(value)));
        char actual[64] = "";
        if (cases[i].type == LYNX_VALUE_STRING)
            snprintf(actual, sizeof actual, "%s", lynx_value_as_string(value));
        else if (cases[i].type == LYNX_VALUE_INT)
            snprintf(actual, sizeof actual, "%lld", (long long)lynx_value_as_int(value));
        else if (cases[i].type == LYNX_VALUE_DOUBLE)
            snprintf(actual, sizeof actual, "%.15g", lynx_value_as_double(value));
        else if (cases[i].type == LYNX_VALUE_BOOL)
            snprintf(actual, sizeof actual, "%s", lynx_value_as_bool(value) ? "true" : "false");
        if (cases[i].text && strcmp(actual, cases[i].text) != 0)
            fail_msg("%s: got '%s', expected '%s'", cases[i].yaml, actual, cases[i].text);
        lynx_value_destroy(&document);
    }
}

//  Flow style, nesting, keys that look like numbers, and an empty document.
static void test_structure(void **state)
{
    (void)state;
    lynx_value_t *value =
        s_parse("early_termination:\n"
                "  enabled: true\n"
                "  conditions: [{variable: orbit.radius_km, condition: '< 6371'}]\n"
                "1: one\n",
                NULL);
    assert_non_null(value);
    lynx_value_t *condition =
        lynx_value_at(lynx_value_get_path(value, "early_termination.conditions"), 0);
    assert_string_equal(lynx_value_get_string(condition, "variable", NULL), "orbit.radius_km");
    assert_string_equal(lynx_value_get_string(value, "1", NULL), "one");
    lynx_value_destroy(&value);

    const char *empty[] = {"", "# only a comment\n", "---\n", "---\n...\n"};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        value = s_parse(empty[i], NULL);
        assert_non_null(value);
        assert_int_equal(lynx_value_type(value), LYNX_VALUE_NULL);
        lynx_value_destroy(&value);
    }
    //  Only the first document counts.
    value = s_parse("--- 1\n--- [unclosed\n", NULL);
    assert_int_equal(lynx_value_as_int(value), 1);
    lynx_value_destroy(&value);
}

//  Errors say where, 1-based, and why.
static void test_errors(void **state)
{
    (void)state;
    const struct {
        const char *yaml;
        const char *message;
    } cases[] = {
        {"engines:\n  - basilisk\nengines: []\n", "line 3 column 1: duplicate key 'engines'"},
        {"base: &b {x: 1}\n", "line 1 column 7: anchors are not supported ('&b')"},
        {"a: 1\nb: *b\n", "line 2 column 4: aliases are not supported ('*b')"},
        {"? [a, b]\n: c\n", "line 1 column 3: map keys must be scalars"},
        {"runs: 99999999999999999999\n",
         "line 1 column 7: integer 99999999999999999999 out of range"},
        {"runs: !!int ten\n", "line 1 column 7: 'ten' is not a valid !!int"},
        {"runs: !custom 1\n", "line 1 column 7: unsupported tag '!custom'"},
        {"\"a\\0b\": 1\n", "line 1 column 1: map key contains a NUL byte"},
        {"a:\n  b: 1\n c: 2\n",
         "line 3 column 2: did not find expected key (while parsing a block mapping at line 1 "
         "column 1)"},
        {"list: [1, 2\n", "line 2 column 1: did not find expected ',' or ']' (while parsing a "
                          "flow sequence at line 1 column 7)"},
        {"a: \"\xff\"\n", "line 1 column 5: invalid leading UTF-8 octet"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_err_t err;
        lynx_value_t *value = s_parse(cases[i].yaml, &err);
        if (value)
            fail_msg("accepted: %s", cases[i].yaml);
        assert_int_equal(err.code, LYNX_EINVALID);
        if (strcmp(err.message, cases[i].message) != 0)
            fail_msg("%s\n got: %s\nwant: %s", cases[i].yaml, err.message, cases[i].message);
    }
}

static void test_nesting_limit(void **state)
{
    (void)state;
    char text[2 * 65 + 1];
    for (int depth = 64; depth <= 65; depth++) {
        memset(text, '[', (size_t)depth);
        memset(text + depth, ']', (size_t)depth);
        text[2 * depth] = '\0';
        lynx_err_t err;
        lynx_value_t *value = s_parse(text, &err);
        if (depth == 64)
            assert_non_null(value);
        else {
            assert_null(value);
            assert_string_equal(err.message, "line 1 column 65: nesting deeper than 64");
        }
        lynx_value_destroy(&value);
    }
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/lynx_yaml_test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s_runner_config, strlen(s_runner_config)),
                     (ssize_t)strlen(s_runner_config));
    assert_int_equal(write(fd, "engines: [px4]\n", 15), 15);
    close(fd);

    lynx_err_t err;
    assert_null(lynx_yaml_load_file(path, &err));
    char expected[256];
    snprintf(expected, sizeof expected, "%s: line 15 column 1: duplicate key 'engines'", path);
    assert_string_equal(err.message, expected);

    assert_int_equal(truncate(path, (off_t)strlen(s_runner_config)), 0);
    lynx_value_t *config = lynx_yaml_load_file(path, &err);
    assert_non_null(config);
    assert_int_equal(lynx_value_get_int(config, "max_concurrent_jobs", 0), 1);
    lynx_value_destroy(&config);
    unlink(path);

    assert_null(lynx_yaml_load_file(path, &err));
    snprintf(expected, sizeof expected, "%s: No such file or directory", path);
    assert_string_equal(err.message, expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runner_config), cmocka_unit_test(test_scalar_typing),
        cmocka_unit_test(test_structure),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nesting_limit), cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
