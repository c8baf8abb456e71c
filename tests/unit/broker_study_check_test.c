//  broker_study_check: what a config must be to become a study. Accepted configs and their
//  defaults; every file of tests/data/study/bad as a test case of its own, each error with its
//  field path; limits, the shape of the config, warnings for unknown fields.
#include "broker_study_fixture.h"
#include "data_cases.h"

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
