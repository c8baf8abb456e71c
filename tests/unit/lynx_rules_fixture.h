//  lynx_rules_fixture: what the rules test programs share (lynx_rules_test,
//  lynx_rules_check_test): rules from YAML, telemetry frames written as "name=value", and the
//  three ways the runner evaluates them.
#ifndef LYNX_RULES_FIXTURE_H_INCLUDED
#define LYNX_RULES_FIXTURE_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lynx_rules.h"
#include "lynx_yaml.h"

#ifndef LYNX_TEST_DATA_DIR
#define LYNX_TEST_DATA_DIR "tests/data"
#endif

#define PATH "config.early_termination"

#define S_FIXTURE static __attribute__((unused))

//  ---------------------------------------------------------------------------------------
//  Helpers: rules from YAML, and telemetry frames written as "name=value name=value".

S_FIXTURE lynx_value_t *s_yaml(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_yaml_parse(text, strlen(text), &err);
    if (!value)
        fail_msg("bad test YAML: %s\n%s", err.message, text);
    return value;
}

S_FIXTURE void s_print_problems(const lynx_value_t *list)
{
    for (size_t i = 0; i < lynx_value_size(list); i++)
        fprintf(stderr, "  %s: %s\n", lynx_value_get_string(lynx_value_at(list, i), "field", ""),
                lynx_value_get_string(lynx_value_at(list, i), "message", ""));
}

//  Rules from a value that must be valid, with neither errors nor warnings.
S_FIXTURE lynx_rules_t *s_rules_from(const lynx_value_t *early_termination)
{
    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    lynx_rules_t *rules = lynx_rules_new(early_termination, PATH, errors, warnings);
    if (!rules || lynx_value_size(errors) || lynx_value_size(warnings)) {
        s_print_problems(errors);
        s_print_problems(warnings);
        fail_msg("rules refused or warned");
    }
    lynx_value_destroy(&errors);
    lynx_value_destroy(&warnings);
    return rules;
}

S_FIXTURE lynx_rules_t *s_rules(const char *yaml)
{
    lynx_value_t *value = s_yaml(yaml);
    lynx_rules_t *rules = s_rules_from(value);
    lynx_value_destroy(&value);
    return rules;
}

//  Variables a frame does not mention have not been seen; "nan" reads as NaN.
typedef struct {
    char names[8][64];
    double values[8];
    size_t count;
    size_t lookups; //  calls to s_lookup
} s_frame_t;

S_FIXTURE void s_frame_parse(const char *text, s_frame_t *frame)
{
    memset(frame, 0, sizeof *frame);
    const char *at = text;
    while (*at) {
        at += strspn(at, " ");
        size_t name_len = strcspn(at, "=");
        if (!*at || !at[name_len] || name_len >= sizeof frame->names[0] || frame->count >= 8)
            break;
        memcpy(frame->names[frame->count], at, name_len);
        char *end = NULL;
        frame->values[frame->count++] = strtod(at + name_len + 1, &end);
        at = end;
    }
}

S_FIXTURE bool s_lookup(const char *variable, double *value, void *arg)
{
    s_frame_t *frame = arg;
    frame->lookups++;
    for (size_t i = 0; i < frame->count; i++)
        if (strcmp(frame->names[i], variable) == 0) {
            *value = frame->values[i];
            return true;
        }
    return false;
}

//  The rule that fires on frame, or NULL. Evaluates the three ways the runner can (lookup,
//  values with seen flags, values with NaN for unseen) and insists they agree.
S_FIXTURE const char *s_fire(const lynx_rules_t *rules, const char *text)
{
    s_frame_t frame;
    s_frame_parse(text, &frame);
    const char *fired = lynx_rules_evaluate(rules, s_lookup, &frame);

    //  values: unseen slots hold junk that seen[] must hide; nans: unseen slots hold NaN.
    double values[64], nans[64];
    bool seen[64];
    size_t count = lynx_rules_variable_count(rules);
    assert_true(count <= 64);
    for (size_t i = 0; i < count; i++) {
        values[i] = i % 2 ? -1e300 : 1e300;
        nans[i] = NAN;
        seen[i] = false;
    }
    for (size_t i = 0; i < frame.count; i++) {
        int index = lynx_rules_variable_index(rules, frame.names[i]);
        if (index >= 0) {
            values[index] = nans[index] = frame.values[i];
            seen[index] = true;
        }
    }
    int with_seen = lynx_rules_evaluate_values(rules, values, seen);
    int with_nan = lynx_rules_evaluate_values(rules, nans, NULL);
    assert_int_equal(with_seen, with_nan);
    if (with_seen != lynx_rules_find(rules, fired))
        fail_msg("frame '%s': lookup fired %s, values fired rule %d", text,
                 fired ? fired : "nothing", with_seen);
    return fired;
}

S_FIXTURE void s_expect_fire(const lynx_rules_t *rules, const char *frame, const char *expected)
{
    const char *fired = s_fire(rules, frame);
    if (fired != expected && (!fired || !expected || strcmp(fired, expected) != 0))
        fail_msg("frame '%s': fired %s, expected %s", frame, fired ? fired : "nothing",
                 expected ? expected : "nothing");
}

typedef struct {
    const char *frame;
    const char *fires; //  rule name, or NULL for none
} s_case_t;

//  Each case of a NULL-terminated table against one set of rules.
S_FIXTURE void s_expect_cases(const lynx_rules_t *rules, const s_case_t cases[])
{
    for (size_t i = 0; cases[i].frame; i++)
        s_expect_fire(rules, cases[i].frame, cases[i].fires);
}

typedef struct {
    const char *field;
    const char *message;
} s_problem_t;

#define MAX_PROBLEMS 8

S_FIXTURE void s_assert_problems(const char *title, const lynx_value_t *list,
                                 const s_problem_t expected[MAX_PROBLEMS])
{
    size_t count = 0;
    while (count < MAX_PROBLEMS && expected[count].field)
        count++;
    for (size_t i = 0; i < count || i < lynx_value_size(list); i++) {
        const lynx_value_t *problem = lynx_value_at(list, i);
        const char *field = lynx_value_get_string(problem, "field", "(none)");
        const char *message = lynx_value_get_string(problem, "message", "(none)");
        const char *want_field = i < count ? expected[i].field : "(none)";
        const char *want_message = i < count ? expected[i].message : "(none)";
        if (strcmp(field, want_field) != 0 || strcmp(message, want_message) != 0)
            fail_msg("%s: problem %zu is \"%s: %s\", expected \"%s: %s\"", title, i, field, message,
                     want_field, want_message);
    }
}

#endif
