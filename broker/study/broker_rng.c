//  broker_rng: xoshiro256** by Blackman and Vigna (https://prng.di.unimi.it/), seeded by
//  expanding a 64-bit seed with splitmix64 as its authors recommend. Integer arithmetic only,
//  so every platform produces the same stream.
#include "broker_rng.h"

#include <assert.h>

static uint64_t s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

//  splitmix64 visits every 64-bit value once per period, so four consecutive outputs are never
//  all zero: the one state xoshiro cannot leave.
static uint64_t s_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void broker_rng_seed(broker_rng_t *self, uint64_t seed)
{
    assert(self);
    for (int i = 0; i < 4; i++)
        self->state[i] = s_splitmix64(&seed);
}

uint64_t broker_rng_next(broker_rng_t *self)
{
    uint64_t *s = self->state;
    uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

//  The midpoint of one of 2^52 equal cells: (k + 0.5) / 2^52 with k the top 52 bits. Every
//  such value is exact in a double, lies in [2^-53, 1 - 2^-53] and the set is symmetric about
//  1/2. With 53 bits, k + 0.5 needs 54 significant bits and the top cell rounds to 1.0.
double broker_rng_uniform(broker_rng_t *self)
{
    return ((double)(broker_rng_next(self) >> 12) + 0.5) * 0x1.0p-52;
}

//  Lemire, "Fast random integer generation in an interval" (2019): the high word of x * bound
//  is uniform on [0, bound) once the (2^64 mod bound) low words that would favour some results
//  are rejected. The division is only needed on the rare draws that might be rejected.
uint64_t broker_rng_below(broker_rng_t *self, uint64_t bound)
{
    assert(bound > 0);
    __extension__ typedef unsigned __int128 uint128_t;
    uint128_t product = (uint128_t)broker_rng_next(self) * bound;
    uint64_t low = (uint64_t)product;
    if (low < bound) {
        uint64_t threshold = -bound % bound;
        while (low < threshold) {
            product = (uint128_t)broker_rng_next(self) * bound;
            low = (uint64_t)product;
        }
    }
    return (uint64_t)(product >> 64);
}
