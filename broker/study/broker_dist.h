//  broker_dist: the probability distributions a dispersion can follow, as inverse CDFs.
//
//  Sampling draws a unit value u in (0, 1) (independent, stratified or quasi-random) and maps
//  it through broker_dist_quantile, so every method works with every distribution and a
//  stratum in u is a stratum in the parameter. Parameters are checked by broker_study before a
//  broker_dist_t is built; broker_dist_new trusts them.
//
//  Reproducibility: quantiles use only +, -, *, /, sqrt (exact in IEEE 754), exp and log
//  (correctly rounded in practice by glibc 2.28+; other libms may differ in the last bit) and,
//  for beta only, lgamma (accurate to a few ulps, its last bits differ between libms). Nothing
//  depends on long double or on fused multiply-add contraction.
#ifndef BROKER_DIST_H_INCLUDED
#define BROKER_DIST_H_INCLUDED

#include <stddef.h>

typedef enum {
    BROKER_DIST_UNIFORM,          //  min + u (max - min)
    BROKER_DIST_NORMAL,           //  mean + std_dev Phi^-1 (u)
    BROKER_DIST_TRUNCATED_NORMAL, //  normal (mean, std_dev) conditioned on [min, max]
    BROKER_DIST_LOGNORMAL,        //  exp (mu + sigma Phi^-1 (u))
    BROKER_DIST_TRIANGULAR,       //  min, mode, max
    BROKER_DIST_EXPONENTIAL,      //  -ln (1 - u) / rate
    BROKER_DIST_BETA,             //  min + (max - min) I^-1_u (alpha, beta)
    BROKER_DIST_CHOICE,           //  index k of count weighted values: F (k) = w_0 + ... + w_k
    BROKER_DIST_CONSTANT,         //  value, whatever u
    BROKER_DIST_TYPE_COUNT
} broker_dist_type_t;

//  The parameters of a distribution. Only the members its type uses are read.
typedef struct {
    broker_dist_type_t type;
    double min, max;       //  uniform, truncated_normal, triangular, beta: min < max
    double mean, std_dev;  //  normal, truncated_normal (of the normal before truncation): sd > 0
    double mu, sigma;      //  lognormal: mean and standard deviation of ln X, sigma > 0
    double mode;           //  triangular: min <= mode <= max
    double rate;           //  exponential: rate > 0
    double alpha, beta;    //  beta: shapes > 0, on [min, max] (usually [0, 1])
    const double *weights; //  choice: count >= 1 weights >= 0 with a positive, finite sum;
    size_t count;          //  NULL weights means equal weights. Copied by broker_dist_new.
    double value;          //  constant (a string constant is the caller's business: 0 here)
} broker_dist_spec_t;

typedef struct _broker_dist_t broker_dist_t;

//  Build a distribution from checked parameters, precomputing what every quantile needs.
//  Returns NULL on out-of-memory.
broker_dist_t *broker_dist_new(const broker_dist_spec_t *spec);
//  Destroy; sets *self_p to NULL. NULL-safe.
void broker_dist_destroy(broker_dist_t **self_p);

broker_dist_type_t broker_dist_type(const broker_dist_t *self);

//  Value at cumulative probability u, for 0 < u < 1: the smallest x with F (x) >= u. Finite
//  for every such u (u = 1e-300 and 1 - 2^-53 included) and inside [min, max] for the bounded
//  types. choice returns the index of the chosen value (0 .. count - 1) as a double. About
//  20 ns a value; beta, which has no closed form, 0.3-0.8 us (tens of us for shapes of 1e5).
double broker_dist_quantile(const broker_dist_t *self, double u);
//  Cumulative distribution F (x) = P (X <= x), for tests and reports. choice takes an index.
//  Unlike quantile it may use any libm function (it never feeds a design).
double broker_dist_cdf(const broker_dist_t *self, double x);

//  Type names as the config spells them ("truncated_normal"), and back: -1 when unknown.
const char *broker_dist_type_name(broker_dist_type_t type);
int broker_dist_type_parse(const char *name);

//  The mu and sigma of the lognormal whose own mean and standard deviation are given (mean > 0,
//  std_dev > 0): sigma^2 = ln (1 + std_dev^2 / mean^2), mu = ln (mean) - sigma^2 / 2. sigma
//  comes out 0 or not finite when std_dev / mean is below about 1e-154 or above 1e154.
void broker_dist_lognormal_from_moments(double mean, double std_dev, double *mu, double *sigma);

//  Standard normal quantile Phi^-1 (p) by Wichura's AS241 (PPND16): about 1e-16 relative
//  error for 0 < p < 1 and finite down to the smallest p a double holds. Returns -INFINITY for
//  p <= 0, +INFINITY for p >= 1 and NaN for NaN.
double broker_dist_normal_quantile(double p);
//  Standard normal CDF Phi (x) by Cody's rational approximations (W. J. Cody, "Rational
//  Chebyshev approximations for the error function", Math. Comp. 23, 1969): about 1e-16
//  relative error in both tails, down to x = -37.5 where Phi leaves the normal doubles.
double broker_dist_normal_cdf(double x);
//  Regularized incomplete beta I_x (a, b) for a, b > 0 by Lentz's continued fraction: 0 for
//  x <= 0, 1 for x >= 1. Relative error about 1e-15 for moderate shapes; lgamma's cancellation
//  costs digits as a and b grow (1e-11 at 1e5).
double broker_dist_beta_inc(double a, double b, double x);

#endif
