//  broker_study_check: a batch config checked into a study description.
//
//  Validation walks the config once, section by section, and reports every problem it meets
//  instead of stopping at the first, so a user fixes a config in one round trip. Each check
//  reads what it can and leaves defaults where a value is missing or wrong; a config with any
//  error is thrown away at the end, so nothing half-checked is ever sampled.
#include "broker_study_check.h"

#include "broker_telemetry.h"
#include "lynx_rules.h"
#include "broker_sobol.h"
#include "lynx_err.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_RUNS_MAX 10000000
#define S_TIMEOUT_SECS_MAX 2592000 //  30 days
#define S_RETRIES_MAX 100
#define S_PRIORITY_MAX 1000
//  Phi (-38) = 2.9e-316 is nearly the smallest double: an interval wholly past 38 standard
//  deviations on one side has a probability no double tells apart from 0.
#define S_TRUNCATION_SIGMAS_MAX 38.0
//  Smallest Cholesky pivot accepted: below it the matrix is singular to working precision.
#define S_PIVOT_MIN 1e-12

static const char *const s_method_names[] = {
    [BROKER_METHOD_MONTE_CARLO] = "monte_carlo",
    [BROKER_METHOD_LATIN_HYPERCUBE] = "latin_hypercube",
    [BROKER_METHOD_QUASI_MONTE_CARLO] = "quasi_monte_carlo",
    NULL,
};

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

static const char *const s_config_fields[] = {"simulation",   "monte_carlo", "dispersions",
                                              "correlations", "compute",     "early_termination",
                                              "telemetry",    NULL};
static const char *const s_simulation_fields[] = {"name", "version", "duration_minutes", NULL};
static const char *const s_monte_carlo_fields[] = {"runs", "seed", "sampling_method", "scramble",
                                                   NULL};
static const char *const s_dispersion_fields[] = {"distribution", "units", NULL};
static const char *const s_correlation_fields[] = {"a", "b", "rank_correlation", NULL};
static const char *const s_compute_fields[] = {"max_parallel_jobs",
                                               "job_timeout_seconds",
                                               "max_retries",
                                               "engine",
                                               "container",
                                               "required_capabilities",
                                               "gpu",
                                               "priority",
                                               NULL};

const char *broker_study_method_name(broker_method_t method)
{
    return method < BROKER_METHOD_COUNT ? s_method_names[method] : NULL;
}

//  ---------------------------------------------------------------------------------------
//  Reporting. Problems are counted here rather than in the caller's arrays, which may already
//  hold entries or be NULL.

typedef struct {
    lynx_value_t *errors;
    lynx_value_t *warnings;
    size_t error_count;
    bool out_of_memory;
} s_check_t;

//  Flags for the typed getters below. S_NO_MAX: the integer has no upper bound of its own
//  (only int64's), so a value below the minimum reads "must be >= min".
enum { S_OPTIONAL = 0, S_REQUIRED = 1, S_NON_EMPTY = 2, S_NO_MAX = 4 };

//  A field path in a new string: path + "." + key, or path + "[index]" when key is NULL.
//  NULL on out-of-memory.
static char *s_path_join(s_check_t *check, const char *path, const char *key, size_t index)
{
    char *joined = NULL;
    int rc =
        key ? asprintf(&joined, "%s.%s", path, key) : asprintf(&joined, "%s[%zu]", path, index);
    if (rc < 0) {
        check->out_of_memory = true;
        return NULL;
    }
    return joined;
}

//  Appends {field: path[.key], message} to list. Running out of memory here is remembered,
//  so the study still fails instead of passing with a lost error.
static void s_report(s_check_t *check, lynx_value_t *list, const char *path, const char *key,
                     const char *message)
{
    if (!list)
        return;
    char *field = key ? s_path_join(check, path, key, 0) : strdup(path);
    lynx_value_t *entry = lynx_value_map();
    if (!field || lynx_value_set_string(entry, "field", field) ||
        lynx_value_set_string(entry, "message", message) || lynx_value_append(list, &entry))
        check->out_of_memory = true;
    lynx_value_destroy(&entry);
    free(field);
}

//  Records an error at path.key (key may be NULL). Always returns -1.
static int s_error(s_check_t *check, const char *path, const char *key, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
static int s_error(s_check_t *check, const char *path, const char *key, const char *format, ...)
{
    check->error_count++;
    char message[LYNX_ERR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    s_report(check, check->errors, path, key, message);
    return -1;
}

static char *s_strdup(s_check_t *check, const char *string)
{
    char *copy = strdup(string);
    if (!copy)
        check->out_of_memory = true;
    return copy;
}

static int s_name_index(const char *name, const char *const names[])
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

//  "a, b, c" into buffer, for messages that list what is accepted.
static const char *s_name_list(char *buffer, size_t size, const char *const names[])
{
    size_t used = 0;
    buffer[0] = '\0';
    for (int i = 0; names[i] && used < size; i++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%s", i ? ", " : "", names[i]);
    return buffer;
}

static void s_warn_unknown(s_check_t *check, const lynx_value_t *map, const char *path,
                           const char *const known[])
{
    for (size_t i = 0; i < lynx_value_size(map); i++) {
        const char *key = lynx_value_key_at(map, i);
        if (s_name_index(key, known) < 0)
            s_report(check, check->warnings, path, key, "unknown field (ignored)");
    }
}

//  ---------------------------------------------------------------------------------------
//  Typed getters. Each returns 1 and sets *value when the member is present and valid, 0 when
//  it is absent and optional (leaving *value, the default, alone), and -1 after reporting an
//  error. JSON null counts as absent: clients that serialise an unset field as null mean "use
//  the default".

static const lynx_value_t *s_member(const lynx_value_t *map, const char *key)
{
    const lynx_value_t *member = lynx_value_get(map, key);
    return lynx_value_type(member) == LYNX_VALUE_NULL ? NULL : member;
}

static int s_absent(s_check_t *check, const char *path, const char *key, int flags)
{
    return flags & S_REQUIRED ? s_error(check, path, key, "required") : 0;
}

static int s_get_typed(s_check_t *check, const lynx_value_t *map, const char *path, const char *key,
                       int flags, lynx_value_type_t type, const char *what,
                       const lynx_value_t **value)
{
    const lynx_value_t *member = s_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    if (lynx_value_type(member) != type)
        return s_error(check, path, key, "must be %s", what);
    *value = member;
    return 1;
}

static int s_get_object(s_check_t *check, const lynx_value_t *map, const char *path,
                        const char *key, int flags, const lynx_value_t **value)
{
    return s_get_typed(check, map, path, key, flags, LYNX_VALUE_MAP, "an object", value);
}

static int s_get_array(s_check_t *check, const lynx_value_t *map, const char *path, const char *key,
                       int flags, const lynx_value_t **value)
{
    return s_get_typed(check, map, path, key, flags, LYNX_VALUE_ARRAY, "an array", value);
}

static int s_get_bool(s_check_t *check, const lynx_value_t *map, const char *path, const char *key,
                      bool *value)
{
    const lynx_value_t *member = NULL;
    int rc = s_get_typed(check, map, path, key, S_OPTIONAL, LYNX_VALUE_BOOL, "a boolean", &member);
    if (rc == 1)
        *value = lynx_value_as_bool(member);
    return rc;
}

static int s_get_string(s_check_t *check, const lynx_value_t *map, const char *path,
                        const char *key, int flags, const char **value)
{
    const lynx_value_t *member = NULL;
    int rc = s_get_typed(check, map, path, key, flags, LYNX_VALUE_STRING, "a string", &member);
    if (rc != 1)
        return rc;
    if ((flags & S_NON_EMPTY) && lynx_value_string_len(member) == 0)
        return s_error(check, path, key, "must not be empty");
    *value = lynx_value_as_string(member);
    return 1;
}

//  A number that is finite: JSON has no NaN or infinity, but msgpack and YAML do.
static int s_check_number(s_check_t *check, const lynx_value_t *member, const char *path,
                          const char *key, double *value)
{
    if (!lynx_value_is_number(member))
        return s_error(check, path, key, "must be a number");
    double number = lynx_value_as_double(member);
    if (!isfinite(number))
        return s_error(check, path, key, "must be a finite number");
    *value = number;
    return 1;
}

static int s_get_number(s_check_t *check, const lynx_value_t *map, const char *path,
                        const char *key, int flags, double *value)
{
    const lynx_value_t *member = s_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    return s_check_number(check, member, path, key, value);
}

//  A required number > 0.
static int s_get_positive(s_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, double *value)
{
    int rc = s_get_number(check, map, path, key, S_REQUIRED, value);
    if (rc == 1 && !(*value > 0))
        return s_error(check, path, key, "must be > 0");
    return rc;
}

//  JSON has one number type, so a double holding an exact integer (500.0) is an integer too.
static int s_get_integer(s_check_t *check, const lynx_value_t *map, const char *path,
                         const char *key, int flags, int64_t min, int64_t max, int64_t *value)
{
    const lynx_value_t *member = s_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    int64_t number = 0;
    bool in_range;
    if (lynx_value_type(member) == LYNX_VALUE_INT) {
        number = lynx_value_as_int(member);
        in_range = true;
    } else {
        double real = lynx_value_as_double(member);
        if (lynx_value_type(member) != LYNX_VALUE_DOUBLE || !isfinite(real) || real != trunc(real))
            return s_error(check, path, key, "must be an integer");
        //  [-2^63, 2^63) are the doubles that convert to int64_t.
        in_range = real >= -0x1p63 && real < 0x1p63;
        number = in_range ? (int64_t)real : 0;
    }
    if (!in_range || number < min || number > max) {
        if ((flags & S_NO_MAX) && in_range && number < min)
            return s_error(check, path, key, "must be >= %" PRId64, min);
        return s_error(check, path, key, "must be between %" PRId64 " and %" PRId64, min, max);
    }
    *value = number;
    return 1;
}

//  ---------------------------------------------------------------------------------------
//  simulation, monte_carlo

static void s_check_simulation(broker_study_config_t *self, s_check_t *check,
                               const lynx_value_t *config)
{
    const char *path = "config.simulation";
    const lynx_value_t *simulation = NULL;
    if (s_get_object(check, config, "config", "simulation", S_REQUIRED, &simulation) != 1)
        return;
    s_warn_unknown(check, simulation, path, s_simulation_fields);

    const char *name = NULL, *version = NULL;
    if (s_get_string(check, simulation, path, "name", S_REQUIRED | S_NON_EMPTY, &name) == 1)
        self->simulation_name = s_strdup(check, name);
    if (s_get_string(check, simulation, path, "version", S_OPTIONAL, &version) == 1)
        self->simulation_version = s_strdup(check, version);
    double duration = 0;
    if (s_get_number(check, simulation, path, "duration_minutes", S_OPTIONAL, &duration) == 1) {
        if (duration > 0)
            self->duration_minutes = duration;
        else
            s_error(check, path, "duration_minutes", "must be > 0");
    }
}

static void s_check_monte_carlo(broker_study_config_t *self, s_check_t *check,
                                const lynx_value_t *config, bool *seed_given)
{
    const char *path = "config.monte_carlo";
    const lynx_value_t *monte_carlo = NULL;
    if (s_get_object(check, config, "config", "monte_carlo", S_REQUIRED, &monte_carlo) != 1)
        return;
    s_warn_unknown(check, monte_carlo, path, s_monte_carlo_fields);

    s_get_integer(check, monte_carlo, path, "runs", S_REQUIRED, 1, S_RUNS_MAX, &self->runs);
    int64_t seed = 0;
    if (s_get_integer(check, monte_carlo, path, "seed", S_OPTIONAL, 0, INT64_MAX, &seed) == 1) {
        self->seed = (uint64_t)seed;
        *seed_given = true;
    }
    const char *method = NULL;
    if (s_get_string(check, monte_carlo, path, "sampling_method", S_OPTIONAL, &method) == 1) {
        int index = s_name_index(method, s_method_names);
        char names[128];
        if (index >= 0)
            self->method = (broker_method_t)index;
        else
            s_error(check, path, "sampling_method",
                    "unknown sampling method '%.64s' (supported: %s)", method,
                    s_name_list(names, sizeof names, s_method_names));
    }
    if (s_get_bool(check, monte_carlo, path, "scramble", &self->scramble) == 1 &&
        self->method != BROKER_METHOD_QUASI_MONTE_CARLO)
        s_report(check, check->warnings, path, "scramble",
                 "only quasi_monte_carlo is scrambled (ignored)");
}

//  ---------------------------------------------------------------------------------------
//  Distributions: one short check per type. Each reads the parameters into spec and reports
//  what is missing, mistyped or out of range.

typedef void s_dist_check_fn(s_check_t *check, broker_study_dimension_t *dimension,
                             const lynx_value_t *map, const char *path);

//  min < max with a finite width. optional: absent bounds keep the spec's defaults.
static bool s_check_range(s_check_t *check, broker_dist_spec_t *spec, const lynx_value_t *map,
                          const char *path, int flags)
{
    bool min_ok = s_get_number(check, map, path, "min", flags, &spec->min) >= 0;
    bool max_ok = s_get_number(check, map, path, "max", flags, &spec->max) >= 0;
    if (!min_ok || !max_ok)
        return false;
    if (!(spec->min < spec->max))
        return s_error(check, path, "min", "must be less than max") == 0;
    if (!isfinite(spec->max - spec->min))
        return s_error(check, path, "max", "max - min must be a finite number") == 0;
    return true;
}

static void s_check_uniform(s_check_t *check, broker_study_dimension_t *dimension,
                            const lynx_value_t *map, const char *path)
{
    s_check_range(check, &dimension->spec, map, path, S_REQUIRED);
}

static void s_check_normal(s_check_t *check, broker_study_dimension_t *dimension,
                           const lynx_value_t *map, const char *path)
{
    s_get_number(check, map, path, "mean", S_REQUIRED, &dimension->spec.mean);
    s_get_positive(check, map, path, "std_dev", &dimension->spec.std_dev);
}

static void s_check_truncated_normal(s_check_t *check, broker_study_dimension_t *dimension,
                                     const lynx_value_t *map, const char *path)
{
    broker_dist_spec_t *spec = &dimension->spec;
    bool mean_ok = s_get_number(check, map, path, "mean", S_REQUIRED, &spec->mean) == 1;
    bool sd_ok = s_get_positive(check, map, path, "std_dev", &spec->std_dev) == 1;
    if (!s_check_range(check, spec, map, path, S_REQUIRED) || !mean_ok || !sd_ok)
        return;
    double a = (spec->min - spec->mean) / spec->std_dev;
    double b = (spec->max - spec->mean) / spec->std_dev;
    if (a > S_TRUNCATION_SIGMAS_MAX || b < -S_TRUNCATION_SIGMAS_MAX)
        s_error(check, path, NULL,
                "[min, max] lies wholly more than %.0f standard deviations %s the mean: its "
                "probability underflows",
                S_TRUNCATION_SIGMAS_MAX, a > 0 ? "above" : "below");
}

//  Either mu and sigma (of ln X) or mean and std_dev (of X itself), never a mix.
static void s_check_lognormal(s_check_t *check, broker_study_dimension_t *dimension,
                              const lynx_value_t *map, const char *path)
{
    broker_dist_spec_t *spec = &dimension->spec;
    bool logarithmic = s_member(map, "mu") || s_member(map, "sigma");
    bool moments = s_member(map, "mean") || s_member(map, "std_dev");
    if (logarithmic && moments) {
        s_error(check, path, NULL, "give either mu and sigma or mean and std_dev, not both");
        return;
    }
    if (!moments) {
        s_get_number(check, map, path, "mu", S_REQUIRED, &spec->mu);
        s_get_positive(check, map, path, "sigma", &spec->sigma);
        return;
    }
    double mean = 0, std_dev = 0;
    bool mean_ok = s_get_positive(check, map, path, "mean", &mean) == 1;
    if (s_get_positive(check, map, path, "std_dev", &std_dev) != 1 || !mean_ok)
        return;
    broker_dist_lognormal_from_moments(mean, std_dev, &spec->mu, &spec->sigma);
    if (!(spec->sigma > 0) || !isfinite(spec->sigma))
        s_error(check, path, "std_dev", "std_dev / mean must be between 1e-150 and 1e150");
}

static void s_check_triangular(s_check_t *check, broker_study_dimension_t *dimension,
                               const lynx_value_t *map, const char *path)
{
    broker_dist_spec_t *spec = &dimension->spec;
    bool mode_ok = s_get_number(check, map, path, "mode", S_REQUIRED, &spec->mode) == 1;
    if (s_check_range(check, spec, map, path, S_REQUIRED) && mode_ok &&
        !(spec->min <= spec->mode && spec->mode <= spec->max))
        s_error(check, path, "mode", "must be between min and max");
}

static void s_check_exponential(s_check_t *check, broker_study_dimension_t *dimension,
                                const lynx_value_t *map, const char *path)
{
    s_get_positive(check, map, path, "rate", &dimension->spec.rate);
}

static void s_check_beta(s_check_t *check, broker_study_dimension_t *dimension,
                         const lynx_value_t *map, const char *path)
{
    broker_dist_spec_t *spec = &dimension->spec;
    s_get_positive(check, map, path, "alpha", &spec->alpha);
    s_get_positive(check, map, path, "beta", &spec->beta);
    spec->min = 0.0;
    spec->max = 1.0;
    s_check_range(check, spec, map, path, S_OPTIONAL);
}

//  A value a run can carry as is: a finite number or a string.
static bool s_check_scalar(s_check_t *check, const lynx_value_t *value, const char *path,
                           const char *key)
{
    double number;
    if (lynx_value_type(value) == LYNX_VALUE_STRING)
        return true;
    if (!lynx_value_is_number(value))
        return s_error(check, path, key, "must be a number or a string") == 0;
    return s_check_number(check, value, path, key, &number) == 1;
}

static void s_check_weights(s_check_t *check, broker_study_dimension_t *dimension,
                            const lynx_value_t *weights, const char *path, size_t count)
{
    char *weights_path = s_path_join(check, path, "weights", 0);
    if (!weights_path)
        return;
    if (lynx_value_size(weights) != count) {
        s_error(check, weights_path, NULL, "must have one entry per value (%zu)", count);
        free(weights_path);
        return;
    }
    dimension->weights = calloc(count, sizeof *dimension->weights);
    if (!dimension->weights)
        check->out_of_memory = true;
    bool ok = true;
    double total = 0.0;
    for (size_t k = 0; k < count; k++) {
        char *field = s_path_join(check, weights_path, NULL, k);
        double weight = 0;
        if (!field || s_check_number(check, lynx_value_at(weights, k), field, NULL, &weight) < 0)
            ok = false;
        else if (weight < 0)
            ok = s_error(check, field, NULL, "must be >= 0") == 0;
        if (dimension->weights)
            dimension->weights[k] = weight;
        total += weight;
        free(field);
    }
    if (ok && !(total > 0))
        s_error(check, weights_path, NULL, "must not all be zero");
    else if (ok && !isfinite(total))
        s_error(check, weights_path, NULL, "must have a finite sum");
    dimension->spec.weights = dimension->weights;
    free(weights_path);
}

static void s_check_choice(s_check_t *check, broker_study_dimension_t *dimension,
                           const lynx_value_t *map, const char *path)
{
    const lynx_value_t *values = NULL, *weights = NULL;
    int have_weights = s_get_array(check, map, path, "weights", S_OPTIONAL, &weights);
    if (s_get_array(check, map, path, "values", S_REQUIRED, &values) != 1)
        return;
    size_t count = lynx_value_size(values);
    if (count == 0) {
        s_error(check, path, "values", "must not be empty");
        return;
    }
    char *values_path = s_path_join(check, path, "values", 0);
    for (size_t k = 0; values_path && k < count; k++) {
        char *field = s_path_join(check, values_path, NULL, k);
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

static void s_check_constant(s_check_t *check, broker_study_dimension_t *dimension,
                             const lynx_value_t *map, const char *path)
{
    const lynx_value_t *value = s_member(map, "value");
    if (!value) {
        s_error(check, path, "value", "required");
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

static void s_check_distribution(s_check_t *check, broker_study_dimension_t *dimension,
                                 const lynx_value_t *map, const char *path)
{
    const char *type = NULL;
    if (s_get_string(check, map, path, "type", S_REQUIRED, &type) != 1)
        return;
    int index = broker_dist_type_parse(type);
    if (index < 0) {
        const char *names[BROKER_DIST_TYPE_COUNT + 1] = {NULL};
        for (int i = 0; i < BROKER_DIST_TYPE_COUNT; i++)
            names[i] = broker_dist_type_name((broker_dist_type_t)i);
        char list[256];
        s_error(check, path, "type", "unknown distribution type '%.64s' (supported: %s)", type,
                s_name_list(list, sizeof list, names));
        return;
    }
    s_warn_unknown(check, map, path, s_dist_fields[index]);
    dimension->spec.type = (broker_dist_type_t)index;
    s_dist_checks[index](check, dimension, map, path);
}

//  ---------------------------------------------------------------------------------------
//  dispersions

//  Dimension names become keys of the run parameters that scenarios read, often as variable
//  or column names, so they are plain identifiers.
static bool s_is_identifier(const char *name)
{
    for (const char *c = name; *c; c++) {
        bool letter = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_';
        if (!letter && !(c > name && *c >= '0' && *c <= '9'))
            return false;
    }
    return *name != '\0';
}

static void s_check_dispersion(s_check_t *check, broker_study_dimension_t *dimension,
                               const char *name, const lynx_value_t *entry)
{
    char *path = s_path_join(check, "config.dispersions", name, 0);
    dimension->name = s_strdup(check, name);
    if (!path)
        return;
    if (!s_is_identifier(name))
        s_error(check, path, NULL, "must be a valid identifier ([A-Za-z_][A-Za-z0-9_]*)");
    if (lynx_value_type(entry) != LYNX_VALUE_MAP) {
        s_error(check, path, NULL, "must be an object");
        free(path);
        return;
    }
    s_warn_unknown(check, entry, path, s_dispersion_fields);

    const char *units = NULL;
    s_get_string(check, entry, path, "units", S_OPTIONAL, &units);
    const lynx_value_t *distribution = NULL;
    if (s_get_object(check, entry, path, "distribution", S_REQUIRED, &distribution) == 1) {
        char *dist_path = s_path_join(check, path, "distribution", 0);
        if (dist_path)
            s_check_distribution(check, dimension, distribution, dist_path);
        free(dist_path);
    }
    free(path);
}

static void s_check_dispersions(broker_study_config_t *self, s_check_t *check,
                                const lynx_value_t *config)
{
    const lynx_value_t *dispersions = NULL;
    if (s_get_object(check, config, "config", "dispersions", S_REQUIRED, &dispersions) != 1)
        return;
    size_t count = lynx_value_size(dispersions);
    if (count == 0) {
        s_error(check, "config", "dispersions", "must have at least one entry");
        return;
    }
    self->dimensions = calloc(count, sizeof *self->dimensions);
    if (!self->dimensions) {
        check->out_of_memory = true;
        return;
    }
    self->dimension_count = count;
    for (size_t i = 0; i < count; i++)
        s_check_dispersion(check, &self->dimensions[i], lynx_value_key_at(dispersions, i),
                           lynx_value_at(dispersions, i));
    if (self->method == BROKER_METHOD_QUASI_MONTE_CARLO && count > BROKER_SOBOL_MAX_DIMENSIONS)
        s_error(check, "config", "dispersions",
                "quasi_monte_carlo supports at most %d dispersions (got %zu)",
                BROKER_SOBOL_MAX_DIMENSIONS, count);
}

//  ---------------------------------------------------------------------------------------
//  correlations: a list of {a, b, rank_correlation} pairs, gathered into the matrix of the
//  dimensions they name. Unnamed pairs are 0; the matrix must be positive definite for
//  Iman-Conover to have a Cholesky factor, so that is checked here, at submission.

static bool s_is_positive_definite(const double *matrix, size_t n)
{
    double *factor = calloc(n * n, sizeof *factor);
    if (!factor)
        return false;
    bool positive = true;
    for (size_t j = 0; positive && j < n; j++) {
        double pivot = matrix[j * n + j];
        for (size_t k = 0; k < j; k++)
            pivot -= factor[j * n + k] * factor[j * n + k];
        if (!(pivot > S_PIVOT_MIN)) {
            positive = false;
            break;
        }
        factor[j * n + j] = sqrt(pivot);
        for (size_t i = j + 1; i < n; i++) {
            double sum = matrix[i * n + j];
            for (size_t k = 0; k < j; k++)
                sum -= factor[i * n + k] * factor[j * n + k];
            factor[i * n + j] = sum / factor[j * n + j];
        }
    }
    free(factor);
    return positive;
}

static int s_dimension_index(const broker_study_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->dimension_count; i++)
        if (self->dimensions[i].name && strcmp(self->dimensions[i].name, name) == 0)
            return (int)i;
    return -1;
}

//  The dimension named by entry.key, or -1 after reporting why there is none.
static int s_check_pair_member(broker_study_config_t *self, s_check_t *check,
                               const lynx_value_t *entry, const char *path, const char *key)
{
    const char *name = NULL;
    if (s_get_string(check, entry, path, key, S_REQUIRED, &name) != 1)
        return -1;
    int index = s_dimension_index(self, name);
    if (index < 0 && self->dimensions) //  without dispersions every name is unknown
        s_error(check, path, key, "unknown dispersion '%.64s'", name);
    return index;
}

typedef struct {
    int a, b; //  dimension indices, -1 when the entry names none
    double r;
} s_pair_t;

//  Gathers checked pairs into the matrix of the dimensions they name, in dimension order.
static void s_build_correlation(broker_study_config_t *self, s_check_t *check,
                                const s_pair_t *pairs, size_t pair_count)
{
    size_t n = self->dimension_count, m = 0;
    size_t *row = calloc(n, sizeof *row); //  dimension -> 1 + its row in the matrix, or 0
    self->correlated = calloc(n, sizeof *self->correlated);
    if (!row || !self->correlated) {
        check->out_of_memory = true;
        free(row);
        return;
    }
    for (size_t k = 0; k < pair_count; k++)
        row[pairs[k].a] = row[pairs[k].b] = 1;
    for (size_t i = 0; i < n; i++)
        if (row[i]) {
            self->correlated[m] = i;
            row[i] = ++m;
        }
    self->correlation = calloc(m * m, sizeof *self->correlation);
    if (!self->correlation) {
        check->out_of_memory = true;
        free(row);
        return;
    }
    self->correlated_count = m;
    for (size_t i = 0; i < m; i++)
        self->correlation[i * m + i] = 1.0;
    for (size_t k = 0; k < pair_count; k++) {
        size_t a = row[pairs[k].a] - 1, b = row[pairs[k].b] - 1;
        self->correlation[a * m + b] = self->correlation[b * m + a] = pairs[k].r;
    }
    free(row);
    if (!s_is_positive_definite(self->correlation, m))
        s_error(check, "config", "correlations", "correlation matrix is not positive definite");
}

//  One {a, b, rank_correlation} entry into *pair; a and b stay -1 unless both are valid.
static void s_check_pair(broker_study_config_t *self, s_check_t *check, const lynx_value_t *entry,
                         const char *path, const s_pair_t *earlier, size_t earlier_count,
                         s_pair_t *pair)
{
    pair->a = pair->b = -1;
    if (lynx_value_type(entry) != LYNX_VALUE_MAP) {
        s_error(check, path, NULL, "must be an object");
        return;
    }
    s_warn_unknown(check, entry, path, s_correlation_fields);
    int a = s_check_pair_member(self, check, entry, path, "a");
    int b = s_check_pair_member(self, check, entry, path, "b");
    if (s_get_number(check, entry, path, "rank_correlation", S_REQUIRED, &pair->r) == 1 &&
        !(pair->r >= -1.0 && pair->r <= 1.0))
        s_error(check, path, "rank_correlation", "must be between -1 and 1");
    if (a < 0 || b < 0)
        return;
    if (a == b) {
        s_error(check, path, "b", "must name a different dispersion than a");
        return;
    }
    for (size_t j = 0; j < earlier_count; j++)
        if ((earlier[j].a == a && earlier[j].b == b) || (earlier[j].a == b && earlier[j].b == a))
            s_error(check, path, NULL,
                    "duplicate pair ('%.64s', '%.64s'), also at config.correlations[%zu]",
                    self->dimensions[a].name, self->dimensions[b].name, j);
    pair->a = a;
    pair->b = b;
}

static void s_check_correlations(broker_study_config_t *self, s_check_t *check,
                                 const lynx_value_t *config)
{
    const lynx_value_t *list = NULL;
    if (s_get_array(check, config, "config", "correlations", S_OPTIONAL, &list) != 1)
        return;
    size_t count = lynx_value_size(list), errors_before = check->error_count;
    if (count == 0)
        return;
    s_pair_t *pairs = calloc(count, sizeof *pairs);
    if (!pairs) {
        check->out_of_memory = true;
        return;
    }
    for (size_t k = 0; k < count; k++) {
        char *path = s_path_join(check, "config.correlations", NULL, k);
        if (path)
            s_check_pair(self, check, lynx_value_at(list, k), path, pairs, k, &pairs[k]);
        free(path);
    }
    //  Without dispersions no name resolves, and that error is already reported.
    if (check->error_count == errors_before && !check->out_of_memory && self->dimensions)
        s_build_correlation(self, check, pairs, count);
    free(pairs);
}

//  ---------------------------------------------------------------------------------------
//  compute, seed, and the whole config

//  compute.required_capabilities: tags every runner of this batch must offer.
static void s_check_capabilities(broker_study_config_t *self, s_check_t *check,
                                 const lynx_value_t *compute, const char *path)
{
    const lynx_value_t *tags = NULL;
    if (s_get_array(check, compute, path, "required_capabilities", S_OPTIONAL, &tags) != 1)
        return;
    size_t count = lynx_value_size(tags);
    self->required_capabilities = calloc(count + 1, sizeof *self->required_capabilities);
    if (!self->required_capabilities) {
        s_error(check, path, "required_capabilities", "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const lynx_value_t *tag = lynx_value_at(tags, i);
        char key[64];
        snprintf(key, sizeof key, "required_capabilities[%zu]", i);
        if (lynx_value_type(tag) != LYNX_VALUE_STRING || lynx_value_string_len(tag) == 0)
            s_error(check, path, key, "must be a non-empty string");
        else
            self->required_capabilities[self->required_capability_count++] =
                s_strdup(check, lynx_value_as_string(tag));
    }
}

static void s_check_compute(broker_study_config_t *self, s_check_t *check,
                            const lynx_value_t *config)
{
    const char *path = "config.compute";
    const lynx_value_t *compute = NULL;
    if (s_get_object(check, config, "config", "compute", S_OPTIONAL, &compute) != 1)
        return;
    s_warn_unknown(check, compute, path, s_compute_fields);

    s_get_integer(check, compute, path, "max_parallel_jobs", S_NO_MAX, 1, INT64_MAX,
                  &self->max_parallel_jobs);
    s_get_integer(check, compute, path, "job_timeout_seconds", S_OPTIONAL, 1, S_TIMEOUT_SECS_MAX,
                  &self->timeout_secs);
    s_get_integer(check, compute, path, "max_retries", S_OPTIONAL, 0, S_RETRIES_MAX,
                  &self->max_retries);
    const char *engine = NULL;
    if (s_get_string(check, compute, path, "engine", S_NON_EMPTY, &engine) == 1)
        self->engine = s_strdup(check, engine);
    //  The container spec belongs to runners that launch containers; we only check its shape.
    const lynx_value_t *container = NULL;
    s_get_object(check, compute, path, "container", S_OPTIONAL, &container);
    s_get_bool(check, compute, path, "gpu", &self->gpu);
    s_get_integer(check, compute, path, "priority", S_OPTIONAL, 1, S_PRIORITY_MAX, &self->priority);
    s_check_capabilities(self, check, compute, path);
}

//  A seed for a study that gave none, masked to 63 bits so it can be submitted back as
//  monte_carlo.seed to re-run the study exactly.
static void s_draw_seed(broker_study_config_t *self, s_check_t *check)
{
    uint64_t bits;
    size_t filled = 0;
    while (filled < sizeof bits) {
        ssize_t rc = getrandom((char *)&bits + filled, sizeof bits - filled, 0);
        if (rc < 0 && errno != EINTR) {
            s_error(check, "config.monte_carlo", "seed",
                    "not given, and drawing one from the OS failed: %s", strerror(errno));
            return;
        }
        filled += rc > 0 ? (size_t)rc : 0;
    }
    self->seed = bits & INT64_MAX;
}

//  A message without its leading "field: " (modules that return one error put the path in
//  both), so the {field, message} pair does not say the path twice.
static const char *s_strip_field(const char *message, const char *field)
{
    size_t len = strlen(field);
    if (len && strncmp(message, field, len) == 0 && strncmp(message + len, ": ", 2) == 0)
        return message + len + 2;
    return message;
}

broker_study_config_t *broker_study_check(const lynx_value_t *config, int64_t runs_override,
                                          lynx_value_t *errors, lynx_value_t *warnings)
{
    s_check_t check = {.errors = errors, .warnings = warnings};
    if (lynx_value_type(config) != LYNX_VALUE_MAP) {
        s_error(&check, "config", NULL, "must be an object");
        return NULL;
    }
    broker_study_config_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_error(&check, "config", NULL, "out of memory");
        return NULL;
    }
    self->method = BROKER_METHOD_MONTE_CARLO;
    self->timeout_secs = 3600;
    self->max_retries = 3;
    self->priority = 1;

    bool seed_given = false;
    s_warn_unknown(&check, config, "config", s_config_fields);
    s_check_simulation(self, &check, config);
    s_check_monte_carlo(self, &check, config, &seed_given);
    s_check_dispersions(self, &check, config);
    s_check_correlations(self, &check, config);
    s_check_compute(self, &check, config);
    const lynx_value_t *section = NULL;
    if (s_get_object(&check, config, "config", "early_termination", S_OPTIONAL, &section) == 1) {
        //  The runner evaluates these rules; refuse at submit what it could not parse.
        lynx_rules_t *rules =
            lynx_rules_new(section, "config.early_termination", check.errors, check.warnings);
        if (!rules)
            check.error_count++; //  its errors are already in check.errors
        lynx_rules_destroy(&rules);
    }
    if (s_get_object(&check, config, "config", "telemetry", S_OPTIONAL, &section) == 1) {
        lynx_err_t err;
        if (broker_telemetry_check_config(section, &err))
            s_error(&check, err.field[0] ? err.field : "config.telemetry", NULL, "%s",
                    s_strip_field(err.message, err.field));
    }

    //  runs_override sits beside config in the request, hence its path.
    if (runs_override > S_RUNS_MAX)
        s_error(&check, "runs_override", NULL, "must be between 1 and %d", S_RUNS_MAX);
    else if (runs_override > 0)
        self->runs = runs_override;
    if (!self->simulation_version)
        self->simulation_version = s_strdup(&check, "");
    if (!self->engine)
        self->engine = s_strdup(&check, "basilisk");
    if (check.error_count == 0 && !seed_given)
        s_draw_seed(self, &check);

    if (check.out_of_memory)
        s_error(&check, "config", NULL, "out of memory while validating");
    if (check.error_count > 0)
        broker_study_config_destroy(&self);
    return self;
}

void broker_study_config_destroy(broker_study_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_study_config_t *self = *self_p;
    for (size_t i = 0; i < self->dimension_count; i++) {
        free(self->dimensions[i].name);
        free(self->dimensions[i].weights);
        lynx_value_destroy(&self->dimensions[i].values);
    }
    free(self->dimensions);
    free(self->correlated);
    free(self->correlation);
    free(self->simulation_name);
    free(self->simulation_version);
    free(self->engine);
    for (size_t i = 0; i < self->required_capability_count; i++)
        free(self->required_capabilities[i]);
    free(self->required_capabilities);
    free(self);
    *self_p = NULL;
}
