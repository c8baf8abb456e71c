//  broker_study: from the "config" of a POST /jobs body to the parameters of each run.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_dist.h"
#include "broker_study.h"

//  ---------------------------------------------------------------------------------------
//  Building configs. The tests have no JSON parser, so configs are built as value trees.

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

//  Three dimensions whose unit values are easy to recover: u = a, (b + 3) / 15, Phi (c).
static lynx_value_t *s_unit_config(int64_t runs, const char *method, int64_t seed)
{
    lynx_value_t *config = s_config_head("Strata", "0", 1, runs, method, seed);
    lynx_value_t *dispersions = lynx_value_get(config, "dispersions");
    s_add_uniform(dispersions, "a", 0.0, 1.0, "");
    s_add_uniform(dispersions, "b", -3.0, 12.0, "");
    s_add_normal(dispersions, "c", 0.0, 1.0, "");
    return config;
}

static double s_unit_value(size_t dimension, double value)
{
    if (dimension == 0)
        return value;
    if (dimension == 1)
        return (value + 3.0) / 15.0;
    return 0.5 * erfc(-value / sqrt(2.0));
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
//  Sampling

static void s_assert_one_point_per_stratum(int64_t runs)
{
    lynx_value_t *config = s_unit_config(runs, "latin_hypercube", 7);
    double *design = s_sampled_design(config, 0);
    size_t n = (size_t)runs;
    int *hits = calloc(n, sizeof *hits);
    assert_non_null(hits);
    for (size_t j = 0; j < 3; j++) {
        memset(hits, 0, n * sizeof *hits);
        for (size_t i = 0; i < n; i++) {
            double u = s_unit_value(j, design[i * 3 + j]);
            assert_true(u > 0.0 && u < 1.0);
            size_t stratum = (size_t)floor(u * (double)n);
            assert_true(stratum < n);
            hits[stratum]++;
        }
        for (size_t s = 0; s < n; s++)
            assert_int_equal(hits[s], 1);
    }
    free(hits);
    free(design);
    lynx_value_destroy(&config);
}

static void test_latin_hypercube_fills_every_stratum_once(void **state)
{
    (void)state;
    s_assert_one_point_per_stratum(1);
    s_assert_one_point_per_stratum(2);
    s_assert_one_point_per_stratum(7);
    s_assert_one_point_per_stratum(1000);
}

static void test_same_seed_same_design(void **state)
{
    (void)state;
    static const char *methods[] = {"monte_carlo", "latin_hypercube"};
    for (int m = 0; m < 2; m++) {
        lynx_value_t *config = s_unit_config(200, methods[m], 42);
        double *first = s_sampled_design(config, 0);
        double *again = s_sampled_design(config, 0);
        assert_memory_equal(first, again, 200 * 3 * sizeof *first);

        lynx_value_set_int(lynx_value_get(config, "monte_carlo"), "seed", 43);
        double *other = s_sampled_design(config, 0);
        for (size_t i = 0; i < 200 * 3; i++)
            assert_true(other[i] != first[i]);
        free(first);
        free(again);
        free(other);
        lynx_value_destroy(&config);
    }
}

static void test_sampling_again_redraws_the_same_design(void **state)
{
    (void)state;
    lynx_value_t *config = s_spacecraft_config();
    broker_study_t *study = s_study_new(config, 0);
    assert_int_equal(broker_study_sample(study), 0);
    double *first = s_design(study);
    assert_int_equal(broker_study_sample(study), 0);
    double *again = s_design(study);
    assert_memory_equal(first, again, 500 * 2 * sizeof *first);
    free(first);
    free(again);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
}

static void test_methods_differ(void **state)
{
    (void)state;
    lynx_value_t *config = s_unit_config(50, "monte_carlo", 42);
    double *independent = s_sampled_design(config, 0);
    lynx_value_set_string(lynx_value_get(config, "monte_carlo"), "sampling_method",
                          "latin_hypercube");
    double *stratified = s_sampled_design(config, 0);
    assert_memory_not_equal(independent, stratified, 50 * 3 * sizeof *independent);
    free(independent);
    free(stratified);
    lynx_value_destroy(&config);
}

static void test_monte_carlo_runs_do_not_depend_on_the_total(void **state)
{
    (void)state;
    lynx_value_t *config = s_unit_config(10, "monte_carlo", 5);
    double *ten = s_sampled_design(config, 0);
    double *twenty = s_sampled_design(config, 20);
    assert_memory_equal(ten, twenty, 10 * 3 * sizeof *ten);
    free(ten);
    free(twenty);
    lynx_value_destroy(&config);
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
//  Distributions

static void test_normal_quantile_is_accurate(void **state)
{
    (void)state;
    //  Reference values from mpmath at 40 digits.
    static const struct {
        double p, z;
    } table[] = {
        {0.975, 1.959963984540054},   {0.025, -1.959963984540054},
        {0.3, -0.5244005127080408},   {0.02, -2.053748910631823},
        {1e-5, -4.264890793922825},   {1e-10, -6.361340902404056},
        {1e-300, -37.04709629936120}, {1.0 - 0x1p-53, 8.209536151601387},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        double z = broker_dist_normal_quantile(table[i].p);
        assert_true(fabs(z - table[i].z) <= 1e-12 * fabs(table[i].z));
    }
    assert_true(broker_dist_normal_quantile(0.5) == 0.0);
}

static void test_normal_quantile_is_symmetric_and_finite(void **state)
{
    (void)state;
    //  k / 1024 and 1 - k / 1024 are both exact, so symmetry can be exact too.
    for (int k = 1; k < 512; k++) {
        double p = k / 1024.0;
        assert_true(broker_dist_normal_quantile(p) == -broker_dist_normal_quantile(1.0 - p));
        assert_true(broker_dist_normal_quantile(p) < broker_dist_normal_quantile(p + 0x1p-11));
    }
    assert_true(isfinite(broker_dist_normal_quantile(1e-300)));
    assert_true(isfinite(broker_dist_normal_quantile(1.0 - 1e-16)));
    assert_true(isfinite(broker_dist_normal_quantile(0x1p-1074)));
    assert_true(broker_dist_normal_quantile(0.0) == -INFINITY);
    assert_true(broker_dist_normal_quantile(1.0) == INFINITY);
    assert_true(isnan(broker_dist_normal_quantile(NAN)));
}

static void test_quantile_maps_unit_values(void **state)
{
    (void)state;
    broker_dist_t uniform = {.type = BROKER_DIST_UNIFORM, .min = 2.0, .max = 4.0};
    assert_true(broker_dist_quantile(&uniform, 0.25) == 2.5);
    broker_dist_t normal = {.type = BROKER_DIST_NORMAL, .mean = 2500.0, .std_dev = 125.0};
    assert_true(broker_dist_quantile(&normal, 0.5) == 2500.0);
    double upper = broker_dist_quantile(&normal, 0.975);
    assert_true(fabs(upper - (2500.0 + 125.0 * 1.959963984540054)) < 1e-9);
}

//  ---------------------------------------------------------------------------------------
//  Rejected configs: each row patches the spacecraft config and lists every error expected,
//  in order.

typedef enum {
    OP_REMOVE,
    OP_SET_INT,
    OP_SET_DOUBLE,
    OP_SET_STRING,
    OP_SET_BOOL,
    OP_SET_OBJECT,
    OP_SET_ARRAY,
    OP_COPY,
} op_t;

typedef struct {
    const char *path; //  dotted, from config; the last key is set or removed
    op_t op;
    int64_t i;
    double d;
    const char *s; //  OP_SET_STRING: the string; OP_COPY: the path to copy from
} patch_t;

//  The members of one patch, to write in braces: {SET_INT("monte_carlo.runs", 0)}.
#define REMOVE(p) .path = (p), .op = OP_REMOVE
#define SET_INT(p, v) .path = (p), .op = OP_SET_INT, .i = (v)
#define SET_DOUBLE(p, v) .path = (p), .op = OP_SET_DOUBLE, .d = (v)
#define SET_STRING(p, v) .path = (p), .op = OP_SET_STRING, .s = (v)
#define SET_BOOL(p, v) .path = (p), .op = OP_SET_BOOL, .i = (v)
#define SET_OBJECT(p) .path = (p), .op = OP_SET_OBJECT
#define SET_ARRAY(p) .path = (p), .op = OP_SET_ARRAY
#define COPY(p, from) .path = (p), .op = OP_COPY, .s = (from)

typedef struct {
    const char *field;
    const char *message;
} expected_t;

#define MAX_ERRORS 5

typedef struct {
    const char *name;
    patch_t patches[4];
    int64_t runs_override;
    expected_t errors[MAX_ERRORS];
} bad_config_t;

#define DISP "config.dispersions."

static const bad_config_t s_bad_configs[] = {
    {"no simulation", {{REMOVE("simulation")}}, 0, {{"config.simulation", "required"}}},
    {"simulation is a string",
     {{SET_STRING("simulation", "orbit")}},
     0,
     {{"config.simulation", "must be an object"}}},
    {"no name", {{REMOVE("simulation.name")}}, 0, {{"config.simulation.name", "required"}}},
    {"empty name",
     {{SET_STRING("simulation.name", "")}},
     0,
     {{"config.simulation.name", "must not be empty"}}},
    {"numeric name",
     {{SET_INT("simulation.name", 7)}},
     0,
     {{"config.simulation.name", "must be a string"}}},
    {"numeric version",
     {{SET_DOUBLE("simulation.version", 1.0)}},
     0,
     {{"config.simulation.version", "must be a string"}}},
    {"zero duration",
     {{SET_INT("simulation.duration_minutes", 0)}},
     0,
     {{"config.simulation.duration_minutes", "must be > 0"}}},
    {"duration as text",
     {{SET_STRING("simulation.duration_minutes", "120")}},
     0,
     {{"config.simulation.duration_minutes", "must be a number"}}},
    {"no monte_carlo", {{REMOVE("monte_carlo")}}, 0, {{"config.monte_carlo", "required"}}},
    {"no runs", {{REMOVE("monte_carlo.runs")}}, 0, {{"config.monte_carlo.runs", "required"}}},
    {"zero runs",
     {{SET_INT("monte_carlo.runs", 0)}},
     0,
     {{"config.monte_carlo.runs", "must be between 1 and 10000000"}}},
    {"too many runs",
     {{SET_INT("monte_carlo.runs", 10000001)}},
     0,
     {{"config.monte_carlo.runs", "must be between 1 and 10000000"}}},
    {"astronomical runs",
     {{SET_DOUBLE("monte_carlo.runs", 1e300)}},
     0,
     {{"config.monte_carlo.runs", "must be between 1 and 10000000"}}},
    {"fractional runs",
     {{SET_DOUBLE("monte_carlo.runs", 2.5)}},
     0,
     {{"config.monte_carlo.runs", "must be an integer"}}},
    {"runs as text",
     {{SET_STRING("monte_carlo.runs", "500")}},
     0,
     {{"config.monte_carlo.runs", "must be an integer"}}},
    {"runs as boolean",
     {{SET_BOOL("monte_carlo.runs", 1)}},
     0,
     {{"config.monte_carlo.runs", "must be an integer"}}},
    {"runs_override too large",
     {{.path = NULL}},
     10000001,
     {{"runs_override", "must be between 1 and 10000000"}}},
    {"negative seed",
     {{SET_INT("monte_carlo.seed", -1)}},
     0,
     {{"config.monte_carlo.seed", "must be between 0 and 9223372036854775807"}}},
    {"seed past 2^63",
     {{SET_DOUBLE("monte_carlo.seed", 0x1p63)}},
     0,
     {{"config.monte_carlo.seed", "must be between 0 and 9223372036854775807"}}},
    {"fractional seed",
     {{SET_DOUBLE("monte_carlo.seed", 1.5)}},
     0,
     {{"config.monte_carlo.seed", "must be an integer"}}},
    {"quasi Monte Carlo",
     {{SET_STRING("monte_carlo.sampling_method", "quasi_monte_carlo")}},
     0,
     {{"config.monte_carlo.sampling_method",
       "quasi_monte_carlo is not supported yet (use monte_carlo or latin_hypercube)"}}},
    {"unknown method",
     {{SET_STRING("monte_carlo.sampling_method", "sobol")}},
     0,
     {{"config.monte_carlo.sampling_method",
       "unknown sampling method 'sobol' (supported: monte_carlo, latin_hypercube)"}}},
    {"numeric method",
     {{SET_INT("monte_carlo.sampling_method", 1)}},
     0,
     {{"config.monte_carlo.sampling_method", "must be a string"}}},
    {"no dispersions", {{REMOVE("dispersions")}}, 0, {{"config.dispersions", "required"}}},
    {"empty dispersions",
     {{SET_OBJECT("dispersions")}},
     0,
     {{"config.dispersions", "must have at least one entry"}}},
    {"dispersions as a list",
     {{SET_ARRAY("dispersions")}},
     0,
     {{"config.dispersions", "must be an object"}}},
    {"name starts with a digit",
     {{COPY("dispersions.2fast", "dispersions.drag_coefficient")}},
     0,
     {{DISP "2fast", "must be a valid identifier ([A-Za-z_][A-Za-z0-9_]*)"}}},
    {"name with a dash",
     {{COPY("dispersions.dry-mass", "dispersions.mass_kg")}},
     0,
     {{DISP "dry-mass", "must be a valid identifier ([A-Za-z_][A-Za-z0-9_]*)"}}},
    {"dispersion is a number",
     {{SET_DOUBLE("dispersions.mass_kg", 2500.0)}},
     0,
     {{DISP "mass_kg", "must be an object"}}},
    {"numeric units",
     {{SET_INT("dispersions.mass_kg.units", 1)}},
     0,
     {{DISP "mass_kg.units", "must be a string"}}},
    {"no distribution",
     {{REMOVE("dispersions.mass_kg.distribution")}},
     0,
     {{DISP "mass_kg.distribution", "required"}}},
    {"no type",
     {{REMOVE("dispersions.mass_kg.distribution.type")}},
     0,
     {{DISP "mass_kg.distribution.type", "required"}}},
    {"unknown type",
     {{SET_STRING("dispersions.mass_kg.distribution.type", "lognormal")}},
     0,
     {{DISP "mass_kg.distribution.type",
       "unknown distribution type 'lognormal' (supported: uniform, normal)"}}},
    {"empty range",
     {{SET_DOUBLE("dispersions.drag_coefficient.distribution.max", 0.28)}},
     0,
     {{DISP "drag_coefficient.distribution.min", "must be less than max"}}},
    {"inverted range",
     {{SET_DOUBLE("dispersions.drag_coefficient.distribution.min", 0.5)}},
     0,
     {{DISP "drag_coefficient.distribution.min", "must be less than max"}}},
    {"no bounds",
     {{REMOVE("dispersions.drag_coefficient.distribution.min")},
      {REMOVE("dispersions.drag_coefficient.distribution.max")}},
     0,
     {{DISP "drag_coefficient.distribution.min", "required"},
      {DISP "drag_coefficient.distribution.max", "required"}}},
    {"bound as text",
     {{SET_STRING("dispersions.drag_coefficient.distribution.min", "0.28")}},
     0,
     {{DISP "drag_coefficient.distribution.min", "must be a number"}}},
    {"NaN bound",
     {{SET_DOUBLE("dispersions.drag_coefficient.distribution.min", NAN)}},
     0,
     {{DISP "drag_coefficient.distribution.min", "must be a finite number"}}},
    {"infinite bound",
     {{SET_DOUBLE("dispersions.drag_coefficient.distribution.max", INFINITY)}},
     0,
     {{DISP "drag_coefficient.distribution.max", "must be a finite number"}}},
    {"range wider than a double",
     {{SET_DOUBLE("dispersions.drag_coefficient.distribution.min", -1e308)},
      {SET_DOUBLE("dispersions.drag_coefficient.distribution.max", 1e308)}},
     0,
     {{DISP "drag_coefficient.distribution.max", "max - min must be a finite number"}}},
    {"zero std_dev",
     {{SET_INT("dispersions.mass_kg.distribution.std_dev", 0)}},
     0,
     {{DISP "mass_kg.distribution.std_dev", "must be > 0"}}},
    {"no mean",
     {{REMOVE("dispersions.mass_kg.distribution.mean")}},
     0,
     {{DISP "mass_kg.distribution.mean", "required"}}},
    {"compute is a string",
     {{SET_STRING("compute", "fast")}},
     0,
     {{"config.compute", "must be an object"}}},
    {"zero parallel jobs",
     {{SET_INT("compute.max_parallel_jobs", 0)}},
     0,
     {{"config.compute.max_parallel_jobs", "must be >= 1"}}},
    {"parallel jobs past int64",
     {{SET_DOUBLE("compute.max_parallel_jobs", 1e19)}},
     0,
     {{"config.compute.max_parallel_jobs", "must be between 1 and 9223372036854775807"}}},
    {"zero timeout",
     {{SET_INT("compute.job_timeout_seconds", 0)}},
     0,
     {{"config.compute.job_timeout_seconds", "must be between 1 and 2592000"}}},
    {"timeout over 30 days",
     {{SET_INT("compute.job_timeout_seconds", 2592001)}},
     0,
     {{"config.compute.job_timeout_seconds", "must be between 1 and 2592000"}}},
    {"too many retries",
     {{SET_INT("compute.max_retries", 101)}},
     0,
     {{"config.compute.max_retries", "must be between 0 and 100"}}},
    {"empty engine",
     {{SET_STRING("compute.engine", "")}},
     0,
     {{"config.compute.engine", "must not be empty"}}},
    {"container is a string",
     {{SET_STRING("compute.container", "ubuntu")}},
     0,
     {{"config.compute.container", "must be an object"}}},
    {"early_termination is a boolean",
     {{SET_BOOL("early_termination", 0)}},
     0,
     {{"config.early_termination", "must be an object"}}},
    {"telemetry is a list",
     {{SET_ARRAY("telemetry")}},
     0,
     {{"config.telemetry", "must be an object"}}},
    {"four mistakes at once",
     {{REMOVE("simulation.name")},
      {SET_INT("monte_carlo.runs", 0)},
      {SET_DOUBLE("dispersions.mass_kg.distribution.std_dev", -125.0)},
      {SET_INT("compute.engine", 5)}},
     0,
     {{"config.simulation.name", "required"},
      {"config.monte_carlo.runs", "must be between 1 and 10000000"},
      {DISP "mass_kg.distribution.std_dev", "must be > 0"},
      {"config.compute.engine", "must be a string"}}},
};

static void s_apply(lynx_value_t *config, const patch_t *patch)
{
    char parent_path[128];
    const char *dot = strrchr(patch->path, '.');
    lynx_value_t *parent = config;
    if (dot) {
        snprintf(parent_path, sizeof parent_path, "%.*s", (int)(dot - patch->path), patch->path);
        parent = lynx_value_get_path(config, parent_path);
    }
    const char *key = dot ? dot + 1 : patch->path;
    assert_non_null(parent);

    lynx_value_t *value = NULL;
    switch (patch->op) {
    case OP_REMOVE:
        assert_int_equal(lynx_value_remove(parent, key), 0);
        return;
    case OP_SET_INT:
        value = lynx_value_int(patch->i);
        break;
    case OP_SET_DOUBLE:
        value = lynx_value_double(patch->d);
        break;
    case OP_SET_STRING:
        value = lynx_value_string(patch->s);
        break;
    case OP_SET_BOOL:
        value = lynx_value_bool(patch->i != 0);
        break;
    case OP_SET_OBJECT:
        value = lynx_value_map();
        break;
    case OP_SET_ARRAY:
        value = lynx_value_array();
        break;
    case OP_COPY:
        value = lynx_value_dup(lynx_value_get_path(config, patch->s));
        break;
    }
    assert_int_equal(lynx_value_set(parent, key, &value), 0);
}

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

static void test_bad_configs_report_every_field(void **state)
{
    (void)state;
    for (size_t row = 0; row < sizeof s_bad_configs / sizeof s_bad_configs[0]; row++) {
        const bad_config_t *bad = &s_bad_configs[row];
        lynx_value_t *config = s_spacecraft_config();
        for (int i = 0; i < 4 && bad->patches[i].path; i++)
            s_apply(config, &bad->patches[i]);

        lynx_value_t *errors = lynx_value_array();
        broker_study_t *study = broker_study_new(config, bad->runs_override, errors, NULL);
        if (study)
            fail_msg("%s: accepted", bad->name);
        s_assert_errors(bad->name, errors, bad->errors);
        lynx_value_destroy(&errors);
        lynx_value_destroy(&config);
    }
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
    //  min means nothing to a normal distribution.
    lynx_value_set_double(lynx_value_get_path(config, "dispersions.mass_kg.distribution"), "min",
                          0.0);

    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    broker_study_t *study = broker_study_new(config, 0, errors, warnings);
    assert_non_null(study);
    assert_int_equal(lynx_value_size(errors), 0);
    static const char *fields[] = {
        "config.notes",      "config.simulation.author",      "config.monte_carlo.antithetic",
        DISP "mass_kg.unit", DISP "mass_kg.distribution.min", "config.compute.gpus",
    };
    assert_int_equal(lynx_value_size(warnings), 6);
    for (size_t i = 0; i < 6; i++) {
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
        cmocka_unit_test(test_same_seed_same_design),
        cmocka_unit_test(test_sampling_again_redraws_the_same_design),
        cmocka_unit_test(test_methods_differ),
        cmocka_unit_test(test_monte_carlo_runs_do_not_depend_on_the_total),
        cmocka_unit_test(test_runs_override_resizes_the_design),
        cmocka_unit_test(test_drawn_seed_reproduces_the_design),
        cmocka_unit_test(test_normal_quantile_is_accurate),
        cmocka_unit_test(test_normal_quantile_is_symmetric_and_finite),
        cmocka_unit_test(test_quantile_maps_unit_values),
        cmocka_unit_test(test_bad_configs_report_every_field),
        cmocka_unit_test(test_config_must_be_an_object),
        cmocka_unit_test(test_errors_are_appended_to_what_the_caller_has),
        cmocka_unit_test(test_unknown_fields_warn_but_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
