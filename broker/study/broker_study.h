//  broker_study: a validated Monte Carlo study design, built from the "config" object of a
//  POST /jobs body, and the parameter sets it samples.
//
//  Validation collects every problem at once, each as {field, message} with a field path
//  rooted at "config." (config.dispersions.mass_kg.distribution.std_dev: must be > 0).
//  Sampling is reproducible bit for bit: our own seeded generator, never rand(), and inverse
//  CDFs built on exp, log and sqrt only (see broker_dist.h). docs/study-design.md describes
//  the methods, distributions and correlations for users.
#ifndef BROKER_STUDY_H_INCLUDED
#define BROKER_STUDY_H_INCLUDED

#include <stdint.h>

#include "lynx_value.h"

typedef struct _broker_study_t broker_study_t;

//  Validate config and build the design description. runs_override > 0 replaces
//  monte_carlo.runs (the design is built for the overridden size). On any error returns NULL
//  and appends one {field, message} map per problem to errors (an array). Unknown fields
//  append {field, message} to warnings (an array; may be NULL). When no seed is configured one
//  is drawn from the OS and kept, so the study can be re-run exactly.
broker_study_t *broker_study_new(const lynx_value_t *config, int64_t runs_override,
                                 lynx_value_t *errors, lynx_value_t *warnings);
//  Destroy; sets *self_p to NULL. NULL-safe.
void broker_study_destroy(broker_study_t **self_p);

int64_t broker_study_runs(const broker_study_t *self);
uint64_t broker_study_seed(const broker_study_t *self);
//  "monte_carlo" | "latin_hypercube" | "quasi_monte_carlo"
const char *broker_study_sampling_method(const broker_study_t *self);
//  simulation.name, simulation.version ("" when absent), simulation.duration_minutes (0 when
//  absent).
const char *broker_study_simulation_name(const broker_study_t *self);
const char *broker_study_simulation_version(const broker_study_t *self);
double broker_study_duration_minutes(const broker_study_t *self);
//  compute.max_parallel_jobs (0 = no limit), compute.job_timeout_seconds (default 3600),
//  compute.max_retries (default 3), compute.engine (default "basilisk").
int64_t broker_study_max_parallel_jobs(const broker_study_t *self);
int64_t broker_study_timeout_secs(const broker_study_t *self);
int64_t broker_study_max_retries(const broker_study_t *self);
const char *broker_study_engine(const broker_study_t *self);
//  compute.required_capabilities (borrowed; *count_p gets their number), compute.gpu (default
//  false), compute.priority (default 1; a batch of priority 4 gets four times the dispatches
//  of a batch of priority 1 while both wait).
const char *const *broker_study_required_capabilities(const broker_study_t *self, size_t *count_p);
bool broker_study_gpu(const broker_study_t *self);
int64_t broker_study_priority(const broker_study_t *self);

//  Dispersed parameters, in config order.
size_t broker_study_dimensions(const broker_study_t *self);
const char *broker_study_dimension_name(const broker_study_t *self, size_t index);

//  Draw the whole design (runs x dimensions) from the seed: unit values by the sampling method
//  (quasi_monte_carlo unscrambled: run i is Sobol point i + 1, the origin skipped; scrambled:
//  point i), reordered by Iman-Conover for config.correlations, then mapped through each
//  dimension's inverse CDF. Returns 0, or -1 on out-of-memory. Calling it again redraws the
//  identical design. Memory: 8 bytes per run and dimension.
int broker_study_sample(broker_study_t *self);
//  Parameters of run index (0 <= index < runs) as a new map name -> value, in dimension
//  order: a double, except for choice and constant dimensions, whose value is a copy of the
//  config's (a string stays a string, an integer an integer). Only after broker_study_sample;
//  NULL otherwise or on out-of-memory.
lynx_value_t *broker_study_run_parameters(const broker_study_t *self, int64_t index);

#endif
