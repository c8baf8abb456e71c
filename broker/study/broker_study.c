//  broker_study: a checked config (broker_study_check) and the design sampled from it.
//
//  Sampling turns (seed, runs, dimensions, method) into unit values, reorders them for the
//  requested rank correlations, and maps each through its dimension's inverse CDF
//  (broker_dist). Unit values are a function of those four alone, so the distributions never
//  change which random numbers a run gets.
#include "broker_study.h"
#include "broker_corr.h"
#include "broker_dist.h"
#include "broker_rng.h"
#include "broker_sobol.h"
#include "broker_study_check.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  Iman-Conover's scores are shuffled by their own stream, apart from the sampler's.
#define S_CORRELATION_SEED_SALT 0x636f7272656c6174u //  "correlat"

struct _broker_study_t {
    broker_study_config_t *config;
    broker_dist_t **dists; //  one per dimension
    double *design;        //  runs x dimensions, row-major; allocated by broker_study_sample
    bool sampled;          //  design holds a complete draw
};

//  Appends the one error a study that validated can still fail with.
static void s_out_of_memory(lynx_value_t *errors)
{
    lynx_value_t *entry = lynx_value_map();
    lynx_value_set_string(entry, "field", "config");
    lynx_value_set_string(entry, "message", "out of memory");
    if (lynx_value_append(errors, &entry))
        lynx_value_destroy(&entry);
}

broker_study_t *broker_study_new(const lynx_value_t *config, int64_t runs_override,
                                 lynx_value_t *errors, lynx_value_t *warnings)
{
    broker_study_config_t *checked = broker_study_check(config, runs_override, errors, warnings);
    if (!checked)
        return NULL;
    broker_study_t *self = calloc(1, sizeof *self);
    if (!self) {
        broker_study_config_destroy(&checked);
        s_out_of_memory(errors);
        return NULL;
    }
    self->config = checked; //  owned by self from here on
    self->dists = calloc(checked->dimension_count, sizeof *self->dists);
    bool built = self->dists != NULL;
    for (size_t j = 0; built && j < checked->dimension_count; j++)
        built = (self->dists[j] = broker_dist_new(&checked->dimensions[j].spec)) != NULL;
    if (!built) {
        broker_study_destroy(&self);
        s_out_of_memory(errors);
    }
    return self;
}

void broker_study_destroy(broker_study_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_study_t *self = *self_p;
    for (size_t j = 0; self->dists && j < self->config->dimension_count; j++)
        broker_dist_destroy(&self->dists[j]);
    free(self->dists);
    broker_study_config_destroy(&self->config);
    free(self->design);
    free(self);
    *self_p = NULL;
}

int64_t broker_study_runs(const broker_study_t *self)
{
    assert(self);
    return self->config->runs;
}

uint64_t broker_study_seed(const broker_study_t *self)
{
    assert(self);
    return self->config->seed;
}

const char *broker_study_sampling_method(const broker_study_t *self)
{
    assert(self);
    return broker_study_method_name(self->config->method);
}

const char *broker_study_simulation_name(const broker_study_t *self)
{
    assert(self);
    return self->config->simulation_name;
}

const char *broker_study_simulation_version(const broker_study_t *self)
{
    assert(self);
    return self->config->simulation_version;
}

double broker_study_duration_minutes(const broker_study_t *self)
{
    assert(self);
    return self->config->duration_minutes;
}

int64_t broker_study_max_parallel_jobs(const broker_study_t *self)
{
    assert(self);
    return self->config->max_parallel_jobs;
}

int64_t broker_study_timeout_secs(const broker_study_t *self)
{
    assert(self);
    return self->config->timeout_secs;
}

int64_t broker_study_max_retries(const broker_study_t *self)
{
    assert(self);
    return self->config->max_retries;
}

const char *const *broker_study_required_capabilities(const broker_study_t *self, size_t *count_p)
{
    assert(self);
    *count_p = self->config->required_capability_count;
    return (const char *const *)self->config->required_capabilities;
}

bool broker_study_gpu(const broker_study_t *self)
{
    assert(self);
    return self->config->gpu;
}

int64_t broker_study_priority(const broker_study_t *self)
{
    assert(self);
    return self->config->priority;
}

const char *broker_study_engine(const broker_study_t *self)
{
    assert(self);
    return self->config->engine;
}

size_t broker_study_dimensions(const broker_study_t *self)
{
    assert(self);
    return self->config->dimension_count;
}

const char *broker_study_dimension_name(const broker_study_t *self, size_t index)
{
    assert(self);
    return index < self->config->dimension_count ? self->config->dimensions[index].name : NULL;
}

//  ---------------------------------------------------------------------------------------
//  Sampling. The design is one array of runs x dimensions doubles, row-major (run i,
//  dimension j at design[i * dimensions + j]) so that a run's parameters are contiguous. It
//  first holds unit values, then, mapped in place, the parameters. The generator is seeded
//  afresh on every call and consumed in a fixed order:
//  - monte_carlo: run by run and, within a run, dimension by dimension, one uniform each.
//    Without correlations the first k runs are thus the same whatever the number of runs.
//  - latin_hypercube: dimension by dimension. For each, a Fisher-Yates shuffle of the strata
//    0..N-1 (for i from N-1 down to 1, swap i with below (i + 1)), then one uniform per run, in
//    run order, for the position inside its stratum.
//  - quasi_monte_carlo: Sobol points, no generator. Unscrambled, run i is point i + 1 (point 0
//    is the origin, whose coordinates map to -infinity for unbounded distributions);
//    scrambled (seeded by the study seed), run i is point i.

static void s_sample_monte_carlo(broker_study_t *self, broker_rng_t *rng)
{
    size_t cells = (size_t)self->config->runs * self->config->dimension_count;
    for (size_t c = 0; c < cells; c++)
        self->design[c] = broker_rng_uniform(rng);
}

static int s_sample_latin_hypercube(broker_study_t *self, broker_rng_t *rng)
{
    size_t runs = (size_t)self->config->runs;
    size_t dims = self->config->dimension_count;
    uint32_t *strata = malloc(runs * sizeof *strata); //  runs <= 10,000,000 < 2^32
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
        for (size_t i = 0; i < runs; i++) {
            double u = ((double)strata[i] + broker_rng_uniform(rng)) / (double)runs;
            //  The sum rounds up to N when the uniform is within half an ulp of 1 in the top
            //  stratum; keep u below 1 so the quantiles stay finite.
            if (u >= 1.0)
                u = 0x1.fffffffffffffp-1;
            self->design[i * dims + j] = u;
        }
    }
    free(strata);
    return 0;
}

static int s_sample_sobol(broker_study_t *self)
{
    size_t runs = (size_t)self->config->runs;
    size_t dims = self->config->dimension_count;
    bool scramble = self->config->scramble;
    broker_sobol_t *sobol = broker_sobol_new(dims, scramble, self->config->seed);
    if (!sobol)
        return -1;
    //  The design has room for the extra leading point (see broker_study_sample).
    broker_sobol_fill(sobol, scramble ? runs : runs + 1, self->design);
    if (!scramble)
        memmove(self->design, self->design + dims, runs * dims * sizeof *self->design);
    broker_sobol_destroy(&sobol);
    return 0;
}

//  Iman-Conover on the correlated dimensions only, so a correlation between two parameters
//  leaves every other one as it was. Reordering unit values is reordering parameters: the
//  quantiles applied next are non-decreasing.
static int s_correlate(broker_study_t *self)
{
    const broker_study_config_t *config = self->config;
    size_t runs = (size_t)config->runs, dims = config->dimension_count;
    size_t m = config->correlated_count;
    uint64_t seed = config->seed ^ S_CORRELATION_SEED_SALT;
    lynx_err_t err;
    if (m == dims)
        return broker_corr_apply(self->design, runs, dims, config->correlation, seed, &err);
    double *columns = malloc(runs * m * sizeof *columns);
    if (!columns)
        return -1;
    for (size_t i = 0; i < runs; i++)
        for (size_t k = 0; k < m; k++)
            columns[i * m + k] = self->design[i * dims + config->correlated[k]];
    int rc = broker_corr_apply(columns, runs, m, config->correlation, seed, &err);
    for (size_t i = 0; rc == 0 && i < runs; i++)
        for (size_t k = 0; k < m; k++)
            self->design[i * dims + config->correlated[k]] = columns[i * m + k];
    free(columns);
    return rc;
}

int broker_study_sample(broker_study_t *self)
{
    assert(self);
    const broker_study_config_t *config = self->config;
    size_t dims = config->dimension_count;
    //  Unscrambled Sobol draws one point more than it keeps.
    size_t rows = (size_t)config->runs + 1;
    if (!self->design) {
        if (dims > SIZE_MAX / sizeof(double) / rows)
            return -1;
        self->design = malloc(rows * dims * sizeof *self->design);
        if (!self->design)
            return -1;
    }
    self->sampled = false;
    broker_rng_t rng;
    broker_rng_seed(&rng, config->seed);
    int rc = 0;
    if (config->method == BROKER_METHOD_LATIN_HYPERCUBE)
        rc = s_sample_latin_hypercube(self, &rng);
    else if (config->method == BROKER_METHOD_QUASI_MONTE_CARLO)
        rc = s_sample_sobol(self);
    else
        s_sample_monte_carlo(self, &rng);
    if (rc == 0 && config->correlated_count > 0 && config->runs > 1)
        rc = s_correlate(self);
    if (rc)
        return -1;
    size_t runs = (size_t)config->runs;
    for (size_t i = 0; i < runs; i++)
        for (size_t j = 0; j < dims; j++)
            self->design[i * dims + j] =
                broker_dist_quantile(self->dists[j], self->design[i * dims + j]);
    self->sampled = true;
    return 0;
}

lynx_value_t *broker_study_run_parameters(const broker_study_t *self, int64_t index)
{
    assert(self);
    const broker_study_config_t *config = self->config;
    if (!self->sampled || index < 0 || index >= config->runs)
        return NULL;
    const double *row = self->design + (size_t)index * config->dimension_count;
    lynx_value_t *parameters = lynx_value_map();
    for (size_t j = 0; parameters && j < config->dimension_count; j++) {
        const broker_study_dimension_t *dimension = &config->dimensions[j];
        lynx_value_t *value;
        //  Choice and constant values travel as given: a string stays a string, an integer
        //  an integer.
        if (dimension->spec.type == BROKER_DIST_CHOICE)
            value = lynx_value_dup(lynx_value_at(dimension->values, (size_t)row[j]));
        else if (dimension->spec.type == BROKER_DIST_CONSTANT)
            value = lynx_value_dup(dimension->values);
        else
            value = lynx_value_double(row[j]);
        if (lynx_value_set(parameters, dimension->name, &value)) {
            lynx_value_destroy(&value);
            lynx_value_destroy(&parameters);
        }
    }
    return parameters;
}
