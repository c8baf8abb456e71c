//  fuzz_rules: an early_termination block (YAML, which takes JSON too) -> lynx_rules_new, as
//  the broker checks it at submit and the runner compiles it per job; then every accessor and
//  both evaluators over a few telemetry snapshots, including unseen, NaN and infinite values.
#include <stdint.h>
#include <math.h>
#include <stdlib.h>

#include "lynx_rules.h"
#include "lynx_yaml.h"

//  A snapshot gives variable i the value s_values[(i + shift) % count], or leaves it unseen.
static const double s_values[] = {0.0, -1.0, 1.0, 0.1, 6371.0, -1e300, 1e300, NAN, INFINITY};
#define S_VALUE_COUNT (sizeof s_values / sizeof s_values[0])
#define S_SNAPSHOTS 12

typedef struct {
    const lynx_rules_t *rules;
    size_t shift;
} s_snapshot_t;

//  lynx_rules_lookup_fn over a snapshot: every third variable is unseen.
static bool s_lookup(const char *variable, double *value, void *arg)
{
    const s_snapshot_t *snapshot = (const s_snapshot_t *)arg;
    int index = lynx_rules_variable_index(snapshot->rules, variable);
    if (index < 0 || ((size_t)index + snapshot->shift) % 3 == 0)
        return false;
    *value = s_values[((size_t)index + snapshot->shift) % S_VALUE_COUNT];
    return true;
}

static void s_evaluate(const lynx_rules_t *rules)
{
    size_t count = lynx_rules_variable_count(rules);
    double *values = calloc(count + 1, sizeof *values);
    bool *seen = calloc(count + 1, sizeof *seen);
    for (size_t shift = 0; values && seen && shift < S_SNAPSHOTS; shift++) {
        s_snapshot_t snapshot = {rules, shift};
        for (size_t i = 0; i < count; i++) {
            seen[i] = s_lookup(lynx_rules_variable_name(rules, i), &values[i], &snapshot);
            if (!seen[i])
                values[i] = NAN;
        }
        int fired = lynx_rules_evaluate_values(rules, values, seen);
        const char *name = lynx_rules_evaluate(rules, s_lookup, &snapshot);
        //  The two evaluators are one semantics (seen NULL: unseen values hold NaN).
        if (fired != lynx_rules_evaluate_values(rules, values, NULL) ||
            (fired < 0) != (name == NULL) || (name && lynx_rules_find(rules, name) != fired))
            abort();
    }
    free(values);
    free(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lynx_err_t err;
    lynx_err_clear(&err);
    lynx_value_t *block = lynx_yaml_parse((const char *)data, size, &err);
    if (!block)
        return 0;
    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    lynx_rules_t *rules = lynx_rules_new(block, "config.early_termination", errors, warnings);
    if (rules) {
        (void)lynx_rules_enabled(rules);
        (void)lynx_rules_check_frequency_hz(rules);
        for (size_t i = 0; i <= lynx_rules_count(rules); i++) {
            const char *name = lynx_rules_name(rules, i);
            (void)lynx_rules_description(rules, i);
            if (name && lynx_rules_find(rules, name) != (int)i)
                abort(); //  names are unique
        }
        for (size_t i = 0; i <= lynx_rules_variable_count(rules); i++) {
            const char *variable = lynx_rules_variable_name(rules, i);
            if (variable && lynx_rules_variable_index(rules, variable) != (int)i)
                abort();
        }
        s_evaluate(rules);
    } else if (lynx_value_size(errors) == 0)
        abort(); //  a refusal always says why
    lynx_rules_destroy(&rules);
    lynx_value_destroy(&warnings);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&block);
    return 0;
}
