//  broker_dist: the probability distributions a dispersion can follow, as inverse CDFs.
//
//  Sampling draws a unit value u in (0, 1) (independent or stratified) and maps it through
//  broker_dist_quantile, so every method works with every distribution. Parameters are
//  checked by broker_study before a broker_dist_t is built.
#ifndef BROKER_DIST_H_INCLUDED
#define BROKER_DIST_H_INCLUDED

typedef enum {
    BROKER_DIST_UNIFORM, //  min + u * (max - min)
    BROKER_DIST_NORMAL,  //  mean + std_dev * Phi^-1 (u)
} broker_dist_type_t;

typedef struct {
    broker_dist_type_t type;
    double min, max;      //  uniform: min < max, max - min finite
    double mean, std_dev; //  normal: std_dev > 0
} broker_dist_t;

//  Value of the distribution at cumulative probability u, for 0 < u < 1.
double broker_dist_quantile(const broker_dist_t *self, double u);

//  Standard normal quantile Phi^-1 (p) by Wichura's AS241 (PPND16): about 1e-16 relative
//  error for 0 < p < 1 and finite down to the smallest p a double holds. Returns -INFINITY for
//  p <= 0, +INFINITY for p >= 1 and NaN for NaN.
double broker_dist_normal_quantile(double p);

#endif
