//  broker_sobol: Joe-Kuo Sobol points, plain and scrambled.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "broker_sobol.h"

//  Reference points from SciPy's independent implementation over the same Joe-Kuo table,
//  printed by `/usr/bin/python3 scripts/gen-sobol-table --test-vectors` (SciPy 1.10.1):
//
//      qmc.Sobol(d=8, scramble=False).random(32) * 32
//      qmc.Sobol(d=1024, scramble=False).random(16)[:, 63] * 16     (and [:, 1023])
//
//  The first 2^k points only use the top k bits, so scaled by 2^k they are exact integers.
static const unsigned char first_32_of_8[32][8] = {
    {0, 0, 0, 0, 0, 0, 0, 0},        {16, 16, 16, 16, 16, 16, 16, 16},
    {24, 8, 8, 8, 24, 24, 8, 24},    {8, 24, 24, 24, 8, 8, 24, 8},
    {12, 12, 20, 28, 12, 4, 12, 28}, {28, 28, 4, 12, 28, 20, 28, 12},
    {20, 4, 28, 20, 20, 28, 4, 4},   {4, 20, 12, 4, 4, 12, 20, 20},
    {6, 10, 30, 14, 18, 10, 14, 30}, {22, 26, 14, 30, 2, 26, 30, 14},
    {30, 2, 22, 6, 10, 18, 6, 6},    {14, 18, 6, 22, 26, 2, 22, 22},
    {10, 6, 10, 18, 30, 14, 2, 2},   {26, 22, 26, 2, 14, 30, 18, 18},
    {18, 14, 2, 26, 6, 22, 10, 26},  {2, 30, 18, 10, 22, 6, 26, 10},
    {3, 15, 15, 21, 9, 31, 17, 27},  {19, 31, 31, 5, 25, 15, 1, 11},
    {27, 7, 7, 29, 17, 7, 25, 3},    {11, 23, 23, 13, 1, 23, 9, 19},
    {15, 3, 27, 9, 5, 27, 29, 7},    {31, 19, 11, 25, 21, 11, 13, 23},
    {23, 11, 19, 1, 29, 3, 21, 31},  {7, 27, 3, 17, 13, 19, 5, 15},
    {5, 5, 17, 27, 27, 21, 31, 5},   {21, 21, 1, 11, 11, 5, 15, 21},
    {29, 13, 25, 19, 3, 13, 23, 29}, {13, 29, 9, 3, 19, 29, 7, 13},
    {9, 9, 5, 7, 23, 17, 19, 25},    {25, 25, 21, 23, 7, 1, 3, 9},
    {17, 1, 13, 15, 15, 9, 27, 1},   {1, 17, 29, 31, 31, 25, 11, 17},
};
static const unsigned char first_16_of_dim_64[16] = {0,  8, 12, 4,  2, 10, 14, 6,
                                                     11, 3, 7,  15, 9, 1,  5,  13};
static const unsigned char first_16_of_dim_1024[16] = {0, 8, 12, 4, 14, 6, 2, 10,
                                                       1, 9, 13, 5, 15, 7, 3, 11};

//  count points of a fresh generator, point-major; the caller frees.
static double *s_points(size_t dimensions, bool scramble, uint64_t seed, size_t count)
{
    broker_sobol_t *sobol = broker_sobol_new(dimensions, scramble, seed);
    assert_non_null(sobol);
    double *points = malloc(count * dimensions * sizeof *points);
    assert_non_null(points);
    broker_sobol_fill(sobol, count, points);
    broker_sobol_destroy(&sobol);
    assert_null(sobol);
    return points;
}

static void test_first_points_match_joe_kuo(void **state)
{
    (void)state;
    double *points = s_points(8, false, 0, 32);
    for (size_t i = 0; i < 32; i++)
        for (size_t d = 0; d < 8; d++)
            assert_true(points[i * 8 + d] == first_32_of_8[i][d] / 32.0);
    free(points);
}

static void test_high_dimensions_match_joe_kuo(void **state)
{
    (void)state;
    double *points = s_points(BROKER_SOBOL_MAX_DIMENSIONS, false, 0, 16);
    for (size_t i = 0; i < 16; i++) {
        assert_true(points[i * 1024 + 63] == first_16_of_dim_64[i] / 16.0);
        assert_true(points[i * 1024 + 1023] == first_16_of_dim_1024[i] / 16.0);
    }
    free(points);
}

static void test_dimensions_out_of_range_give_null(void **state)
{
    (void)state;
    assert_null(broker_sobol_new(0, false, 0));
    assert_null(broker_sobol_new(BROKER_SOBOL_MAX_DIMENSIONS + 1, false, 0));
    assert_null(broker_sobol_new(BROKER_SOBOL_MAX_DIMENSIONS + 1, true, 7));
    broker_sobol_t *none = NULL;
    broker_sobol_destroy(&none);
}

static void test_unscrambled_values_are_on_the_2_pow_32_grid(void **state)
{
    (void)state;
    size_t count = 1000;
    double *points = s_points(BROKER_SOBOL_MAX_DIMENSIONS, false, 0, count);
    for (size_t d = 0; d < BROKER_SOBOL_MAX_DIMENSIONS; d++)
        assert_true(points[d] == 0.0);
    for (size_t i = 0; i < count * BROKER_SOBOL_MAX_DIMENSIONS; i++) {
        double scaled = points[i] * 0x1p32;
        assert_true(scaled >= 0 && scaled < 0x1p32);
        assert_true(scaled == (double)(uint64_t)scaled);
    }
    free(points);
}

//  With N = 2^k points every dimension has exactly one point in each [j/N, (j+1)/N): checked
//  for every prefix 2^0 .. 2^12 of each stream.
static void s_assert_one_point_per_interval(const double *points, size_t dimensions)
{
    unsigned char hits[4096];
    for (unsigned k = 0; k <= 12; k++) {
        size_t n = (size_t)1 << k;
        for (size_t d = 0; d < dimensions; d++) {
            memset(hits, 0, n);
            for (size_t i = 0; i < n; i++) {
                //  Exact: the values are dyadic, so scaling by 2^k only moves the exponent.
                size_t interval = (size_t)(points[i * dimensions + d] * (double)n);
                assert_true(interval < n);
                hits[interval]++;
            }
            for (size_t j = 0; j < n; j++)
                assert_int_equal(hits[j], 1);
        }
    }
}

static void test_scrambled_powers_of_two_keep_one_point_per_interval(void **state)
{
    (void)state;
    static const uint64_t seeds[] = {0, 1, 42, 20240601, UINT64_MAX};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        double *points = s_points(16, true, seeds[s], 4096);
        s_assert_one_point_per_interval(points, 16);
        free(points);
    }
    double *plain = s_points(16, false, 0, 4096);
    s_assert_one_point_per_interval(plain, 16);
    free(plain);
}

//  Dimensions 1 and 2 form a (0, k, 2)-net: every 2^-a x 2^-(k-a) box holds one of the first
//  2^k points. A scramble that only permuted each coordinate's values would break this; the
//  linear matrix scramble keeps it.
static void test_scrambled_first_two_dimensions_stay_a_0_net(void **state)
{
    (void)state;
    unsigned char hits[1024];
    for (uint64_t seed = 0; seed < 4; seed++) {
        double *points = s_points(2, seed > 0, seed, 1024);
        for (unsigned k = 0; k <= 10; k++) {
            size_t n = (size_t)1 << k;
            for (unsigned a = 0; a <= k; a++) {
                memset(hits, 0, n);
                for (size_t i = 0; i < n; i++) {
                    size_t column = (size_t)(points[2 * i] * (double)((size_t)1 << a));
                    size_t row = (size_t)(points[2 * i + 1] * (double)((size_t)1 << (k - a)));
                    hits[(row << a) | column]++;
                }
                for (size_t j = 0; j < n; j++)
                    assert_int_equal(hits[j], 1);
            }
        }
        free(points);
    }
}

static void test_scrambled_values_are_never_0_or_1(void **state)
{
    (void)state;
    size_t count = 1 << 14, dimensions = 64;
    double *points = s_points(dimensions, true, 3, count);
    for (size_t i = 0; i < count * dimensions; i++) {
        assert_true(points[i] > 0.0 && points[i] < 1.0);
        //  Midpoints of the 2^-32 cells.
        double scaled = points[i] * 0x1p32 - 0.5;
        assert_true(scaled == (double)(uint64_t)scaled);
    }
    free(points);
}

static void test_seed_picks_the_scramble(void **state)
{
    (void)state;
    size_t count = 256, dimensions = 7, bytes = count * dimensions * sizeof(double);
    double *first = s_points(dimensions, true, 99, count);
    double *again = s_points(dimensions, true, 99, count);
    double *other = s_points(dimensions, true, 100, count);
    assert_memory_equal(first, again, bytes);
    for (size_t d = 0; d < dimensions; d++)
        assert_true(first[d] != other[d]);
    assert_memory_not_equal(first, other, bytes);
    free(first);
    free(again);
    free(other);
}

static void test_fill_starts_at_point_0_each_time(void **state)
{
    (void)state;
    broker_sobol_t *sobol = broker_sobol_new(3, true, 5);
    assert_non_null(sobol);
    double short_run[10 * 3], long_run[40 * 3];
    broker_sobol_fill(sobol, 10, short_run);
    broker_sobol_fill(sobol, 40, long_run);
    assert_memory_equal(short_run, long_run, sizeof short_run);
    broker_sobol_fill(sobol, 0, NULL);
    broker_sobol_destroy(&sobol);
}

static void test_a_dimension_scrambles_the_same_in_any_width(void **state)
{
    (void)state;
    double *narrow = s_points(2, true, 11, 64);
    double *wide = s_points(9, true, 11, 64);
    for (size_t i = 0; i < 64; i++) {
        assert_true(narrow[i * 2] == wide[i * 9]);
        assert_true(narrow[i * 2 + 1] == wide[i * 9 + 1]);
    }
    free(narrow);
    free(wide);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_points_match_joe_kuo),
        cmocka_unit_test(test_high_dimensions_match_joe_kuo),
        cmocka_unit_test(test_dimensions_out_of_range_give_null),
        cmocka_unit_test(test_unscrambled_values_are_on_the_2_pow_32_grid),
        cmocka_unit_test(test_scrambled_powers_of_two_keep_one_point_per_interval),
        cmocka_unit_test(test_scrambled_first_two_dimensions_stay_a_0_net),
        cmocka_unit_test(test_scrambled_values_are_never_0_or_1),
        cmocka_unit_test(test_seed_picks_the_scramble),
        cmocka_unit_test(test_fill_starts_at_point_0_each_time),
        cmocka_unit_test(test_a_dimension_scrambles_the_same_in_any_width),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
