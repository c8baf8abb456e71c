//  broker_study: sampling a validated study. Every distribution under every method, Latin
//  hypercube strata, reproducibility from the seed, golden designs, Sobol points and
//  correlations (fixture: broker_study_fixture.h; validation: broker_study_check_test).
#include "broker_study_fixture.h"

//  ---------------------------------------------------------------------------------------
//  Every distribution type at once. The design read back through the public API, with each
//  value mapped to its unit value u = F (x) so the sampling methods can be checked in
//  u-space, where strata live.

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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
