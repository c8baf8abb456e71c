//  broker_corr: inducing rank correlations by Iman-Conover, which only reorders columns.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "broker_corr.h"
#include "broker_dist.h"
#include "broker_rng.h"

#define RUNS 2000

//  rho(0, 1) = 0.7, rho(1, 2) = -0.4, columns 0 and 2 independent.
static const double target_3[9] = {1.0, 0.7, 0.0, 0.7, 1.0, -0.4, 0.0, -0.4, 1.0};
static const double identity_3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};

//  An independent design with three different marginals: uniform on [0, 10), normal (5, 2)
//  and a discrete one with many ties.
static double *s_random_design(size_t runs, uint64_t seed)
{
    double *design = malloc(runs * 3 * sizeof *design);
    assert_non_null(design);
    broker_rng_t rng;
    broker_rng_seed(&rng, seed);
    for (size_t i = 0; i < runs; i++) {
        design[i * 3] = 10 * broker_rng_uniform(&rng);
        design[i * 3 + 1] = 5 + 2 * broker_dist_normal_quantile(broker_rng_uniform(&rng));
        design[i * 3 + 2] = (double)broker_rng_below(&rng, 50);
    }
    return design;
}

//  A Latin hypercube on [0, 1)^dimensions: each column has one point per 1/runs stratum.
static double *s_latin_hypercube(size_t runs, size_t dimensions, uint64_t seed)
{
    double *design = malloc(runs * dimensions * sizeof *design);
    size_t *strata = malloc(runs * sizeof *strata);
    assert_non_null(design);
    assert_non_null(strata);
    broker_rng_t rng;
    broker_rng_seed(&rng, seed);
    for (size_t j = 0; j < dimensions; j++) {
        for (size_t i = 0; i < runs; i++)
            strata[i] = i;
        for (size_t i = runs - 1; i > 0; i--) {
            size_t other = broker_rng_below(&rng, i + 1), swap = strata[i];
            strata[i] = strata[other];
            strata[other] = swap;
        }
        for (size_t i = 0; i < runs; i++)
            design[i * dimensions + j] = (strata[i] + broker_rng_uniform(&rng)) / (double)runs;
    }
    free(strata);
    return design;
}

static int s_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

//  Column j of design, sorted; the caller frees.
static double *s_sorted_column(const double *design, size_t runs, size_t dimensions, size_t j)
{
    double *column = malloc(runs * sizeof *column);
    assert_non_null(column);
    for (size_t i = 0; i < runs; i++)
        column[i] = design[i * dimensions + j];
    qsort(column, runs, sizeof *column, s_compare_doubles);
    return column;
}

static double *s_copy(const double *design, size_t count)
{
    double *copy = malloc(count * sizeof *copy);
    assert_non_null(copy);
    memcpy(copy, design, count * sizeof *copy);
    return copy;
}

static void test_induces_the_target_rank_correlations(void **state)
{
    (void)state;
    double *design = s_random_design(RUNS, 1);
    lynx_err_t err;
    assert_int_equal(broker_corr_apply(design, RUNS, 3, target_3, 42, &err), 0);
    assert_true(fabs(broker_corr_spearman(design, RUNS, 3, 0, 1) - 0.7) < 0.05);
    assert_true(fabs(broker_corr_spearman(design, RUNS, 3, 1, 2) + 0.4) < 0.05);
    assert_true(fabs(broker_corr_spearman(design, RUNS, 3, 0, 2)) < 0.05);
    free(design);
}

static void test_marginals_are_preserved_exactly(void **state)
{
    (void)state;
    double *design = s_random_design(RUNS, 2);
    double *before[3];
    for (size_t j = 0; j < 3; j++)
        before[j] = s_sorted_column(design, RUNS, 3, j);
    assert_int_equal(broker_corr_apply(design, RUNS, 3, target_3, 7, NULL), 0);
    for (size_t j = 0; j < 3; j++) {
        double *after = s_sorted_column(design, RUNS, 3, j);
        assert_memory_equal(before[j], after, RUNS * sizeof(double));
        free(after);
        free(before[j]);
    }
    free(design);
}

static void test_latin_hypercube_strata_survive(void **state)
{
    (void)state;
    double *design = s_latin_hypercube(RUNS, 3, 3);
    assert_int_equal(broker_corr_apply(design, RUNS, 3, target_3, 9, NULL), 0);
    unsigned char hits[RUNS];
    for (size_t j = 0; j < 3; j++) {
        memset(hits, 0, sizeof hits);
        for (size_t i = 0; i < RUNS; i++)
            hits[(size_t)(design[i * 3 + j] * RUNS)]++;
        for (size_t s = 0; s < RUNS; s++)
            assert_int_equal(hits[s], 1);
    }
    assert_true(fabs(broker_corr_spearman(design, RUNS, 3, 0, 1) - 0.7) < 0.05);
    free(design);
}

static void test_not_positive_definite_is_rejected(void **state)
{
    (void)state;
    //  a and c each follow b closely, so they cannot be strongly opposed.
    static const double impossible[9] = {1.0, 0.9, -0.9, 0.9, 1.0, 0.9, -0.9, 0.9, 1.0};
    double *design = s_random_design(RUNS, 4);
    double *copy = s_copy(design, RUNS * 3);
    lynx_err_t err;
    assert_int_equal(broker_corr_apply(design, RUNS, 3, impossible, 1, &err), -1);
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.message, "correlation matrix is not positive definite");
    assert_memory_equal(design, copy, RUNS * 3 * sizeof(double));
    //  Checked before anything else, even when there is nothing to reorder.
    assert_int_equal(broker_corr_apply(design, 2, 3, impossible, 1, &err), -1);
    assert_memory_equal(design, copy, RUNS * 3 * sizeof(double));
    free(design);
    free(copy);
}

static void test_malformed_targets_are_rejected(void **state)
{
    (void)state;
    static const struct {
        double target[4];
        const char *message;
    } cases[] = {
        {{1, 0.5, 0.4, 1}, "correlation matrix is not symmetric: [0][1] = 0.5 but [1][0] = 0.4"},
        {{0.9, 0, 0, 1}, "correlation matrix diagonal entry [0][0] = 0.9 is not 1"},
        {{1, 1.5, 1.5, 1}, "correlation matrix entry [0][1] = 1.5 is outside [-1, 1]"},
        {{1, NAN, NAN, 1}, "correlation matrix entry [0][1] = nan is outside [-1, 1]"},
        {{1, 1, 1, 1}, "correlation matrix is not positive definite"},
    };
    double design[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8}, copy[4 * 2];
    memcpy(copy, design, sizeof design);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lynx_err_t err;
        assert_int_equal(broker_corr_apply(design, 4, 2, cases[c].target, 0, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.message, cases[c].message);
        assert_memory_equal(design, copy, sizeof design);
    }
}

static void test_identity_target_leaves_ranks_uncorrelated(void **state)
{
    (void)state;
    double *design = s_random_design(RUNS, 5);
    assert_int_equal(broker_corr_apply(design, RUNS, 3, identity_3, 11, NULL), 0);
    for (size_t a = 0; a < 3; a++)
        for (size_t b = a + 1; b < 3; b++)
            assert_true(fabs(broker_corr_spearman(design, RUNS, 3, a, b)) < 0.05);
    free(design);
}

static void test_seed_makes_it_reproducible(void **state)
{
    (void)state;
    double *first = s_random_design(RUNS, 6);
    double *again = s_copy(first, RUNS * 3);
    double *other = s_copy(first, RUNS * 3);
    assert_int_equal(broker_corr_apply(first, RUNS, 3, target_3, 123, NULL), 0);
    assert_int_equal(broker_corr_apply(again, RUNS, 3, target_3, 123, NULL), 0);
    assert_int_equal(broker_corr_apply(other, RUNS, 3, target_3, 124, NULL), 0);
    assert_memory_equal(first, again, RUNS * 3 * sizeof(double));
    assert_memory_not_equal(first, other, RUNS * 3 * sizeof(double));
    free(first);
    free(again);
    free(other);
}

static void test_too_small_designs_are_left_alone(void **state)
{
    (void)state;
    double design[2 * 3] = {3, 1, 2, 1, 3, 2}, copy[2 * 3];
    memcpy(copy, design, sizeof design);
    assert_int_equal(broker_corr_apply(design, 2, 3, target_3, 0, NULL), 0);
    assert_int_equal(broker_corr_apply(design, 0, 3, target_3, 0, NULL), 0);
    assert_memory_equal(design, copy, sizeof design);
    //  One column has nothing to correlate with; the target is not even read.
    assert_int_equal(broker_corr_apply(design, 6, 1, NULL, 0, NULL), 0);
    assert_memory_equal(design, copy, sizeof design);
}

//  With fewer runs than dimensions + 1 the shuffled scores are always linearly dependent; the
//  method still reorders without error and keeps the marginals.
static void test_fewer_runs_than_dimensions_still_work(void **state)
{
    (void)state;
    double target[25] = {0};
    for (size_t j = 0; j < 5; j++)
        target[j * 5 + j] = 1;
    target[1] = target[5] = 0.5;
    double *design = s_latin_hypercube(3, 5, 8);
    double *before = s_sorted_column(design, 3, 5, 4);
    assert_int_equal(broker_corr_apply(design, 3, 5, target, 1, NULL), 0);
    double *after = s_sorted_column(design, 3, 5, 4);
    assert_memory_equal(before, after, 3 * sizeof(double));
    free(before);
    free(after);
    free(design);
}

static void test_spearman_averages_tied_ranks(void **state)
{
    (void)state;
    //  Ranks of column 0: 1, 2.5, 2.5, 4; of column 1: 1, 2, 3, 4; column 2 reverses 1.
    double design[4 * 3] = {1, 10, 4, 2, 20, 3, 2, 30, 2, 3, 40, 1};
    assert_float_equal(broker_corr_spearman(design, 4, 3, 0, 1), 4.5 / sqrt(4.5 * 5), 1e-15);
    assert_float_equal(broker_corr_spearman(design, 4, 3, 1, 1), 1.0, 1e-15);
    assert_float_equal(broker_corr_spearman(design, 4, 3, 1, 2), -1.0, 1e-15);
    assert_true(isnan(broker_corr_spearman(design, 1, 3, 0, 1)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_induces_the_target_rank_correlations),
        cmocka_unit_test(test_marginals_are_preserved_exactly),
        cmocka_unit_test(test_latin_hypercube_strata_survive),
        cmocka_unit_test(test_not_positive_definite_is_rejected),
        cmocka_unit_test(test_malformed_targets_are_rejected),
        cmocka_unit_test(test_identity_target_leaves_ranks_uncorrelated),
        cmocka_unit_test(test_seed_makes_it_reproducible),
        cmocka_unit_test(test_too_small_designs_are_left_alone),
        cmocka_unit_test(test_fewer_runs_than_dimensions_still_work),
        cmocka_unit_test(test_spearman_averages_tied_ranks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
