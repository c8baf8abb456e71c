//  broker_study: from the "config" of a POST /jobs body to the parameters of each run.
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
#include "data_cases.h"
#include "lynx_json.h"

//  ---------------------------------------------------------------------------------------
//  Building configs: value trees for the documented examples, JSON text for the rest.

//  A new empty object stored under key; borrowed.
static lynx_value_t *s_object(lynx_value_t *parent, const char *key)
{
    lynx_value_t *child = lynx_value_map();
    assert_int_equal(lynx_value_set(parent, key, &child), 0);
    return lynx_value_get(parent, key);
}

static void s_add_uniform(lynx_value_t *dispersions, const char *name, double min, double max,
                          const char *units)
{
    lynx_value_t *entry = s_object(dispersions, name);
    lynx_value_t *distribution = s_object(entry, "distribution");
    lynx_value_set_string(distribution, "type", "uniform");
    lynx_value_set_double(distribution, "min", min);
    lynx_value_set_double(distribution, "max", max);
    lynx_value_set_string(entry, "units", units);
}

static void s_add_normal(lynx_value_t *dispersions, const char *name, double mean, double std_dev,
                         const char *units)
{
    lynx_value_t *entry = s_object(dispersions, name);
    lynx_value_t *distribution = s_object(entry, "distribution");
    lynx_value_set_string(distribution, "type", "normal");
    lynx_value_set_double(distribution, "mean", mean);
    lynx_value_set_double(distribution, "std_dev", std_dev);
    lynx_value_set_string(entry, "units", units);
}

//  The sections both documented configs share, apart from the values.
static lynx_value_t *s_config_head(const char *name, const char *version, int64_t duration,
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

static void s_add_compute(lynx_value_t *config, const char *image, int64_t max_parallel_jobs,
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
static void s_add_watchdog_and_telemetry(lynx_value_t *config, const char *variable)
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
static lynx_value_t *s_tutorial_config(void)
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
static lynx_value_t *s_spacecraft_config(void)
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
static lynx_value_t *s_unit_config(int64_t runs, const char *method, int64_t seed)
{
    lynx_value_t *config = s_config_head("Strata", "0", 1, runs, method, seed);
    lynx_value_t *dispersions = lynx_value_get(config, "dispersions");
    s_add_uniform(dispersions, "a", 0.0, 1.0, "");
    s_add_uniform(dispersions, "b", -3.0, 12.0, "");
    s_add_normal(dispersions, "c", 0.0, 1.0, "");
    return config;
}

//  Validates a config that must be accepted, with no errors and no warnings.
static broker_study_t *s_study_new(const lynx_value_t *config, int64_t runs_override)
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
static double *s_design(const broker_study_t *study)
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
static double *s_sampled_design(const lynx_value_t *config, int64_t runs_override)
{
    broker_study_t *study = s_study_new(config, runs_override);
    assert_int_equal(broker_study_sample(study), 0);
    double *design = s_design(study);
    broker_study_destroy(&study);
    return design;
}

//  ---------------------------------------------------------------------------------------
//  Accepted configs

static void test_tutorial_config_samples_inside_its_bounds(void **state)
{
    (void)state;
    lynx_value_t *config = s_tutorial_config();
    broker_study_t *study = s_study_new(config, 0);

    assert_string_equal(broker_study_simulation_name(study), "Basic Orbit Tutorial");
    assert_string_equal(broker_study_simulation_version(study), "1.0.0");
    assert_true(broker_study_duration_minutes(study) == 90.0);
    assert_int_equal(broker_study_runs(study), 5);
    assert_int_equal(broker_study_seed(study), 42);
    assert_string_equal(broker_study_sampling_method(study), "latin_hypercube");
    assert_int_equal(broker_study_max_parallel_jobs(study), 2);
    assert_int_equal(broker_study_timeout_secs(study), 1800);
    assert_int_equal(broker_study_max_retries(study), 3);
    assert_string_equal(broker_study_engine(study), "basilisk");
    assert_int_equal(broker_study_dimensions(study), 7);
    assert_string_equal(broker_study_dimension_name(study, 0), "semi_major_axis_m");
    assert_string_equal(broker_study_dimension_name(study, 6), "duration_orbits");
    assert_null(broker_study_dimension_name(study, 7));

    //  Nothing to hand out before the design is drawn.
    assert_null(broker_study_run_parameters(study, 0));
    assert_int_equal(broker_study_sample(study), 0);

    const lynx_value_t *dispersions = lynx_value_get(config, "dispersions");
    for (int64_t run = 0; run < 5; run++) {
        lynx_value_t *parameters = broker_study_run_parameters(study, run);
        assert_non_null(parameters);
        assert_int_equal(lynx_value_size(parameters), 7);
        for (size_t j = 0; j < 7; j++) {
            const char *name = broker_study_dimension_name(study, j);
            assert_string_equal(lynx_value_key_at(parameters, j), name);
            const lynx_value_t *distribution =
                lynx_value_get(lynx_value_get(dispersions, name), "distribution");
            double value = lynx_value_as_double(lynx_value_at(parameters, j));
            assert_true(value >= lynx_value_get_double(distribution, "min", NAN));
            assert_true(value <= lynx_value_get_double(distribution, "max", NAN));
        }
        lynx_value_destroy(&parameters);
    }
    assert_null(broker_study_run_parameters(study, 5));
    assert_null(broker_study_run_parameters(study, -1));

    broker_study_destroy(&study);
    assert_null(study);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

static void test_spacecraft_config_samples_both_distributions(void **state)
{
    (void)state;
    lynx_value_t *config = s_spacecraft_config();
    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_runs(study), 500);
    assert_int_equal(broker_study_max_parallel_jobs(study), 20);
    assert_int_equal(broker_study_timeout_secs(study), 3600);
    assert_int_equal(broker_study_sample(study), 0);

    double *design = s_design(study);
    double sum = 0;
    for (size_t i = 0; i < 500; i++) {
        double mass_kg = design[i * 2], drag = design[i * 2 + 1];
        assert_true(isfinite(mass_kg));
        sum += mass_kg;
        assert_true(drag >= 0.28 && drag <= 0.34);
    }
    //  Stratified normal samples sit much closer to the mean than 125 / sqrt (500) = 5.6.
    assert_true(fabs(sum / 500 - 2500.0) < 1.0);
    free(design);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

static void test_minimal_config_takes_defaults(void **state)
{
    (void)state;
    lynx_value_t *config = lynx_value_map();
    lynx_value_set_string(s_object(config, "simulation"), "name", "Minimal");
    lynx_value_set_double(s_object(config, "monte_carlo"), "runs", 3.0); //  JSON 3.0 is 3
    s_add_uniform(s_object(config, "dispersions"), "x", -1.0, 1.0, "m");
    lynx_value_remove(lynx_value_get_path(config, "dispersions.x"), "units");

    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_runs(study), 3);
    assert_string_equal(broker_study_sampling_method(study), "monte_carlo");
    assert_string_equal(broker_study_simulation_version(study), "");
    assert_true(broker_study_duration_minutes(study) == 0.0);
    assert_int_equal(broker_study_max_parallel_jobs(study), 0);
    assert_int_equal(broker_study_timeout_secs(study), 3600);
    assert_int_equal(broker_study_max_retries(study), 3);
    assert_string_equal(broker_study_engine(study), "basilisk");
    assert_true(broker_study_seed(study) <= INT64_MAX);
    broker_study_destroy(&study);

    //  null stands for "not given".
    lynx_value_set_null(lynx_value_get(config, "simulation"), "version");
    lynx_value_set_null(lynx_value_get(config, "monte_carlo"), "seed");
    lynx_value_set_null(config, "compute");
    study = s_study_new(config, 0);
    assert_string_equal(broker_study_simulation_version(study), "");
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

static void test_seed_takes_the_full_63_bit_range(void **state)
{
    (void)state;
    lynx_value_t *config = s_unit_config(4, "monte_carlo", INT64_MAX);
    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_seed(study), INT64_MAX);
    broker_study_destroy(&study);

    lynx_value_set_int(lynx_value_get(config, "monte_carlo"), "seed", 0);
    study = s_study_new(config, 0);
    assert_int_equal(broker_study_seed(study), 0);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

static void test_compute_settings_are_read(void **state)
{
    (void)state;
    lynx_value_t *config = s_unit_config(4, "monte_carlo", 1);
    lynx_value_t *compute = s_object(config, "compute");
    lynx_value_set_int(compute, "max_retries", 0);
    lynx_value_set_int(compute, "job_timeout_seconds", 2592000);
    lynx_value_set_string(compute, "engine", "px4_sitl");
    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_max_retries(study), 0);
    assert_int_equal(broker_study_timeout_secs(study), 2592000);
    assert_string_equal(broker_study_engine(study), "px4_sitl");
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

//  ---------------------------------------------------------------------------------------
static int s_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

//  ---------------------------------------------------------------------------------------
//  Every distribution type at once. The design read back through the public API, with each
//  value mapped to its unit value u = F (x) so the sampling methods can be checked in
//  u-space, where strata live.

static lynx_value_t *s_json(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    if (!value)
        fail_msg("bad test JSON: %s: %s", err.message, text);
    return value;
}

static void s_set_json(lynx_value_t *parent, const char *key, const char *text)
{
    lynx_value_t *value = s_json(text);
    assert_int_equal(lynx_value_set(parent, key, &value), 0);
}

#define ALL_DIMENSIONS 12
#define CHOICE_DIMENSION 9

static const char *const s_all_dispersions =
    "{\"u\": {\"distribution\": {\"type\": \"uniform\", \"min\": -3, \"max\": 12}},"
    " \"n\": {\"distribution\": {\"type\": \"normal\", \"mean\": 2500, \"std_dev\": 125}},"
    " \"tn\": {\"distribution\": {\"type\": \"truncated_normal\", \"mean\": 1, \"std_dev\": 2,"
    "                             \"min\": -1, \"max\": 5}},"
    " \"tail\": {\"distribution\": {\"type\": \"truncated_normal\", \"mean\": 0, \"std_dev\": 1,"
    "                               \"min\": 30, \"max\": 31}},"
    " \"ln\": {\"distribution\": {\"type\": \"lognormal\", \"mu\": 0.5, \"sigma\": 0.8}},"
    " \"lm\": {\"distribution\": {\"type\": \"lognormal\", \"mean\": 2, \"std_dev\": 0.5}},"
    " \"tri\": {\"distribution\": {\"type\": \"triangular\", \"min\": 1, \"mode\": 2, \"max\": 5}},"
    " \"ex\": {\"distribution\": {\"type\": \"exponential\", \"rate\": 2}},"
    " \"be\": {\"distribution\": {\"type\": \"beta\", \"alpha\": 2, \"beta\": 3, \"min\": 10,"
    "                             \"max\": 20}},"
    " \"ch\": {\"distribution\": {\"type\": \"choice\", \"values\": [\"red\", 7, 2.5, \"blue\"],"
    "                             \"weights\": [1, 2, 3, 4]}},"
    " \"k\": {\"distribution\": {\"type\": \"constant\", \"value\": \"v1.2\"}},"
    " \"kn\": {\"distribution\": {\"type\": \"constant\", \"value\": 3}}}";

static const double s_choice_weights[4] = {0.1, 0.2, 0.3, 0.4};

//  The same distributions as broker_dist sees them (choice and constant are checked apart).
static broker_dist_t *s_all_dist(size_t dimension)
{
    broker_dist_spec_t specs[ALL_DIMENSIONS] = {
        {.type = BROKER_DIST_UNIFORM, .min = -3, .max = 12},
        {.type = BROKER_DIST_NORMAL, .mean = 2500, .std_dev = 125},
        {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 1, .std_dev = 2, .min = -1, .max = 5},
        {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 0, .std_dev = 1, .min = 30, .max = 31},
        {.type = BROKER_DIST_LOGNORMAL, .mu = 0.5, .sigma = 0.8},
        {.type = BROKER_DIST_LOGNORMAL},
        {.type = BROKER_DIST_TRIANGULAR, .min = 1, .mode = 2, .max = 5},
        {.type = BROKER_DIST_EXPONENTIAL, .rate = 2},
        {.type = BROKER_DIST_BETA, .alpha = 2, .beta = 3, .min = 10, .max = 20},
        {.type = BROKER_DIST_CHOICE, .weights = s_choice_weights, .count = 4},
        {.type = BROKER_DIST_CONSTANT},
        {.type = BROKER_DIST_CONSTANT, .value = 3},
    };
    broker_dist_lognormal_from_moments(2, 0.5, &specs[5].mu, &specs[5].sigma);
    broker_dist_t *dist = broker_dist_new(&specs[dimension]);
    assert_non_null(dist);
    return dist;
}

static lynx_value_t *s_all_config(int64_t runs, const char *method, int64_t seed)
{
    lynx_value_t *config = s_config_head("Every distribution", "1", 1, runs, method, seed);
    s_set_json(config, "dispersions", s_all_dispersions);
    return config;
}

//  The index of value among the choice's values.
static size_t s_choice_index(const lynx_value_t *value)
{
    lynx_value_t *values = s_json("[\"red\", 7, 2.5, \"blue\"]");
    size_t k = 0;
    while (k < 4 && !lynx_value_equal(lynx_value_at(values, k), value))
        k++;
    assert_true(k < 4);
    //  Not just equal: of the same type ("7" is not 7, 7 is not 7.0).
    assert_int_equal(lynx_value_type(value), lynx_value_type(lynx_value_at(values, k)));
    lynx_value_destroy(&values);
    return k;
}

//  The design of an all-distribution study, as unit values (the choice as its index, the
//  constants as 0.5 after checking them).
static double *s_all_unit_design(broker_study_t *study)
{
    size_t runs = (size_t)broker_study_runs(study);
    double *units = malloc(runs * ALL_DIMENSIONS * sizeof *units);
    assert_non_null(units);
    broker_dist_t *dists[ALL_DIMENSIONS];
    for (size_t j = 0; j < ALL_DIMENSIONS; j++)
        dists[j] = s_all_dist(j);
    for (size_t i = 0; i < runs; i++) {
        lynx_value_t *parameters = broker_study_run_parameters(study, (int64_t)i);
        assert_non_null(parameters);
        assert_int_equal(lynx_value_size(parameters), ALL_DIMENSIONS);
        for (size_t j = 0; j < ALL_DIMENSIONS; j++) {
            const lynx_value_t *value = lynx_value_at(parameters, j);
            double u = 0.5;
            if (j == CHOICE_DIMENSION)
                u = (double)s_choice_index(value);
            else if (j == 10)
                assert_string_equal(lynx_value_as_string(value), "v1.2");
            else if (j == 11) {
                assert_int_equal(lynx_value_type(value), LYNX_VALUE_INT);
                assert_int_equal(lynx_value_as_int(value), 3);
            } else {
                assert_int_equal(lynx_value_type(value), LYNX_VALUE_DOUBLE);
                u = broker_dist_cdf(dists[j], lynx_value_as_double(value));
            }
            units[i * ALL_DIMENSIONS + j] = u;
        }
        lynx_value_destroy(&parameters);
    }
    for (size_t j = 0; j < ALL_DIMENSIONS; j++)
        broker_dist_destroy(&dists[j]);
    return units;
}

//  Every stratum [s / N, (s + 1) / N) of every continuous dimension holds one run, and each
//  choice value is picked N w_k times give or take one stratum at each end of its interval.
static void s_assert_stratified(const double *units, size_t n, const char *what)
{
    int *hits = calloc(n, sizeof *hits);
    assert_non_null(hits);
    for (size_t j = 0; j < CHOICE_DIMENSION; j++) {
        memset(hits, 0, n * sizeof *hits);
        for (size_t i = 0; i < n; i++) {
            double u = units[i * ALL_DIMENSIONS + j];
            assert_true(u >= 0.0 && u <= 1.0);
            size_t stratum = (size_t)floor(u * (double)n);
            hits[stratum < n ? stratum : n - 1]++;
        }
        for (size_t s = 0; s < n; s++)
            if (hits[s] != 1)
                fail_msg("%s, N = %zu, dimension %zu: stratum %zu has %d runs", what, n, j, s,
                         hits[s]);
    }
    size_t counts[4] = {0};
    for (size_t i = 0; i < n; i++)
        counts[(size_t)units[i * ALL_DIMENSIONS + CHOICE_DIMENSION]]++;
    for (size_t k = 0; k < 4; k++)
        assert_true(fabs((double)counts[k] - (double)n * s_choice_weights[k]) < 2.0);
    free(hits);
}

static void s_assert_one_point_per_stratum(int64_t runs, const char *correlations)
{
    lynx_value_t *config = s_all_config(runs, "latin_hypercube", 7);
    if (correlations)
        s_set_json(config, "correlations", correlations);
    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_sample(study), 0);
    double *units = s_all_unit_design(study);
    s_assert_stratified(units, (size_t)runs, correlations ? "correlated" : "independent");
    free(units);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

static void test_latin_hypercube_fills_every_stratum_once(void **state)
{
    (void)state;
    static const int64_t sizes[] = {1, 2, 7, 1000};
    for (size_t i = 0; i < 4; i++)
        s_assert_one_point_per_stratum(sizes[i], NULL);
    //  Iman-Conover only reorders each column, so strata survive correlations.
    s_assert_one_point_per_stratum(1000,
                                   "[{\"a\": \"n\", \"b\": \"be\", \"rank_correlation\": 0.8},"
                                   " {\"a\": \"u\", \"b\": \"ch\", \"rank_correlation\": -0.5}]");
}

static void test_every_method_samples_every_distribution(void **state)
{
    (void)state;
    static const char *methods[] = {"monte_carlo", "latin_hypercube", "quasi_monte_carlo"};
    for (size_t m = 0; m < 3; m++) {
        lynx_value_t *config = s_all_config(4096, methods[m], 11);
        broker_study_t *study = s_study_new(config, 0);
        assert_int_equal(broker_study_sample(study), 0);
        double *units = s_all_unit_design(study);
        //  Each continuous dimension's unit values average 1/2 and fill [0, 1).
        for (size_t j = 0; j < CHOICE_DIMENSION; j++) {
            double sum = 0, low = 1, high = 0;
            for (size_t i = 0; i < 4096; i++) {
                double u = units[i * ALL_DIMENSIONS + j];
                sum += u;
                low = fmin(low, u);
                high = fmax(high, u);
            }
            if (!(fabs(sum / 4096 - 0.5) < 0.02 && low < 0.01 && high > 0.99))
                fail_msg("%s, dimension %zu: mean u %.4f, range [%.4f, %.4f]", methods[m], j,
                         sum / 4096, low, high);
        }
        free(units);
        broker_study_destroy(&study);
        lynx_value_destroy(&config);
    }
}

static void test_choice_and_constant_values_keep_their_type(void **state)
{
    (void)state;
    lynx_value_t *config = s_all_config(200, "monte_carlo", 3);
    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_sample(study), 0);
    bool seen[4] = {false};
    for (int64_t run = 0; run < 200; run++) {
        lynx_value_t *parameters = broker_study_run_parameters(study, run);
        seen[s_choice_index(lynx_value_get(parameters, "ch"))] = true;
        assert_string_equal(lynx_value_get_string(parameters, "k", ""), "v1.2");
        assert_int_equal(lynx_value_type(lynx_value_get(parameters, "kn")), LYNX_VALUE_INT);
        lynx_value_destroy(&parameters);
    }
    assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

//  ---------------------------------------------------------------------------------------
//  Reproducibility

static const char *const s_methods[] = {"monte_carlo", "latin_hypercube", "quasi_monte_carlo",
                                        "scrambled"};

//  An all-distribution config for one of s_methods ("scrambled" is scrambled Sobol).
static lynx_value_t *s_method_config(int64_t runs, const char *method, int64_t seed)
{
    bool scrambled = strcmp(method, "scrambled") == 0;
    lynx_value_t *config = s_all_config(runs, scrambled ? "quasi_monte_carlo" : method, seed);
    if (scrambled)
        lynx_value_set_bool(lynx_value_get(config, "monte_carlo"), "scramble", true);
    return config;
}

static void test_same_seed_same_design(void **state)
{
    (void)state;
    for (int m = 0; m < 4; m++) {
        lynx_value_t *config = s_method_config(200, s_methods[m], 42);
        double *first = s_sampled_design(config, 0);
        double *again = s_sampled_design(config, 0);
        assert_memory_equal(first, again, 200 * ALL_DIMENSIONS * sizeof *first);

        //  A different seed moves every continuous value, except for plain Sobol points,
        //  which have no seed.
        lynx_value_set_int(lynx_value_get(config, "monte_carlo"), "seed", 43);
        double *other = s_sampled_design(config, 0);
        bool seeded = strcmp(s_methods[m], "quasi_monte_carlo") != 0;
        for (size_t i = 0; i < 200; i++)
            for (size_t j = 0; j < CHOICE_DIMENSION; j++)
                assert_true((other[i * ALL_DIMENSIONS + j] != first[i * ALL_DIMENSIONS + j]) ==
                            seeded);
        free(first);
        free(again);
        free(other);
        lynx_value_destroy(&config);
    }
}

static void test_sampling_again_redraws_the_same_design(void **state)
{
    (void)state;
    for (int m = 0; m < 4; m++) {
        lynx_value_t *config = s_method_config(300, s_methods[m], 8);
        s_set_json(config, "correlations",
                   "[{\"a\": \"u\", \"b\": \"ex\", \"rank_correlation\": 0.5}]");
        broker_study_t *study = s_study_new(config, 0);
        assert_int_equal(broker_study_sample(study), 0);
        double *first = s_design(study);
        assert_int_equal(broker_study_sample(study), 0);
        double *again = s_design(study);
        assert_memory_equal(first, again, 300 * ALL_DIMENSIONS * sizeof *first);
        free(first);
        free(again);
        broker_study_destroy(&study);
        lynx_value_destroy(&config);
    }
}

static void test_methods_differ(void **state)
{
    (void)state;
    double *designs[4];
    for (int m = 0; m < 4; m++) {
        lynx_value_t *config = s_method_config(50, s_methods[m], 42);
        designs[m] = s_sampled_design(config, 0);
        lynx_value_destroy(&config);
    }
    for (int a = 0; a < 4; a++)
        for (int b = a + 1; b < 4; b++)
            assert_memory_not_equal(designs[a], designs[b], 50 * ALL_DIMENSIONS * sizeof(double));
    for (int m = 0; m < 4; m++)
        free(designs[m]);
}

static void test_monte_carlo_runs_do_not_depend_on_the_total(void **state)
{
    (void)state;
    for (int m = 0; m < 4; m += 2) { //  monte_carlo and plain Sobol
        lynx_value_t *config = s_method_config(10, s_methods[m], 5);
        double *ten = s_sampled_design(config, 0);
        double *twenty = s_sampled_design(config, 20);
        assert_memory_equal(ten, twenty, 10 * ALL_DIMENSIONS * sizeof *ten);
        free(ten);
        free(twenty);
        lynx_value_destroy(&config);
    }
}

static void test_runs_override_resizes_the_design(void **state)
{
    (void)state;
    lynx_value_t *config = s_tutorial_config();
    broker_study_t *study = s_study_new(config, 12);
    assert_int_equal(broker_study_runs(study), 12);
    assert_int_equal(broker_study_sample(study), 0);
    lynx_value_t *parameters = broker_study_run_parameters(study, 11);
    assert_non_null(parameters);
    lynx_value_destroy(&parameters);
    assert_null(broker_study_run_parameters(study, 12));
    broker_study_destroy(&study);

    //  Zero or less means no override.
    study = s_study_new(config, 0);
    assert_int_equal(broker_study_runs(study), 5);
    broker_study_destroy(&study);
    study = s_study_new(config, -1);
    assert_int_equal(broker_study_runs(study), 5);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

static void test_drawn_seed_reproduces_the_design(void **state)
{
    (void)state;
    lynx_value_t *config = s_unit_config(100, "latin_hypercube", 0);
    lynx_value_remove(lynx_value_get(config, "monte_carlo"), "seed");
    broker_study_t *study = s_study_new(config, 0);
    uint64_t seed = broker_study_seed(study);
    assert_true(seed <= INT64_MAX); //  so it can be submitted back as monte_carlo.seed
    assert_int_equal(broker_study_sample(study), 0);
    double *drawn = s_design(study);
    broker_study_destroy(&study);

    lynx_value_set_int(lynx_value_get(config, "monte_carlo"), "seed", (int64_t)seed);
    double *rerun = s_sampled_design(config, 0);
    assert_memory_equal(drawn, rerun, 100 * 3 * sizeof *drawn);
    free(drawn);
    free(rerun);
    lynx_value_destroy(&config);
}

//  ---------------------------------------------------------------------------------------
//  Golden designs: 10 runs of every distribution for a fixed seed, per method, written with
//  %.17g (which round-trips a double) and compared as text, so any change in any bit of any
//  parameter fails. After a deliberate change of the sampling, regenerate with
//
//      LYNX_REGENERATE_GOLDEN=1 build/tests/broker_study_test
//
//  and review the diff of tests/data/study/golden_10runs.json like code.

#define GOLDEN_PATH LYNX_TEST_DATA_DIR "/study/golden_10runs.json"
#define GOLDEN_SEED 20240601
#define GOLDEN_CORRELATIONS                                                                        \
    "[{\"a\": \"n\", \"b\": \"be\", \"rank_correlation\": 0.6},"                                   \
    " {\"a\": \"u\", \"b\": \"ex\", \"rank_correlation\": -0.3}]"

typedef struct {
    char *text;
    size_t length, size;
} text_t;

static void s_append(text_t *out, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void s_append(text_t *out, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int needed = vsnprintf(NULL, 0, format, args);
    va_end(args);
    assert_true(needed >= 0);
    if (out->length + (size_t)needed + 1 > out->size) {
        out->size = 2 * (out->length + (size_t)needed + 1);
        out->text = realloc(out->text, out->size);
        assert_non_null(out->text);
    }
    va_start(args, format);
    vsnprintf(out->text + out->length, out->size - out->length, format, args);
    va_end(args);
    out->length += (size_t)needed;
}

static void s_append_design(text_t *out, const char *name, lynx_value_t *config, bool last)
{
    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_sample(study), 0);
    s_append(out, "    \"%s\": [\n", name);
    for (int64_t run = 0; run < 10; run++) {
        lynx_value_t *parameters = broker_study_run_parameters(study, run);
        s_append(out, "      {");
        for (size_t j = 0; j < lynx_value_size(parameters); j++) {
            const lynx_value_t *value = lynx_value_at(parameters, j);
            s_append(out, "%s\"%s\": ", j ? ", " : "", lynx_value_key_at(parameters, j));
            if (lynx_value_type(value) == LYNX_VALUE_STRING)
                s_append(out, "\"%s\"", lynx_value_as_string(value));
            else if (lynx_value_type(value) == LYNX_VALUE_INT)
                s_append(out, "%lld", (long long)lynx_value_as_int(value));
            else
                s_append(out, "%.17g", lynx_value_as_double(value));
        }
        s_append(out, "}%s\n", run < 9 ? "," : "");
        lynx_value_destroy(&parameters);
    }
    s_append(out, "    ]%s\n", last ? "" : ",");
    broker_study_destroy(&study);
}

static char *s_golden_text(void)
{
    text_t out = {NULL, 0, 0};
    s_append(&out, "{\n  \"seed\": %d,\n  \"runs\": 10,\n  \"correlations\": %s,\n", GOLDEN_SEED,
             GOLDEN_CORRELATIONS);
    s_append(&out, "  \"designs\": {\n");
    for (int m = 0; m < 4; m++) {
        lynx_value_t *config = s_method_config(10, s_methods[m], GOLDEN_SEED);
        s_append_design(&out, s_methods[m], config, false);
        lynx_value_destroy(&config);
    }
    lynx_value_t *config = s_method_config(10, "latin_hypercube", GOLDEN_SEED);
    s_set_json(config, "correlations", GOLDEN_CORRELATIONS);
    s_append_design(&out, "latin_hypercube_correlated", config, true);
    lynx_value_destroy(&config);
    s_append(&out, "  }\n}\n");
    return out.text;
}

static char *s_read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    text_t in = {NULL, 0, 0};
    char buffer[4096];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, file)) > 0)
        s_append(&in, "%.*s", (int)got, buffer);
    fclose(file);
    return in.text ? in.text : strdup("");
}

static void test_designs_match_the_golden_file(void **state)
{
    (void)state;
    char *actual = s_golden_text();
    const char *regenerate = getenv("LYNX_REGENERATE_GOLDEN");
    if (regenerate && strcmp(regenerate, "1") == 0) {
        FILE *file = fopen(GOLDEN_PATH, "wb");
        assert_non_null(file);
        assert_int_equal(fputs(actual, file) >= 0, 1);
        assert_int_equal(fclose(file), 0);
        print_message("regenerated %s\n", GOLDEN_PATH);
    }
    char *expected = s_read_file(GOLDEN_PATH);
    char difference[512] = "";
    if (!expected)
        snprintf(difference, sizeof difference,
                 "cannot read it (LYNX_REGENERATE_GOLDEN=1 writes it)");
    else if (strcmp(actual, expected) != 0) {
        //  Name the first line that differs.
        size_t line = 1, i = 0;
        while (actual[i] && actual[i] == expected[i])
            line += actual[i++] == '\n';
        size_t start = i;
        while (start > 0 && actual[start - 1] != '\n')
            start--;
        snprintf(difference, sizeof difference, "differs at line %zu; sampled:\n%.200s", line,
                 actual + start);
    }
    free(actual);
    free(expected);
    if (difference[0])
        fail_msg("%s %s", GOLDEN_PATH, difference);
}

//  ---------------------------------------------------------------------------------------
//  Quasi Monte Carlo

//  Three uniform (0, 1) dimensions, whose values are the unit values themselves.
static lynx_value_t *s_cube_config(int64_t runs, bool scramble, int64_t seed)
{
    lynx_value_t *config = s_config_head("Cube", "0", 1, runs, "quasi_monte_carlo", seed);
    lynx_value_t *dispersions = lynx_value_get(config, "dispersions");
    s_add_uniform(dispersions, "x", 0.0, 1.0, "");
    s_add_uniform(dispersions, "y", 0.0, 1.0, "");
    s_add_uniform(dispersions, "z", 0.0, 1.0, "");
    if (scramble)
        lynx_value_set_bool(lynx_value_get(config, "monte_carlo"), "scramble", true);
    return config;
}

static void test_plain_sobol_run_i_is_point_i_plus_1(void **state)
{
    (void)state;
    lynx_value_t *config = s_cube_config(16, false, 1);
    double *design = s_sampled_design(config, 0);
    broker_sobol_t *sobol = broker_sobol_new(3, false, 0);
    double points[17 * 3];
    broker_sobol_fill(sobol, 17, points);
    assert_memory_equal(design, points + 3, 16 * 3 * sizeof *design);
    //  Point 0, the origin, is skipped: run 0 is the centre of the cube.
    assert_true(design[0] == 0.5 && design[1] == 0.5 && design[2] == 0.5);
    assert_true(design[3] == 0.75 && design[4] == 0.25);
    broker_sobol_destroy(&sobol);
    free(design);
    lynx_value_destroy(&config);
}

static void test_scrambled_sobol_run_i_is_point_i(void **state)
{
    (void)state;
    lynx_value_t *config = s_cube_config(1024, true, 77);
    double *design = s_sampled_design(config, 0);
    broker_sobol_t *sobol = broker_sobol_new(3, true, 77);
    double *points = malloc(1024 * 3 * sizeof *points);
    assert_non_null(points);
    broker_sobol_fill(sobol, 1024, points);
    assert_memory_equal(design, points, 1024 * 3 * sizeof *design);
    //  2^10 scrambled points are still a (0, 10, s)-net: one per stratum in each dimension.
    int hits[3][1024] = {{0}};
    for (size_t i = 0; i < 1024; i++)
        for (size_t d = 0; d < 3; d++) {
            assert_true(design[i * 3 + d] > 0.0 && design[i * 3 + d] < 1.0);
            hits[d][(size_t)(design[i * 3 + d] * 1024)]++;
        }
    for (size_t d = 0; d < 3; d++)
        for (size_t s = 0; s < 1024; s++)
            assert_int_equal(hits[d][s], 1);
    broker_sobol_destroy(&sobol);
    free(points);
    free(design);
    lynx_value_destroy(&config);
}

static void test_scramble_applies_to_sobol_only(void **state)
{
    (void)state;
    lynx_value_t *config = s_unit_config(4, "latin_hypercube", 1);
    lynx_value_set_bool(lynx_value_get(config, "monte_carlo"), "scramble", true);
    lynx_value_t *warnings = lynx_value_array();
    broker_study_t *study = broker_study_new(config, 0, NULL, warnings);
    assert_non_null(study);
    assert_int_equal(lynx_value_size(warnings), 1);
    assert_string_equal(lynx_value_get_string(lynx_value_at(warnings, 0), "field", ""),
                        "config.monte_carlo.scramble");
    broker_study_destroy(&study);
    lynx_value_destroy(&warnings);
    lynx_value_destroy(&config);
}

//  ---------------------------------------------------------------------------------------
//  Correlations

static void test_correlations_reach_their_targets(void **state)
{
    (void)state;
    for (int m = 0; m < 4; m++) {
        lynx_value_t *config = s_method_config(2000, s_methods[m], 31);
        double *independent = s_sampled_design(config, 0);
        s_set_json(config, "correlations",
                   "[{\"a\": \"n\", \"b\": \"be\", \"rank_correlation\": 0.7},"
                   " {\"a\": \"n\", \"b\": \"ex\", \"rank_correlation\": -0.4},"
                   " {\"a\": \"tri\", \"b\": \"lm\", \"rank_correlation\": 0.9},"
                   " {\"a\": \"k\", \"b\": \"u\", \"rank_correlation\": 0.3}]");
        double *correlated = s_sampled_design(config, 0);
        //  Columns of the all-distribution design: u 0, n 1, lm 5, tri 6, ex 7, be 8.
        static const struct {
            size_t a, b;
            double r;
        } targets[] = {{1, 8, 0.7}, {1, 7, -0.4}, {6, 5, 0.9}, {8, 7, 0.0}, {1, 0, 0.0}};
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
            double r =
                broker_corr_spearman(correlated, 2000, ALL_DIMENSIONS, targets[t].a, targets[t].b);
            if (!(fabs(r - targets[t].r) < 0.05))
                fail_msg("%s: Spearman (%zu, %zu) = %.3f, target %.2f", s_methods[m], targets[t].a,
                         targets[t].b, r, targets[t].r);
        }
        //  Reordering keeps every column's values, and leaves unnamed columns alone.
        for (size_t j = 0; j < ALL_DIMENSIONS; j++) {
            double *before = malloc(2000 * sizeof *before), *after = malloc(2000 * sizeof *after);
            for (size_t i = 0; i < 2000; i++) {
                before[i] = independent[i * ALL_DIMENSIONS + j];
                after[i] = correlated[i * ALL_DIMENSIONS + j];
            }
            bool named = j == 0 || j == 1 || j == 5 || j == 6 || j == 7 || j == 8 || j == 10;
            if (!named)
                assert_memory_equal(before, after, 2000 * sizeof *before);
            qsort(before, 2000, sizeof *before, s_compare_doubles);
            qsort(after, 2000, sizeof *after, s_compare_doubles);
            assert_memory_equal(before, after, 2000 * sizeof *before);
            free(before);
            free(after);
        }
        free(independent);
        free(correlated);
        lynx_value_destroy(&config);
    }
}

//  ---------------------------------------------------------------------------------------
//  Rejected configs: every file of tests/data/study/bad patches the spacecraft config
//  (mass_kg normal, drag_coefficient uniform) and lists every error expected, in order (format
//  in its README.md). Each file is a test case of its own.

typedef struct {
    const char *field;
    const char *message;
} expected_t;

#define MAX_ERRORS 6

static void s_assert_errors(const char *name, const lynx_value_t *errors,
                            const expected_t expected[MAX_ERRORS])
{
    size_t count = 0;
    while (count < MAX_ERRORS && expected[count].field)
        count++;
    size_t actual = lynx_value_size(errors);
    for (size_t i = 0; i < count || i < actual; i++) {
        const lynx_value_t *error = lynx_value_at(errors, i);
        const char *field = lynx_value_get_string(error, "field", "(none)");
        const char *message = lynx_value_get_string(error, "message", "(none)");
        const char *want_field = i < count ? expected[i].field : "(none)";
        const char *want_message = i < count ? expected[i].message : "(none)";
        if (strcmp(field, want_field) != 0 || strcmp(message, want_message) != 0)
            fail_msg("%s: error %zu is \"%s: %s\", expected \"%s: %s\"", name, i, field, message,
                     want_field, want_message);
    }
}

//  The parent map of a dotted path under config (created as needed) and its last key.
static lynx_value_t *s_parent(lynx_value_t *config, const char *path, char *key, size_t size)
{
    lynx_value_t *parent = config;
    const char *at = path;
    for (const char *dot; (dot = strchr(at, '.')); at = dot + 1) {
        char part[128];
        snprintf(part, sizeof part, "%.*s", (int)(dot - at), at);
        lynx_value_t *child = lynx_value_get(parent, part);
        if (!child) {
            lynx_value_set_owned(parent, part, lynx_value_map());
            child = lynx_value_get(parent, part);
        }
        parent = child;
    }
    snprintf(key, size, "%s", at);
    return parent;
}

//  One patch of a bad-config file: {"remove": path}, {"set": path, "value": v}, {"set": path,
//  "number": "nan" | "inf" | "-inf"} (JSON has no such numbers) or {"copy": path, "from": p}.
static void s_apply(lynx_value_t *config, const lynx_value_t *patch)
{
    const char *path = lynx_value_get_string(patch, "remove", NULL);
    path = path ? path : lynx_value_get_string(patch, "set", NULL);
    path = path ? path : lynx_value_get_string(patch, "copy", NULL);
    if (!path)
        fail_msg("a patch without remove, set or copy");
    char key[128];
    lynx_value_t *parent = s_parent(config, path, key, sizeof key);
    if (lynx_value_get(patch, "remove")) {
        lynx_value_remove(parent, key);
        return;
    }
    lynx_value_t *value = NULL;
    const char *number = lynx_value_get_string(patch, "number", NULL);
    if (lynx_value_get(patch, "copy"))
        value =
            lynx_value_dup(lynx_value_get_path(config, lynx_value_get_string(patch, "from", "")));
    else if (number)
        value = lynx_value_double(strcmp(number, "nan") == 0   ? NAN
                                  : strcmp(number, "inf") == 0 ? INFINITY
                                                               : -INFINITY);
    else
        value = lynx_value_dup(lynx_value_get(patch, "value"));
    assert_non_null(value);
    assert_int_equal(lynx_value_set(parent, key, &value), 0);
}

static lynx_value_t *s_read_json(const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file)
        fail_msg("cannot open %s", path);
    char *text = NULL;
    size_t size = 0;
    FILE *copy = open_memstream(&text, &size);
    for (int c; (c = fgetc(file)) != EOF;)
        fputc(c, copy);
    fclose(copy);
    fclose(file);
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, size, &err);
    if (!value)
        fail_msg("%s: %s", path, err.message);
    free(text);
    return value;
}

static void test_bad_config_file(void **state)
{
    const char *path = (const char *)*state;
    lynx_value_t *bad = s_read_json(path);
    lynx_value_t *config = s_spacecraft_config();
    const lynx_value_t *patches = lynx_value_get(bad, "patches");
    for (size_t i = 0; i < lynx_value_size(patches); i++)
        s_apply(config, lynx_value_at(patches, i));
    expected_t expected[MAX_ERRORS + 1] = {{0}};
    const lynx_value_t *errors_wanted = lynx_value_get(bad, "errors");
    assert_true(lynx_value_size(errors_wanted) > 0 && lynx_value_size(errors_wanted) <= MAX_ERRORS);
    for (size_t i = 0; i < lynx_value_size(errors_wanted); i++)
        expected[i] =
            (expected_t){lynx_value_get_string(lynx_value_at(errors_wanted, i), "field", ""),
                         lynx_value_get_string(lynx_value_at(errors_wanted, i), "message", "")};

    lynx_value_t *errors = lynx_value_array();
    broker_study_t *study =
        broker_study_new(config, lynx_value_get_int(bad, "runs_override", 0), errors, NULL);
    if (study)
        fail_msg("%s: accepted", path);
    s_assert_errors(lynx_value_get_string(bad, "description", path), errors, expected);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&config);
    lynx_value_destroy(&bad);
}

//  Every parameter set that the bad-config files reject for one reason is accepted once that reason
//  is gone: the rows test what they claim to.
static void test_every_distribution_type_accepts_good_parameters(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{\"type\": \"truncated_normal\", \"mean\": 0, \"std_dev\": 1, \"min\": 37.5, \"max\": 40}",
        "{\"type\": \"lognormal\", \"mu\": 0, \"sigma\": 1}",
        "{\"type\": \"lognormal\", \"mean\": 2, \"std_dev\": 0.5}",
        "{\"type\": \"triangular\", \"min\": 0, \"mode\": 4, \"max\": 4}",
        "{\"type\": \"exponential\", \"rate\": 0.001}",
        "{\"type\": \"beta\", \"alpha\": 2, \"beta\": 3}",
        "{\"type\": \"beta\", \"alpha\": 2, \"beta\": 3, \"min\": -5, \"max\": 5}",
        "{\"type\": \"choice\", \"values\": [\"a\", 1, 2.5]}",
        "{\"type\": \"choice\", \"values\": [\"a\", \"b\"], \"weights\": [0, 1]}",
        "{\"type\": \"constant\", \"value\": \"x\"}",
        "{\"type\": \"constant\", \"value\": -1.5}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        lynx_value_t *config = s_spacecraft_config();
        s_set_json(lynx_value_get_path(config, "dispersions.mass_kg"), "distribution", good[i]);
        s_set_json(config, "correlations",
                   "[{\"a\": \"mass_kg\", \"b\": \"drag_coefficient\", "
                   "\"rank_correlation\": -0.99}]");
        broker_study_t *study = s_study_new(config, 0);
        assert_int_equal(broker_study_sample(study), 0);
        broker_study_destroy(&study);
        lynx_value_destroy(&config);
    }
}

static void test_quasi_monte_carlo_dimension_limit(void **state)
{
    (void)state;
    lynx_value_t *config = s_config_head("Wide", "0", 1, 4, "quasi_monte_carlo", 1);
    lynx_value_t *dispersions = lynx_value_get(config, "dispersions");
    char name[32];
    for (int d = 0; d < BROKER_SOBOL_MAX_DIMENSIONS; d++) {
        snprintf(name, sizeof name, "x%d", d);
        s_add_uniform(dispersions, name, 0.0, 1.0, "");
    }
    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_sample(study), 0);
    broker_study_destroy(&study);

    s_add_uniform(dispersions, "one_too_many", 0.0, 1.0, "");
    lynx_value_t *errors = lynx_value_array();
    assert_null(broker_study_new(config, 0, errors, NULL));
    char message[128];
    snprintf(message, sizeof message, "quasi_monte_carlo supports at most %d dispersions (got %d)",
             BROKER_SOBOL_MAX_DIMENSIONS, BROKER_SOBOL_MAX_DIMENSIONS + 1);
    const expected_t expected[MAX_ERRORS] = {{"config.dispersions", message}};
    s_assert_errors("1025 Sobol dimensions", errors, expected);
    lynx_value_destroy(&errors);

    //  The other methods have no such limit.
    lynx_value_set_string(lynx_value_get(config, "monte_carlo"), "sampling_method",
                          "latin_hypercube");
    study = s_study_new(config, 0);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

static void test_config_must_be_an_object(void **state)
{
    (void)state;
    lynx_value_t *errors = lynx_value_array();
    assert_null(broker_study_new(NULL, 0, errors, NULL));
    lynx_value_t *list = lynx_value_array();
    assert_null(broker_study_new(list, 0, errors, NULL));
    static const expected_t expected[MAX_ERRORS] = {{"config", "must be an object"},
                                                    {"config", "must be an object"}};
    s_assert_errors("config", errors, expected);
    lynx_value_destroy(&list);
    lynx_value_destroy(&errors);
}

static void test_errors_are_appended_to_what_the_caller_has(void **state)
{
    (void)state;
    lynx_value_t *config = s_spacecraft_config();
    lynx_value_remove(config, "monte_carlo");
    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *earlier = lynx_value_string("from the gateway");
    lynx_value_append(errors, &earlier);
    assert_null(broker_study_new(config, 0, errors, NULL));
    assert_int_equal(lynx_value_size(errors), 2);
    assert_string_equal(lynx_value_get_string(lynx_value_at(errors, 1), "field", ""),
                        "config.monte_carlo");

    //  A caller that only wants the verdict may pass no array at all.
    assert_null(broker_study_new(config, 0, NULL, NULL));
    lynx_value_destroy(&errors);
    lynx_value_destroy(&config);
}

static void test_unknown_fields_warn_but_pass(void **state)
{
    (void)state;
    lynx_value_t *config = s_spacecraft_config();
    lynx_value_set_string(config, "notes", "first try");
    lynx_value_set_string(lynx_value_get(config, "simulation"), "author", "ada");
    lynx_value_set_bool(lynx_value_get(config, "monte_carlo"), "antithetic", true);
    lynx_value_set_int(lynx_value_get(config, "compute"), "gpus", 1);
    lynx_value_set_string(lynx_value_get_path(config, "dispersions.mass_kg"), "unit", "kg");
    //  min means nothing to a normal distribution, mode nothing to a beta.
    lynx_value_set_double(lynx_value_get_path(config, "dispersions.mass_kg.distribution"), "min",
                          0.0);
    s_set_json(lynx_value_get_path(config, "dispersions.drag_coefficient"), "distribution",
               "{\"type\": \"beta\", \"alpha\": 2, \"beta\": 5, \"mode\": 0.2}");
    s_set_json(config, "correlations",
               "[{\"a\": \"mass_kg\", \"b\": \"drag_coefficient\", \"rank_correlation\": 0.2,"
               " \"method\": \"spearman\"}]");

    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    broker_study_t *study = broker_study_new(config, 0, errors, warnings);
    assert_non_null(study);
    assert_int_equal(lynx_value_size(errors), 0);
    static const char *fields[] = {
        "config.notes",
        "config.simulation.author",
        "config.monte_carlo.antithetic",
        "config.dispersions.mass_kg.unit",
        "config.dispersions.mass_kg.distribution.min",
        "config.dispersions.drag_coefficient.distribution.mode",
        "config.correlations[0].method",
        "config.compute.gpus",
    };
    size_t count = sizeof fields / sizeof fields[0];
    assert_int_equal(lynx_value_size(warnings), count);
    for (size_t i = 0; i < count; i++) {
        const lynx_value_t *warning = lynx_value_at(warnings, i);
        assert_string_equal(lynx_value_get_string(warning, "field", ""), fields[i]);
        assert_string_equal(lynx_value_get_string(warning, "message", ""),
                            "unknown field (ignored)");
    }
    broker_study_destroy(&study);

    //  Warnings are optional for the caller.
    study = broker_study_new(config, 0, errors, NULL);
    assert_non_null(study);
    broker_study_destroy(&study);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&warnings);
    lynx_value_destroy(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tutorial_config_samples_inside_its_bounds),
        cmocka_unit_test(test_spacecraft_config_samples_both_distributions),
        cmocka_unit_test(test_minimal_config_takes_defaults),
        cmocka_unit_test(test_seed_takes_the_full_63_bit_range),
        cmocka_unit_test(test_compute_settings_are_read),
        cmocka_unit_test(test_latin_hypercube_fills_every_stratum_once),
        cmocka_unit_test(test_every_method_samples_every_distribution),
        cmocka_unit_test(test_choice_and_constant_values_keep_their_type),
        cmocka_unit_test(test_same_seed_same_design),
        cmocka_unit_test(test_sampling_again_redraws_the_same_design),
        cmocka_unit_test(test_methods_differ),
        cmocka_unit_test(test_monte_carlo_runs_do_not_depend_on_the_total),
        cmocka_unit_test(test_runs_override_resizes_the_design),
        cmocka_unit_test(test_drawn_seed_reproduces_the_design),
        cmocka_unit_test(test_designs_match_the_golden_file),
        cmocka_unit_test(test_plain_sobol_run_i_is_point_i_plus_1),
        cmocka_unit_test(test_scrambled_sobol_run_i_is_point_i),
        cmocka_unit_test(test_scramble_applies_to_sobol_only),
        cmocka_unit_test(test_correlations_reach_their_targets),
        cmocka_unit_test(test_every_distribution_type_accepts_good_parameters),
        cmocka_unit_test(test_quasi_monte_carlo_dimension_limit),
        cmocka_unit_test(test_config_must_be_an_object),
        cmocka_unit_test(test_errors_are_appended_to_what_the_caller_has),
        cmocka_unit_test(test_unknown_fields_warn_but_pass),
    };
    int failures = cmocka_run_group_tests(tests, NULL, NULL);
    return failures + data_cases_run("bad_configs", LYNX_TEST_DATA_DIR "/study/bad", ".json",
                                     test_bad_config_file);
}
