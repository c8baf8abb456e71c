//  broker_sobol: the Sobol low-discrepancy sequence with Joe-Kuo direction numbers
//  (new-joe-kuo-6.21201, "Constructing Sobol sequences with better two-dimensional
//  projections", SIAM J. Sci. Comput. 30, 2008), optionally scrambled.
//
//  Unscrambled points are the classic Gray-code ordering starting at the origin (point 0 is
//  all zeros), identical to the published sequence. Scrambling applies a seeded random
//  linear matrix scramble (lower-triangular binary matrix per dimension) followed by a random
//  digital shift, which keeps the (t, s)-net property: with N = 2^k points each dimension still
//  has exactly one point in each interval [j/2^k, (j+1)/2^k).
#ifndef BROKER_SOBOL_H_INCLUDED
#define BROKER_SOBOL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Dimensions the direction-number table supports.
#define BROKER_SOBOL_MAX_DIMENSIONS 1024

typedef struct _broker_sobol_t broker_sobol_t;

//  A generator for `dimensions` dimensions (1..BROKER_SOBOL_MAX_DIMENSIONS). When scramble is
//  true, seed picks the scramble. NULL when dimensions is out of range or on out-of-memory.
broker_sobol_t *broker_sobol_new(size_t dimensions, bool scramble, uint64_t seed);
//  Destroy; sets *self_p to NULL. NULL-safe.
void broker_sobol_destroy(broker_sobol_t **self_p);

//  Write points [0, count) into out, point-major: out[i * dimensions + d]. Unscrambled values
//  are in [0, 1) (point 0 is exactly 0); scrambled ones in (0, 1).
void broker_sobol_fill(broker_sobol_t *self, size_t count, double *out);

#endif
