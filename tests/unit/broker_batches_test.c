//  broker_batches: batch records built from a study, their counters, and the stride
//  scheduling between batches (a new batch starts at the smallest waiting pass; the lowest
//  pass a filter accepts is served next; priority p advances the pass by 1/p).
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "broker_batches.h"
#include "broker_study.h"
#include "lynx_json.h"

static const char s_config[] =
    "{\"simulation\": {\"name\": \"orbit\"}, \"monte_carlo\": {\"runs\": 4, \"seed\": 1},"
    " \"dispersions\": {\"x\": {\"distribution\": {\"type\": \"uniform\", \"min\": 0, \"max\": "
    "1}}},"
    " \"compute\": {\"priority\": %d, \"required_capabilities\": [\"gpu-lab\"]},"
    " \"telemetry\": {\"sampling_rate_hz\": 10}}";

static broker_batch_t *s_batch(const char *id, int priority)
{
    char text[sizeof s_config + 16];
    snprintf(text, sizeof text, s_config, priority);
    lynx_err_t err;
    lynx_value_t *config = lynx_json_parse(text, strlen(text), &err);
    assert_non_null(config);
    broker_study_t *study = broker_study_new(config, 0, NULL, NULL);
    assert_non_null(study);
    broker_batch_origin_t origin = {.id = id,
                                    .name = "sweep",
                                    .study = study,
                                    .config = config,
                                    .created_at_ms = 1750000000000,
                                    .seed = 42,
                                    .config_hash = "abc",
                                    .submitted_by = "ana@ws-03"};
    broker_batch_t *batch = broker_batch_new(&origin);
    assert_non_null(batch);
    broker_study_destroy(&study);
    lynx_value_destroy(&config);
    int64_t counts[LYNX_JOB_STATE_COUNT] = {[LYNX_JOB_PENDING] = 4};
    broker_batch_restore(batch, counts, LYNX_BATCH_PENDING, false);
    return batch;
}

static void test_a_record_from_its_study(void **state)
{
    (void)state;
    broker_batch_t *batch = s_batch("b-1", 2);
    assert_string_equal(batch->name, "sweep");
    assert_string_equal(batch->submitted_by, "ana@ws-03");
    assert_int_equal(batch->total_jobs, 4);
    assert_int_equal(batch->priority, 2);
    assert_int_equal(batch->required_count, 1);
    assert_string_equal(batch->required[0], "gpu-lab");
    assert_non_null(batch->sections[BROKER_SECTION_TELEMETRY]);
    assert_null(batch->sections[BROKER_SECTION_EARLY_TERMINATION]);
    assert_null(batch->sections[BROKER_SECTION_ARTIFACTS]);
    assert_int_equal(broker_batch_remaining(batch), 4);
    broker_batch_move(batch, LYNX_JOB_PENDING, LYNX_JOB_CLAIMED, 3);
    broker_batch_move(batch, LYNX_JOB_CLAIMED, LYNX_JOB_COMPLETED, 2);
    assert_int_equal(batch->counts[LYNX_JOB_PENDING], 1);
    assert_int_equal(batch->counts[LYNX_JOB_CLAIMED], 1);
    assert_int_equal(broker_batch_remaining(batch), 2);
    //  Completions are remembered once per runner.
    assert_true(broker_batch_add_completion(batch, "ws-01"));
    assert_false(broker_batch_add_completion(batch, "ws-01"));
    assert_true(broker_batch_completed_by(batch, "ws-01"));
    assert_false(broker_batch_completed_by(batch, "ws-02"));
    broker_batch_destroy(&batch);
    assert_null(batch);
}

static bool s_any(const broker_batch_t *batch, void *arg)
{
    (void)batch, (void)arg;
    return true;
}

static bool s_not(const broker_batch_t *batch, void *arg)
{
    return strcmp(batch->id, (const char *)arg) != 0;
}

static void test_stride_scheduling(void **state)
{
    (void)state;
    broker_batches_t *batches = broker_batches_new();
    broker_batch_t *slow = s_batch("slow", 1), *fast = s_batch("fast", 4);
    assert_int_equal(broker_batches_add(batches, &slow), 0);
    assert_null(slow);
    assert_int_equal(broker_batches_add(batches, &fast), 0);
    assert_int_equal(broker_batches_count(batches), 2);
    slow = broker_batches_lookup(batches, "slow");
    fast = broker_batches_lookup(batches, "fast");
    assert_ptr_equal(broker_batches_at(batches, 0), slow); //  submission order
    //  Serve eight jobs: priority 4 gets four dispatches to every one of priority 1.
    int served_fast = 0;
    for (int i = 0; i < 10; i++) {
        broker_batch_t *next = broker_batches_next(batches, s_any, NULL);
        served_fast += next == fast;
        broker_batch_served(next);
    }
    assert_int_equal(served_fast, 8);
    //  A filter that refuses one batch leaves the other.
    assert_ptr_equal(broker_batches_next(batches, s_not, "fast"), slow);
    //  A newcomer starts at the smallest waiting pass, not at zero.
    broker_batch_t *late = s_batch("late", 1);
    assert_int_equal(broker_batches_add(batches, &late), 0);
    late = broker_batches_lookup(batches, "late");
    assert_true(late->pass == (slow->pass < fast->pass ? slow->pass : fast->pass));
    assert_null(broker_batches_lookup(batches, "nope"));
    assert_null(broker_batches_at(batches, 3));
    broker_batches_destroy(&batches);
    assert_null(batches);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_record_from_its_study),
        cmocka_unit_test(test_stride_scheduling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
