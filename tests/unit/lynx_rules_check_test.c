//  lynx_rules, validation: every problem of a bad block with its field path and message (the
//  bad blocks are files under tests/data/rules, each its own test case), appended after what
//  the caller's list holds, unknown fields as warnings, and the limits.
#include "lynx_rules_fixture.h"
#include "data_cases.h"

//  ---------------------------------------------------------------------------------------
//  Validation: every problem, with its field path and message. The bad blocks themselves are
//  files under tests/data/rules, each a test case of its own (test_golden_block below).

//  Errors are appended after what the list already holds; the default path prefix.
static void test_error_list_and_path(void **state)
{
    (void)state;
    lynx_value_t *block = s_yaml("conditions: [{name: n, variable: x, condition: '<<1'}]");
    lynx_value_t *errors = s_yaml("[{field: config.monte_carlo.runs, message: required}]");
    assert_null(lynx_rules_new(block, NULL, errors, NULL));
    const s_problem_t expected[MAX_PROBLEMS] = {
        {"config.monte_carlo.runs", "required"},
        {"early_termination.conditions[0].condition",
         "cannot parse '<<1' (expected an operator <, <=, >, >=, ==, != and a number)"},
    };
    s_assert_problems("appended", errors, expected);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&block);
}

//  Unknown fields are warnings, never errors; a name or description inside a group is unused.
static void test_unknown_fields_warn(void **state)
{
    (void)state;
    lynx_value_t *block = s_yaml("enabled: true\n"
                                 "frequency: 3\n"
                                 "conditions:\n"
                                 "- name: n\n"
                                 "  severity: high\n"
                                 "  any:\n"
                                 "  - {variable: x, condition: '< 1', name: inner, note: a}\n");
    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    lynx_rules_t *rules = lynx_rules_new(block, PATH, errors, warnings);
    assert_non_null(rules);
    assert_int_equal(lynx_value_size(errors), 0);
    const s_problem_t expected[MAX_PROBLEMS] = {
        {PATH ".frequency", "unknown field (ignored)"},
        {PATH ".conditions[0].severity", "unknown field (ignored)"},
        {PATH ".conditions[0].any[0].name", "unknown field (ignored)"},
        {PATH ".conditions[0].any[0].note", "unknown field (ignored)"},
    };
    s_assert_problems("warnings", warnings, expected);
    s_expect_fire(rules, "x=0", "n");
    lynx_rules_destroy(&rules);

    //  Warnings are still reported alongside errors.
    lynx_value_destroy(&warnings);
    warnings = lynx_value_array();
    lynx_value_set_int(block, "check_frequency_hz", 0);
    assert_null(lynx_rules_new(block, PATH, errors, warnings));
    assert_int_equal(lynx_value_size(errors), 1);
    assert_int_equal(lynx_value_size(warnings), 4);
    lynx_value_destroy(&warnings);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&block);
}

//  A YAML flow rule with levels nested groups: {name: deep, any: [{any: [... {variable...}]}]}
static lynx_value_t *s_nested(int levels)
{
    char text[4096];
    size_t used = (size_t)snprintf(text, sizeof text, "conditions: [{name: deep, ");
    for (int i = 0; i < levels; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%s: [{", i % 2 ? "all" : "any");
    used += (size_t)snprintf(text + used, sizeof text - used, "variable: x, condition: '< 1'");
    for (int i = 0; i < levels; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "}]");
    snprintf(text + used, sizeof text - used, "}]");
    return s_yaml(text);
}

static void test_limits(void **state)
{
    (void)state;
    lynx_value_t *block = s_nested(LYNX_RULES_DEPTH_MAX);
    lynx_rules_t *rules = s_rules_from(block);
    s_expect_fire(rules, "x=0", "deep");
    s_expect_fire(rules, "x=1", NULL);
    lynx_rules_destroy(&rules);
    lynx_value_destroy(&block);

    block = s_nested(LYNX_RULES_DEPTH_MAX + 1);
    lynx_value_t *errors = lynx_value_array();
    assert_null(lynx_rules_new(block, PATH, errors, NULL));
    char field[512] = PATH ".conditions[0]";
    for (int i = 0; i < LYNX_RULES_DEPTH_MAX; i++)
        strcat(field, i % 2 ? ".all[0]" : ".any[0]");
    strcat(field, LYNX_RULES_DEPTH_MAX % 2 ? ".all" : ".any");
    const s_problem_t too_deep[MAX_PROBLEMS] = {{field, "groups nest deeper than 16 levels"}};
    s_assert_problems("too deep", errors, too_deep);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&block);

    //  At most LYNX_RULES_COMPARISONS_MAX comparisons, over all rules.
    for (int extra = 0; extra <= 1; extra++) {
        block = s_yaml("conditions: [{name: many, all: []}, {variable: y, condition: '> 0'}]");
        lynx_value_t *members =
            lynx_value_get(lynx_value_at(lynx_value_get(block, "conditions"), 0), "all");
        for (int i = 0; i < LYNX_RULES_COMPARISONS_MAX - 1 + extra; i++) {
            lynx_value_t *member = s_yaml("{variable: x, condition: '< 1'}");
            assert_int_equal(lynx_value_append(members, &member), 0);
        }
        errors = lynx_value_array();
        rules = lynx_rules_new(block, PATH, errors, NULL);
        if (extra) {
            assert_null(rules);
            const s_problem_t too_many[MAX_PROBLEMS] = {
                {PATH ".conditions", "too many comparisons (at most 4096)"}};
            s_assert_problems("too many", errors, too_many);
        } else {
            assert_non_null(rules);
            s_expect_fire(rules, "x=0 y=0", "many");
            s_expect_fire(rules, "x=1 y=1", "y > 0");
            lynx_rules_destroy(&rules);
        }
        lynx_value_destroy(&errors);
        lynx_value_destroy(&block);
    }
}

//  ---------------------------------------------------------------------------------------
//  Golden bad blocks from tests/data/rules (format in its README.md)

static void test_golden_block(void **state)
{
    const char *path = *state;
    FILE *file = fopen(path, "r");
    if (!file)
        fail_msg("cannot open %s", path);
    static char text[16384];
    size_t len = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[len] = '\0';

    //  "# error: field: message" lines, in order.
    static char lines[MAX_PROBLEMS][512];
    s_problem_t expected[MAX_PROBLEMS] = {{NULL, NULL}};
    size_t count = 0;
    for (const char *line = text; *line;
         line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
        if (strncmp(line, "# error: ", 9) != 0)
            continue;
        assert_true(count < MAX_PROBLEMS);
        snprintf(lines[count], sizeof lines[count], "%.*s", (int)strcspn(line + 9, "\n"), line + 9);
        char *separator = strstr(lines[count], ": ");
        if (!separator)
            fail_msg("%s: error line without 'field: message'", path);
        *separator = '\0';
        expected[count] = (s_problem_t){lines[count], separator + 2};
        count++;
    }
    if (count == 0)
        fail_msg("%s: no '# error:' line", path);

    lynx_value_t *block = s_yaml(text);
    lynx_value_t *errors = lynx_value_array();
    lynx_rules_t *rules = lynx_rules_new(block, PATH, errors, NULL);
    if (rules)
        fail_msg("%s was accepted", path);
    s_assert_problems(path, errors, expected);
    //  Without an errors list the answer is the same.
    assert_null(lynx_rules_new(block, PATH, NULL, NULL));
    lynx_value_destroy(&errors);
    lynx_value_destroy(&block);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_list_and_path),
        cmocka_unit_test(test_unknown_fields_warn),
        cmocka_unit_test(test_limits),
    };
    int failures = cmocka_run_group_tests(tests, NULL, NULL);
    return failures +
           data_cases_run("golden_rules", LYNX_TEST_DATA_DIR "/rules", ".yaml", test_golden_block);
}
