//  broker_store: the broker's durable state. Each test opens a store in a fresh temporary
//  directory (nested, so the store has to create it), writes batches and jobs the way the
//  broker does -- in a transaction -- and reads them back, sometimes after closing and
//  reopening the store.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker_store.h"

#define S_LENGTH(array) (sizeof(array) / sizeof(array)[0])

typedef struct {
    char root[PATH_MAX];          //  the test's temporary directory
    char data_dir[PATH_MAX + 64]; //  root/var/lib/lynx, created by the store
    broker_store_t *store;
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fixture = calloc(1, sizeof *fixture);
    assert_non_null(fixture);
    snprintf(fixture->root, sizeof fixture->root, "/tmp/broker_store_test.XXXXXX");
    assert_non_null(mkdtemp(fixture->root));
    snprintf(fixture->data_dir, sizeof fixture->data_dir, "%s/var/lib/lynx", fixture->root);
    lynx_err_t err;
    fixture->store = broker_store_new(fixture->data_dir, &err);
    if (!fixture->store)
        fail_msg("broker_store_new: %s", err.message);
    *state = fixture;
    return 0;
}

static int s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int s_teardown(void **state)
{
    s_fixture_t *fixture = *state;
    broker_store_destroy(&fixture->store);
    nftw(fixture->root, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fixture);
    return 0;
}

//  --- helpers --------------------------------------------------------------------------------

//  A canonical UUID that encodes a kind ('b' batch, 'j' job) and a number.
static void s_uuid(char *id, char kind, unsigned number)
{
    snprintf(id, BROKER_ID_SIZE, "%08x-0000-4000-8000-%012x", (unsigned)kind, number);
}

static lynx_value_t *s_config(void)
{
    lynx_value_t *config = lynx_value_map();
    lynx_value_set_string(config, "name", "orbit sweep");
    lynx_value_t *monte_carlo = lynx_value_map();
    lynx_value_set_int(monte_carlo, "runs", 100);
    lynx_value_set_double(monte_carlo, "sigma", 0.05);
    lynx_value_set(config, "monte_carlo", &monte_carlo);
    return config;
}

//  The parameters of one run: every value type, nested.
static lynx_value_t *s_parameters(int64_t run_id)
{
    lynx_value_t *parameters = lynx_value_map();
    lynx_value_set_int(parameters, "run_id", run_id);
    lynx_value_set_double(parameters, "mass_kg", 12.5 + (double)run_id);
    lynx_value_set_string(parameters, "label", "sat");
    lynx_value_set_bool(parameters, "deploy_panels", run_id % 2 == 0);
    lynx_value_set_null(parameters, "seed_override");
    lynx_value_t *tags = lynx_value_array();
    lynx_value_t *tag = lynx_value_string("leo");
    lynx_value_append(tags, &tag);
    lynx_value_set(parameters, "tags", &tags);
    return parameters;
}

static broker_batch_rec_t s_batch(const char *id, const char *name, int64_t created_at_ms,
                                  int64_t total_jobs, const lynx_value_t *config)
{
    broker_batch_rec_t batch = {.name = name,
                                .status = LYNX_BATCH_PENDING,
                                .total_jobs = total_jobs,
                                .created_at_ms = created_at_ms,
                                .config = config,
                                .config_hash = "sha256:0f1e2d",
                                .seed = 42};
    snprintf(batch.id, sizeof batch.id, "%s", id);
    return batch;
}

static broker_job_rec_t s_job(const char *id, const char *batch_id, int64_t run_id)
{
    broker_job_rec_t job = {.run_id = run_id,
                            .status = LYNX_JOB_PENDING,
                            .max_retries = 3,
                            .timeout_secs = 600,
                            .attempt = 0,
                            .created_at_ms = 1795435200000 + run_id};
    snprintf(job.id, sizeof job.id, "%s", id);
    snprintf(job.batch_id, sizeof job.batch_id, "%s", batch_id);
    return job;
}

//  Submit a batch the way the broker does: one transaction for the batch and all its jobs.
//  Job i gets run_ids[i] and id s_uuid('j', batch_number * 1000 + run_ids[i]).
static void s_submit(broker_store_t *store, unsigned batch_number, int64_t created_at_ms,
                     const int64_t *run_ids, size_t count)
{
    char batch_id[BROKER_ID_SIZE];
    s_uuid(batch_id, 'b', batch_number);
    lynx_value_t *config = s_config();
    broker_batch_rec_t batch = s_batch(batch_id, "sweep", created_at_ms, (int64_t)count, config);
    assert_int_equal(broker_store_begin(store), 0);
    assert_int_equal(broker_store_insert_batch(store, &batch), 0);
    for (size_t i = 0; i < count; i++) {
        char job_id[BROKER_ID_SIZE];
        s_uuid(job_id, 'j', batch_number * 1000 + (unsigned)run_ids[i]);
        broker_job_rec_t job = s_job(job_id, batch_id, run_ids[i]);
        lynx_value_t *parameters = s_parameters(run_ids[i]);
        if (broker_store_insert_job(store, &job, parameters))
            fail_msg("insert job: %s", broker_store_error(store));
        lynx_value_destroy(&parameters);
    }
    assert_int_equal(broker_store_commit(store), 0);
    lynx_value_destroy(&config);
}

//  Move a stored job to a new state (the broker checks the transition before writing it).
static void s_set_status(broker_store_t *store, unsigned batch_number, int64_t run_id,
                         lynx_job_state_t status)
{
    char job_id[BROKER_ID_SIZE];
    s_uuid(job_id, 'j', batch_number * 1000 + (unsigned)run_id);
    broker_job_rec_t job;
    assert_int_equal(broker_store_get_job(store, job_id, &job), 0);
    job.status = status;
    if (broker_store_update_job(store, &job, NULL))
        fail_msg("update job: %s", broker_store_error(store));
}

static void s_assert_job_equal(const broker_job_rec_t *got, const broker_job_rec_t *expected)
{
    assert_string_equal(got->id, expected->id);
    assert_string_equal(got->batch_id, expected->batch_id);
    assert_int_equal(got->run_id, expected->run_id);
    assert_string_equal(lynx_job_state_name(got->status), lynx_job_state_name(expected->status));
    assert_int_equal(got->retries, expected->retries);
    assert_int_equal(got->max_retries, expected->max_retries);
    assert_int_equal(got->timeout_secs, expected->timeout_secs);
    assert_int_equal(got->attempt, expected->attempt);
    assert_int_equal(got->created_at_ms, expected->created_at_ms);
    assert_int_equal(got->claimed_at_ms, expected->claimed_at_ms);
    assert_int_equal(got->started_at_ms, expected->started_at_ms);
    assert_int_equal(got->completed_at_ms, expected->completed_at_ms);
    assert_string_equal(got->assigned_runner, expected->assigned_runner);
    assert_string_equal(got->last_runner, expected->last_runner);
}

//  Deep equality that also insists on the same type at every level (lynx_value_equal lets an
//  integer equal a double).
static void s_assert_value_identical(const lynx_value_t *got, const lynx_value_t *expected)
{
    assert_true(lynx_value_equal(got, expected));
    assert_int_equal(lynx_value_type(got), lynx_value_type(expected));
    for (size_t i = 0; i < lynx_value_size(expected); i++) {
        if (lynx_value_type(expected) == LYNX_VALUE_MAP)
            assert_string_equal(lynx_value_key_at(got, i), lynx_value_key_at(expected, i));
        s_assert_value_identical(lynx_value_at(got, i), lynx_value_at(expected, i));
    }
}

//  --- opening --------------------------------------------------------------------------------

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
        S_TEST(test_open_creates_data_dir), S_TEST(test_unwritable_data_dir),
        S_TEST(test_batch_round_trip),      S_TEST(test_rollback_leaves_nothing),
        S_TEST(test_transaction_misuse),    S_TEST(test_constraint_errors),
        S_TEST(test_job_round_trip),        S_TEST(test_missing_job),
        S_TEST(test_values_round_trip),     S_TEST(test_batch_results_in_run_order),
        S_TEST(test_foreach_batch_counts),  S_TEST(test_foreach_batch_empty_store),
        S_TEST(test_foreach_job_filters),   S_TEST(test_foreach_job_records),
        S_TEST(test_list_jobs_every_state), S_TEST(test_cancel_pending),
        S_TEST(test_drained_runners),       S_TEST(test_reopen_keeps_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
