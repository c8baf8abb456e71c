//  broker_store_fixture: what the store test programs share (broker_store_test,
//  broker_store_query_test): a store in a fresh, nested temporary directory (the store has to
//  create it), and batches and jobs written the way the broker does, in a transaction.
#ifndef BROKER_STORE_FIXTURE_H_INCLUDED
#define BROKER_STORE_FIXTURE_H_INCLUDED

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

#define S_FIXTURE static __attribute__((unused))

#define S_LENGTH(array) (sizeof(array) / sizeof(array)[0])

typedef struct {
    char root[PATH_MAX];          //  the test's temporary directory
    char data_dir[PATH_MAX + 64]; //  root/var/lib/lynx, created by the store
    broker_store_t *store;
} s_fixture_t;

S_FIXTURE int s_setup(void **state)
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

S_FIXTURE int s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info;
    (void)flag;
    (void)ftw;
    return remove(path);
}

S_FIXTURE int s_teardown(void **state)
{
    s_fixture_t *fixture = *state;
    broker_store_destroy(&fixture->store);
    nftw(fixture->root, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fixture);
    return 0;
}

//  --- helpers --------------------------------------------------------------------------------

//  A canonical UUID that encodes a kind ('b' batch, 'j' job) and a number.
S_FIXTURE void s_uuid(char *id, char kind, unsigned number)
{
    snprintf(id, BROKER_ID_SIZE, "%08x-0000-4000-8000-%012x", (unsigned)kind, number);
}

S_FIXTURE lynx_value_t *s_config(void)
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
S_FIXTURE lynx_value_t *s_parameters(int64_t run_id)
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

S_FIXTURE broker_batch_rec_t s_batch(const char *id, const char *name, int64_t created_at_ms,
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

S_FIXTURE broker_job_rec_t s_job(const char *id, const char *batch_id, int64_t run_id)
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
S_FIXTURE void s_submit(broker_store_t *store, unsigned batch_number, int64_t created_at_ms,
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
S_FIXTURE void s_set_status(broker_store_t *store, unsigned batch_number, int64_t run_id,
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

S_FIXTURE void s_assert_job_equal(const broker_job_rec_t *got, const broker_job_rec_t *expected)
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
S_FIXTURE void s_assert_value_identical(const lynx_value_t *got, const lynx_value_t *expected)
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

#endif
