//  broker_dist: inverse CDFs, and the CDFs the tests check them against.
//
//  Everything a quantile needs beyond u is computed once in broker_dist_new (the truncated
//  normal's tail masses, the beta function, the choice's cumulative weights), so sampling a
//  million runs costs one short formula per value - except beta, which has no closed form and
//  is inverted by Halley's method.
#include "broker_dist.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

//  Designs must be bit-identical on every machine: no extended-precision intermediates (x87)
//  and no a * b + c fused into one rounding.
#if FLT_EVAL_METHOD != 0
#error "broker_dist needs FLT_EVAL_METHOD == 0 (SSE2 or another strict double unit)"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define S_SQRT_32 5.656854249492380195206754896838
#define S_1_SQRT_2PI 0.398942280401432677939946059934
#define S_LOG_0_075 -2.5902671654458267 //  ln 0.075: below it AS241 uses its tail formulas

struct _broker_dist_t {
    broker_dist_spec_t spec; //  weights reset to NULL: the cumulative table replaces them
    double width;            //  max - min
    //  triangular: F (mode) and the share of the width above the mode
    double split, upper_share;
    //  truncated normal, in standard units oriented so the interval is [lo, hi] with the
    //  smaller tail mass at lo: mirrored (z -> -z) when both bounds are above the mean.
    bool mirrored;
    bool one_sided; //  hi <= 0: both bounds in the lower tail, worked in logarithms
    double lo, hi;
    double phi_lo, mass;      //  two-sided: Phi (lo), Phi (hi) - Phi (lo)
    double log_phi_hi, ratio; //  one-sided: ln Phi (hi), Phi (lo) / Phi (hi)
    double log_beta;          //  beta: ln B (alpha, beta)
    double *cumulative;       //  choice: count partial sums of the weights over their total
};

static const char *const s_type_names[BROKER_DIST_TYPE_COUNT] = {
    [BROKER_DIST_UNIFORM] = "uniform",
    [BROKER_DIST_NORMAL] = "normal",
    [BROKER_DIST_TRUNCATED_NORMAL] = "truncated_normal",
    [BROKER_DIST_LOGNORMAL] = "lognormal",
    [BROKER_DIST_TRIANGULAR] = "triangular",
    [BROKER_DIST_EXPONENTIAL] = "exponential",
    [BROKER_DIST_BETA] = "beta",
    [BROKER_DIST_CHOICE] = "choice",
    [BROKER_DIST_CONSTANT] = "constant",
};

const char *broker_dist_type_name(broker_dist_type_t type)
{
    return type < BROKER_DIST_TYPE_COUNT ? s_type_names[type] : NULL;
}

int broker_dist_type_parse(const char *name)
{
    for (int i = 0; i < BROKER_DIST_TYPE_COUNT; i++)
        if (name && strcmp(s_type_names[i], name) == 0)
            return i;
    return -1;
}

//  ---------------------------------------------------------------------------------------
//  Helpers that keep precision with nothing but log and exp

//  ln (1 + x) for x > -1, accurate where 1 + x rounds (Goldberg, "What every computer
//  scientist should know about floating-point arithmetic", 1991, theorem 4). libm's log1p
//  would do, but its last bits are not the same everywhere.
static double s_log1p(double x)
{
    double w = 1.0 + x;
    if (w == 1.0)
        return x;
    return log(w) * x / (w - 1.0);
}

static double s_clamp(double x, double min, double max)
{
    return x < min ? min : x > max ? max : x;
}

//  A quantile is finite for every u in (0, 1), even where an absurd scale overflows.
static double s_finite(double x)
{
    return s_clamp(x, -DBL_MAX, DBL_MAX);
}

//  ---------------------------------------------------------------------------------------
//  Standard normal: AS241 quantile, Cody CDF

//  Evaluates c[0] + c[1] x + ... + c[7] x^7 by Horner's rule.
static double s_poly7(const double c[8], double x)
{
    double sum = c[7];
    for (int i = 6; i >= 0; i--)
        sum = sum * x + c[i];
    return sum;
}

//  M. J. Wichura, "Algorithm AS 241: The Percentage Points of the Normal Distribution",
//  Applied Statistics 37(3), 1988, pp. 477-484. Three rational approximations of degree 7:
//  one for |p - 1/2| <= 0.425, and two in r = sqrt (-log (min (p, 1 - p))) for the tails,
//  split at r = 5. The coefficients are the published ones.
static double s_as241_central(double q)
{
    static const double a[8] = {3.3871328727963666080e0,  1.3314166789178437745e+2,
                                1.9715909503065514427e+3, 1.3731693765509461125e+4,
                                4.5921953931549871457e+4, 6.7265770927008700853e+4,
                                3.3430575583588128105e+4, 2.5090809287301226727e+3};
    static const double b[8] = {1.0,
                                4.2313330701600911252e+1,
                                6.8718700749205790830e+2,
                                5.3941960214247511077e+3,
                                2.1213794301586595867e+4,
                                3.9307895800092710610e+4,
                                2.8729085735721942674e+4,
                                5.2264952788528545610e+3};
    double r = 0.180625 - q * q;
    return q * s_poly7(a, r) / s_poly7(b, r);
}

//  |Phi^-1 (p)| for the tail probability p = min (p, 1 - p) < 0.075, given r = sqrt (-ln p).
static double s_as241_tail(double r)
{
    static const double c[8] = {1.42343711074968357734e0,  4.63033784615654529590e0,
                                5.76949722146069140550e0,  3.64784832476320460504e0,
                                1.27045825245236838258e0,  2.41780725177450611770e-1,
                                2.27238449892691845833e-2, 7.74545014278341407640e-4};
    static const double d[8] = {1.0,
                                2.05319162663775882187e0,
                                1.67638483018380384940e0,
                                6.89767334985100004550e-1,
                                1.48103976427480074590e-1,
                                1.51986665636164571966e-2,
                                5.47593808499534494600e-4,
                                1.05075007164441684324e-9};
    static const double e[8] = {6.65790464350110377720e0,  5.46378491116411436990e0,
                                1.78482653991729133580e0,  2.96560571828504891230e-1,
                                2.65321895265761230930e-2, 1.24266094738807843860e-3,
                                2.71155556874348757815e-5, 2.01033439929228813265e-7};
    static const double f[8] = {1.0,
                                5.99832206555887937690e-1,
                                1.36929880922735805310e-1,
                                1.48753612908506148525e-2,
                                7.86869131145613259100e-4,
                                1.84631831751005468180e-5,
                                1.42151175831644588870e-7,
                                2.04426310338993978564e-15};
    return r <= 5.0 ? s_poly7(c, r - 1.6) / s_poly7(d, r - 1.6)
                    : s_poly7(e, r - 5.0) / s_poly7(f, r - 5.0);
}

double broker_dist_normal_quantile(double p)
{
    if (isnan(p))
        return p;
    if (p <= 0.0)
        return -INFINITY;
    if (p >= 1.0)
        return INFINITY;
    double q = p - 0.5;
    if (fabs(q) <= 0.425)
        return s_as241_central(q);
    //  1 - p is exact for p >= 1/2, so the upper tail loses nothing to cancellation.
    double z = s_as241_tail(sqrt(-log(q < 0.0 ? p : 1.0 - p)));
    return q < 0.0 ? -z : z;
}

//  Phi^-1 (exp (log_p)) for log_p < ln (1/2), without forming p: a truncated normal deep in a
//  tail has probabilities below the smallest double but perfectly good logarithms.
static double s_normal_quantile_log(double log_p)
{
    if (log_p > S_LOG_0_075)
        return broker_dist_normal_quantile(exp(log_p));
    return -s_as241_tail(sqrt(-log_p));
}

//  W. J. Cody's rational approximations as arranged in R's pnorm (Cody, "Algorithm 715",
//  ACM TOMS 19, 1993). For |x| <= 0.67448975 it gives Phi (x) - 1/2 directly; beyond, the upper
//  tail Q (y) = 1 - Phi (y) as exp (-y^2 / 2) T (y), with T from one approximation up to
//  sqrt (32) and an asymptotic one past it.
static double s_cody_central(double x)
{
    static const double a[5] = {2.2352520354606839287, 161.02823106855587881, 1067.6894854603709582,
                                18154.981253343561249, 0.065682337918207449113};
    static const double b[4] = {47.20258190468824187, 976.09855173777669322, 10260.932208618978205,
                                45507.789335026729956};
    double xsq = x * x;
    double num = a[4] * xsq, den = xsq;
    for (int i = 0; i < 3; i++) {
        num = (num + a[i]) * xsq;
        den = (den + b[i]) * xsq;
    }
    return x * (num + a[3]) / (den + b[3]);
}

static double s_cody_tail_scaled(double y)
{
    static const double c[9] = {
        0.39894151208813466764, 8.8831497943883759412, 93.506656132177855979,
        597.27027639480026226,  2494.5375852903726711, 6848.1904505362823326,
        11602.651437647350124,  9842.7148383839780218, 1.0765576773720192317e-8};
    static const double d[8] = {22.266688044328115691, 235.38790178262499861, 1519.377599407554805,
                                6485.558298266760755,  18615.571640885098091, 34900.952721145977266,
                                38912.003286093271411, 19685.429676859990727};
    static const double p[6] = {0.21589853405795699,   0.1274011611602473639,
                                0.022235277870649807,  0.001421619193227893466,
                                2.9112874951168792e-5, 0.02307344176494017303};
    static const double q[5] = {1.28426009614491121, 0.468238212480865118, 0.0659881378689285515,
                                0.00378239633202758244, 7.29751555083966205e-5};
    if (y <= S_SQRT_32) {
        double num = c[8] * y, den = y;
        for (int i = 0; i < 7; i++) {
            num = (num + c[i]) * y;
            den = (den + d[i]) * y;
        }
        return (num + c[7]) / (den + d[7]);
    }
    double xsq = 1.0 / (y * y);
    double num = p[5] * xsq, den = xsq;
    for (int i = 0; i < 4; i++) {
        num = (num + p[i]) * xsq;
        den = (den + q[i]) * xsq;
    }
    return (S_1_SQRT_2PI - xsq * (num + p[4]) / (den + q[4])) / y;
}

//  -y^2 / 2 as big + small, with big = -s^2 / 2 exact for s = y rounded down to sixteenths and
//  small = -(y - s) (y + s) / 2 short: the rounding of y^2 would cost exp (-y^2 / 2) a relative
//  error of y^2 ulps, 1e-13 at y = 38.
static void s_half_square(double y, double *big, double *small)
{
    double s = trunc(y * 16.0) / 16.0;
    *big = -s * s * 0.5;
    *small = -(y - s) * (y + s) * 0.5;
}

double broker_dist_normal_cdf(double x)
{
    if (isnan(x))
        return x;
    double y = fabs(x);
    if (y <= 0.67448975)
        return 0.5 + s_cody_central(x);
    if (y > 40.0) //  Q (40) < 1e-349: nothing a double holds
        return x > 0.0 ? 1.0 : 0.0;
    double big, small;
    s_half_square(y, &big, &small);
    double upper = exp(big) * exp(small) * s_cody_tail_scaled(y);
    return x > 0.0 ? 1.0 - upper : upper;
}

//  ln Phi (x) for x <= 0 as big + small (big exact, see s_half_square), accurate far beyond
//  where Phi (x) itself underflows. x = -inf gives big = -inf.
static void s_normal_log_lower(double x, double *big, double *small)
{
    if (x >= -0.67448975) {
        *big = 0.0;
        *small = log(0.5 + s_cody_central(x));
    } else if (isinf(x)) {
        *big = -INFINITY;
        *small = 0.0;
    } else {
        s_half_square(-x, big, small);
        *small += log(s_cody_tail_scaled(-x));
    }
}

//  ---------------------------------------------------------------------------------------
//  Truncated normal. With a = (min - mean) / sd and b = (max - mean) / sd:
//  - two-sided (a < 0 < b): Phi (z) = Phi (a) + u (Phi (b) - Phi (a)); both masses are large
//    enough that absolute precision is all z needs.
//  - one-sided: mirrored so both bounds sit in the lower tail (hi <= 0), then
//    Phi (z) = Phi (hi) (r + u (1 - r)) with r = Phi (lo) / Phi (hi), solved for z in logarithms.
//    At 30 standard deviations Phi is 1e-198, at 38 it underflows; its logarithm never does.
//    Mirroring is what "use the complementary side" means: 1 - Phi (z) near 1 has no digits left.

static void s_truncated_normal_prepare(broker_dist_t *self)
{
    const broker_dist_spec_t *spec = &self->spec;
    double a = (spec->min - spec->mean) / spec->std_dev;
    double b = (spec->max - spec->mean) / spec->std_dev;
    self->mirrored = a >= 0.0;
    self->lo = self->mirrored ? -b : a;
    self->hi = self->mirrored ? -a : b;
    self->one_sided = self->hi <= 0.0;
    if (self->one_sided) {
        double big_lo, small_lo, big_hi, small_hi;
        s_normal_log_lower(self->lo, &big_lo, &small_lo);
        s_normal_log_lower(self->hi, &big_hi, &small_hi);
        self->log_phi_hi = big_hi + small_hi;
        //  The exact parts cancel exactly; the short ones keep r accurate near 1.
        self->ratio = exp((big_lo - big_hi) + (small_lo - small_hi));
    } else {
        self->phi_lo = broker_dist_normal_cdf(self->lo);
        self->mass = broker_dist_normal_cdf(self->hi) - self->phi_lo;
    }
}

static double s_truncated_normal_quantile(const broker_dist_t *self, double u)
{
    double z;
    if (!self->one_sided)
        z = broker_dist_normal_quantile(self->phi_lo + u * self->mass);
    else {
        //  Mirrored, the fraction of the mass below -z is 1 - u: (1 - u) + u r is r + (1 - u)
        //  (1 - r) without the cancellation.
        double share =
            self->mirrored ? (1.0 - u) + u * self->ratio : self->ratio + u * (1.0 - self->ratio);
        z = s_normal_quantile_log(self->log_phi_hi + log(share));
    }
    if (self->mirrored)
        z = -z;
    //  Rounding may step a hair outside; the bounds are part of the support.
    return s_clamp(self->spec.mean + self->spec.std_dev * z, self->spec.min, self->spec.max);
}

static double s_truncated_normal_cdf(const broker_dist_t *self, double x)
{
    if (x <= self->spec.min)
        return 0.0;
    if (x >= self->spec.max)
        return 1.0;
    double z = (x - self->spec.mean) / self->spec.std_dev;
    if (self->mirrored)
        z = -z;
    double below; //  oriented mass in [lo, z] over the mass in [lo, hi]
    if (!self->one_sided)
        below = (broker_dist_normal_cdf(z) - self->phi_lo) / self->mass;
    else {
        double big_z, small_z, big_hi, small_hi;
        s_normal_log_lower(z, &big_z, &small_z);
        s_normal_log_lower(self->hi, &big_hi, &small_hi);
        double share = exp((big_z - big_hi) + (small_z - small_hi)); //  Phi (z) / Phi (hi)
        below = (share - self->ratio) / (1.0 - self->ratio);
    }
    return s_clamp(self->mirrored ? 1.0 - below : below, 0.0, 1.0);
}

//  ---------------------------------------------------------------------------------------
//  Beta. I_x (a, b) by the continued fraction of Numerical Recipes (3rd ed., 6.4), evaluated
//  with the modified Lentz method; it converges fast for x < (a + 1) / (a + b + 2), and
//  I_x (a, b) = 1 - I_{1-x} (b, a) covers the rest.

#define S_BETA_CF_MAX_TERMS 10000
#define S_BETA_TINY 1e-300

static double s_beta_cf(double a, double b, double x)
{
    double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0, d = 1.0 - qab * x / qap;
    if (fabs(d) < S_BETA_TINY)
        d = S_BETA_TINY;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= S_BETA_CF_MAX_TERMS; m++) {
        double m2 = 2.0 * m;
        //  Even step.
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = fabs(d) < S_BETA_TINY ? 1.0 / S_BETA_TINY : 1.0 / d;
        c = 1.0 + aa / c;
        if (fabs(c) < S_BETA_TINY)
            c = S_BETA_TINY;
        h *= d * c;
        //  Odd step.
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = fabs(d) < S_BETA_TINY ? 1.0 / S_BETA_TINY : 1.0 / d;
        c = 1.0 + aa / c;
        if (fabs(c) < S_BETA_TINY)
            c = S_BETA_TINY;
        double delta = d * c;
        h *= delta;
        if (fabs(delta - 1.0) < 1e-15)
            break;
    }
    return h;
}

//  I_x (a, b) for 0 < x < 1, and through *front the factor x^a (1 - x)^b / B (a, b) it
//  shares with the density x^(a-1) (1 - x)^(b-1) / B (a, b) = front / (x (1 - x)).
static double s_beta_inc_front(double a, double b, double log_beta, double x, double *front)
{
    *front = exp(a * log(x) + b * s_log1p(-x) - log_beta);
    if (x < (a + 1.0) / (a + b + 2.0))
        return *front * s_beta_cf(a, b, x) / a;
    return 1.0 - *front * s_beta_cf(b, a, 1.0 - x) / b;
}

static double s_beta_inc(double a, double b, double log_beta, double x)
{
    double front;
    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    return s_beta_inc_front(a, b, log_beta, x, &front);
}

static double s_log_beta(double a, double b)
{
    return lgamma(a) + lgamma(b) - lgamma(a + b);
}

double broker_dist_beta_inc(double a, double b, double x)
{
    return s_beta_inc(a, b, s_log_beta(a, b), x);
}

//  A first guess at I^-1_t (a, b) for t <= 1/2 (Numerical Recipes 6.14.1): for a, b >= 1 the
//  normal approximation of Abramowitz and Stegun 26.5.22, else the two power-law ends of the
//  density, whose areas t_a and t_b approximate B (a, b) together.
static double s_beta_guess(double a, double b, double t)
{
    if (a >= 1.0 && b >= 1.0) {
        double y = -broker_dist_normal_quantile(t); //  upper normal quantile, >= 0
        double lambda = (y * y - 3.0) / 6.0;
        double h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0));
        double w = y * sqrt(h + lambda) / h - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) *
                                                  (lambda + 5.0 / 6.0 - 2.0 / (3.0 * h));
        return a / (a + b * exp(2.0 * w));
    }
    double t_a = exp(a * log(a / (a + b))) / a;
    double t_b = exp(b * log(b / (a + b))) / b;
    double total = t_a + t_b;
    if (t < t_a / total)
        return exp(log(a * total * t) / a);
    return 1.0 - exp(log(b * total * (1.0 - t)) / b);
}

//  The x in [0, 1] with I_x (a, b) = t, for 0 < t < 1: Halley's method from the guess,
//  kept inside a bracket that every evaluation narrows and falling back to bisection when a
//  step would leave it. Stops on a step below 1e-11 x (relative, so tiny quantiles keep their
//  digits) or a bracket narrower than 4e-16 x; a quantile below the smallest normal double
//  (2.2e-308) comes out as 0. About 3 evaluations of I per value for ordinary shapes.
static double s_beta_solve(double a, double b, double log_beta, double t)
{
    double x = s_beta_guess(a, b, t);
    if (x == 0.0) //  the guess underflowed; the truth may not have
        x = DBL_MIN;
    else if (!(x > 0.0 && x < 1.0))
        x = 0.5;
    double lo = 0.0, hi = 1.0;
    double last_error = 0.0;
    for (int i = 0; i < 200; i++) {
        double front;
        double error = s_beta_inc_front(a, b, log_beta, x, &front) - t;
        if (error == 0.0)
            return x;
        if (error < 0.0)
            lo = x;
        else
            hi = x;
        if (hi <= DBL_MIN)
            return 0.0;
        if (hi - lo <= 4e-16 * hi)
            return x;
        double newton = error / front * (x * (1.0 - x)); //  error x (1 - x) may underflow
        double next = NAN;
        if (isfinite(newton)) {
            //  Halley: Newton's step corrected by the density's curvature, capped at 2x.
            double bend = newton * ((a - 1.0) / x - (b - 1.0) / (1.0 - x));
            next = x - newton / (1.0 - 0.5 * fmin(1.0, bend));
            //  Halley converges cubically: after a step of 1e-11 x the error left is far
            //  below an ulp, and one evaluation of I fewer is a third of the cost.
            if (fabs(next - x) <= 1e-11 * x)
                return next;
        }
        //  Bisect when the step leaves the bracket, or crawls (the error has not halved
        //  since the last step, from the same side: Halley's steps shrink to nothing where
        //  the density is steep): geometrically while the bracket spans orders of magnitude,
        //  so tiny quantiles are found as fast as large ones.
        bool crawling = i > 0 && (error < 0.0) == (last_error < 0.0) &&
                        fabs(error) > 0.5 * fabs(last_error) && fabs(error) > 1e-12 * t;
        last_error = error;
        if (!(next > lo && next < hi) || crawling)
            next = lo == 0.0 ? hi / 16.0 : hi > 4.0 * lo ? sqrt(lo) * sqrt(hi) : 0.5 * (lo + hi);
        x = next;
    }
    return x;
}

static double s_beta_quantile(const broker_dist_t *self, double u)
{
    const broker_dist_spec_t *spec = &self->spec;
    //  Solve for the smaller tail probability, which keeps its digits (1 - u is exact for
    //  u >= 1/2): beta (2, 3) at 1 - 1e-16 is 1 - 7e-6, which the 1e-16 ulp of I near 1 could
    //  only place to within 1e-6. When x = 1 - w is then near 0 it has only absolute precision.
    double x = u <= 0.5 ? s_beta_solve(spec->alpha, spec->beta, self->log_beta, u)
                        : 1.0 - s_beta_solve(spec->beta, spec->alpha, self->log_beta, 1.0 - u);
    return s_clamp(spec->min + self->width * x, spec->min, spec->max);
}

//  ---------------------------------------------------------------------------------------
//  Choice: the first index whose cumulative weight exceeds u. Zero weights repeat the previous
//  partial sum, so they are never chosen.

static double s_choice_quantile(const broker_dist_t *self, double u)
{
    size_t lo = 0, hi = self->spec.count - 1; //  the answer is in [lo, hi]
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < self->cumulative[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return (double)lo;
}

static int s_choice_prepare(broker_dist_t *self, const double *weights)
{
    size_t count = self->spec.count;
    self->cumulative = malloc(count * sizeof *self->cumulative);
    if (!self->cumulative)
        return -1;
    double total = 0.0;
    for (size_t k = 0; k < count; k++)
        total += weights ? weights[k] : 1.0;
    double partial = 0.0;
    for (size_t k = 0; k < count; k++) {
        partial += weights ? weights[k] : 1.0;
        self->cumulative[k] = partial / total; //  the last is total / total, exactly 1
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------

broker_dist_t *broker_dist_new(const broker_dist_spec_t *spec)
{
    assert(spec && spec->type < BROKER_DIST_TYPE_COUNT);
    broker_dist_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->spec = *spec;
    self->spec.weights = NULL;
    self->width = spec->max - spec->min;
    switch (spec->type) {
    case BROKER_DIST_TRUNCATED_NORMAL:
        s_truncated_normal_prepare(self);
        break;
    case BROKER_DIST_TRIANGULAR:
        self->split = (spec->mode - spec->min) / self->width;
        self->upper_share = (spec->max - spec->mode) / self->width;
        break;
    case BROKER_DIST_BETA:
        self->log_beta = s_log_beta(spec->alpha, spec->beta);
        break;
    case BROKER_DIST_CHOICE:
        assert(spec->count > 0);
        if (s_choice_prepare(self, spec->weights))
            broker_dist_destroy(&self);
        break;
    default:
        break;
    }
    return self;
}

void broker_dist_destroy(broker_dist_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->cumulative);
    free(*self_p);
    *self_p = NULL;
}

broker_dist_type_t broker_dist_type(const broker_dist_t *self)
{
    assert(self);
    return self->spec.type;
}

double broker_dist_quantile(const broker_dist_t *self, double u)
{
    const broker_dist_spec_t *spec = &self->spec;
    switch (spec->type) {
    case BROKER_DIST_UNIFORM:
        return spec->min + u * self->width;
    case BROKER_DIST_NORMAL:
        return s_finite(spec->mean + spec->std_dev * broker_dist_normal_quantile(u));
    case BROKER_DIST_TRUNCATED_NORMAL:
        return s_truncated_normal_quantile(self, u);
    case BROKER_DIST_LOGNORMAL:
        return s_finite(exp(spec->mu + spec->sigma * broker_dist_normal_quantile(u)));
    case BROKER_DIST_TRIANGULAR: {
        //  width sqrt (u F (mode)) is min + sqrt (u (max - min) (mode - min)) without the
        //  product that could overflow.
        double x = u < self->split ? spec->min + self->width * sqrt(u * self->split)
                                   : spec->max - self->width * sqrt((1.0 - u) * self->upper_share);
        return s_clamp(x, spec->min, spec->max);
    }
    case BROKER_DIST_EXPONENTIAL:
        return s_finite(-s_log1p(-u) / spec->rate);
    case BROKER_DIST_BETA:
        return s_beta_quantile(self, u);
    case BROKER_DIST_CHOICE:
        return s_choice_quantile(self, u);
    case BROKER_DIST_CONSTANT:
        return spec->value;
    case BROKER_DIST_TYPE_COUNT:
        break;
    }
    return NAN;
}

double broker_dist_cdf(const broker_dist_t *self, double x)
{
    const broker_dist_spec_t *spec = &self->spec;
    if (isnan(x))
        return x;
    switch (spec->type) {
    case BROKER_DIST_UNIFORM:
        return s_clamp((x - spec->min) / self->width, 0.0, 1.0);
    case BROKER_DIST_NORMAL:
        return broker_dist_normal_cdf((x - spec->mean) / spec->std_dev);
    case BROKER_DIST_TRUNCATED_NORMAL:
        return s_truncated_normal_cdf(self, x);
    case BROKER_DIST_LOGNORMAL:
        return x > 0.0 ? broker_dist_normal_cdf((log(x) - spec->mu) / spec->sigma) : 0.0;
    case BROKER_DIST_TRIANGULAR:
        if (x <= spec->min)
            return 0.0;
        if (x >= spec->max)
            return 1.0;
        if (x < spec->mode) {
            double share = (x - spec->min) / self->width;
            return share * share / self->split;
        }
        double share = (spec->max - x) / self->width;
        return 1.0 - share * share / self->upper_share;
    case BROKER_DIST_EXPONENTIAL:
        return x > 0.0 ? -expm1(-spec->rate * x) : 0.0;
    case BROKER_DIST_BETA:
        return s_beta_inc(spec->alpha, spec->beta, self->log_beta, (x - spec->min) / self->width);
    case BROKER_DIST_CHOICE:
        if (x < 0.0)
            return 0.0;
        return x >= (double)(spec->count - 1) ? 1.0 : self->cumulative[(size_t)x];
    case BROKER_DIST_CONSTANT:
        return x < spec->value ? 0.0 : 1.0;
    case BROKER_DIST_TYPE_COUNT:
        break;
    }
    return NAN;
}

void broker_dist_lognormal_from_moments(double mean, double std_dev, double *mu, double *sigma)
{
    double cv = std_dev / mean;
    double variance = s_log1p(cv * cv); //  of ln X
    *sigma = sqrt(variance);
    *mu = log(mean) - 0.5 * variance;
}
