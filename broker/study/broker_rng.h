//  broker_rng: xoshiro256** seeded through splitmix64. Portable and bit-reproducible: the
//  same seed yields the same stream on every platform. Not for cryptography.
#ifndef BROKER_RNG_H_INCLUDED
#define BROKER_RNG_H_INCLUDED

#include <stdint.h>

typedef struct {
    uint64_t state[4];
} broker_rng_t;

//  Seed the generator; any seed (0 included) gives a valid, distinct stream.
void broker_rng_seed(broker_rng_t *self, uint64_t seed);
//  Next 64 random bits.
uint64_t broker_rng_next(broker_rng_t *self);
//  Uniform double in the open interval (0, 1): never 0 or 1, so inverse CDFs stay finite.
double broker_rng_uniform(broker_rng_t *self);
//  Uniform integer in [0, bound) without modulo bias; bound must be > 0.
uint64_t broker_rng_below(broker_rng_t *self, uint64_t bound);

#endif
