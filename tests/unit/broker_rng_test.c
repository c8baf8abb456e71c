//  broker_rng: a seeded xoshiro256** stream, uniform doubles in (0, 1) and unbiased integers.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker_rng.h"

//  The expected values below come from this independent reference, run with /usr/bin/python3
//  (arbitrary-precision integers, masked to 64 bits):
//
//      M = 2**64 - 1
//      def splitmix64(x):
//          x = (x + 0x9E3779B97F4A7C15) & M
//          z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
//          z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
//          return x, z ^ (z >> 31)
//      rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M
//      def xoshiro(seed):
//          s, x = [], seed
//          for _ in range(4):
//              x, z = splitmix64(x); s.append(z)
//          while True:
//              yield (rotl((s[1] * 5) & M, 7) * 9) & M
//              t = (s[1] << 17) & M
//              s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
//              s[3] = rotl(s[3], 45)
//      uniform = lambda x: ((x >> 12) + 0.5) / 2**52
//      def below(g, bound):  # Lemire
//          m = next(g) * bound
//          if (m & M) < bound:
//              while (m & M) < (2**64 - bound) % bound:
//                  m = next(g) * bound
//          return m >> 64
//
//  splitmix64(0) gives 0xe220a8397b1dcdaf, the value its authors publish.

static void test_seed_expands_through_splitmix64(void **state)
{
    (void)state;
    broker_rng_t rng;
    broker_rng_seed(&rng, 0);
    assert_int_equal(rng.state[0], 0xe220a8397b1dcdafu);
    assert_int_equal(rng.state[1], 0x6e789e6aa1b965f4u);
    assert_int_equal(rng.state[2], 0x06c45d188009454fu);
    assert_int_equal(rng.state[3], 0xf88bb8a8724c81ecu);
}

static void test_first_outputs_match_the_reference(void **state)
{
    (void)state;
    static const uint64_t seed_0[] = {0x99ec5f36cb75f2b4u, 0xbf6e1f784956452au, 0x1a5f849d4933e6e0u,
                                      0x6aa594f1262d2d2cu, 0xbba5ad4a1f842e59u};
    static const uint64_t seed_42[] = {0x15780b2e0c2ec716u, 0x6104d9866d113a7eu,
                                       0xae17533239e499a1u, 0xecb8ad4703b360a1u,
                                       0xfde6dc7fe2ec5e64u};
    broker_rng_t rng;
    broker_rng_seed(&rng, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(broker_rng_next(&rng), seed_0[i]);
    broker_rng_seed(&rng, 42);
    for (int i = 0; i < 5; i++)
        assert_int_equal(broker_rng_next(&rng), seed_42[i]);
}

static void test_uniform_and_below_match_the_reference(void **state)
{
    (void)state;
    broker_rng_t rng;
    broker_rng_seed(&rng, 42);
    assert_true(broker_rng_uniform(&rng) == 0.08386297105988227);
    assert_true(broker_rng_uniform(&rng) == 0.3789802506626686);
    assert_true(broker_rng_uniform(&rng) == 0.6800434110281394);

    static const uint64_t dice[] = {0, 2, 4, 5, 5, 4, 4, 5, 4, 3};
    broker_rng_seed(&rng, 42);
    for (int i = 0; i < 10; i++)
        assert_int_equal(broker_rng_below(&rng, 6), dice[i]);
}

static void test_same_seed_same_stream(void **state)
{
    (void)state;
    broker_rng_t a, b;
    broker_rng_seed(&a, 20260409);
    broker_rng_seed(&b, 20260409);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(broker_rng_next(&a), broker_rng_next(&b));

    //  Re-seeding restarts the stream.
    broker_rng_seed(&a, 20260409);
    uint64_t first = broker_rng_next(&a);
    broker_rng_seed(&a, 20260409);
    assert_int_equal(broker_rng_next(&a), first);
}

static void test_different_seeds_differ(void **state)
{
    (void)state;
    //  Neighbouring seeds, the usual case when users count up, give unrelated streams.
    for (uint64_t seed = 0; seed < 64; seed++) {
        broker_rng_t a, b;
        broker_rng_seed(&a, seed);
        broker_rng_seed(&b, seed + 1);
        int same = 0;
        for (int i = 0; i < 100; i++)
            same += broker_rng_next(&a) == broker_rng_next(&b);
        assert_int_equal(same, 0);
    }
}

//  The multiplicative inverse of an odd number modulo 2^64, by Newton's iteration.
static uint64_t s_inverse(uint64_t odd)
{
    uint64_t inverse = odd;
    for (int i = 0; i < 6; i++)
        inverse *= 2 - odd * inverse;
    return inverse;
}

//  A state whose next output is exactly `output`: the output is rotl (s[1] * 5, 7) * 9 and
//  only depends on s[1].
static broker_rng_t s_rng_about_to_output(uint64_t output)
{
    uint64_t rotated = output * s_inverse(9);
    uint64_t s1 = ((rotated >> 7) | (rotated << 57)) * s_inverse(5);
    broker_rng_t rng = {{1, s1, 2, 3}};
    return rng;
}

static void test_uniform_is_never_0_or_1(void **state)
{
    (void)state;
    //  The extreme 64-bit draws map to the centres of the outermost cells.
    broker_rng_t rng = s_rng_about_to_output(0);
    assert_true(broker_rng_uniform(&rng) == 0x1p-53);
    rng = s_rng_about_to_output(UINT64_MAX);
    assert_true(broker_rng_uniform(&rng) == 1.0 - 0x1p-53);

    broker_rng_seed(&rng, 7);
    double sum = 0;
    for (int i = 0; i < 1000000; i++) {
        double u = broker_rng_uniform(&rng);
        assert_true(u > 0.0 && u < 1.0);
        sum += u;
    }
    //  The mean of a million uniforms has a standard deviation of 0.00029.
    assert_true(sum / 1000000 > 0.499 && sum / 1000000 < 0.501);
}

static void test_below_stays_in_bounds(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {
        1, 2, 3, 7, 1000, (1u << 31) + 1, UINT64_C(1) << 63, (UINT64_C(1) << 63) + 1, UINT64_MAX};
    broker_rng_t rng;
    broker_rng_seed(&rng, 99);
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
        for (int i = 0; i < 10000; i++)
            assert_true(broker_rng_below(&rng, bounds[b]) < bounds[b]);
    for (int i = 0; i < 100; i++)
        assert_int_equal(broker_rng_below(&rng, 1), 0);
}

static void test_below_is_roughly_uniform(void **state)
{
    (void)state;
    broker_rng_t rng;
    broker_rng_seed(&rng, 12345);
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++)
        counts[broker_rng_below(&rng, 10)]++;
    //  Expected 10000 each with a standard deviation of 95.
    for (int i = 0; i < 10; i++)
        assert_in_range(counts[i], 9500, 10500);
}

static void test_below_has_no_modulo_bias(void **state)
{
    (void)state;
    //  With bound = 3 * 2^62, `next % bound` would land in the lowest third twice as often as
    //  in each other third (1/2 instead of 1/3 of the draws).
    uint64_t bound = UINT64_C(3) << 62;
    broker_rng_t rng;
    broker_rng_seed(&rng, 2024);
    int low = 0;
    for (int i = 0; i < 30000; i++)
        low += broker_rng_below(&rng, bound) < (UINT64_C(1) << 62);
    //  Expected 10000 with a standard deviation of 82.
    assert_in_range(low, 9600, 10400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_expands_through_splitmix64),
        cmocka_unit_test(test_first_outputs_match_the_reference),
        cmocka_unit_test(test_uniform_and_below_match_the_reference),
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_different_seeds_differ),
        cmocka_unit_test(test_uniform_is_never_0_or_1),
        cmocka_unit_test(test_below_stays_in_bounds),
        cmocka_unit_test(test_below_is_roughly_uniform),
        cmocka_unit_test(test_below_has_no_modulo_bias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
