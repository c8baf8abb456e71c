//  broker_corr: rank correlations between dispersed parameters by the Iman-Conover method
//  (Iman & Conover, "A distribution-free approach to inducing rank correlation among input
//  variables", 1982). It only reorders each column's values, so every marginal - and every
//  Latin-hypercube stratum - is preserved exactly.
#ifndef BROKER_CORR_H_INCLUDED
#define BROKER_CORR_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "lynx_err.h"

//  Reorder the rows of each column of design (runs x dimensions, point-major:
//  design[run * dimensions + d]) so the columns' Spearman rank correlations approach target, a
//  dimensions x dimensions symmetric matrix with unit diagonal (row-major). The scores are
//  van der Waerden normal scores shuffled with a broker_rng seeded by seed, so the result is
//  reproducible. Returns 0; -1 with err (LYNX_EINVALID, "correlation matrix is not positive
//  definite") when target has no Cholesky factor, or on out-of-memory.
int broker_corr_apply(double *design, size_t runs, size_t dimensions, const double *target,
                      uint64_t seed, lynx_err_t *err);

//  Spearman rank correlation of columns a and b of design (ties get average ranks). For tests
//  and for reporting the achieved correlation.
double broker_corr_spearman(const double *design, size_t runs, size_t dimensions, size_t a,
                            size_t b);

#endif
