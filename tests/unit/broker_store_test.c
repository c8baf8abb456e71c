//  broker_store: the broker's durable state. Each test opens a store in a fresh temporary
//  directory, writes batches and jobs the way the broker does -- in a transaction -- and reads
//  them back, sometimes after closing and reopening the store (fixture: broker_store_fixture.h).
#include "broker_store_fixture.h"

static void test_open_creates_data_dir(void **state)
{
    s_fixture_t *fixture = *state;
    struct stat info;
    assert_int_equal(stat(fixture->data_dir, &info), 0);
    assert_true(S_ISDIR(info.st_mode));
    char db_path[PATH_MAX + 128];
    snprintf(db_path, sizeof db_path, "%s/lynx.db", fixture->data_dir);
    assert_int_equal(stat(db_path, &info), 0);
    assert_true(S_ISREG(info.st_mode));

    //  A second store on an existing directory opens it; destroy nulls and is NULL-safe.
    lynx_err_t err;
    broker_store_t *again = broker_store_new(fixture->data_dir, &err);
    assert_non_null(again);
    broker_store_destroy(&again);
    assert_null(again);
    broker_store_destroy(&again);
    broker_store_destroy(NULL);
}

//  A data dir that cannot be a directory fails with an error naming the path.
static void test_unwritable_data_dir(void **state)
{
    s_fixture_t *fixture = *state;
    char file[PATH_MAX + 64];
    snprintf(file, sizeof file, "%s/not-a-dir", fixture->root);
    FILE *handle = fopen(file, "w");
    assert_non_null(handle);
    fclose(handle);

    char under_file[PATH_MAX + 128], deep_under_file[PATH_MAX + 128];
    snprintf(under_file, sizeof under_file, "%s/data", file);
    snprintf(deep_under_file, sizeof deep_under_file, "%s/a/b", file);
    const char *data_dirs[] = {file, under_file, deep_under_file};
    for (size_t i = 0; i < S_LENGTH(data_dirs); i++) {
        lynx_err_t err;
        lynx_err_clear(&err);
        broker_store_t *store = broker_store_new(data_dirs[i], &err);
        if (store)
            fail_msg("opened a store in %s", data_dirs[i]);
        assert_int_equal(err.code, LYNX_EINTERNAL);
        if (!strstr(err.message, file))
            fail_msg("'%s' does not name %s", err.message, file);
        assert_null(broker_store_new(data_dirs[i], NULL));
    }
}

//  --- batches and transactions ---------------------------------------------------------------

static void test_batch_round_trip(void **state)
{
    s_fixture_t *fixture = *state;
    char batch_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    lynx_value_t *config = s_config();
    broker_batch_rec_t batch = s_batch(batch_id, "orbit sweep", 1795435200123, 250, config);
    batch.seed = 0xfedcba9876543210u; //  above INT64_MAX
    assert_int_equal(broker_store_begin(fixture->store), 0);
    assert_int_equal(broker_store_insert_batch(fixture->store, &batch), 0);
    assert_int_equal(broker_store_commit(fixture->store), 0);

    lynx_value_t *got = broker_store_get_batch(fixture->store, batch_id);
    assert_non_null(got);
    static const char *keys[] = {"id",     "name",        "status", "total_jobs", "created_at_ms",
                                 "config", "config_hash", "seed",   "cancelled"};
    assert_int_equal(lynx_value_size(got), S_LENGTH(keys));
    for (size_t i = 0; i < S_LENGTH(keys); i++)
        assert_string_equal(lynx_value_key_at(got, i), keys[i]);
    assert_string_equal(lynx_value_get_string(got, "id", ""), batch_id);
    assert_string_equal(lynx_value_get_string(got, "name", ""), "orbit sweep");
    assert_string_equal(lynx_value_get_string(got, "status", ""), "Pending");
    assert_int_equal(lynx_value_get_int(got, "total_jobs", 0), 250);
    assert_int_equal(lynx_value_get_int(got, "created_at_ms", 0), 1795435200123);
    s_assert_value_identical(lynx_value_get(got, "config"), config);
    assert_string_equal(lynx_value_get_string(got, "config_hash", ""), "sha256:0f1e2d");
    assert_true((uint64_t)lynx_value_get_int(got, "seed", 0) == batch.seed);
    assert_int_equal(lynx_value_type(lynx_value_get(got, "cancelled")), LYNX_VALUE_BOOL);
    assert_false(lynx_value_get_bool(got, "cancelled", true));
    lynx_value_destroy(&got);

    //  The derived status is recorded as the broker computes it.
    assert_int_equal(
        broker_store_update_batch_status(fixture->store, batch_id, LYNX_BATCH_COMPLETED), 0);
    got = broker_store_get_batch(fixture->store, batch_id);
    assert_string_equal(lynx_value_get_string(got, "status", ""), "Completed");
    lynx_value_destroy(&got);

    char unknown[BROKER_ID_SIZE];
    s_uuid(unknown, 'b', 99);
    assert_null(broker_store_get_batch(fixture->store, unknown));
    lynx_value_destroy(&config);
}

//  A rolled-back submission leaves no trace, and the store is usable afterwards.
static void test_rollback_leaves_nothing(void **state)
{
    s_fixture_t *fixture = *state;
    char batch_id[BROKER_ID_SIZE], job_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    s_uuid(job_id, 'j', 1001);
    lynx_value_t *config = s_config();
    broker_batch_rec_t batch = s_batch(batch_id, "doomed", 1000, 1, config);
    broker_job_rec_t job = s_job(job_id, batch_id, 1);
    lynx_value_t *parameters = s_parameters(1);

    assert_int_equal(broker_store_begin(fixture->store), 0);
    assert_int_equal(broker_store_insert_batch(fixture->store, &batch), 0);
    assert_int_equal(broker_store_insert_job(fixture->store, &job, parameters), 0);
    assert_int_equal(
        broker_store_put_result(fixture->store, job_id, batch_id, parameters, BROKER_EXIT_UNKNOWN),
        0);
    broker_store_rollback(fixture->store);

    broker_job_rec_t got;
    assert_null(broker_store_get_batch(fixture->store, batch_id));
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 1);
    assert_null(broker_store_job_parameters(fixture->store, job_id));
    assert_null(broker_store_get_result(fixture->store, job_id));
    lynx_value_t *results = broker_store_batch_results(fixture->store, batch_id);
    assert_int_equal(lynx_value_size(results), 0);
    lynx_value_destroy(&results);

    //  Rolling back outside a transaction is harmless; the same submission can then commit.
    broker_store_rollback(fixture->store);
    assert_int_equal(broker_store_begin(fixture->store), 0);
    assert_int_equal(broker_store_insert_batch(fixture->store, &batch), 0);
    assert_int_equal(broker_store_insert_job(fixture->store, &job, parameters), 0);
    assert_int_equal(broker_store_commit(fixture->store), 0);
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 0);
    lynx_value_destroy(&parameters);
    lynx_value_destroy(&config);
}

//  Misused transactions fail with the statement and the database named.
static void test_transaction_misuse(void **state)
{
    s_fixture_t *fixture = *state;
    assert_int_equal(broker_store_commit(fixture->store), -1);
    assert_non_null(strstr(broker_store_error(fixture->store), "COMMIT"));
    assert_non_null(strstr(broker_store_error(fixture->store), fixture->data_dir));

    assert_int_equal(broker_store_begin(fixture->store), 0);
    assert_int_equal(broker_store_begin(fixture->store), -1);
    assert_non_null(strstr(broker_store_error(fixture->store), "BEGIN"));
    broker_store_rollback(fixture->store);
}

//  Writes that break the schema's rules fail and say so.
static void test_constraint_errors(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t run_ids[] = {1};
    s_submit(fixture->store, 1, 1000, run_ids, S_LENGTH(run_ids));
    char batch_id[BROKER_ID_SIZE], job_id[BROKER_ID_SIZE], orphan_batch[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    s_uuid(job_id, 'j', 1001);
    s_uuid(orphan_batch, 'b', 2);
    lynx_value_t *config = s_config();
    lynx_value_t *parameters = s_parameters(1);

    broker_batch_rec_t batch = s_batch(batch_id, "again", 2000, 1, config);
    assert_int_equal(broker_store_insert_batch(fixture->store, &batch), -1);
    assert_non_null(strstr(broker_store_error(fixture->store), "insert batch into"));
    assert_non_null(strstr(broker_store_error(fixture->store), fixture->data_dir));

    broker_job_rec_t job = s_job(job_id, batch_id, 1);
    assert_int_equal(broker_store_insert_job(fixture->store, &job, parameters), -1);
    assert_non_null(strstr(broker_store_error(fixture->store), "insert job into"));
    assert_non_null(strstr(broker_store_error(fixture->store), "UNIQUE"));

    char other_job[BROKER_ID_SIZE];
    s_uuid(other_job, 'j', 2001);
    broker_job_rec_t orphan = s_job(other_job, orphan_batch, 1);
    assert_int_equal(broker_store_insert_job(fixture->store, &orphan, parameters), -1);
    assert_non_null(strstr(broker_store_error(fixture->store), "FOREIGN KEY"));

    assert_int_equal(broker_store_put_result(fixture->store, other_job, batch_id, parameters,
                                             BROKER_EXIT_UNKNOWN),
                     -1);
    assert_non_null(strstr(broker_store_error(fixture->store), "store result in"));

    //  The failed writes changed nothing.
    broker_job_rec_t got;
    assert_int_equal(broker_store_get_job(fixture->store, other_job, &got), 1);
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 0);
    lynx_value_destroy(&parameters);
    lynx_value_destroy(&config);
}

//  --- jobs -----------------------------------------------------------------------------------

//  Every field of a job survives the store, through its whole life.
static void test_job_round_trip(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t run_ids[] = {7};
    s_submit(fixture->store, 1, 1000, run_ids, S_LENGTH(run_ids));
    char batch_id[BROKER_ID_SIZE], job_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    s_uuid(job_id, 'j', 1007);

    broker_job_rec_t expected = s_job(job_id, batch_id, 7);
    broker_job_rec_t got;
    memset(&got, 0x5a, sizeof got);
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 0);
    s_assert_job_equal(&got, &expected); //  times not yet set read as 0, no runner as ""
    assert_null(broker_store_job_error(fixture->store, job_id));

    //  Claimed, then a failed attempt with an error, back to Pending for a retry.
    broker_job_rec_t job = expected;
    job.status = LYNX_JOB_RUNNING;
    job.retries = 2;
    job.attempt = 3;
    job.claimed_at_ms = 1795435201000;
    job.started_at_ms = 1795435202000;
    job.completed_at_ms = 1795435203000;
    snprintf(job.assigned_runner, sizeof job.assigned_runner, "ws-07");
    snprintf(job.last_runner, sizeof job.last_runner, "ws-03");
    assert_int_equal(broker_store_update_job(fixture->store, &job, "scenario exited with 3"), 0);
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 0);
    s_assert_job_equal(&got, &job);
    char *message = broker_store_job_error(fixture->store, job_id);
    assert_string_equal(message, "scenario exited with 3");
    free(message);

    //  Requeued: times and runners cleared, error cleared with NULL.
    job.status = LYNX_JOB_PENDING;
    job.claimed_at_ms = job.started_at_ms = job.completed_at_ms = 0;
    job.assigned_runner[0] = '\0';
    job.last_runner[0] = '\0';
    assert_int_equal(broker_store_update_job(fixture->store, &job, NULL), 0);
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 0);
    s_assert_job_equal(&got, &job);
    assert_null(broker_store_job_error(fixture->store, job_id));

    //  Every state is stored under its own name.
    for (int status = 0; status < LYNX_JOB_STATE_COUNT; status++) {
        job.status = (lynx_job_state_t)status;
        assert_int_equal(broker_store_update_job(fixture->store, &job, NULL), 0);
        assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 0);
        assert_int_equal(got.status, status);
    }

    //  Only the mutable fields change: the rest stays as inserted.
    job.run_id = 99;
    job.max_retries = 0;
    job.timeout_secs = 1;
    job.created_at_ms = 5;
    assert_int_equal(broker_store_update_job(fixture->store, &job, NULL), 0);
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 0);
    assert_int_equal(got.run_id, 7);
    assert_int_equal(got.max_retries, expected.max_retries);
    assert_int_equal(got.timeout_secs, expected.timeout_secs);
    assert_int_equal(got.created_at_ms, expected.created_at_ms);
}

static void test_missing_job(void **state)
{
    s_fixture_t *fixture = *state;
    char job_id[BROKER_ID_SIZE], batch_id[BROKER_ID_SIZE];
    s_uuid(job_id, 'j', 404);
    s_uuid(batch_id, 'b', 4);
    broker_job_rec_t job = s_job(job_id, batch_id, 1);
    job.status = LYNX_JOB_RUNNING;
    assert_int_equal(broker_store_update_job(fixture->store, &job, "lost"), -1);
    const char *error = broker_store_error(fixture->store);
    if (!strstr(error, job_id) || !strstr(error, "no such job") ||
        !strstr(error, fixture->data_dir))
        fail_msg("unclear error: %s", error);

    broker_job_rec_t got;
    assert_int_equal(broker_store_get_job(fixture->store, job_id, &got), 1);
    assert_null(broker_store_job_parameters(fixture->store, job_id));
    assert_null(broker_store_job_error(fixture->store, job_id));
    assert_null(broker_store_get_result(fixture->store, job_id));
}

//  Parameters and results come back exactly as stored: same types, same order, same bytes.
static void test_values_round_trip(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t run_ids[] = {1};
    s_submit(fixture->store, 1, 1000, run_ids, S_LENGTH(run_ids));
    char batch_id[BROKER_ID_SIZE], job_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    s_uuid(job_id, 'j', 1001);

    lynx_value_t *parameters = broker_store_job_parameters(fixture->store, job_id);
    lynx_value_t *expected = s_parameters(1);
    s_assert_value_identical(parameters, expected);
    lynx_value_destroy(&parameters);
    lynx_value_destroy(&expected);

    //  Nothing stored yet.
    assert_null(broker_store_get_result(fixture->store, job_id));

    lynx_value_t *result = lynx_value_map();
    lynx_value_set_string(result, "job_id", job_id);
    lynx_value_set_bool(result, "success", true);
    lynx_value_set_int(result, "min", INT64_MIN);
    lynx_value_set_int(result, "max", INT64_MAX);
    lynx_value_set_double(result, "whole", 2.0);
    lynx_value_set_double(result, "tenth", 0.1);
    lynx_value_set_double(result, "tiny", -4.9e-324);
    lynx_value_set_double(result, "huge", 1.7976931348623157e308);
    lynx_value_set_string(result, "empty", "");
    lynx_value_set_string(result, "unicode", "\xce\x94v = 3.2 km/s \xe2\x9c\x93");
    lynx_value_t *binary = lynx_value_stringn("a\0b", 3);
    lynx_value_set(result, "nul_inside", &binary);
    lynx_value_t *files = lynx_value_array();
    lynx_value_set(result, "output_files", &files);
    lynx_value_t *metadata = lynx_value_map();
    lynx_value_set_string(metadata, "run_id", "1");
    lynx_value_set(result, "metadata", &metadata);
    lynx_value_set_null(result, "error_message");
    assert_int_equal(
        broker_store_put_result(fixture->store, job_id, batch_id, result, BROKER_EXIT_UNKNOWN), 0);

    lynx_value_t *stored = broker_store_get_result(fixture->store, job_id);
    s_assert_value_identical(stored, result);
    assert_int_equal(lynx_value_string_len(lynx_value_get(stored, "nul_inside")), 3);
    lynx_value_destroy(&stored);

    //  Storing again replaces the result.
    lynx_value_set_bool(result, "success", false);
    lynx_value_set_string(result, "error_message", "diverged");
    assert_int_equal(
        broker_store_put_result(fixture->store, job_id, batch_id, result, BROKER_EXIT_UNKNOWN), 0);
    stored = broker_store_get_result(fixture->store, job_id);
    s_assert_value_identical(stored, result);
    lynx_value_destroy(&stored);
    lynx_value_t *all = broker_store_batch_results(fixture->store, batch_id);
    assert_int_equal(lynx_value_size(all), 1);
    lynx_value_destroy(&all);
    lynx_value_destroy(&result);
}

//  A batch's results come back ordered by run_id, whatever order they arrived in.
static void test_batch_results_in_run_order(void **state)
{
    s_fixture_t *fixture = *state;
    const int64_t run_ids[] = {3, 0, 4, 1, 2, 10};
    s_submit(fixture->store, 1, 1000, run_ids, S_LENGTH(run_ids));
    const int64_t other_runs[] = {0, 1};
    s_submit(fixture->store, 2, 2000, other_runs, S_LENGTH(other_runs));
    char batch_id[BROKER_ID_SIZE], other_batch[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', 1);
    s_uuid(other_batch, 'b', 2);

    //  Results arrive out of order; run 10 has none yet.
    const int64_t arrivals[] = {2, 4, 0, 3, 1};
    for (size_t i = 0; i < S_LENGTH(arrivals); i++) {
        char job_id[BROKER_ID_SIZE];
        s_uuid(job_id, 'j', 1000 + (unsigned)arrivals[i]);
        lynx_value_t *result = lynx_value_map();
        lynx_value_set_int(result, "run_id", arrivals[i]);
        assert_int_equal(
            broker_store_put_result(fixture->store, job_id, batch_id, result, BROKER_EXIT_UNKNOWN),
            0);
        lynx_value_destroy(&result);
    }
    char other_job[BROKER_ID_SIZE];
    s_uuid(other_job, 'j', 2000);
    lynx_value_t *result = lynx_value_map();
    lynx_value_set_int(result, "run_id", -1);
    assert_int_equal(broker_store_put_result(fixture->store, other_job, other_batch, result,
                                             BROKER_EXIT_UNKNOWN),
                     0);
    lynx_value_destroy(&result);

    lynx_value_t *results = broker_store_batch_results(fixture->store, batch_id);
    assert_int_equal(lynx_value_type(results), LYNX_VALUE_ARRAY);
    assert_int_equal(lynx_value_size(results), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(lynx_value_get_int(lynx_value_at(results, i), "run_id", -99), (int64_t)i);
    lynx_value_destroy(&results);

    //  A batch without results (or unknown) gives an empty array, not NULL.
    char unknown[BROKER_ID_SIZE];
    s_uuid(unknown, 'b', 3);
    results = broker_store_batch_results(fixture->store, unknown);
    assert_non_null(results);
    assert_int_equal(lynx_value_size(results), 0);
    lynx_value_destroy(&results);
}

//  --- listing --------------------------------------------------------------------------------

int main(void)
{
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_open_creates_data_dir), S_TEST(test_unwritable_data_dir),
        S_TEST(test_batch_round_trip),      S_TEST(test_rollback_leaves_nothing),
        S_TEST(test_transaction_misuse),    S_TEST(test_constraint_errors),
        S_TEST(test_job_round_trip),        S_TEST(test_missing_job),
        S_TEST(test_values_round_trip),     S_TEST(test_batch_results_in_run_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
