//  broker_corr: the Iman-Conover method.
//
//  Build a score matrix S whose columns are independent shuffles of the van der Waerden scores
//  Phi^-1 (i / (N + 1)); with E = F F^T its sample correlation and target C = P P^T,
//  T = S (F^-1)^T P^T has sample correlation exactly C. Each design column is then reordered
//  to take the ranks of the matching column of T. Dividing out F cancels the chance
//  correlation between the shuffles, so small designs land close to the target too.
//
//  Ranking uses an LSD radix sort on the doubles' bit patterns: linear in N, stable (equal
//  values keep row order, so ties resolve the same way every time), and no comparator calls.
#include "broker_corr.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker_dist.h"
#include "broker_rng.h"

//  Below this a Cholesky pivot counts as zero: the matrix is (numerically) singular.
#define S_PIVOT_MIN 1e-12
//  How far a target entry may be from symmetric or from a unit diagonal.
#define S_TOLERANCE 1e-12

//  Radix sort: 8 passes of one byte cover a 64-bit key. Measured faster than 6 passes of 11
//  bits or 4 of 16: with 256 buckets the scattered writes stay in a few cache lines each.
#define S_RADIX_BITS 8
#define S_RADIX (1u << S_RADIX_BITS)
#define S_RADIX_PASSES 8

//  Keys and, when ranks are wanted, the rows they came from, sorted together. Kept as two
//  arrays so a values-only sort moves half the bytes.
typedef struct {
    size_t runs;
    uint64_t *keys, *key_scratch;
    size_t *rows, *row_scratch;
    size_t *counts; //  [S_RADIX_PASSES][S_RADIX]
} sorter_t;

static int s_sorter_init(sorter_t *self, size_t runs)
{
    memset(self, 0, sizeof *self);
    self->runs = runs;
    if (runs > SIZE_MAX / sizeof(uint64_t))
        return -1;
    self->keys = malloc(runs * sizeof *self->keys);
    self->key_scratch = malloc(runs * sizeof *self->key_scratch);
    self->rows = malloc(runs * sizeof *self->rows);
    self->row_scratch = malloc(runs * sizeof *self->row_scratch);
    self->counts = malloc(S_RADIX_PASSES * S_RADIX * sizeof *self->counts);
    return self->keys && self->key_scratch && self->rows && self->row_scratch && self->counts ? 0
                                                                                              : -1;
}

static void s_sorter_free(sorter_t *self)
{
    free(self->keys);
    free(self->key_scratch);
    free(self->rows);
    free(self->row_scratch);
    free(self->counts);
}

//  An unsigned key that orders like the double: flip all bits of negatives, the sign of the
//  rest. -0.0 sorts just before +0.0.
static uint64_t s_key(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits >> 63 ? ~bits : bits | (UINT64_C(1) << 63);
}

static double s_value(uint64_t key)
{
    uint64_t bits = key >> 63 ? key & ~(UINT64_C(1) << 63) : ~key;
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

//  Sort values[i * stride], i < runs, into self->keys, stably; with rows, self->rows[r] is the
//  i whose value has rank r.
static void s_sort(sorter_t *self, const double *values, size_t stride, bool rows)
{
    size_t n = self->runs;
    size_t *counts = self->counts;
    memset(counts, 0, S_RADIX_PASSES * S_RADIX * sizeof *counts);
    for (size_t i = 0; i < n; i++) {
        uint64_t key = s_key(values[i * stride]);
        self->keys[i] = key;
        for (unsigned pass = 0; pass < S_RADIX_PASSES; pass++)
            counts[pass * S_RADIX + ((key >> (pass * S_RADIX_BITS)) & (S_RADIX - 1))]++;
    }
    if (rows)
        for (size_t i = 0; i < n; i++)
            self->rows[i] = i;
    uint64_t *keys = self->keys, *key_to = self->key_scratch;
    size_t *row_from = self->rows, *row_to = self->row_scratch;
    for (unsigned pass = 0; pass < S_RADIX_PASSES; pass++) {
        unsigned shift = pass * S_RADIX_BITS;
        size_t *count = counts + pass * S_RADIX;
        //  A digit every key shares (the exponent bits, often) needs no pass.
        if (count[(keys[0] >> shift) & (S_RADIX - 1)] == n)
            continue;
        size_t offset = 0;
        for (unsigned digit = 0; digit < S_RADIX; digit++) {
            size_t here = count[digit];
            count[digit] = offset;
            offset += here;
        }
        if (rows)
            for (size_t i = 0; i < n; i++) {
                size_t to = count[(keys[i] >> shift) & (S_RADIX - 1)]++;
                key_to[to] = keys[i];
                row_to[to] = row_from[i];
            }
        else
            for (size_t i = 0; i < n; i++)
                key_to[count[(keys[i] >> shift) & (S_RADIX - 1)]++] = keys[i];
        uint64_t *key_swap = keys;
        keys = key_to;
        key_to = key_swap;
        size_t *row_swap = row_from;
        row_from = row_to;
        row_to = row_swap;
    }
    //  Leave the result where the caller looks for it.
    if (keys != self->keys) {
        self->key_scratch = self->keys;
        self->keys = keys;
        self->row_scratch = self->rows;
        self->rows = row_from;
    }
}

//  Lower-triangular l with a = l l^T (both dimensions x dimensions, row-major). Returns -1 when
//  a pivot falls to S_PIVOT_MIN or below (or is NaN).
static int s_cholesky(const double *a, size_t dimensions, double *l)
{
    memset(l, 0, dimensions * dimensions * sizeof *l);
    for (size_t j = 0; j < dimensions; j++) {
        double pivot = a[j * dimensions + j];
        for (size_t k = 0; k < j; k++)
            pivot -= l[j * dimensions + k] * l[j * dimensions + k];
        if (!(pivot > S_PIVOT_MIN))
            return -1;
        double diagonal = sqrt(pivot);
        l[j * dimensions + j] = diagonal;
        for (size_t i = j + 1; i < dimensions; i++) {
            double sum = a[i * dimensions + j];
            for (size_t k = 0; k < j; k++)
                sum -= l[i * dimensions + k] * l[j * dimensions + k];
            l[i * dimensions + j] = sum / diagonal;
        }
    }
    return 0;
}

//  Inverse of the lower-triangular l, by forward substitution column by column.
static void s_invert_lower(const double *l, size_t dimensions, double *inverse)
{
    memset(inverse, 0, dimensions * dimensions * sizeof *inverse);
    for (size_t j = 0; j < dimensions; j++) {
        inverse[j * dimensions + j] = 1.0 / l[j * dimensions + j];
        for (size_t i = j + 1; i < dimensions; i++) {
            double sum = 0;
            for (size_t k = j; k < i; k++)
                sum += l[i * dimensions + k] * inverse[k * dimensions + j];
            inverse[i * dimensions + j] = -sum / l[i * dimensions + i];
        }
    }
}

//  A correlation matrix: entries in [-1, 1], unit diagonal, symmetric, positive definite.
//  Writes its Cholesky factor to factor.
static int s_check_target(const double *target, size_t dimensions, double *factor, lynx_err_t *err)
{
    for (size_t i = 0; i < dimensions; i++)
        for (size_t j = 0; j < dimensions; j++) {
            double c = target[i * dimensions + j];
            if (!(c >= -1.0 && c <= 1.0))
                return lynx_err_set(err, LYNX_EINVALID, NULL,
                                    "correlation matrix entry [%zu][%zu] = %g is outside [-1, 1]",
                                    i, j, c);
            if (i == j && !(fabs(c - 1.0) < S_TOLERANCE))
                return lynx_err_set(err, LYNX_EINVALID, NULL,
                                    "correlation matrix diagonal entry [%zu][%zu] = %g is not 1", i,
                                    j, c);
            if (j > i && !(fabs(c - target[j * dimensions + i]) < S_TOLERANCE))
                return lynx_err_set(err, LYNX_EINVALID, NULL,
                                    "correlation matrix is not symmetric: [%zu][%zu] = %g but "
                                    "[%zu][%zu] = %g",
                                    i, j, c, j, i, target[j * dimensions + i]);
        }
    if (s_cholesky(target, dimensions, factor))
        return lynx_err_set(err, LYNX_EINVALID, NULL,
                            "correlation matrix is not positive definite");
    return 0;
}

#define S_PILE_BITS 8
#define S_PILES (1u << S_PILE_BITS)
_Static_assert(2 * S_PILES <= S_RADIX_PASSES * S_RADIX, "s_shuffle borrows the radix counters");

//  Deal the runs values of source into column in a uniformly random order: each value goes to
//  one of S_PILES piles at random, then each pile is shuffled by Fisher-Yates (Rao 1961,
//  Sandelius 1962). The permutation is exactly as uniform as one Fisher-Yates over the whole
//  column, but each pass is sequential or stays inside one cache-sized pile rather than
//  jumping across megabytes. counts holds 2 * S_PILES.
static void s_shuffle(const double *source, size_t runs, double *column, size_t *counts,
                      broker_rng_t *rng)
{
    size_t *size = counts, *next = counts + S_PILES;
    memset(size, 0, S_PILES * sizeof *size);
    //  Two passes over the same pile draws: count, then deal. The generator is a plain
    //  value, so a copy replays its stream.
    broker_rng_t replay = *rng;
    uint64_t bits = 0;
    for (size_t i = 0; i < runs; i++) {
        if (i % (64 / S_PILE_BITS) == 0)
            bits = broker_rng_next(rng);
        size[bits & (S_PILES - 1)]++;
        bits >>= S_PILE_BITS;
    }
    size_t offset = 0;
    for (unsigned pile = 0; pile < S_PILES; pile++) {
        next[pile] = offset;
        offset += size[pile];
    }
    for (size_t i = 0; i < runs; i++) {
        if (i % (64 / S_PILE_BITS) == 0)
            bits = broker_rng_next(&replay);
        column[next[bits & (S_PILES - 1)]++] = source[i];
        bits >>= S_PILE_BITS;
    }
    for (unsigned pile = 0; pile < S_PILES; pile++) {
        double *values = column + next[pile] - size[pile];
        for (size_t i = size[pile]; i-- > 1;) {
            size_t other = (size_t)broker_rng_below(rng, (uint64_t)i + 1);
            double swap = values[i];
            values[i] = values[other];
            values[other] = swap;
        }
    }
}

//  Each column of scores (column-major, runs long) gets its own shuffle of the van der Waerden
//  scores, which go to sorted first.
static void s_fill_scores(double *scores, size_t runs, size_t dimensions, uint64_t seed,
                          double *sorted, size_t *counts)
{
    for (size_t i = 0; i < runs; i++)
        sorted[i] = broker_dist_normal_quantile((double)(i + 1) / (double)(runs + 1));
    broker_rng_t rng;
    broker_rng_seed(&rng, seed);
    for (size_t j = 0; j < dimensions; j++)
        s_shuffle(sorted, runs, scores + j * runs, counts, &rng);
}

//  Sample correlation of the score columns (dimensions x dimensions, row-major).
static void s_correlation(const double *scores, size_t runs, size_t dimensions, double *mean,
                          double *scale, double *correlation)
{
    for (size_t j = 0; j < dimensions; j++) {
        double sum = 0;
        for (size_t i = 0; i < runs; i++)
            sum += scores[j * runs + i];
        mean[j] = sum / (double)runs;
    }
    for (size_t j = 0; j < dimensions; j++)
        for (size_t k = 0; k <= j; k++) {
            const double *a = scores + j * runs, *b = scores + k * runs;
            //  Four partial sums break the add latency chain.
            double sum[4] = {0, 0, 0, 0};
            size_t i = 0;
            for (; i + 4 <= runs; i += 4)
                for (size_t lane = 0; lane < 4; lane++)
                    sum[lane] += (a[i + lane] - mean[j]) * (b[i + lane] - mean[k]);
            for (; i < runs; i++)
                sum[0] += (a[i] - mean[j]) * (b[i] - mean[k]);
            double covariance = (sum[0] + sum[1]) + (sum[2] + sum[3]);
            correlation[j * dimensions + k] = covariance;
            correlation[k * dimensions + j] = covariance;
        }
    for (size_t j = 0; j < dimensions; j++)
        scale[j] = sqrt(correlation[j * dimensions + j]);
    for (size_t j = 0; j < dimensions; j++)
        for (size_t k = 0; k < dimensions; k++)
            correlation[j * dimensions + k] /= scale[j] * scale[k];
}

//  Replace each row s of scores by mix s, mix lower-triangular: t_k only needs s_0..s_k, so
//  going from the last column down lets each row be rewritten in place.
static void s_mix_scores(double *scores, size_t runs, size_t dimensions, const double *mix,
                         double *row)
{
    for (size_t i = 0; i < runs; i++) {
        for (size_t j = 0; j < dimensions; j++)
            row[j] = scores[j * runs + i];
        for (size_t k = dimensions; k-- > 0;) {
            double t = 0;
            for (size_t j = 0; j <= k; j++)
                t += mix[k * dimensions + j] * row[j];
            scores[k * runs + i] = t;
        }
    }
}

//  Give column j of design the ranks of its target column: the r-th smallest design value goes
//  to the row holding the r-th smallest target. target_column is overwritten.
static void s_reorder_column(double *design, size_t runs, size_t dimensions, size_t j,
                             double *target_column, sorter_t *sorter, double *sorted)
{
    s_sort(sorter, design + j, dimensions, false);
    for (size_t r = 0; r < runs; r++)
        sorted[r] = s_value(sorter->keys[r]);
    s_sort(sorter, target_column, 1, true);
    //  Scatter within the one column, then copy: cheaper than scattering across whole rows.
    for (size_t r = 0; r < runs; r++)
        target_column[sorter->rows[r]] = sorted[r];
    for (size_t i = 0; i < runs; i++)
        design[i * dimensions + j] = target_column[i];
}

int broker_corr_apply(double *design, size_t runs, size_t dimensions, const double *target,
                      uint64_t seed, lynx_err_t *err)
{
    if (dimensions < 2)
        return 0;
    assert(target);
    assert(design || runs == 0);
    if (dimensions > SIZE_MAX / sizeof(double) / dimensions / 6)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL,
                            "correlation: out of memory for %zu dimensions", dimensions);
    //  d x d blocks: the target factor P, the score correlation E and its factor F, F^-1, and
    //  the mix P F^-1. Then the columns' means and scales, and one row.
    size_t block = dimensions * dimensions;
    double *matrices = malloc((5 * block + 3 * dimensions) * sizeof *matrices);
    if (!matrices)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL,
                            "correlation: out of memory for %zu dimensions", dimensions);
    double *target_factor = matrices, *score_correlation = matrices + block,
           *score_factor = matrices + 2 * block, *score_inverse = matrices + 3 * block,
           *mix = matrices + 4 * block, *mean = matrices + 5 * block, *scale = mean + dimensions,
           *row = scale + dimensions;
    if (s_check_target(target, dimensions, target_factor, err)) {
        free(matrices);
        return -1;
    }
    //  With fewer than 3 runs every ordering has rank correlation +-1: nothing to induce.
    if (runs < 3) {
        free(matrices);
        return 0;
    }

    sorter_t sorter;
    double *scores = NULL, *sorted = NULL;
    int rc = s_sorter_init(&sorter, runs);
    if (rc == 0 && runs <= SIZE_MAX / sizeof(double) / dimensions) {
        scores = malloc(runs * dimensions * sizeof *scores);
        sorted = malloc(runs * sizeof *sorted);
    }
    if (rc || !scores || !sorted) {
        rc = lynx_err_set(err, LYNX_EINTERNAL, NULL,
                          "correlation: out of memory for %zu runs x %zu dimensions", runs,
                          dimensions);
        goto done;
    }

    s_fill_scores(scores, runs, dimensions, seed, sorted, sorter.counts);
    s_correlation(scores, runs, dimensions, mean, scale, score_correlation);
    //  Fewer runs than dimensions + 1 (or shuffles that happen to coincide) leave E singular:
    //  then take F = I, i.e. T = S P^T, and accept the shuffles' chance correlation.
    if (s_cholesky(score_correlation, dimensions, score_factor) == 0)
        s_invert_lower(score_factor, dimensions, score_inverse);
    else {
        memset(score_inverse, 0, block * sizeof *score_inverse);
        for (size_t j = 0; j < dimensions; j++)
            score_inverse[j * dimensions + j] = 1.0;
    }
    //  mix = P F^-1, lower-triangular (the upper part is never read); a row of T is mix times
    //  the row of S, which is T = S (F^-1)^T P^T.
    for (size_t i = 0; i < dimensions; i++)
        for (size_t j = 0; j <= i; j++) {
            double sum = 0;
            for (size_t k = j; k <= i; k++)
                sum += target_factor[i * dimensions + k] * score_inverse[k * dimensions + j];
            mix[i * dimensions + j] = sum;
        }
    s_mix_scores(scores, runs, dimensions, mix, row);
    for (size_t j = 0; j < dimensions; j++)
        s_reorder_column(design, runs, dimensions, j, scores + j * runs, &sorter, sorted);

done:
    s_sorter_free(&sorter);
    free(scores);
    free(sorted);
    free(matrices);
    return rc;
}

//  Average ranks (1-based) of column j into ranks; equal values share the mean of their ranks.
static void s_average_ranks(const double *design, size_t runs, size_t dimensions, size_t j,
                            sorter_t *sorter, double *ranks)
{
    s_sort(sorter, design + j, dimensions, true);
    size_t start = 0;
    while (start < runs) {
        double value = s_value(sorter->keys[start]);
        size_t end = start + 1;
        while (end < runs && s_value(sorter->keys[end]) == value)
            end++;
        double rank = (double)(start + 1 + end) / 2.0;
        for (size_t r = start; r < end; r++)
            ranks[sorter->rows[r]] = rank;
        start = end;
    }
}

double broker_corr_spearman(const double *design, size_t runs, size_t dimensions, size_t a,
                            size_t b)
{
    assert(a < dimensions && b < dimensions);
    assert(design || runs == 0);
    if (runs < 2)
        return NAN;
    sorter_t sorter;
    double *ranks = NULL;
    if (s_sorter_init(&sorter, runs) == 0 && runs <= SIZE_MAX / sizeof(double) / 2)
        ranks = malloc(2 * runs * sizeof *ranks);
    double result = NAN;
    if (ranks) {
        double *rank_a = ranks, *rank_b = ranks + runs;
        s_average_ranks(design, runs, dimensions, a, &sorter, rank_a);
        s_average_ranks(design, runs, dimensions, b, &sorter, rank_b);
        //  Average ranks always have mean (N + 1) / 2.
        double mean = (double)(runs + 1) / 2.0;
        double ab = 0, aa = 0, bb = 0;
        for (size_t i = 0; i < runs; i++) {
            double x = rank_a[i] - mean, y = rank_b[i] - mean;
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        result = ab / sqrt(aa * bb);
    }
    s_sorter_free(&sorter);
    free(ranks);
    return result;
}
