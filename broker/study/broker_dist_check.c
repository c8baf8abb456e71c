//  broker_dist_check: the distribution half of broker_study_check. Each distribution type has
//  one short check that reads its parameters into a broker_dist_spec_t and reports what is
//  missing, mistyped or out of range, through the reporting and getters of
//  broker_study_check_internal.h; tables map each type to its check and to the fields it
//  accepts.
#include "broker_study_check_internal.h"

#include <math.h>
#include <stdlib.h>

//  Phi (-38) = 2.9e-316 is nearly the smallest double: an interval wholly past 38 standard
//  deviations on one side has a probability no double tells apart from 0.
#define S_TRUNCATION_SIGMAS_MAX 38.0

//  The fields each distribution type accepts; anything else draws a warning.
static const char *const s_dist_fields[BROKER_DIST_TYPE_COUNT][6] = {
    [BROKER_DIST_UNIFORM] = {"type", "min", "max", NULL},
    [BROKER_DIST_NORMAL] = {"type", "mean", "std_dev", NULL},
    [BROKER_DIST_TRUNCATED_NORMAL] = {"type", "mean", "std_dev", "min", "max", NULL},
    [BROKER_DIST_LOGNORMAL] = {"type", "mu", "sigma", "mean", "std_dev", NULL},
    [BROKER_DIST_TRIANGULAR] = {"type", "min", "mode", "max", NULL},
    [BROKER_DIST_EXPONENTIAL] = {"type", "rate", NULL},
    [BROKER_DIST_BETA] = {"type", "alpha", "beta", "min", "max", NULL},
    [BROKER_DIST_CHOICE] = {"type", "values", "weights", NULL},
    [BROKER_DIST_CONSTANT] = {"type", "value", NULL},
};

//  ---------------------------------------------------------------------------------------
//  Distributions: one short check per type. Each reads the parameters into spec and reports
//  what is missing, mistyped or out of range.

typedef void s_dist_check_fn(lynx_check_t *check, broker_study_dimension_t *dimension,
                             const lynx_value_t *map, const char *path);

//  min < max with a finite width. optional: absent bounds keep the spec's defaults.
static bool s_check_range(lynx_check_t *check, broker_dist_spec_t *spec, const lynx_value_t *map,
                          const char *path, int flags)
{
    bool min_ok = lynx_check_get_number(check, map, path, "min", flags, &spec->min) >= 0;
    bool max_ok = lynx_check_get_number(check, map, path, "max", flags, &spec->max) >= 0;
    if (!min_ok || !max_ok)
        return false;
    if (!(spec->min < spec->max))
        return lynx_check_error(check, path, "min", "must be less than max") == 0;
    if (!isfinite(spec->max - spec->min))
        return lynx_check_error(check, path, "max", "max - min must be a finite number") == 0;
    return true;
}

static void s_check_uniform(lynx_check_t *check, broker_study_dimension_t *dimension,
                            const lynx_value_t *map, const char *path)
{
    s_check_range(check, &dimension->spec, map, path, LYNX_CHECK_REQUIRED);
}

static void s_check_normal(lynx_check_t *check, broker_study_dimension_t *dimension,
                           const lynx_value_t *map, const char *path)
{
    lynx_check_get_number(check, map, path, "mean", LYNX_CHECK_REQUIRED, &dimension->spec.mean);
    lynx_check_get_positive(check, map, path, "std_dev", &dimension->spec.std_dev);
}

static void s_check_truncated_normal(lynx_check_t *check, broker_study_dimension_t *dimension,
                                     const lynx_value_t *map, const char *path)
{
    broker_dist_spec_t *spec = &dimension->spec;
    bool mean_ok =
        lynx_check_get_number(check, map, path, "mean", LYNX_CHECK_REQUIRED, &spec->mean) == 1;
    bool sd_ok = lynx_check_get_positive(check, map, path, "std_dev", &spec->std_dev) == 1;
    if (!s_check_range(check, spec, map, path, LYNX_CHECK_REQUIRED) || !mean_ok || !sd_ok)
        return;
    double a = (spec->min - spec->mean) / spec->std_dev;
    double b = (spec->max - spec->mean) / spec->std_dev;
    if (a > S_TRUNCATION_SIGMAS_MAX || b < -S_TRUNCATION_SIGMAS_MAX)
        lynx_check_error(
            check, path, NULL,
            "[min, max] lies wholly more than %.0f standard deviations %s the mean: its "
            "probability underflows",
            S_TRUNCATION_SIGMAS_MAX, a > 0 ? "above" : "below");
}

//  Either mu and sigma (of ln X) or mean and std_dev (of X itself), never a mix.
static void s_check_lognormal(lynx_check_t *check, broker_study_dimension_t *dimension,
                              const lynx_value_t *map, const char *path)
{
    broker_dist_spec_t *spec = &dimension->spec;
    bool logarithmic = lynx_check_member(map, "mu") || lynx_check_member(map, "sigma");
    bool moments = lynx_check_member(map, "mean") || lynx_check_member(map, "std_dev");
    if (logarithmic && moments) {
        lynx_check_error(check, path, NULL,
                         "give either mu and sigma or mean and std_dev, not both");
        return;
    }
    if (!moments) {
        lynx_check_get_number(check, map, path, "mu", LYNX_CHECK_REQUIRED, &spec->mu);
        lynx_check_get_positive(check, map, path, "sigma", &spec->sigma);
        return;
    }
    double mean = 0, std_dev = 0;
    bool mean_ok = lynx_check_get_positive(check, map, path, "mean", &mean) == 1;
    if (lynx_check_get_positive(check, map, path, "std_dev", &std_dev) != 1 || !mean_ok)
        return;
    broker_dist_lognormal_from_moments(mean, std_dev, &spec->mu, &spec->sigma);
    if (!(spec->sigma > 0) || !isfinite(spec->sigma))
        lynx_check_error(check, path, "std_dev", "std_dev / mean must be between 1e-150 and 1e150");
}

static void s_check_triangular(lynx_check_t *check, broker_study_dimension_t *dimension,
                               const lynx_value_t *map, const char *path)
{
    broker_dist_spec_t *spec = &dimension->spec;
    bool mode_ok =
        lynx_check_get_number(check, map, path, "mode", LYNX_CHECK_REQUIRED, &spec->mode) == 1;
    if (s_check_range(check, spec, map, path, LYNX_CHECK_REQUIRED) && mode_ok &&
        !(spec->min <= spec->mode && spec->mode <= spec->max))
        lynx_check_error(check, path, "mode", "must be between min and max");
}

static void s_check_exponential(lynx_check_t *check, broker_study_dimension_t *dimension,
                                const lynx_value_t *map, const char *path)
{
    lynx_check_get_positive(check, map, path, "rate", &dimension->spec.rate);
}

static void s_check_beta(lynx_check_t *check, broker_study_dimension_t *dimension,
                         const lynx_value_t *map, const char *path)
{
    broker_dist_spec_t *spec = &dimension->spec;
    lynx_check_get_positive(check, map, path, "alpha", &spec->alpha);
    lynx_check_get_positive(check, map, path, "beta", &spec->beta);
    spec->min = 0.0;
    spec->max = 1.0;
    s_check_range(check, spec, map, path, LYNX_CHECK_OPTIONAL);
}

//  A value a run can carry as is: a finite number or a string.
static bool s_check_scalar(lynx_check_t *check, const lynx_value_t *value, const char *path,
                           const char *key)
{
    double number;
    if (lynx_value_type(value) == LYNX_VALUE_STRING)
        return true;
    if (!lynx_value_is_number(value))
        return lynx_check_error(check, path, key, "must be a number or a string") == 0;
    return lynx_check_number(check, value, path, key, &number) == 1;
}

static void s_check_weights(lynx_check_t *check, broker_study_dimension_t *dimension,
                            const lynx_value_t *weights, const char *path, size_t count)
{
    char *weights_path = lynx_check_path_join(check, path, "weights", 0);
    if (!weights_path)
        return;
    if (lynx_value_size(weights) != count) {
        lynx_check_error(check, weights_path, NULL, "must have one entry per value (%zu)", count);
        free(weights_path);
        return;
    }
    dimension->weights = calloc(count, sizeof *dimension->weights);
    if (!dimension->weights)
        check->out_of_memory = true;
    bool ok = true;
    double total = 0.0;
    for (size_t k = 0; k < count; k++) {
        char *field = lynx_check_path_join(check, weights_path, NULL, k);
        double weight = 0;
        if (!field || lynx_check_number(check, lynx_value_at(weights, k), field, NULL, &weight) < 0)
            ok = false;
        else if (weight < 0)
            ok = lynx_check_error(check, field, NULL, "must be >= 0") == 0;
        if (dimension->weights)
            dimension->weights[k] = weight;
        total += weight;
        free(field);
    }
    if (ok && !(total > 0))
        lynx_check_error(check, weights_path, NULL, "must not all be zero");
    else if (ok && !isfinite(total))
        lynx_check_error(check, weights_path, NULL, "must have a finite sum");
    dimension->spec.weights = dimension->weights;
    free(weights_path);
}

static void s_check_choice(lynx_check_t *check, broker_study_dimension_t *dimension,
                           const lynx_value_t *map, const char *path)
{
    const lynx_value_t *values = NULL, *weights = NULL;
    int have_weights =
        lynx_check_get_array(check, map, path, "weights", LYNX_CHECK_OPTIONAL, &weights);
    if (lynx_check_get_array(check, map, path, "values", LYNX_CHECK_REQUIRED, &values) != 1)
        return;
    size_t count = lynx_value_size(values);
    if (count == 0) {
        lynx_check_error(check, path, "values", "must not be empty");
        return;
    }
    char *values_path = lynx_check_path_join(check, path, "values", 0);
    for (size_t k = 0; values_path && k < count; k++) {
        char *field = lynx_check_path_join(check, values_path, NULL, k);
        if (field)
            s_check_scalar(check, lynx_value_at(values, k), field, NULL);
        free(field);
    }
    free(values_path);
    if (have_weights == 1)
        s_check_weights(check, dimension, weights, path, count);
    dimension->spec.count = count;
    dimension->values = lynx_value_dup(values);
    if (!dimension->values)
        check->out_of_memory = true;
}

static void s_check_constant(lynx_check_t *check, broker_study_dimension_t *dimension,
                             const lynx_value_t *map, const char *path)
{
    const lynx_value_t *value = lynx_check_member(map, "value");
    if (!value) {
        lynx_check_error(check, path, "value", "required");
        return;
    }
    if (!s_check_scalar(check, value, path, "value"))
        return;
    //  A string constant has no number; its design column holds 0 and is never read.
    if (lynx_value_is_number(value))
        dimension->spec.value = lynx_value_as_double(value);
    dimension->values = lynx_value_dup(value);
    if (!dimension->values)
        check->out_of_memory = true;
}

static s_dist_check_fn *const s_dist_checks[BROKER_DIST_TYPE_COUNT] = {
    [BROKER_DIST_UNIFORM] = s_check_uniform,
    [BROKER_DIST_NORMAL] = s_check_normal,
    [BROKER_DIST_TRUNCATED_NORMAL] = s_check_truncated_normal,
    [BROKER_DIST_LOGNORMAL] = s_check_lognormal,
    [BROKER_DIST_TRIANGULAR] = s_check_triangular,
    [BROKER_DIST_EXPONENTIAL] = s_check_exponential,
    [BROKER_DIST_BETA] = s_check_beta,
    [BROKER_DIST_CHOICE] = s_check_choice,
    [BROKER_DIST_CONSTANT] = s_check_constant,
};

void broker_dist_check(lynx_check_t *check, broker_study_dimension_t *dimension,
                       const lynx_value_t *map, const char *path)
{
    const char *type = NULL;
    if (lynx_check_get_string(check, map, path, "type", LYNX_CHECK_REQUIRED, &type) != 1)
        return;
    int index = broker_dist_type_parse(type);
    if (index < 0) {
        const char *names[BROKER_DIST_TYPE_COUNT + 1] = {NULL};
        for (int i = 0; i < BROKER_DIST_TYPE_COUNT; i++)
            names[i] = broker_dist_type_name((broker_dist_type_t)i);
        char list[256];
        lynx_check_error(check, path, "type", "unknown distribution type '%.64s' (supported: %s)",
                         type, lynx_check_name_list(list, sizeof list, names));
        return;
    }
    lynx_check_warn_unknown(check, map, path, s_dist_fields[index]);
    dimension->spec.type = (broker_dist_type_t)index;
    s_dist_checks[index](check, dimension, map, path);
}
