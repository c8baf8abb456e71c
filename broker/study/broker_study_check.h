//  broker_study_check: the validation half of broker_study. It reads the "config" object of a
//  POST /jobs body into a plain description of the study, or reports everything wrong with it.
//
//  Only broker_study includes this header; tests go through broker_study_new, whose contract
//  (field paths, all errors at once, warnings for unknown fields) this module implements.
#ifndef BROKER_STUDY_CHECK_H_INCLUDED
#define BROKER_STUDY_CHECK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker_dist.h"
#include "lynx_value.h"

typedef enum {
    BROKER_METHOD_MONTE_CARLO,
    BROKER_METHOD_LATIN_HYPERCUBE,
    BROKER_METHOD_QUASI_MONTE_CARLO,
    BROKER_METHOD_COUNT
} broker_method_t;

//  One dispersed parameter. spec is ready for broker_dist_new; for choice spec.weights points
//  into weights (NULL for equal weights).
typedef struct {
    char *name;
    broker_dist_spec_t spec;
    double *weights;
    //  What a run's parameters carry instead of a number: choice, a copy of the values array
    //  (the design holds the chosen index); constant, a copy of the value. NULL otherwise.
    lynx_value_t *values;
} broker_study_dimension_t;

//  A checked config. Every string is set (defaults filled in) and owned.
typedef struct {
    char *simulation_name;
    char *simulation_version;
    double duration_minutes;
    int64_t runs; //  after runs_override
    uint64_t seed;
    broker_method_t method;
    bool scramble; //  quasi_monte_carlo only
    int64_t max_parallel_jobs;
    int64_t timeout_secs;
    int64_t max_retries;
    char *engine;
    char **required_capabilities; //  compute.required_capabilities
    size_t required_capability_count;
    bool gpu;         //  compute.gpu: only runners with gpu_available
    int64_t priority; //  compute.priority, 1..1000: share of the pool relative to others
    broker_study_dimension_t *dimensions;
    size_t dimension_count;
    //  config.correlations: the dimensions named in at least one pair (ascending indices) and
    //  their target rank correlation matrix (correlated_count^2, row-major, unit diagonal, 0 for
    //  pairs not given). Positive definite. correlated_count is 0 when there is none.
    size_t *correlated;
    size_t correlated_count;
    double *correlation;
} broker_study_config_t;

//  Check config (the contract of broker_study_new). Returns the description, or NULL after
//  appending one {field, message} map per problem to errors (may be NULL). Unknown fields
//  append {field, message} to warnings (may be NULL). A seed is drawn from the OS when config
//  has none.
broker_study_config_t *broker_study_check(const lynx_value_t *config, int64_t runs_override,
                                          lynx_value_t *errors, lynx_value_t *warnings);
//  Destroy; sets *self_p to NULL. NULL-safe.
void broker_study_config_destroy(broker_study_config_t **self_p);

//  "monte_carlo" | "latin_hypercube" | "quasi_monte_carlo"
const char *broker_study_method_name(broker_method_t method);

#endif
