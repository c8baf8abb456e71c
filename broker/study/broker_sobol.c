//  broker_sobol: Sobol points by the Antonov-Saleev Gray-code recursion (Bratley and Fox,
//  ACM TOMS algorithm 659; Joe and Kuo's sobol.cc), so each point costs one XOR per dimension.
//
//  Values are 32-bit integers scaled by 2^-32: exact doubles, 2^32 points before the sequence
//  repeats. The scramble is Matousek's left linear matrix scramble ("On the L2-discrepancy for
//  anchored boxes", J. Complexity 14, 1998) followed by a digital shift, the same family as
//  SciPy's qmc.Sobol(scramble=True), though with our own random stream.
#include "broker_sobol.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker_rng.h"
#include "broker_sobol_table.h"

_Static_assert(BROKER_SOBOL_TABLE_DIMENSIONS == BROKER_SOBOL_MAX_DIMENSIONS,
               "regenerate broker_sobol_table.h with scripts/gen-sobol-table");

//  Digits per coordinate: direction number v_k is m_k / 2^k scaled by 2^32.
#define S_BITS 32

struct _broker_sobol_t {
    size_t dimensions;
    bool scrambled;
    //  direction[k * dimensions + d]: v_(k+1) of dimension d, scrambled if asked. Laid out by
    //  digit so the update for one point reads one contiguous row.
    uint32_t *direction;
    uint32_t *origin;  //  point 0: all zeros, or the digital shift
    uint32_t *current; //  the point broker_sobol_fill is at
};

//  Direction numbers v_1..v_32 of one dimension from its polynomial and m_1..m_s, by the
//  recurrence v_k = a_1 v_(k-1) ^ ... ^ a_(s-1) v_(k-s+1) ^ v_(k-s) ^ (v_(k-s) >> s).
static void s_direction_numbers(const broker_sobol_table_row_t *row, uint32_t v[S_BITS])
{
    unsigned s = row->degree;
    if (s == 0) {
        for (unsigned k = 0; k < S_BITS; k++)
            v[k] = UINT32_C(1) << (S_BITS - 1 - k);
        return;
    }
    //  The table's degrees are at most BROKER_SOBOL_TABLE_MAX_DEGREE; saying so lets the
    //  compiler see m[k] stays in bounds.
    for (unsigned k = 0; k < s && k < BROKER_SOBOL_TABLE_MAX_DEGREE; k++)
        v[k] = (uint32_t)row->m[k] << (S_BITS - 1 - k);
    for (unsigned k = s; k < S_BITS; k++) {
        uint32_t value = v[k - s] ^ (v[k - s] >> s);
        for (unsigned j = 1; j < s; j++)
            if ((row->a >> (s - 1 - j)) & 1)
                value ^= v[k - j];
        v[k] = value;
    }
}

static uint32_t s_parity(uint32_t x)
{
    x ^= x >> 16;
    x ^= x >> 8;
    x ^= x >> 4;
    x ^= x >> 2;
    x ^= x >> 1;
    return x & 1;
}

//  Multiply each direction number, as a column of digits (most significant first), by a random
//  lower-triangular binary matrix with unit diagonal. Output digit r depends only on digits
//  1..r of the input and keeps digit r itself, so the map is a bijection on every prefix of
//  digits: that is what keeps one point per elementary interval. Returns the digital shift.
static uint32_t s_scramble(broker_rng_t *rng, uint32_t v[S_BITS])
{
    uint32_t rows[S_BITS];
    for (unsigned r = 0; r < S_BITS; r++) {
        uint32_t diagonal = UINT32_C(1) << (S_BITS - 1 - r);
        uint32_t above = ~(diagonal | (diagonal - 1));
        rows[r] = diagonal | ((uint32_t)(broker_rng_next(rng) >> 32) & above);
    }
    for (unsigned k = 0; k < S_BITS; k++) {
        uint32_t scrambled = 0;
        for (unsigned r = 0; r < S_BITS; r++)
            scrambled |= s_parity(rows[r] & v[k]) << (S_BITS - 1 - r);
        v[k] = scrambled;
    }
    return (uint32_t)(broker_rng_next(rng) >> 32);
}

broker_sobol_t *broker_sobol_new(size_t dimensions, bool scramble, uint64_t seed)
{
    if (dimensions < 1 || dimensions > BROKER_SOBOL_MAX_DIMENSIONS)
        return NULL;
    broker_sobol_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dimensions = dimensions;
    self->scrambled = scramble;
    self->direction = malloc(S_BITS * dimensions * sizeof *self->direction);
    self->origin = calloc(dimensions, sizeof *self->origin);
    self->current = malloc(dimensions * sizeof *self->current);
    if (!self->direction || !self->origin || !self->current) {
        broker_sobol_destroy(&self);
        return NULL;
    }
    //  Dimensions draw their scrambles in order, so dimension d scrambles the same way
    //  whatever the total number of dimensions.
    broker_rng_t rng;
    broker_rng_seed(&rng, seed);
    for (size_t d = 0; d < dimensions; d++) {
        uint32_t v[S_BITS];
        s_direction_numbers(&broker_sobol_table[d], v);
        if (scramble)
            self->origin[d] = s_scramble(&rng, v);
        for (unsigned k = 0; k < S_BITS; k++)
            self->direction[k * dimensions + d] = v[k];
    }
    return self;
}

void broker_sobol_destroy(broker_sobol_t **self_p)
{
    assert(self_p);
    broker_sobol_t *self = *self_p;
    if (!self)
        return;
    free(self->direction);
    free(self->origin);
    free(self->current);
    free(self);
    *self_p = NULL;
}

void broker_sobol_fill(broker_sobol_t *self, size_t count, double *out)
{
    assert(self);
    assert(out || count == 0);
    if (count == 0)
        return;
    size_t dimensions = self->dimensions;
    uint32_t *x = self->current;
    //  Scrambled values sit at the middle of their 2^-32 cell: exact, and never 0 or 1.
    double offset = self->scrambled ? 0.5 : 0.0;
    memcpy(x, self->origin, dimensions * sizeof *x);
    for (size_t d = 0; d < dimensions; d++)
        out[d] = ((double)x[d] + offset) * 0x1p-32;
    for (size_t i = 1; i < count; i++) {
        //  Gray code g(i) = i ^ (i >> 1) differs from g(i - 1) in bit ctz(i). Index i is taken
        //  modulo 2^32; at multiples of 2^32 the jump from g(2^32 - 1) = 2^31 back to g(0) is
        //  bit 31, which the or-ed top bit supplies, so the sequence just repeats.
        unsigned k = (unsigned)__builtin_ctz((uint32_t)i | UINT32_C(0x80000000));
        const uint32_t *v = self->direction + k * dimensions;
        double *point = out + i * dimensions;
        for (size_t d = 0; d < dimensions; d++) {
            x[d] ^= v[d];
            point[d] = ((double)x[d] + offset) * 0x1p-32;
        }
    }
}
