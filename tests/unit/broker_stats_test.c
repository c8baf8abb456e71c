//  broker_stats: a batch's throughput over the last minute and the ETA it gives.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "broker_stats.h"

#define S_START INT64_C(1750000000000)

static void test_young_batch_divides_by_its_age(void **state)
{
    (void)state;
    broker_stats_t *stats = broker_stats_new(S_START);
    assert_non_null(stats);
    assert_true(broker_stats_throughput(stats, S_START + 5000) == 0.0);
    assert_true(broker_stats_eta_minutes(stats, 10, S_START + 5000) == -1.0); //  unknown yet
    for (int i = 0; i < 10; i++)
        broker_stats_job_ended(stats, S_START + 1000 + i * 100);
    //  10 jobs in the batch's first 10 s: 60 a minute, and 30 more take half a minute.
    assert_true(broker_stats_throughput(stats, S_START + 10000) == 60.0);
    assert_true(broker_stats_eta_minutes(stats, 30, S_START + 10000) == 0.5);
    assert_true(broker_stats_eta_minutes(stats, 0, S_START + 10000) == 0.0);
    //  Under a second old still divides by a second, not by nearly nothing.
    broker_stats_t *fresh = broker_stats_new(S_START);
    broker_stats_job_ended(fresh, S_START + 10);
    assert_true(broker_stats_throughput(fresh, S_START + 20) == 60.0);
    broker_stats_destroy(&fresh);
    broker_stats_destroy(&stats);
    assert_null(stats);
    broker_stats_destroy(&stats); //  NULL-safe
}

static void test_only_the_last_minute_counts(void **state)
{
    (void)state;
    broker_stats_t *stats = broker_stats_new(S_START);
    for (int i = 0; i < 120; i++)
        broker_stats_job_ended(stats, S_START + i * 1000); //  one a second for two minutes
    int64_t now = S_START + 120000;
    //  The window holds the jobs of the last 60 s (both ends included: 61).
    double per_minute = broker_stats_throughput(stats, now);
    assert_true(per_minute >= 60.0 && per_minute <= 61.0);
    //  Long after, nothing is in the window: throughput 0, ETA unknown.
    assert_true(broker_stats_throughput(stats, now + 10 * 60000) == 0.0);
    assert_true(broker_stats_eta_minutes(stats, 5, now + 10 * 60000) == -1.0);
    //  The ring keeps the most recent ends only.
    for (int i = 0; i < BROKER_STATS_RECENT_MAX + 100; i++)
        broker_stats_job_ended(stats, now + 1000);
    assert_true(broker_stats_throughput(stats, now + 1000) == (double)BROKER_STATS_RECENT_MAX);
    assert_true(broker_stats_throughput(NULL, now) == 0.0);
    broker_stats_destroy(&stats);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_young_batch_divides_by_its_age),
        cmocka_unit_test(test_only_the_last_minute_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
