//  broker_store, read in bulk: visiting batches with their counts, jobs by state in run_id
//  order, cancelling the Pending ones, the runners an operator drained, and all of it again
//  after closing and reopening the store.
#include "broker_store_fixture.h"

typedef struct {
    size_t visits;
    char ids[4][BROKER_ID_SIZE];
    int64_t counts[4][LYNX_JOB_STATE_COUNT];
    int stop_after; //  return -1 after this many visits (0: never)
} s_batch_visits_t;

static int s_visit_batch(const lynx_value_t *batch, const int64_t *counts, void *arg)
{
    s_batch_visits_t *visits = arg;
    assert_true(visits->visits < S_LENGTH(visits->ids));
    snprintf(visits->ids[visits->visits], BROKER_ID_SIZE, "%s",
             lynx_value_get_string(batch, "id", ""));
    memcpy(visits->counts[visits->visits], counts, sizeof visits->counts[0]);
    visits->visits++;
    return visits->stop_after && (int)visits->visits >= visits->stop_after ? -1 : 0;
}

//  Each batch is visited in creation order with its jobs counted per state.
static void test_foreach_batch_counts(void **state)
{
    s_fixture_t *fixture = *state;
    //  Batch 2 is created first; batch 3 has no jobs.
    const int64_t runs_1[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int64_t runs_2[] = {1, 2};
    s_submit(fixture->store, 1, 3000, runs_1, S_LENGTH(runs_1));
    s_submit(fixture->store, 2, 1000, runs_2, S_LENGTH(runs_2));
    s_submit(fixture->store, 3, 5000, NULL, 0);
    static const struct {
        int64_t run_id;
        lynx_job_state_t status;
    } moves[] = {
        {2, LYNX_JOB_CLAIMED},   {3, LYNX_JOB_RUNNING}, {4, LYNX_JOB_COMPLETED},
        {5, LYNX_JOB_COMPLETED}, {6, LYNX_JOB_FAILED},  {7, LYNX_JOB_CANCELLED},
    };
    for (size_t i = 0; i < S_LENGTH(moves); i++)
        s_set_status(fixture->store, 1, moves[i].run_id, moves[i].status);
    s_set_status(fixture->store, 2, 2, LYNX_JOB_TIMEOUT);

    //                                            P  CL R  CO F  T  CA
    static const int64_t expected[3][LYNX_JOB_STATE_COUNT] = {
        {1, 0, 0, 0, 0, 1, 0}, {2, 1, 1, 2, 1, 0, 1}, {0, 0, 0, 0, 0, 0, 0}};
    static const unsigned order[3] = {2, 1, 3};
    s_batch_visits_t visits = {0};
    assert_int_equal(broker_store_foreach_batch(fixture->store, s_visit_batch, &visits), 0);
    assert_int_equal(visits.visits, 3);
    for (size_t i = 0; i < 3; i++) {
        char id[BROKER_ID_SIZE];
        s_uuid(id, 'b', order[i]);
        assert_string_equal(visits.ids[i], id);
        for (int status = 0; status < LYNX_JOB_STATE_COUNT; status++)
            if (visits.counts[i][status] != expected[i][status])
                fail_msg("batch %u %s: %lld jobs, expected %lld", order[i],
                         lynx_job_state_name((lynx_job_state_t)status),
                         (long long)visits.counts[i][status], (long long)expected[i][status]);
    }

    //  A callback that fails stops the walk, and its failure is returned.
    s_batch_visits_t stopped = {.stop_after = 1};
    assert_int_equal(broker_store_foreach_batch(fixture->store, s_visit_batch, &stopped), -1);
    assert_int_equal(stopped.visits, 1);
}

static void test_foreach_batch_empty_store(void **state)
{
    s_fixture_t *fixture = *state;
    s_batch_visits_t visits = {0};
    assert_int_equal(broker_store_foreach_batch(fixture->store, s_visit_batch, &visits), 0);
    assert_int_equal(visits.visits, 0);
}

typedef struct {
    size_t visits;
    int64_t run_ids[16];
    size_t stop_after; //  return 1 after this many visits (0: never)
} s_job_visits_t;

static int s_visit_job(const broker_job_rec_t *job, void *arg)
{
    s_job_visits_t *visits = arg;
    assert_true(visits->visits < S_LENGTH(visits->run_ids));
    visits->run_ids[visits->visits++] = job->run_id;
    return visits->stop_after && visits->visits >= visits->stop_after;
}

//  foreach_job pages through one batch's jobs in one state, ordered by run_id.
static void test_foreach_job_filters(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t runs[] = {9, 1, 5, 3, 7, 2, 8, 4, 6, 10};
    s_submit(fixture->store, 1, 1000, runs, S_LENGTH(runs));
    const int64_t other_runs[] = {1, 2, 3};
    s_submit(fixture->store, 2, 2000, other_runs, S_LENGTH(other_runs)); //  never listed
    const int64_t running[] = {2, 5, 9};
    for (size_t i = 0; i < S_LENGTH(running); i++)
        s_set_status(fixture->store, 1, running[i], LYNX_JOB_RUNNING);
    char batch_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);

    static const struct {
        lynx_job_state_t status;
        int64_t after_run_id, limit;
        size_t stop_after;
        int64_t expected[11]; //  run_ids, ended by -1
    } cases[] = {
        {LYNX_JOB_PENDING, 0, 0, 0, {1, 3, 4, 6, 7, 8, 10, -1}},
        {LYNX_JOB_PENDING, 0, -1, 0, {1, 3, 4, 6, 7, 8, 10, -1}}, //  limit <= 0: all
        {LYNX_JOB_PENDING, 0, 3, 0, {1, 3, 4, -1}},
        {LYNX_JOB_PENDING, 4, 3, 0, {6, 7, 8, -1}}, //  the next page
        {LYNX_JOB_PENDING, 8, 3, 0, {10, -1}},
        {LYNX_JOB_PENDING, 10, 0, 0, {-1}},
        {LYNX_JOB_PENDING, 5, 0, 0, {6, 7, 8, 10, -1}}, //  after a run not in this state
        {LYNX_JOB_RUNNING, 0, 0, 0, {2, 5, 9, -1}},
        {LYNX_JOB_RUNNING, 2, 1, 0, {5, -1}},
        {LYNX_JOB_COMPLETED, 0, 0, 0, {-1}},
        {LYNX_JOB_PENDING, 0, 0, 2, {1, 3, -1}}, //  the callback stops the walk
    };
    for (size_t i = 0; i < S_LENGTH(cases); i++) {
        s_job_visits_t visits = {.stop_after = cases[i].stop_after};
        int64_t visited =
            broker_store_foreach_job(fixture->store, batch_id, cases[i].status,
                                     cases[i].after_run_id, cases[i].limit, s_visit_job, &visits);
        size_t count = 0;
        while (cases[i].expected[count] >= 0)
            count++;
        if (visited != (int64_t)count || visits.visits != count)
            fail_msg("case %zu: visited %lld, expected %zu", i, (long long)visited, count);
        for (size_t j = 0; j < count; j++)
            assert_int_equal(visits.run_ids[j], cases[i].expected[j]);
    }

    //  An unknown batch has no jobs.
    s_job_visits_t visits = {0};
    char unknown[BROKER_ID_SIZE];
    s_uuid(unknown, 'b', 9);
    assert_int_equal(broker_store_foreach_job(fixture->store, unknown, LYNX_JOB_PENDING, 0, 0,
                                              s_visit_job, &visits),
                     0);
}

static int s_check_job_record(const broker_job_rec_t *job, void *arg)
{
    const char *batch_id = arg;
    char job_id[BROKER_ID_SIZE];
    s_uuid(job_id, 'j', 1000 + (unsigned)job->run_id);
    broker_job_rec_t expected = s_job(job_id, batch_id, job->run_id);
    s_assert_job_equal(job, &expected);
    return 0;
}

static void test_foreach_job_records(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t runs[] = {1, 2, 3};
    s_submit(fixture->store, 1, 1000, runs, S_LENGTH(runs));
    char batch_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    assert_int_equal(broker_store_foreach_job(fixture->store, batch_id, LYNX_JOB_PENDING, 0, 0,
                                              s_check_job_record, batch_id),
                     3);
}

//  broker_store_list_jobs is foreach_job with -1 for "every state".
static void test_list_jobs_every_state(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t runs[] = {4, 1, 3, 2, 5};
    s_submit(fixture->store, 1, 1000, runs, S_LENGTH(runs));
    s_set_status(fixture->store, 1, 2, LYNX_JOB_CLAIMED);
    s_set_status(fixture->store, 1, 4, LYNX_JOB_RUNNING);
    char batch_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);

    s_job_visits_t visits = {0};
    assert_int_equal(
        broker_store_list_jobs(fixture->store, batch_id, -1, 0, 0, s_visit_job, &visits), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(visits.run_ids[i], (int64_t)i + 1);

    s_job_visits_t page = {0};
    assert_int_equal(broker_store_list_jobs(fixture->store, batch_id, -1, 2, 2, s_visit_job, &page),
                     2);
    assert_int_equal(page.run_ids[0], 3);
    assert_int_equal(page.run_ids[1], 4);

    s_job_visits_t claimed = {0};
    assert_int_equal(broker_store_list_jobs(fixture->store, batch_id, LYNX_JOB_CLAIMED, 0, 0,
                                            s_visit_job, &claimed),
                     1);
    assert_int_equal(claimed.run_ids[0], 2);
}

//  Cancelling a batch cancels its Pending jobs (or one of them) and flags the batch; jobs
//  already on a runner are left to the broker.
static void test_cancel_pending(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t runs[] = {1, 2, 3, 4};
    s_submit(fixture->store, 1, 1000, runs, S_LENGTH(runs));
    s_submit(fixture->store, 2, 2000, runs, S_LENGTH(runs));
    s_set_status(fixture->store, 1, 2, LYNX_JOB_RUNNING);
    char batch_id[BROKER_ID_SIZE], job_1[BROKER_ID_SIZE], job_2[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    s_uuid(job_1, 'j', 1001);
    s_uuid(job_2, 'j', 1002);
    const int64_t now_ms = 1795435299000;

    assert_int_equal(broker_store_cancel_pending(fixture->store, batch_id, job_1, now_ms), 1);
    broker_job_rec_t got;
    assert_int_equal(broker_store_get_job(fixture->store, job_1, &got), 0);
    assert_int_equal(got.status, LYNX_JOB_CANCELLED);
    assert_int_equal(got.completed_at_ms, now_ms);
    assert_int_equal(broker_store_cancel_pending(fixture->store, batch_id, job_1, now_ms), 0);
    assert_int_equal(broker_store_cancel_pending(fixture->store, batch_id, job_2, now_ms), 0);

    assert_int_equal(broker_store_cancel_pending(fixture->store, batch_id, NULL, now_ms), 2);
    assert_int_equal(broker_store_cancel_pending(fixture->store, batch_id, NULL, now_ms), 0);
    assert_int_equal(broker_store_get_job(fixture->store, job_2, &got), 0);
    assert_int_equal(got.status, LYNX_JOB_RUNNING);

    assert_int_equal(broker_store_set_batch_cancelled(fixture->store, batch_id), 0);
    lynx_value_t *batch = broker_store_get_batch(fixture->store, batch_id);
    assert_true(lynx_value_get_bool(batch, "cancelled", false));
    lynx_value_destroy(&batch);

    //  The other batch is untouched.
    s_batch_visits_t visits = {0};
    assert_int_equal(broker_store_foreach_batch(fixture->store, s_visit_batch, &visits), 0);
    assert_int_equal(visits.visits, 2);
    assert_int_equal(visits.counts[0][LYNX_JOB_CANCELLED], 3);
    assert_int_equal(visits.counts[0][LYNX_JOB_RUNNING], 1);
    assert_int_equal(visits.counts[1][LYNX_JOB_PENDING], 4);
    char other_batch[BROKER_ID_SIZE];
    s_uuid(other_batch, 'b', 2);
    batch = broker_store_get_batch(fixture->store, other_batch);
    assert_false(lynx_value_get_bool(batch, "cancelled", true));
    lynx_value_destroy(&batch);
}

typedef struct {
    size_t count;
    char ids[4][32];
} s_ids_t;

static void s_collect_id(const char *id, void *arg)
{
    s_ids_t *ids = arg;
    assert_true(ids->count < S_LENGTH(ids->ids));
    snprintf(ids->ids[ids->count++], sizeof ids->ids[0], "%s", id);
}

//  Drained runners are remembered (sorted by id), idempotently, across a reopen.
static void test_drained_runners(void **state)
{
    s_fixture_t *fixture = *state;
    assert_int_equal(broker_store_set_runner_drained(fixture->store, "ws-07", true), 0);
    assert_int_equal(broker_store_set_runner_drained(fixture->store, "ws-03", true), 0);
    assert_int_equal(broker_store_set_runner_drained(fixture->store, "ws-07", true), 0);
    assert_int_equal(broker_store_set_runner_drained(fixture->store, "ws-99", false), 0);
    s_ids_t ids = {0};
    assert_int_equal(broker_store_foreach_drained_runner(fixture->store, s_collect_id, &ids), 0);
    assert_int_equal(ids.count, 2);
    assert_string_equal(ids.ids[0], "ws-03");
    assert_string_equal(ids.ids[1], "ws-07");

    assert_int_equal(broker_store_set_runner_drained(fixture->store, "ws-03", false), 0);
    broker_store_destroy(&fixture->store);
    lynx_err_t err;
    fixture->store = broker_store_new(fixture->data_dir, &err);
    assert_non_null(fixture->store);
    s_ids_t after = {0};
    assert_int_equal(broker_store_foreach_drained_runner(fixture->store, s_collect_id, &after), 0);
    assert_int_equal(after.count, 1);
    assert_string_equal(after.ids[0], "ws-07");
}

//  --- durability -----------------------------------------------------------------------------

//  Everything committed is there after the store is closed and opened again.

static void test_reopen_keeps_everything(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t runs[] = {1, 2};
    s_submit(fixture->store, 1, 1000, runs, S_LENGTH(runs));
    char batch_id[BROKER_ID_SIZE], job_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    s_uuid(job_id, 'j', 1002);

    broker_job_rec_t job;
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &job), 0);
    job.status = LYNX_JOB_FAILED;
    job.retries = 3;
    job.attempt = 4;
    job.claimed_at_ms = 11;
    job.started_at_ms = 22;
    job.completed_at_ms = 33;
    snprintf(job.assigned_runner, sizeof job.assigned_runner, "ws-07");
    snprintf(job.last_runner, sizeof job.last_runner, "ws-03");
    assert_int_equal(broker_store_update_job(fixture->store, &job, "retries exhausted"), 0);
    lynx_value_t *result = lynx_value_map();
    lynx_value_set_bool(result, "success", false);
    assert_int_equal(
        broker_store_put_result(fixture->store, job_id, batch_id, result, BROKER_EXIT_UNKNOWN), 0);
    assert_int_equal(broker_store_update_batch_status(fixture->store, batch_id, LYNX_BATCH_FAILED),
                     0);

    broker_store_destroy(&fixture->store);
    lynx_err_t err;
    fixture->store = broker_store_new(fixture->data_dir, &err);
    assert_non_null(fixture->store);

    lynx_value_t *batch = broker_store_get_batch(fixture->store, batch_id);
    assert_non_null(batch);
    assert_string_equal(lynx_value_get_string(batch, "status", ""), "Failed");
    lynx_value_t *config = s_config();
    s_assert_value_identical(lynx_value_get(batch, "config"), config);
    lynx_value_destroy(&config);
    lynx_value_destroy(&batch);

    broker_job_rec_t got;
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 0);
    s_assert_job_equal(&got, &job);
    char *message = broker_store_job_error(fixture->store, job_id);
    assert_string_equal(message, "retries exhausted");
    free(message);

    lynx_value_t *parameters = broker_store_job_parameters(fixture->store, job_id);
    lynx_value_t *expected = s_parameters(2);
    s_assert_value_identical(parameters, expected);
    lynx_value_destroy(&parameters);
    lynx_value_destroy(&expected);

    lynx_value_t *stored = broker_store_get_result(fixture->store, job_id);
    s_assert_value_identical(stored, result);
    lynx_value_destroy(&stored);
    lynx_value_destroy(&result);

    s_job_visits_t visits = {0};
    assert_int_equal(broker_store_foreach_job(fixture->store, batch_id, LYNX_JOB_PENDING, 0, 0,
                                              s_visit_job, &visits),
                     1);
    assert_int_equal(visits.run_ids[0], 1);
}

int main(void)
{
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_foreach_batch_counts),  S_TEST(test_foreach_batch_empty_store),
        S_TEST(test_foreach_job_filters),   S_TEST(test_foreach_job_records),
        S_TEST(test_list_jobs_every_state), S_TEST(test_cancel_pending),
        S_TEST(test_drained_runners),       S_TEST(test_reopen_keeps_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
