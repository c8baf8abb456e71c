//  broker_dist: every distribution a dispersion can follow, as an inverse CDF.
//
//  Reference values were computed with mpmath 1.2.1 at 50-80 significant digits (Debian's
//  python3-mpmath): ncdf for Phi, betainc (regularized) solved by bisection for beta
//  quantiles, and Phi (a) + u (Phi (b) - Phi (a)) solved by bisection for truncated normal
//  quantiles. scipy 1.10 agrees with all of them to 1 ulp except where noted.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_dist.h"
#include "broker_rng.h"

#define KS_SAMPLES 20000
//  Kolmogorov-Smirnov critical value at alpha = 0.001 for large n: sqrt (-ln (alpha / 2) / 2)
//  / sqrt (n) = 1.9495 / sqrt (n).
#define KS_CRITICAL (1.9495 / sqrt(KS_SAMPLES))

static broker_dist_t *s_new(broker_dist_spec_t spec)
{
    broker_dist_t *dist = broker_dist_new(&spec);
    assert_non_null(dist);
    return dist;
}

static void s_assert_close(double actual, double expected, double relative, const char *what)
{
    if (!(fabs(actual - expected) <= relative * fabs(expected)))
        fail_msg("%s: %.17g, expected %.17g (relative error %.3g > %.3g)", what, actual, expected,
                 fabs(actual - expected) / fabs(expected), relative);
}

//  One distribution of each continuous kind, with the parameters a config would give. The
//  KS, tail and round-trip tests all run over this table.
typedef struct {
    const char *name;
    broker_dist_spec_t spec;
} named_spec_t;

static const named_spec_t s_continuous[] = {
    {"uniform", {.type = BROKER_DIST_UNIFORM, .min = 2.0, .max = 5.0}},
    {"normal", {.type = BROKER_DIST_NORMAL, .mean = 2500.0, .std_dev = 125.0}},
    {"truncated normal, two-sided",
     {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 1.0, .std_dev = 2.0, .min = -1.0, .max = 5.0}},
    {"truncated normal, upper tail",
     {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 0.0, .std_dev = 1.0, .min = 30.0, .max = 31.0}},
    {"truncated normal, lower tail",
     {.type = BROKER_DIST_TRUNCATED_NORMAL,
      .mean = 10.0,
      .std_dev = 0.5,
      .min = -10.0,
      .max = 8.0}},
    {"lognormal", {.type = BROKER_DIST_LOGNORMAL, .mu = 0.5, .sigma = 0.8}},
    {"triangular", {.type = BROKER_DIST_TRIANGULAR, .min = 1.0, .mode = 2.0, .max = 5.0}},
    {"triangular, mode at min",
     {.type = BROKER_DIST_TRIANGULAR, .min = 0.0, .mode = 0.0, .max = 1.0}},
    {"exponential", {.type = BROKER_DIST_EXPONENTIAL, .rate = 2.0}},
    {"beta", {.type = BROKER_DIST_BETA, .alpha = 2.0, .beta = 3.0, .min = 0.0, .max = 1.0}},
    {"beta, U-shaped and scaled",
     {.type = BROKER_DIST_BETA, .alpha = 0.5, .beta = 0.5, .min = -1.0, .max = 3.0}},
    {"beta, skewed", {.type = BROKER_DIST_BETA, .alpha = 2.5, .beta = 0.7, .min = 0.0, .max = 1.0}},
};

#define CONTINUOUS_COUNT (sizeof s_continuous / sizeof s_continuous[0])

static int s_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

//  ---------------------------------------------------------------------------------------
//  Goodness of fit

//  D = sup |F_n (x) - F (x)| over the sorted sample: at each point the empirical CDF jumps
//  from i / n to (i + 1) / n.
static double s_ks_statistic(const broker_dist_t *dist, double *sample, size_t n)
{
    qsort(sample, n, sizeof *sample, s_compare_doubles);
    double d = 0.0;
    for (size_t i = 0; i < n; i++) {
        double f = broker_dist_cdf(dist, sample[i]);
        d = fmax(d, fmax(f - (double)i / n, (double)(i + 1) / n - f));
    }
    return d;
}

static void test_continuous_samples_pass_kolmogorov_smirnov(void **state)
{
    (void)state;
    double *sample = malloc(KS_SAMPLES * sizeof *sample);
    assert_non_null(sample);
    for (size_t k = 0; k < CONTINUOUS_COUNT; k++) {
        broker_dist_t *dist = s_new(s_continuous[k].spec);
        broker_rng_t rng;
        broker_rng_seed(&rng, 20240601 + k);
        for (size_t i = 0; i < KS_SAMPLES; i++)
            sample[i] = broker_dist_quantile(dist, broker_rng_uniform(&rng));
        double d = s_ks_statistic(dist, sample, KS_SAMPLES);
        if (!(d < KS_CRITICAL))
            fail_msg("%s: KS D = %.5f >= %.5f", s_continuous[k].name, d, KS_CRITICAL);
        broker_dist_destroy(&dist);
    }
    free(sample);
}

//  Pearson's chi-square over the categories with positive weight.
static double s_chi_square(const broker_dist_t *dist, const double *weights, size_t count, size_t n,
                           uint64_t seed, size_t *categories)
{
    size_t observed[16] = {0};
    broker_rng_t rng;
    broker_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        double index = broker_dist_quantile(dist, broker_rng_uniform(&rng));
        assert_true(index >= 0 && index < (double)count && index == floor(index));
        observed[(size_t)index]++;
    }
    double total = 0.0, chi2 = 0.0;
    for (size_t k = 0; k < count; k++)
        total += weights[k];
    *categories = 0;
    for (size_t k = 0; k < count; k++) {
        double expected = n * weights[k] / total;
        if (weights[k] == 0) {
            assert_int_equal(observed[k], 0); //  a zero weight is never chosen
            continue;
        }
        chi2 += (observed[k] - expected) * (observed[k] - expected) / expected;
        ++*categories;
    }
    return chi2;
}

static void test_choice_frequencies_pass_chi_square(void **state)
{
    (void)state;
    //  Critical values of chi-square at alpha = 0.001 for 1 .. 5 degrees of freedom.
    static const double critical[] = {0, 10.828, 13.816, 16.266, 18.467, 20.515};

    static const double weights[] = {1.0, 2.0, 0.0, 7.0};
    broker_dist_t *dist =
        s_new((broker_dist_spec_t){.type = BROKER_DIST_CHOICE, .weights = weights, .count = 4});
    size_t categories;
    double chi2 = s_chi_square(dist, weights, 4, KS_SAMPLES, 11, &categories);
    assert_int_equal(categories, 3);
    assert_true(chi2 < critical[categories - 1]);
    broker_dist_destroy(&dist);

    //  No weights: all equal.
    static const double equal[] = {1, 1, 1, 1, 1, 1};
    dist = s_new((broker_dist_spec_t){.type = BROKER_DIST_CHOICE, .count = 6});
    chi2 = s_chi_square(dist, equal, 6, KS_SAMPLES, 12, &categories);
    assert_true(chi2 < critical[categories - 1]);
    broker_dist_destroy(&dist);
}

static void test_choice_inverts_cumulative_weights(void **state)
{
    (void)state;
    static const double weights[] = {0.0, 1.0, 0.0, 3.0, 0.0};
    broker_dist_t *dist =
        s_new((broker_dist_spec_t){.type = BROKER_DIST_CHOICE, .weights = weights, .count = 5});
    //  Cumulative shares: 0, 1/4, 1/4, 1, 1. F (k - 1) <= u < F (k) picks k.
    assert_true(broker_dist_quantile(dist, 1e-300) == 1.0);
    assert_true(broker_dist_quantile(dist, 0.2499999) == 1.0);
    assert_true(broker_dist_quantile(dist, 0.25) == 3.0);
    assert_true(broker_dist_quantile(dist, 1.0 - 0x1p-53) == 3.0);
    assert_true(broker_dist_cdf(dist, 0.0) == 0.0);
    assert_true(broker_dist_cdf(dist, 1.0) == 0.25);
    assert_true(broker_dist_cdf(dist, 3.0) == 1.0);
    assert_true(broker_dist_cdf(dist, -1.0) == 0.0);
    broker_dist_destroy(&dist);

    //  A single value is always chosen.
    dist = s_new((broker_dist_spec_t){.type = BROKER_DIST_CHOICE, .count = 1});
    assert_true(broker_dist_quantile(dist, 0.999) == 0.0);
    broker_dist_destroy(&dist);
}

static void test_constant_ignores_u(void **state)
{
    (void)state;
    broker_dist_t *dist = s_new((broker_dist_spec_t){.type = BROKER_DIST_CONSTANT, .value = 42.5});
    static const double us[] = {1e-300, 0x1p-53, 0.5, 1.0 - 0x1p-53};
    for (size_t i = 0; i < 4; i++)
        assert_true(broker_dist_quantile(dist, us[i]) == 42.5);
    assert_true(broker_dist_cdf(dist, 42.4) == 0.0);
    assert_true(broker_dist_cdf(dist, 42.5) == 1.0);
    broker_dist_destroy(&dist);
}

//  ---------------------------------------------------------------------------------------
//  Known quantiles

static void test_quantiles_match_reference_values(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        broker_dist_spec_t spec;
        double u, x;
    } table[] = {
        {"normal 0.975",
         {.type = BROKER_DIST_NORMAL, .mean = 0, .std_dev = 1},
         0.975,
         1.959963984540054},
        {"scaled normal 0.975",
         {.type = BROKER_DIST_NORMAL, .mean = 2500, .std_dev = 125},
         0.975,
         2500.0 + 125.0 * 1.959963984540054},
        //  ln 2 / 2: the exponential's median is ln 2 / rate.
        {"exponential median",
         {.type = BROKER_DIST_EXPONENTIAL, .rate = 2},
         0.5,
         0.34657359027997264},
        {"lognormal 0.975",
         {.type = BROKER_DIST_LOGNORMAL, .mu = 0.5, .sigma = 0.8},
         0.975,
         7.90876143727149},
        //  Beta (2, 3): the root of 6x^2 (1-x)^2 + 4x^3 (1-x) + x^4 = 1/2 (mpmath
        //  findroot and bisection, 40 digits: 0.385727568132389548...; scipy.stats.beta.ppf
        //  says ...895, one ulp low).
        {"beta (2, 3) median",
         {.type = BROKER_DIST_BETA, .alpha = 2, .beta = 3, .max = 1},
         0.5,
         0.38572756813238956},
        {"beta (2.5, 0.7) 0.1",
         {.type = BROKER_DIST_BETA, .alpha = 2.5, .beta = 0.7, .max = 1},
         0.1,
         0.4761226346936252},
        //  Far in the lower tail: about (u a B (a, b))^(1/a) (scipy says 1.96e-25 with a
        //  "root finding exceeded iterations" warning; mpmath bisection on ln I).
        {"beta (0.5, 3) 1e-10",
         {.type = BROKER_DIST_BETA, .alpha = 0.5, .beta = 3, .max = 1},
         1e-10,
         2.8444444444444445e-21},
        //  Closed forms: beta (1, 3) is 1 - (1 - u)^(1/3), beta (1/2, 1/2) is sin^2 (pi u / 2).
        {"beta (1, 3) 0.3",
         {.type = BROKER_DIST_BETA, .alpha = 1, .beta = 3, .max = 1},
         0.3,
         0.11209599825739928},
        {"beta (1/2, 1/2) 0.3",
         {.type = BROKER_DIST_BETA, .alpha = 0.5, .beta = 0.5, .max = 1},
         0.3,
         0.20610737385376343},
        {"truncated normal two-sided",
         {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 0, .std_dev = 1, .min = -1, .max = 2},
         0.25,
         -0.3496414292924655},
        {"truncated normal 30..31 sd",
         {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 0, .std_dev = 1, .min = 30, .max = 31},
         0.5,
         30.02307046782731},
        {"truncated normal 5..6 sd",
         {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 0, .std_dev = 1, .min = 5, .max = 6},
         0.7,
         5.225833664830883},
        {"truncated normal -31..-30 sd",
         {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 0, .std_dev = 1, .min = -31, .max = -30},
         0.3,
         -30.040061293677947},
        {"truncated normal past 37.9 sd",
         {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 0, .std_dev = 1, .min = 37.9, .max = 1000},
         0.5,
         37.91827173965716},
        {"truncated normal -40..-37.5 sd",
         {.type = BROKER_DIST_TRUNCATED_NORMAL, .mean = 0, .std_dev = 1, .min = -40, .max = -37.5},
         0.9,
         -37.50280751510425},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        broker_dist_t *dist = s_new(table[i].spec);
        s_assert_close(broker_dist_quantile(dist, table[i].u), table[i].x, 1e-12, table[i].what);
        broker_dist_destroy(&dist);
    }
}

static void test_closed_form_quantiles_are_exact(void **state)
{
    (void)state;
    broker_dist_t *uniform =
        s_new((broker_dist_spec_t){.type = BROKER_DIST_UNIFORM, .min = 2.0, .max = 4.0});
    assert_true(broker_dist_quantile(uniform, 0.25) == 2.5);
    assert_true(broker_dist_quantile(uniform, 0.5) == 3.0);
    broker_dist_destroy(&uniform);

    //  min 0, mode 1, max 4: F (mode) = 1/4. Below it x = sqrt (4 u), above it
    //  x = 4 - sqrt (12 (1 - u)).
    broker_dist_t *triangular =
        s_new((broker_dist_spec_t){.type = BROKER_DIST_TRIANGULAR, .min = 0, .mode = 1, .max = 4});
    assert_true(broker_dist_quantile(triangular, 0.0625) == 0.5);
    assert_true(broker_dist_quantile(triangular, 0.25) == 1.0);
    assert_true(broker_dist_quantile(triangular, 0.75) == 4.0 - sqrt(3.0));
    assert_true(broker_dist_cdf(triangular, 0.5) == 0.0625);
    broker_dist_destroy(&triangular);

    broker_dist_t *normal = s_new((broker_dist_spec_t){.type = BROKER_DIST_NORMAL, .std_dev = 3});
    assert_true(broker_dist_quantile(normal, 0.5) == 0.0);
    broker_dist_destroy(&normal);
    broker_dist_t *lognormal =
        s_new((broker_dist_spec_t){.type = BROKER_DIST_LOGNORMAL, .mu = 0, .sigma = 2});
    assert_true(broker_dist_quantile(lognormal, 0.5) == 1.0);
    broker_dist_destroy(&lognormal);
}

static void test_normal_quantile_is_accurate(void **state)
{
    (void)state;
    static const struct {
        double p, z;
    } table[] = {
        {0.975, 1.959963984540054},   {0.025, -1.959963984540054},
        {0.3, -0.5244005127080408},   {0.02, -2.053748910631823},
        {1e-5, -4.264890793922825},   {1e-10, -6.361340902404056},
        {1e-300, -37.04709629936120}, {1.0 - 0x1p-53, 8.209536151601387},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        s_assert_close(broker_dist_normal_quantile(table[i].p), table[i].z, 1e-12, "Phi^-1");
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

static void test_normal_cdf_is_accurate_in_both_tails(void **state)
{
    (void)state;
    static const struct {
        double x, p;
    } table[] = {
        {-1.0, 0.15865525393145705},     {-5.0, 2.866515718791939e-07},
        {-20.0, 2.7536241186062337e-89}, {-37.0, 5.725571222524577e-300},
        {3.0, 0.9986501019683699},       {0.5, 0.6914624612740131},
        {-0.25, 0.4012936743170763},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        s_assert_close(broker_dist_normal_cdf(table[i].x), table[i].p, 1e-14, "Phi");
    assert_true(broker_dist_normal_cdf(0.0) == 0.5);
    assert_true(broker_dist_normal_cdf(-INFINITY) == 0.0);
    assert_true(broker_dist_normal_cdf(INFINITY) == 1.0);
}

static void test_incomplete_beta_known_values(void **state)
{
    (void)state;
    for (double x = 0.05; x < 1.0; x += 0.1) {
        s_assert_close(broker_dist_beta_inc(1.0, 1.0, x), x, 1e-14, "I_x (1, 1)");
        double poly = 6 * x * x * (1 - x) * (1 - x) + 4 * x * x * x * (1 - x) + x * x * x * x;
        s_assert_close(broker_dist_beta_inc(2.0, 3.0, x), poly, 1e-13, "I_x (2, 3)");
    }
    s_assert_close(broker_dist_beta_inc(7.5, 7.5, 0.5), 0.5, 1e-14, "symmetric");
    assert_true(broker_dist_beta_inc(2.0, 3.0, 0.0) == 0.0);
    assert_true(broker_dist_beta_inc(2.0, 3.0, 1.0) == 1.0);
}

//  ---------------------------------------------------------------------------------------
//  Tails and consistency

static void test_tails_are_finite_and_inside_the_support(void **state)
{
    (void)state;
    static const double us[] = {1e-300, 0x1p-1074, 0x1p-53, 1.0 - 1e-16, 1.0 - 0x1p-53};
    for (size_t k = 0; k < CONTINUOUS_COUNT; k++) {
        const broker_dist_spec_t *spec = &s_continuous[k].spec;
        broker_dist_t *dist = s_new(*spec);
        bool bounded = spec->type != BROKER_DIST_NORMAL && spec->type != BROKER_DIST_LOGNORMAL &&
                       spec->type != BROKER_DIST_EXPONENTIAL;
        double previous = -INFINITY;
        for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
            double x = broker_dist_quantile(dist, us[i]);
            if (!isfinite(x))
                fail_msg("%s: quantile (%g) = %g", s_continuous[k].name, us[i], x);
            if (bounded && !(x >= spec->min && x <= spec->max))
                fail_msg("%s: quantile (%g) = %.17g outside [%g, %g]", s_continuous[k].name, us[i],
                         x, spec->min, spec->max);
            if (i > 1)
                assert_true(x >= previous); //  0x1p-1074 < 1e-300 breaks the order at i = 1
            previous = x;
        }
        broker_dist_destroy(&dist);
    }
    //  Absurd but valid scales stay finite too.
    broker_dist_t *wide =
        s_new((broker_dist_spec_t){.type = BROKER_DIST_LOGNORMAL, .mu = 0, .sigma = 100});
    assert_true(isfinite(broker_dist_quantile(wide, 1.0 - 0x1p-53)));
    broker_dist_destroy(&wide);
    broker_dist_t *slow =
        s_new((broker_dist_spec_t){.type = BROKER_DIST_EXPONENTIAL, .rate = 1e-308});
    assert_true(isfinite(broker_dist_quantile(slow, 1.0 - 0x1p-53)));
    broker_dist_destroy(&slow);
}

static void test_truncated_normal_stays_inside_far_tail_bounds(void **state)
{
    (void)state;
    static const double bounds[][2] = {
        {30.0, 31.0}, {-31.0, -30.0}, {37.9, 1000.0},  {-1e300, -37.9}, {10.0, 10.0 + 1e-9},
        {-5.0, 5.0},  {0.0, 1e-12},   {-1e-12, 1e-12}, {-1e308, 1e308}, {0.0, 40.0},
    };
    broker_rng_t rng;
    broker_rng_seed(&rng, 99);
    for (size_t k = 0; k < sizeof bounds / sizeof bounds[0]; k++) {
        broker_dist_t *dist = s_new((broker_dist_spec_t){.type = BROKER_DIST_TRUNCATED_NORMAL,
                                                         .mean = 0,
                                                         .std_dev = 1,
                                                         .min = bounds[k][0],
                                                         .max = bounds[k][1]});
        double previous = -INFINITY;
        for (int i = 0; i <= 64; i++) {
            //  u from 2^-1074 up to 1 - 2^-53 through every order of magnitude, then random.
            double u = i < 64 ? ldexp(1.0, -1074 + i * 1073 / 63) : 1.0 - 0x1p-53;
            double x = broker_dist_quantile(dist, fmin(u, 1.0 - 0x1p-53));
            assert_true(x >= bounds[k][0] && x <= bounds[k][1]);
            assert_true(x >= previous);
            previous = x;
        }
        for (int i = 0; i < 1000; i++) {
            double x = broker_dist_quantile(dist, broker_rng_uniform(&rng));
            assert_true(x >= bounds[k][0] && x <= bounds[k][1]);
        }
        broker_dist_destroy(&dist);
    }
}

//  F (Q (u)) = u wherever the quantile is well conditioned (beta near an infinite density
//  is not: there x has fewer digits than u).
static void test_cdf_inverts_quantile(void **state)
{
    (void)state;
    for (size_t k = 0; k < CONTINUOUS_COUNT; k++) {
        broker_dist_t *dist = s_new(s_continuous[k].spec);
        for (int i = 1; i < 1000; i++) {
            double u = i / 1000.0;
            double f = broker_dist_cdf(dist, broker_dist_quantile(dist, u));
            if (!(fabs(f - u) <= 1e-9))
                fail_msg("%s: F (Q (%g)) = %.17g", s_continuous[k].name, u, f);
        }
        broker_dist_destroy(&dist);
    }
}

static void test_lognormal_moments_convert(void **state)
{
    (void)state;
    double mu, sigma;
    broker_dist_lognormal_from_moments(2.0, 0.5, &mu, &sigma);
    double variance = log(1.0 + 0.0625);
    s_assert_close(sigma, sqrt(variance), 1e-15, "sigma");
    s_assert_close(mu, log(2.0) - variance / 2, 1e-15, "mu");

    //  The sample mean and standard deviation come back.
    broker_dist_t *dist =
        s_new((broker_dist_spec_t){.type = BROKER_DIST_LOGNORMAL, .mu = mu, .sigma = sigma});
    broker_rng_t rng;
    broker_rng_seed(&rng, 3);
    double sum = 0, squares = 0;
    for (int i = 0; i < 100000; i++) {
        double x = broker_dist_quantile(dist, broker_rng_uniform(&rng));
        sum += x;
        squares += x * x;
    }
    double mean = sum / 100000, sd = sqrt(squares / 100000 - mean * mean);
    assert_true(fabs(mean - 2.0) < 0.01);
    assert_true(fabs(sd - 0.5) < 0.01);
    broker_dist_destroy(&dist);
}

static void test_type_names_round_trip(void **state)
{
    (void)state;
    for (int t = 0; t < BROKER_DIST_TYPE_COUNT; t++)
        assert_int_equal(broker_dist_type_parse(broker_dist_type_name((broker_dist_type_t)t)), t);
    assert_string_equal(broker_dist_type_name(BROKER_DIST_TRUNCATED_NORMAL), "truncated_normal");
    assert_int_equal(broker_dist_type_parse("gaussian"), -1);
    assert_int_equal(broker_dist_type_parse(NULL), -1);
    assert_null(broker_dist_type_name(BROKER_DIST_TYPE_COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_continuous_samples_pass_kolmogorov_smirnov),
        cmocka_unit_test(test_choice_frequencies_pass_chi_square),
        cmocka_unit_test(test_choice_inverts_cumulative_weights),
        cmocka_unit_test(test_constant_ignores_u),
        cmocka_unit_test(test_quantiles_match_reference_values),
        cmocka_unit_test(test_closed_form_quantiles_are_exact),
        cmocka_unit_test(test_normal_quantile_is_accurate),
        cmocka_unit_test(test_normal_quantile_is_symmetric_and_finite),
        cmocka_unit_test(test_normal_cdf_is_accurate_in_both_tails),
        cmocka_unit_test(test_incomplete_beta_known_values),
        cmocka_unit_test(test_tails_are_finite_and_inside_the_support),
        cmocka_unit_test(test_truncated_normal_stays_inside_far_tail_bounds),
        cmocka_unit_test(test_cdf_inverts_quantile),
        cmocka_unit_test(test_lognormal_moments_convert),
        cmocka_unit_test(test_type_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
