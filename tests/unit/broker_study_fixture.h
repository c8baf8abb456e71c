//  broker_study_fixture: what the study test programs share (broker_study_test,
//  broker_study_check_test): the documented configs as value trees, small configs as JSON
//  text, and helpers that validate, sample and read a design back through the public API.
#ifndef BROKER_STUDY_FIXTURE_H_INCLUDED
#define BROKER_STUDY_FIXTURE_H_INCLUDED

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
#include "broker_corr.h"
#include "broker_dist.h"
#include "broker_sobol.h"
#include "broker_study.h"
#include "lynx_json.h"

#define S_FIXTURE static __attribute__((unused))

//  ---------------------------------------------------------------------------------------
//  Building configs: value trees for the documented examples, JSON text for the rest.

//  A new empty object stored under key; borrowed.
S_FIXTURE lynx_value_t *s_object(lynx_value_t *parent, const char *key)
{
    lynx_value_t *child = lynx_value_map();
    assert_int_equal(lynx_value_set(parent, key, &child), 0);
    return lynx_value_get(parent, key);
}

S_FIXTURE void s_add_uniform(lynx_value_t *dispersions, const char *name, double min, double max,
                             const char *units)
{
    lynx_value_t *entry = s_object(dispersions, name);
    lynx_value_t *distribution = s_object(entry, "distribution");
    lynx_value_set_string(distribution, "type", "uniform");
    lynx_value_set_double(distribution, "min", min);
    lynx_value_set_double(distribution, "max", max);
    lynx_value_set_string(entry, "units", units);
}

S_FIXTURE void s_add_normal(lynx_value_t *dispersions, const char *name, double mean,
                            double std_dev, const char *units)
{
    lynx_value_t *entry = s_object(dispersions, name);
    lynx_value_t *distribution = s_object(entry, "distribution");
    lynx_value_set_string(distribution, "type", "normal");
    lynx_value_set_double(distribution, "mean", mean);
    lynx_value_set_double(distribution, "std_dev", std_dev);
    lynx_value_set_string(entry, "units", units);
}

//  The sections both documented configs share, apart from the values.
S_FIXTURE lynx_value_t *s_config_head(const char *name, const char *version, int64_t duration,
                                      int64_t runs, const char *method, int64_t seed)
{
    lynx_value_t *config = lynx_value_map();
    lynx_value_t *simulation = s_object(config, "simulation");
    lynx_value_set_string(simulation, "name", name);
    lynx_value_set_string(simulation, "version", version);
    lynx_value_set_int(simulation, "duration_minutes", duration);
    lynx_value_t *monte_carlo = s_object(config, "monte_carlo");
    lynx_value_set_int(monte_carlo, "runs", runs);
    lynx_value_set_string(monte_carlo, "sampling_method", method);
    lynx_value_set_int(monte_carlo, "seed", seed);
    s_object(config, "dispersions");
    return config;
}

S_FIXTURE void s_add_compute(lynx_value_t *config, const char *image, int64_t max_parallel_jobs,
                             int64_t timeout_secs)
{
    lynx_value_t *compute = s_object(config, "compute");
    lynx_value_t *container = s_object(compute, "container");
    lynx_value_set_string(container, "image", image);
    lynx_value_set_string(container, "cpu_request", "500m");
    lynx_value_set_string(container, "memory_request", "1Gi");
    lynx_value_set_int(compute, "max_parallel_jobs", max_parallel_jobs);
    lynx_value_set_int(compute, "job_timeout_seconds", timeout_secs);
}

//  early_termination and telemetry, whose contents broker_study does not check yet.
S_FIXTURE void s_add_watchdog_and_telemetry(lynx_value_t *config, const char *variable)
{
    lynx_value_t *early_termination = s_object(config, "early_termination");
    lynx_value_set_bool(early_termination, "enabled", true);
    lynx_value_set_double(early_termination, "check_frequency_hz", 10.0);
    lynx_value_t *conditions = lynx_value_array();
    lynx_value_t *condition = lynx_value_map();
    lynx_value_set_string(condition, "variable", variable);
    lynx_value_set_string(condition, "condition", "< 0.1");
    lynx_value_append(conditions, &condition);
    lynx_value_set(early_termination, "conditions", &conditions);

    lynx_value_t *telemetry = s_object(config, "telemetry");
    lynx_value_set_double(telemetry, "sampling_rate_hz", 0.1);
    lynx_value_t *variables = lynx_value_array();
    lynx_value_t *item = lynx_value_string(variable);
    lynx_value_append(variables, &item);
    lynx_value_set(telemetry, "variables", &variables);
    lynx_value_t *storage = s_object(telemetry, "storage");
    lynx_value_set_string(storage, "s3_bucket", "your-telemetry-bucket");
    lynx_value_set_string(storage, "compression", "gzip");
    lynx_value_set_int(telemetry, "buffer_flush_interval_seconds", 30);
}

//  docs: tutorial-basic-orbit.txt, 7 uniform orbital elements, 5 runs of LHS.
S_FIXTURE lynx_value_t *s_tutorial_config(void)
{
    lynx_value_t *config =
        s_config_head("Basic Orbit Tutorial", "1.0.0", 90, 5, "latin_hypercube", 42);
    lynx_value_t *dispersions = lynx_value_get(config, "dispersions");
    s_add_uniform(dispersions, "semi_major_axis_m", 6950000.0, 7050000.0, "m");
    s_add_uniform(dispersions, "eccentricity", 0.00005, 0.002, "dimensionless");
    s_add_uniform(dispersions, "inclination_deg", 30.0, 36.0, "deg");
    s_add_uniform(dispersions, "raan_deg", 40.0, 55.0, "deg");
    s_add_uniform(dispersions, "arg_perigee_deg", 330.0, 355.0, "deg");
    s_add_uniform(dispersions, "true_anomaly_deg", 70.0, 100.0, "deg");
    s_add_uniform(dispersions, "duration_orbits", 0.70, 0.80, "orbits");
    s_add_compute(config, "tetryx/basilisk-basic-orbit:latest", 2, 1800);
    s_add_watchdog_and_telemetry(config, "orbit.radius_km");
    return config;
}

//  docs: batches-and-jobs.txt, a normal and a uniform dispersion, 500 runs of LHS.
S_FIXTURE lynx_value_t *s_spacecraft_config(void)
{
    lynx_value_t *config =
        s_config_head("Spacecraft Mission Analysis", "1.0.0", 120, 500, "latin_hypercube", 42);
    lynx_value_t *dispersions = lynx_value_get(config, "dispersions");
    s_add_normal(dispersions, "mass_kg", 2500.0, 125.0, "kg");
    s_add_uniform(dispersions, "drag_coefficient", 0.28, 0.34, "");
    s_add_compute(config, "your-org/simulation:latest", 20, 3600);
    s_add_watchdog_and_telemetry(config, "battery_state_of_charge");
    return config;
}

//  Three small dimensions: two uniform, one normal.
S_FIXTURE lynx_value_t *s_unit_config(int64_t runs, const char *method, int64_t seed)
{
    lynx_value_t *config = s_config_head("Strata", "0", 1, runs, method, seed);
    lynx_value_t *dispersions = lynx_value_get(config, "dispersions");
    s_add_uniform(dispersions, "a", 0.0, 1.0, "");
    s_add_uniform(dispersions, "b", -3.0, 12.0, "");
    s_add_normal(dispersions, "c", 0.0, 1.0, "");
    return config;
}

//  Validates a config that must be accepted, with no errors and no warnings.
S_FIXTURE broker_study_t *s_study_new(const lynx_value_t *config, int64_t runs_override)
{
    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    broker_study_t *study = broker_study_new(config, runs_override, errors, warnings);
    if (lynx_value_size(errors) > 0)
        fail_msg("unexpected error %s: %s",
                 lynx_value_get_string(lynx_value_at(errors, 0), "field", ""),
                 lynx_value_get_string(lynx_value_at(errors, 0), "message", ""));
    assert_non_null(study);
    assert_int_equal(lynx_value_size(warnings), 0);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&warnings);
    return study;
}

//  The sampled design as runs x dimensions doubles, read back through the public API.
S_FIXTURE double *s_design(const broker_study_t *study)
{
    size_t runs = (size_t)broker_study_runs(study);
    size_t dims = broker_study_dimensions(study);
    double *design = malloc(runs * dims * sizeof *design);
    assert_non_null(design);
    for (size_t i = 0; i < runs; i++) {
        lynx_value_t *parameters = broker_study_run_parameters(study, (int64_t)i);
        assert_non_null(parameters);
        assert_int_equal(lynx_value_size(parameters), dims);
        for (size_t j = 0; j < dims; j++)
            design[i * dims + j] = lynx_value_as_double(lynx_value_at(parameters, j));
        lynx_value_destroy(&parameters);
    }
    return design;
}

//  Samples the config and returns its design.
S_FIXTURE double *s_sampled_design(const lynx_value_t *config, int64_t runs_override)
{
    broker_study_t *study = s_study_new(config, runs_override);
    assert_int_equal(broker_study_sample(study), 0);
    double *design = s_design(study);
    broker_study_destroy(&study);
    return design;
}

S_FIXTURE lynx_value_t *s_json(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    if (!value)
        fail_msg("bad test JSON: %s: %s", err.message, text);
    return value;
}

S_FIXTURE void s_set_json(lynx_value_t *parent, const char *key, const char *text)
{
    lynx_value_t *value = s_json(text);
    assert_int_equal(lynx_value_set(parent, key, &value), 0);
}

//  ---------------------------------------------------------------------------------------
S_FIXTURE int s_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
