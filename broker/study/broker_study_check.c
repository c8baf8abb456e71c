//  broker_study_check: a batch config checked into a study description.
//
//  Validation walks the config once, section by section, and reports every problem it meets
//  instead of stopping at the first, so a user fixes a config in one round trip. Each check
//  reads what it can and leaves defaults where a value is missing or wrong; a config with any
//  error is thrown away at the end, so nothing half-checked is ever sampled. Each dispersion's
//  distribution is checked in broker_dist_check.c, with the helpers of
//  broker_study_check_internal.h.
#include "broker_study_check_internal.h"

#include "broker_telemetry_config.h"
#include "lynx_rules.h"

#include "lynx_problems.h"
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
//  Smallest Cholesky pivot accepted: below it the matrix is singular to working precision.
#define S_PIVOT_MIN 1e-12

static const char *const s_method_names[] = {
    [BROKER_METHOD_MONTE_CARLO] = "monte_carlo",
    [BROKER_METHOD_LATIN_HYPERCUBE] = "latin_hypercube",
    [BROKER_METHOD_QUASI_MONTE_CARLO] = "quasi_monte_carlo",
    NULL,
};

static const char *const s_config_fields[] = {"simulation",   "monte_carlo", "dispersions",
                                              "correlations", "compute",     "early_termination",
                                              "telemetry",    "artifacts",   NULL};
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
//  simulation, monte_carlo

static void s_check_simulation(broker_study_config_t *self, lynx_check_t *check,
                               const lynx_value_t *config)
{
    const char *path = "config.simulation";
    const lynx_value_t *simulation = NULL;
    if (lynx_check_get_object(check, config, "config", "simulation", LYNX_CHECK_REQUIRED,
                              &simulation) != 1)
        return;
    lynx_check_warn_unknown(check, simulation, path, s_simulation_fields);

    const char *name = NULL, *version = NULL;
    if (lynx_check_get_string(check, simulation, path, "name",
                              LYNX_CHECK_REQUIRED | LYNX_CHECK_NON_EMPTY, &name) == 1)
        self->simulation_name = lynx_check_strdup(check, name);
    if (lynx_check_get_string(check, simulation, path, "version", LYNX_CHECK_OPTIONAL, &version) ==
        1)
        self->simulation_version = lynx_check_strdup(check, version);
    double duration = 0;
    if (lynx_check_get_number(check, simulation, path, "duration_minutes", LYNX_CHECK_OPTIONAL,
                              &duration) == 1) {
        if (duration > 0)
            self->duration_minutes = duration;
        else
            lynx_check_error(check, path, "duration_minutes", "must be > 0");
    }
}

static void s_check_monte_carlo(broker_study_config_t *self, lynx_check_t *check,
                                const lynx_value_t *config, bool *seed_given)
{
    const char *path = "config.monte_carlo";
    const lynx_value_t *monte_carlo = NULL;
    if (lynx_check_get_object(check, config, "config", "monte_carlo", LYNX_CHECK_REQUIRED,
                              &monte_carlo) != 1)
        return;
    lynx_check_warn_unknown(check, monte_carlo, path, s_monte_carlo_fields);

    lynx_check_get_integer(check, monte_carlo, path, "runs", LYNX_CHECK_REQUIRED, 1, S_RUNS_MAX,
                           &self->runs);
    int64_t seed = 0;
    if (lynx_check_get_integer(check, monte_carlo, path, "seed", LYNX_CHECK_OPTIONAL, 0, INT64_MAX,
                               &seed) == 1) {
        self->seed = (uint64_t)seed;
        *seed_given = true;
    }
    const char *method = NULL;
    if (lynx_check_get_string(check, monte_carlo, path, "sampling_method", LYNX_CHECK_OPTIONAL,
                              &method) == 1) {
        int index = lynx_check_name_index(method, s_method_names);
        char names[128];
        if (index >= 0)
            self->method = (broker_method_t)index;
        else
            lynx_check_error(check, path, "sampling_method",
                             "unknown sampling method '%.64s' (supported: %s)", method,
                             lynx_check_name_list(names, sizeof names, s_method_names));
    }
    if (lynx_check_get_bool(check, monte_carlo, path, "scramble", &self->scramble) == 1 &&
        self->method != BROKER_METHOD_QUASI_MONTE_CARLO)
        lynx_check_warn(check, path, "scramble", "only quasi_monte_carlo is scrambled (ignored)");
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

static void s_check_dispersion(lynx_check_t *check, broker_study_dimension_t *dimension,
                               const char *name, const lynx_value_t *entry)
{
    char *path = lynx_check_path_join(check, "config.dispersions", name, 0);
    dimension->name = lynx_check_strdup(check, name);
    if (!path)
        return;
    if (!s_is_identifier(name))
        lynx_check_error(check, path, NULL, "must be a valid identifier ([A-Za-z_][A-Za-z0-9_]*)");
    if (lynx_value_type(entry) != LYNX_VALUE_MAP) {
        lynx_check_error(check, path, NULL, "must be an object");
        free(path);
        return;
    }
    lynx_check_warn_unknown(check, entry, path, s_dispersion_fields);

    const char *units = NULL;
    lynx_check_get_string(check, entry, path, "units", LYNX_CHECK_OPTIONAL, &units);
    const lynx_value_t *distribution = NULL;
    if (lynx_check_get_object(check, entry, path, "distribution", LYNX_CHECK_REQUIRED,
                              &distribution) == 1) {
        char *dist_path = lynx_check_path_join(check, path, "distribution", 0);
        if (dist_path)
            broker_dist_check(check, dimension, distribution, dist_path);
        free(dist_path);
    }
    free(path);
}

static void s_check_dispersions(broker_study_config_t *self, lynx_check_t *check,
                                const lynx_value_t *config)
{
    const lynx_value_t *dispersions = NULL;
    if (lynx_check_get_object(check, config, "config", "dispersions", LYNX_CHECK_REQUIRED,
                              &dispersions) != 1)
        return;
    size_t count = lynx_value_size(dispersions);
    if (count == 0) {
        lynx_check_error(check, "config", "dispersions", "must have at least one entry");
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
        lynx_check_error(check, "config", "dispersions",
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
static int s_check_pair_member(broker_study_config_t *self, lynx_check_t *check,
                               const lynx_value_t *entry, const char *path, const char *key)
{
    const char *name = NULL;
    if (lynx_check_get_string(check, entry, path, key, LYNX_CHECK_REQUIRED, &name) != 1)
        return -1;
    int index = s_dimension_index(self, name);
    if (index < 0 && self->dimensions) //  without dispersions every name is unknown
        lynx_check_error(check, path, key, "unknown dispersion '%.64s'", name);
    return index;
}

typedef struct {
    int a, b; //  dimension indices, -1 when the entry names none
    double r;
} s_pair_t;

//  Gathers checked pairs into the matrix of the dimensions they name, in dimension order.
static void s_build_correlation(broker_study_config_t *self, lynx_check_t *check,
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
        lynx_check_error(check, "config", "correlations",
                         "correlation matrix is not positive definite");
}

//  One {a, b, rank_correlation} entry into *pair; a and b stay -1 unless both are valid.
static void s_check_pair(broker_study_config_t *self, lynx_check_t *check,
                         const lynx_value_t *entry, const char *path, const s_pair_t *earlier,
                         size_t earlier_count, s_pair_t *pair)
{
    pair->a = pair->b = -1;
    if (lynx_value_type(entry) != LYNX_VALUE_MAP) {
        lynx_check_error(check, path, NULL, "must be an object");
        return;
    }
    lynx_check_warn_unknown(check, entry, path, s_correlation_fields);
    int a = s_check_pair_member(self, check, entry, path, "a");
    int b = s_check_pair_member(self, check, entry, path, "b");
    if (lynx_check_get_number(check, entry, path, "rank_correlation", LYNX_CHECK_REQUIRED,
                              &pair->r) == 1 &&
        !(pair->r >= -1.0 && pair->r <= 1.0))
        lynx_check_error(check, path, "rank_correlation", "must be between -1 and 1");
    if (a < 0 || b < 0)
        return;
    if (a == b) {
        lynx_check_error(check, path, "b", "must name a different dispersion than a");
        return;
    }
    for (size_t j = 0; j < earlier_count; j++)
        if ((earlier[j].a == a && earlier[j].b == b) || (earlier[j].a == b && earlier[j].b == a))
            lynx_check_error(check, path, NULL,
                             "duplicate pair ('%.64s', '%.64s'), also at config.correlations[%zu]",
                             self->dimensions[a].name, self->dimensions[b].name, j);
    pair->a = a;
    pair->b = b;
}

static void s_check_correlations(broker_study_config_t *self, lynx_check_t *check,
                                 const lynx_value_t *config)
{
    const lynx_value_t *list = NULL;
    if (lynx_check_get_array(check, config, "config", "correlations", LYNX_CHECK_OPTIONAL, &list) !=
        1)
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
        char *path = lynx_check_path_join(check, "config.correlations", NULL, k);
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
static void s_check_capabilities(broker_study_config_t *self, lynx_check_t *check,
                                 const lynx_value_t *compute, const char *path)
{
    const lynx_value_t *tags = NULL;
    if (lynx_check_get_array(check, compute, path, "required_capabilities", LYNX_CHECK_OPTIONAL,
                             &tags) != 1)
        return;
    size_t count = lynx_value_size(tags);
    self->required_capabilities = calloc(count + 1, sizeof *self->required_capabilities);
    if (!self->required_capabilities) {
        lynx_check_error(check, path, "required_capabilities", "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const lynx_value_t *tag = lynx_value_at(tags, i);
        char key[64];
        snprintf(key, sizeof key, "required_capabilities[%zu]", i);
        if (lynx_value_type(tag) != LYNX_VALUE_STRING || lynx_value_string_len(tag) == 0)
            lynx_check_error(check, path, key, "must be a non-empty string");
        else
            self->required_capabilities[self->required_capability_count++] =
                lynx_check_strdup(check, lynx_value_as_string(tag));
    }
}

//  config.artifacts (a Lynx-C extension): which files of a job's output directory go to the
//  broker (collect: "all", "none" or glob patterns) and how big they may be. The runner
//  applies it; the broker enforces the limits again.
static void s_check_artifacts(lynx_check_t *check, const lynx_value_t *config)
{
    static const char *const fields[] = {"collect", "max_file_bytes", "max_job_bytes", NULL};
    const char *path = "config.artifacts";
    const lynx_value_t *artifacts = NULL;
    if (lynx_check_get_object(check, config, "config", "artifacts", LYNX_CHECK_OPTIONAL,
                              &artifacts) != 1)
        return;
    lynx_check_warn_unknown(check, artifacts, path, fields);
    const lynx_value_t *collect = lynx_check_member(artifacts, "collect");
    const char *word = lynx_value_as_string(collect);
    bool valid = !collect || (word && (strcmp(word, "all") == 0 || strcmp(word, "none") == 0));
    if (lynx_value_type(collect) == LYNX_VALUE_ARRAY) {
        valid = lynx_value_size(collect) >= 1 && lynx_value_size(collect) <= 64;
        for (size_t i = 0; valid && i < lynx_value_size(collect); i++) {
            const lynx_value_t *pattern = lynx_value_at(collect, i);
            valid = lynx_value_type(pattern) == LYNX_VALUE_STRING &&
                    lynx_value_string_len(pattern) >= 1 && lynx_value_string_len(pattern) <= 256;
        }
    }
    if (!valid)
        lynx_check_error(check, path, "collect",
                         "must be \"all\", \"none\" or a list of 1 to 64 glob patterns");
    int64_t bytes = 0;
    lynx_check_get_integer(check, artifacts, path, "max_file_bytes", LYNX_CHECK_OPTIONAL, 1,
                           INT64_C(1) << 40, &bytes);
    lynx_check_get_integer(check, artifacts, path, "max_job_bytes", LYNX_CHECK_OPTIONAL, 1,
                           INT64_C(1) << 42, &bytes);
}

static void s_check_compute(broker_study_config_t *self, lynx_check_t *check,
                            const lynx_value_t *config)
{
    const char *path = "config.compute";
    const lynx_value_t *compute = NULL;
    if (lynx_check_get_object(check, config, "config", "compute", LYNX_CHECK_OPTIONAL, &compute) !=
        1)
        return;
    lynx_check_warn_unknown(check, compute, path, s_compute_fields);

    lynx_check_get_integer(check, compute, path, "max_parallel_jobs", LYNX_CHECK_NO_MAX, 1,
                           INT64_MAX, &self->max_parallel_jobs);
    lynx_check_get_integer(check, compute, path, "job_timeout_seconds", LYNX_CHECK_OPTIONAL, 1,
                           S_TIMEOUT_SECS_MAX, &self->timeout_secs);
    lynx_check_get_integer(check, compute, path, "max_retries", LYNX_CHECK_OPTIONAL, 0,
                           S_RETRIES_MAX, &self->max_retries);
    const char *engine = NULL;
    if (lynx_check_get_string(check, compute, path, "engine", LYNX_CHECK_NON_EMPTY, &engine) == 1)
        self->engine = lynx_check_strdup(check, engine);
    //  The container spec belongs to runners that launch containers; we only check its shape.
    const lynx_value_t *container = NULL;
    lynx_check_get_object(check, compute, path, "container", LYNX_CHECK_OPTIONAL, &container);
    lynx_check_get_bool(check, compute, path, "gpu", &self->gpu);
    lynx_check_get_integer(check, compute, path, "priority", LYNX_CHECK_OPTIONAL, 1, S_PRIORITY_MAX,
                           &self->priority);
    s_check_capabilities(self, check, compute, path);
}

//  A seed for a study that gave none, masked to 63 bits so it can be submitted back as
//  monte_carlo.seed to re-run the study exactly.
static void s_draw_seed(broker_study_config_t *self, lynx_check_t *check)
{
    uint64_t bits;
    size_t filled = 0;
    while (filled < sizeof bits) {
        ssize_t rc = getrandom((char *)&bits + filled, sizeof bits - filled, 0);
        if (rc < 0 && errno != EINTR) {
            lynx_check_error(check, "config.monte_carlo", "seed",
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
    lynx_check_t check = {.errors = errors, .warnings = warnings};
    if (lynx_value_type(config) != LYNX_VALUE_MAP) {
        lynx_check_error(&check, "config", NULL, "must be an object");
        return NULL;
    }
    broker_study_config_t *self = calloc(1, sizeof *self);
    if (!self) {
        lynx_check_error(&check, "config", NULL, "out of memory");
        return NULL;
    }
    self->method = BROKER_METHOD_MONTE_CARLO;
    self->timeout_secs = 3600;
    self->max_retries = 3;
    self->priority = 1;

    bool seed_given = false;
    lynx_check_warn_unknown(&check, config, "config", s_config_fields);
    s_check_simulation(self, &check, config);
    s_check_monte_carlo(self, &check, config, &seed_given);
    s_check_dispersions(self, &check, config);
    s_check_correlations(self, &check, config);
    s_check_compute(self, &check, config);
    s_check_artifacts(&check, config);
    const lynx_value_t *section = NULL;
    if (lynx_check_get_object(&check, config, "config", "early_termination", LYNX_CHECK_OPTIONAL,
                              &section) == 1) {
        //  The runner evaluates these rules; refuse at submit what it could not parse.
        lynx_rules_t *rules =
            lynx_rules_new(section, "config.early_termination", check.errors, check.warnings);
        if (!rules)
            check.error_count++; //  its errors are already in check.errors
        lynx_rules_destroy(&rules);
    }
    if (lynx_check_get_object(&check, config, "config", "telemetry", LYNX_CHECK_OPTIONAL,
                              &section) == 1) {
        lynx_err_t err;
        if (broker_telemetry_config_parse(section, NULL, &err))
            lynx_check_error(&check, err.field[0] ? err.field : "config.telemetry", NULL, "%s",
                             s_strip_field(err.message, err.field));
    }

    //  runs_override sits beside config in the request, hence its path.
    if (runs_override > S_RUNS_MAX)
        lynx_check_error(&check, "runs_override", NULL, "must be between 1 and %d", S_RUNS_MAX);
    else if (runs_override > 0)
        self->runs = runs_override;
    if (!self->simulation_version)
        self->simulation_version = lynx_check_strdup(&check, "");
    if (!self->engine)
        self->engine = lynx_check_strdup(&check, "basilisk");
    if (check.error_count == 0 && !seed_given)
        s_draw_seed(self, &check);

    if (check.out_of_memory)
        lynx_check_error(&check, "config", NULL, "out of memory while validating");
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
