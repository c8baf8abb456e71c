//  broker_study: a batch config checked into a study, and the design sampled from it.
//
//  Validation walks the config once, section by section, and reports every problem it meets
//  instead of stopping at the first, so a user fixes a config in one round trip. Sampling
//  turns (seed, runs, dimensions, method) into unit values and maps each through its
//  dimension's inverse CDF (broker_dist).
#include "broker_study.h"
#include "broker_dist.h"
#include "broker_rng.h"
#include "lynx_err.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_RUNS_MAX 10000000
#define S_TIMEOUT_SECS_MAX 2592000 //  30 days
#define S_RETRIES_MAX 100

typedef enum { S_MONTE_CARLO, S_LATIN_HYPERCUBE } s_method_t;

static const char *const s_method_names[] = {
    [S_MONTE_CARLO] = "monte_carlo", [S_LATIN_HYPERCUBE] = "latin_hypercube", NULL};

//  Distribution types by name, and the fields each accepts (anything else draws a warning).
static const char *const s_dist_names[] = {
    [BROKER_DIST_UNIFORM] = "uniform", [BROKER_DIST_NORMAL] = "normal", NULL};
static const char *const s_dist_fields[][4] = {
    [BROKER_DIST_UNIFORM] = {"type", "min", "max", NULL},
    [BROKER_DIST_NORMAL] = {"type", "mean", "std_dev", NULL},
};

static const char *const s_config_fields[] = {
    "simulation", "monte_carlo", "dispersions", "compute", "early_termination", "telemetry", NULL};
static const char *const s_simulation_fields[] = {"name", "version", "duration_minutes", NULL};
static const char *const s_monte_carlo_fields[] = {"runs", "seed", "sampling_method", NULL};
static const char *const s_dispersion_fields[] = {"distribution", "units", NULL};
static const char *const s_compute_fields[] = {
    "max_parallel_jobs", "job_timeout_seconds", "max_retries", "engine", "container", NULL};

typedef struct {
    char *name;
    broker_dist_t dist;
} s_dimension_t;

struct _broker_study_t {
    char *simulation_name;
    char *simulation_version;
    double duration_minutes;
    int64_t runs;
    uint64_t seed;
    bool seed_given;
    s_method_t method;
    int64_t max_parallel_jobs;
    int64_t timeout_secs;
    int64_t max_retries;
    char *engine;
    s_dimension_t *dimensions;
    size_t dimension_count;
    double *design; //  runs x dimension_count, row-major; allocated by broker_study_sample
    bool sampled;   //  design holds a complete draw
};

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

//  path + "." + key in a new string, or NULL on out-of-memory.
static char *s_path_join(s_check_t *check, const char *path, const char *key)
{
    size_t size = strlen(path) + strlen(key) + 2;
    char *joined = malloc(size);
    if (joined)
        snprintf(joined, size, "%s.%s", path, key);
    else
        check->out_of_memory = true;
    return joined;
}

//  Appends {field: path[.key], message} to list. Running out of memory here is remembered,
//  so the study still fails instead of passing with a lost error.
static void s_report(s_check_t *check, lynx_value_t *list, const char *path, const char *key,
                     const char *message)
{
    if (!list)
        return;
    char *field = key ? s_path_join(check, path, key) : strdup(path);
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

static int s_get_object(s_check_t *check, const lynx_value_t *map, const char *path,
                        const char *key, int flags, const lynx_value_t **value)
{
    const lynx_value_t *member = s_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    if (lynx_value_type(member) != LYNX_VALUE_MAP)
        return s_error(check, path, key, "must be an object");
    *value = member;
    return 1;
}

static int s_get_string(s_check_t *check, const lynx_value_t *map, const char *path,
                        const char *key, int flags, const char **value)
{
    const lynx_value_t *member = s_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    if (lynx_value_type(member) != LYNX_VALUE_STRING)
        return s_error(check, path, key, "must be a string");
    if ((flags & S_NON_EMPTY) && lynx_value_string_len(member) == 0)
        return s_error(check, path, key, "must not be empty");
    *value = lynx_value_as_string(member);
    return 1;
}

static int s_get_number(s_check_t *check, const lynx_value_t *map, const char *path,
                        const char *key, int flags, double *value)
{
    const lynx_value_t *member = s_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    if (!lynx_value_is_number(member))
        return s_error(check, path, key, "must be a number");
    //  JSON has no NaN or infinity, but msgpack and YAML do.
    double number = lynx_value_as_double(member);
    if (!isfinite(number))
        return s_error(check, path, key, "must be a finite number");
    *value = number;
    return 1;
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
//  Sections of the config

static void s_check_simulation(broker_study_t *self, s_check_t *check, const lynx_value_t *config)
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

static void s_check_sampling_method(broker_study_t *self, s_check_t *check,
                                    const lynx_value_t *monte_carlo, const char *path)
{
    const char *method = NULL;
    if (s_get_string(check, monte_carlo, path, "sampling_method", S_OPTIONAL, &method) != 1)
        return;
    int index = s_name_index(method, s_method_names);
    if (index >= 0)
        self->method = (s_method_t)index;
    else if (strcmp(method, "quasi_monte_carlo") == 0)
        s_error(check, path, "sampling_method",
                "quasi_monte_carlo is not supported yet (use monte_carlo or latin_hypercube)");
    else {
        char names[128];
        s_error(check, path, "sampling_method", "unknown sampling method '%.64s' (supported: %s)",
                method, s_name_list(names, sizeof names, s_method_names));
    }
}

static void s_check_monte_carlo(broker_study_t *self, s_check_t *check, const lynx_value_t *config)
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
        self->seed_given = true;
    }
    s_check_sampling_method(self, check, monte_carlo, path);
}

static void s_check_uniform(s_check_t *check, broker_dist_t *dist, const lynx_value_t *map,
                            const char *path)
{
    bool have_min = s_get_number(check, map, path, "min", S_REQUIRED, &dist->min) == 1;
    bool have_max = s_get_number(check, map, path, "max", S_REQUIRED, &dist->max) == 1;
    if (!have_min || !have_max)
        return;
    if (!(dist->min < dist->max))
        s_error(check, path, "min", "must be less than max");
    else if (!isfinite(dist->max - dist->min))
        s_error(check, path, "max", "max - min must be a finite number");
}

static void s_check_normal(s_check_t *check, broker_dist_t *dist, const lynx_value_t *map,
                           const char *path)
{
    s_get_number(check, map, path, "mean", S_REQUIRED, &dist->mean);
    if (s_get_number(check, map, path, "std_dev", S_REQUIRED, &dist->std_dev) == 1 &&
        !(dist->std_dev > 0))
        s_error(check, path, "std_dev", "must be > 0");
}

static void s_check_distribution(s_check_t *check, broker_dist_t *dist, const lynx_value_t *map,
                                 const char *path)
{
    const char *type = NULL;
    if (s_get_string(check, map, path, "type", S_REQUIRED, &type) != 1)
        return;
    int index = s_name_index(type, s_dist_names);
    if (index < 0) {
        char names[128];
        s_error(check, path, "type", "unknown distribution type '%.64s' (supported: %s)", type,
                s_name_list(names, sizeof names, s_dist_names));
        return;
    }
    s_warn_unknown(check, map, path, s_dist_fields[index]);
    dist->type = (broker_dist_type_t)index;
    switch (dist->type) {
    case BROKER_DIST_UNIFORM:
        s_check_uniform(check, dist, map, path);
        break;
    case BROKER_DIST_NORMAL:
        s_check_normal(check, dist, map, path);
        break;
    }
}

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

static void s_check_dispersion(s_check_t *check, s_dimension_t *dimension, const char *name,
                               const lynx_value_t *entry)
{
    char *path = s_path_join(check, "config.dispersions", name);
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
        char *dist_path = s_path_join(check, path, "distribution");
        if (dist_path)
            s_check_distribution(check, &dimension->dist, distribution, dist_path);
        free(dist_path);
    }
    free(path);
}

static void s_check_dispersions(broker_study_t *self, s_check_t *check, const lynx_value_t *config)
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
}

static void s_check_compute(broker_study_t *self, s_check_t *check, const lynx_value_t *config)
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
}

//  A seed for a study that gave none, masked to 63 bits so it can be submitted back as
//  monte_carlo.seed to re-run the study exactly.
static void s_draw_seed(broker_study_t *self, s_check_t *check)
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

broker_study_t *broker_study_new(const lynx_value_t *config, int64_t runs_override,
                                 lynx_value_t *errors, lynx_value_t *warnings)
{
    s_check_t check = {.errors = errors, .warnings = warnings};
    if (lynx_value_type(config) != LYNX_VALUE_MAP) {
        s_error(&check, "config", NULL, "must be an object");
        return NULL;
    }
    broker_study_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_error(&check, "config", NULL, "out of memory");
        return NULL;
    }
    self->method = S_MONTE_CARLO;
    self->timeout_secs = 3600;
    self->max_retries = 3;

    s_warn_unknown(&check, config, "config", s_config_fields);
    s_check_simulation(self, &check, config);
    s_check_monte_carlo(self, &check, config);
    s_check_dispersions(self, &check, config);
    s_check_compute(self, &check, config);
    //  Checked in depth by the modules that use them.
    const lynx_value_t *section = NULL;
    s_get_object(&check, config, "config", "early_termination", S_OPTIONAL, &section);
    s_get_object(&check, config, "config", "telemetry", S_OPTIONAL, &section);

    //  runs_override sits beside config in the request, hence its path.
    if (runs_override > S_RUNS_MAX)
        s_error(&check, "runs_override", NULL, "must be between 1 and %d", S_RUNS_MAX);
    else if (runs_override > 0)
        self->runs = runs_override;
    if (!self->simulation_version)
        self->simulation_version = s_strdup(&check, "");
    if (!self->engine)
        self->engine = s_strdup(&check, "basilisk");
    if (check.error_count == 0 && !self->seed_given)
        s_draw_seed(self, &check);

    if (check.out_of_memory)
        s_error(&check, "config", NULL, "out of memory while validating");
    if (check.error_count > 0)
        broker_study_destroy(&self);
    return self;
}

void broker_study_destroy(broker_study_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_study_t *self = *self_p;
    for (size_t i = 0; i < self->dimension_count; i++)
        free(self->dimensions[i].name);
    free(self->dimensions);
    free(self->simulation_name);
    free(self->simulation_version);
    free(self->engine);
    free(self->design);
    free(self);
    *self_p = NULL;
}

int64_t broker_study_runs(const broker_study_t *self)
{
    assert(self);
    return self->runs;
}

uint64_t broker_study_seed(const broker_study_t *self)
{
    assert(self);
    return self->seed;
}

const char *broker_study_sampling_method(const broker_study_t *self)
{
    assert(self);
    return s_method_names[self->method];
}

const char *broker_study_simulation_name(const broker_study_t *self)
{
    assert(self);
    return self->simulation_name;
}

const char *broker_study_simulation_version(const broker_study_t *self)
{
    assert(self);
    return self->simulation_version;
}

double broker_study_duration_minutes(const broker_study_t *self)
{
    assert(self);
    return self->duration_minutes;
}

int64_t broker_study_max_parallel_jobs(const broker_study_t *self)
{
    assert(self);
    return self->max_parallel_jobs;
}

int64_t broker_study_timeout_secs(const broker_study_t *self)
{
    assert(self);
    return self->timeout_secs;
}

int64_t broker_study_max_retries(const broker_study_t *self)
{
    assert(self);
    return self->max_retries;
}

const char *broker_study_engine(const broker_study_t *self)
{
    assert(self);
    return self->engine;
}

size_t broker_study_dimensions(const broker_study_t *self)
{
    assert(self);
    return self->dimension_count;
}

const char *broker_study_dimension_name(const broker_study_t *self, size_t index)
{
    assert(self);
    return index < self->dimension_count ? self->dimensions[index].name : NULL;
}

//  ---------------------------------------------------------------------------------------
//  Sampling. The design is one array of runs x dimensions doubles, row-major (run i,
//  dimension j at design[i * dimensions + j]) so that a run's parameters are contiguous. The
//  generator is seeded afresh on every call and consumed in a fixed order, so the unit values
//  are a function of (seed, runs, dimensions, method) alone; the distributions only map them:
//  - monte_carlo: run by run and, within a run, dimension by dimension, one uniform each.
//    The first k runs are thus the same whatever the total number of runs.
//  - latin_hypercube: dimension by dimension. For each, a Fisher-Yates shuffle of the strata
//    0..N-1 (for i from N-1 down to 1, swap i with below (i + 1)), then one uniform per run, in
//    run order, for the position inside its stratum.

static void s_sample_monte_carlo(broker_study_t *self, broker_rng_t *rng)
{
    size_t runs = (size_t)self->runs;
    size_t dims = self->dimension_count;
    for (size_t i = 0; i < runs; i++)
        for (size_t j = 0; j < dims; j++)
            self->design[i * dims + j] =
                broker_dist_quantile(&self->dimensions[j].dist, broker_rng_uniform(rng));
}

static int s_sample_latin_hypercube(broker_study_t *self, broker_rng_t *rng)
{
    size_t runs = (size_t)self->runs;
    size_t dims = self->dimension_count;
    uint32_t *strata = malloc(runs * sizeof *strata); //  runs <= S_RUNS_MAX < 2^32
    if (!strata)
        return -1;
    for (size_t j = 0; j < dims; j++) {
        for (size_t i = 0; i < runs; i++)
            strata[i] = (uint32_t)i;
        for (size_t i = runs - 1; i > 0; i--) {
            size_t k = (size_t)broker_rng_below(rng, i + 1);
            uint32_t swap = strata[i];
            strata[i] = strata[k];
            strata[k] = swap;
        }
        const broker_dist_t *dist = &self->dimensions[j].dist;
        for (size_t i = 0; i < runs; i++) {
            double u = ((double)strata[i] + broker_rng_uniform(rng)) / (double)runs;
            //  The sum rounds up to N when the uniform is within half an ulp of 1 in the top
            //  stratum; keep u below 1 so the normal quantile stays finite.
            if (u >= 1.0)
                u = 0x1.fffffffffffffp-1;
            self->design[i * dims + j] = broker_dist_quantile(dist, u);
        }
    }
    free(strata);
    return 0;
}

int broker_study_sample(broker_study_t *self)
{
    assert(self);
    size_t runs = (size_t)self->runs;
    size_t dims = self->dimension_count;
    if (!self->design) {
        if (dims > SIZE_MAX / sizeof(double) / runs)
            return -1;
        self->design = malloc(runs * dims * sizeof *self->design);
        if (!self->design)
            return -1;
    }
    self->sampled = false;
    broker_rng_t rng;
    broker_rng_seed(&rng, self->seed);
    if (self->method == S_LATIN_HYPERCUBE) {
        if (s_sample_latin_hypercube(self, &rng))
            return -1;
    } else
        s_sample_monte_carlo(self, &rng);
    self->sampled = true;
    return 0;
}

lynx_value_t *broker_study_run_parameters(const broker_study_t *self, int64_t index)
{
    assert(self);
    if (!self->sampled || index < 0 || index >= self->runs)
        return NULL;
    const double *row = self->design + (size_t)index * self->dimension_count;
    lynx_value_t *parameters = lynx_value_map();
    for (size_t j = 0; parameters && j < self->dimension_count; j++)
        if (lynx_value_set_double(parameters, self->dimensions[j].name, row[j]))
            lynx_value_destroy(&parameters);
    return parameters;
}
