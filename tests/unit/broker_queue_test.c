//  broker_queue: jobs in flight by id, snapshots that survive removals, and entries changed
//  only through their functions.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "broker_queue.h"

static broker_job_rec_t s_rec(const char *id, lynx_job_state_t status)
{
    broker_job_rec_t rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.id, sizeof rec.id, "%s", id);
    rec.status = status;
    rec.attempt = 1;
    return rec;
}

static void test_entries_by_id(void **state)
{
    (void)state;
    broker_queue_t *queue = broker_queue_new();
    assert_non_null(queue);
    broker_runner_t runner = {.id = "ws-01"};
    broker_job_rec_t rec = s_rec("job-1", LYNX_JOB_CLAIMED);
    broker_inflight_t *inflight = broker_queue_add(queue, &rec, NULL, &runner);
    assert_non_null(inflight);
    assert_ptr_equal(broker_queue_lookup(queue, "job-1"), inflight);
    assert_null(broker_queue_lookup(queue, "job-2"));
    assert_null(broker_queue_lookup(queue, NULL));
    assert_int_equal(inflight->exit.code, -1); //  unknown until FINISHED says
    assert_false(inflight->cancel_requested);

    broker_job_rec_t running = inflight->rec;
    running.status = LYNX_JOB_RUNNING;
    broker_inflight_update(inflight, &running);
    broker_inflight_set_exit(inflight, (broker_exit_t){0, -1});
    broker_inflight_request_cancel(inflight);
    broker_inflight_set_runner(inflight, NULL);
    assert_int_equal(inflight->rec.status, LYNX_JOB_RUNNING);
    assert_int_equal(inflight->exit.code, 0);
    assert_true(inflight->cancel_requested);
    assert_null(inflight->runner);
    assert_int_equal(broker_queue_count(queue), 1);
    broker_queue_remove(queue, "job-1");
    broker_queue_remove(queue, "job-1"); //  unknown ids are fine
    assert_int_equal(broker_queue_count(queue), 0);
    broker_queue_destroy(&queue);
    assert_null(queue);
    broker_queue_destroy(&queue);
}

//  A snapshot stays valid while other entries are removed: loops that end attempts use one.
static void test_snapshots_survive_removals(void **state)
{
    (void)state;
    broker_queue_t *queue = broker_queue_new();
    broker_runner_t a = {.id = "a"}, b = {.id = "b"};
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "job-%d", i);
        broker_job_rec_t rec = s_rec(id, LYNX_JOB_RUNNING);
        assert_non_null(broker_queue_add(queue, &rec, NULL, i % 2 ? &a : &b));
    }
    zlistx_t *on_a = broker_queue_select(queue, broker_queue_on_runner, &a);
    assert_int_equal(zlistx_size(on_a), 5);
    broker_inflight_t *inflight;
    while ((inflight = (broker_inflight_t *)zlistx_detach(on_a, NULL))) {
        assert_ptr_equal(inflight->runner, &a);
        broker_queue_remove(queue, inflight->rec.id);
    }
    zlistx_destroy(&on_a);
    assert_int_equal(broker_queue_count(queue), 5);
    zlistx_t *all = broker_queue_select(queue, NULL, NULL);
    assert_int_equal(zlistx_size(all), 5);
    zlistx_destroy(&all);
    broker_queue_destroy(&queue);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_by_id),
        cmocka_unit_test(test_snapshots_survive_removals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
