//  broker_store: the broker's durable state in SQLite (WAL) under the data dir: batches, jobs
//  and results. The only module that includes sqlite3.h. Every write is committed before the
//  broker acknowledges it (POST /jobs reply, result ACK to a runner).
#ifndef BROKER_STORE_H_INCLUDED
#define BROKER_STORE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "lynx_err.h"
#include "lynx_state.h"
#include "lynx_value.h"

#define BROKER_ID_SIZE 37 //  a canonical UUID and its NUL

typedef struct _broker_store_t broker_store_t;

//  What the store keeps of a batch.
typedef struct {
    char id[BROKER_ID_SIZE];
    const char *name;
    const char *submitted_by; //  NULL: not given
    const char *token_name;   //  the API token that submitted it; NULL without auth
    lynx_batch_state_t status;
    bool creating; //  stored as "Creating" until its last job is written
    int64_t total_jobs;
    int64_t created_at_ms;
    const lynx_value_t *config; //  the submitted config, kept verbatim
    const char *config_hash;
    uint64_t seed;
} broker_batch_rec_t;

//  What the store keeps of a job, except its parameters and result. Times are ms since the
//  epoch, 0 for "not yet".
typedef struct {
    char id[BROKER_ID_SIZE];
    char batch_id[BROKER_ID_SIZE];
    int64_t run_id;
    lynx_job_state_t status;
    int64_t retries;
    int64_t max_retries;
    int64_t timeout_secs;
    int64_t attempt;
    int64_t created_at_ms;
    int64_t claimed_at_ms;
    int64_t started_at_ms;
    int64_t completed_at_ms;
    char assigned_runner[128];
    char last_runner[128]; //  the runner whose attempt failed last, to prefer another one
} broker_job_rec_t;

//  How a scenario ended, as its runner reported it; -1 where not known (it never started, was
//  killed by a signal, or an older runner did not say).
typedef struct {
    int64_t code;
    int64_t signal;
} broker_exit_t;
#define BROKER_EXIT_UNKNOWN ((broker_exit_t){-1, -1})

//  An attempt of a job that ended and was followed by another (a retry): the job row and its
//  result describe only the last attempt, so the earlier ones are kept here.
typedef struct {
    char job_id[BROKER_ID_SIZE];
    int64_t attempt;
    char runner_id[128];
    lynx_job_state_t status; //  the attempt's outcome
    int64_t claimed_at_ms;
    int64_t started_at_ms;
    int64_t ended_at_ms;
    broker_exit_t exit;
    const char *error_message;   //  borrowed; NULL when none
    const lynx_value_t *trigger; //  the early-termination trigger (borrowed) or NULL
    bool charged;                //  false: it did not count against the job's retries
} broker_attempt_rec_t;

//  A quarantined runner, as an operator sees it until resuming it.
typedef struct {
    const char *runner_id;
    const char *reason;
    const char *last_error;
    int64_t since_ms;
    int64_t failed_attempts;
} broker_quarantine_rec_t;

//  Open (creating if needed) <data_dir>/lynx.db, creating data_dir too. NULL with err naming
//  the path and SQLite's reason.
broker_store_t *broker_store_new(const char *data_dir, lynx_err_t *err);
//  Close; sets *self_p to NULL. NULL-safe.
void broker_store_destroy(broker_store_t **self_p);
//  The last error's text (like sqlite3_errmsg), with the operation that failed.
const char *broker_store_error(const broker_store_t *self);

//  A turn groups everything the broker does for a burst of messages into one commit (group
//  commit): while it is open, begin/commit/rollback work on a savepoint inside it. Return 0 or
//  -1; after a failed turn commit the broker's memory is ahead of the disk and it must stop.
int broker_store_turn_begin(broker_store_t *self);
int broker_store_turn_commit(broker_store_t *self);

//  Transactions group many writes into one commit. Return 0 or -1.
int broker_store_begin(broker_store_t *self);
int broker_store_commit(broker_store_t *self);
void broker_store_rollback(broker_store_t *self);

//  Insert a batch row (inside a transaction the caller opened). -1 on error.
int broker_store_insert_batch(broker_store_t *self, const broker_batch_rec_t *batch);
//  Remove a batch with its jobs and results (a submission that failed half-way). -1 on error.
int broker_store_delete_batch(broker_store_t *self, const char *batch_id);
//  Remove every batch still "Creating" (written by a broker that died before acknowledging
//  it). Returns how many, or -1 on error.
int64_t broker_store_discard_incomplete(broker_store_t *self);

//  Insert a Pending job with its parameters map. -1 on error.
int broker_store_insert_job(broker_store_t *self, const broker_job_rec_t *job,
                            const lynx_value_t *parameters);
//  Write a job's mutable fields (status, retries, attempt, times, runner) and error message
//  (NULL clears it). -1 on error or when the job does not exist.
int broker_store_update_job(broker_store_t *self, const broker_job_rec_t *job,
                            const char *error_message);
//  Record the batch's derived status.
int broker_store_update_batch_status(broker_store_t *self, const char *batch_id,
                                     lynx_batch_state_t status);
//  Store (or replace) the JobResult of a job, with how its last attempt's scenario ended.
int broker_store_put_result(broker_store_t *self, const char *job_id, const char *batch_id,
                            const lynx_value_t *result, broker_exit_t exit);
//  How the scenario of the attempt that produced the job's result ended. 0, 1 when the job has
//  no result, -1 on error.
int broker_store_result_exit(broker_store_t *self, const char *job_id, broker_exit_t *exit);

//  Load one job's record. Returns 0, 1 when not found, -1 on error.
int broker_store_get_job(broker_store_t *self, const char *job_id, broker_job_rec_t *job);
//  The job's parameters map (owned by the caller) or NULL when missing/on error.
lynx_value_t *broker_store_job_parameters(broker_store_t *self, const char *job_id);
//  The job's error message (owned by the caller; NULL when none or on error).
char *broker_store_job_error(broker_store_t *self, const char *job_id);
//  The job's stored result (owned) or NULL when none, as it was stored.
lynx_value_t *broker_store_get_result(broker_store_t *self, const char *job_id);
//  Every stored result of a batch ordered by run_id, as a new array. Each carries its job's
//  run_id, status and attempt beside the stored fields: results are stored only when a job
//  ends, so these are its final state and the attempt that produced the result.
lynx_value_t *broker_store_batch_results(broker_store_t *self, const char *batch_id);

//  Load a batch's stored fields as a new map {id, name, status, total_jobs, created_at_ms,
//  config, config_hash, seed, cancelled[, submitted_by when given]}; NULL when not found or on
//  error (then check the error text).
lynx_value_t *broker_store_get_batch(broker_store_t *self, const char *batch_id);

//  Mark a batch cancelled (its status ends Cancelled). -1 on error.
int broker_store_set_batch_cancelled(broker_store_t *self, const char *batch_id);
//  Cancel Pending jobs of a batch (only job_id when not NULL). Returns how many, or -1.
int64_t broker_store_cancel_pending(broker_store_t *self, const char *batch_id, const char *job_id,
                                    int64_t now_ms);

//  Keep an attempt that was followed by a retry (see broker_attempt_rec_t). -1 on error.
int broker_store_add_attempt(broker_store_t *self, const broker_attempt_rec_t *attempt);
//  Record that an attempt kept with broker_store_add_attempt did not count against its job's
//  retries. 0 (also when there is no such row), -1 on error.
int broker_store_uncharge_attempt(broker_store_t *self, const char *job_id, int64_t attempt);
//  Visit the kept attempts of a job in attempt order (borrowed for the call). Returns 0 or -1.
typedef int(broker_store_attempt_fn)(const broker_attempt_rec_t *attempt, void *arg);
int broker_store_foreach_attempt(broker_store_t *self, const char *job_id,
                                 broker_store_attempt_fn *fn, void *arg);

//  Quarantine a runner (record NULL: lift its quarantine), across broker restarts.
int broker_store_set_runner_quarantine(broker_store_t *self, const char *runner_id,
                                       const broker_quarantine_rec_t *quarantine);
//  Visit the quarantined runners (borrowed for the call). Returns 0 or -1.
typedef void(broker_store_quarantine_fn)(const broker_quarantine_rec_t *quarantine, void *arg);
int broker_store_foreach_quarantined_runner(broker_store_t *self, broker_store_quarantine_fn *fn,
                                            void *arg);

//  Remember that an operator drained (or resumed) a runner, across broker restarts.
int broker_store_set_runner_drained(broker_store_t *self, const char *runner_id, bool drained);
//  Visit the ids of drained runners. Returns 0 or -1.
typedef void(broker_store_id_fn)(const char *id, void *arg);
int broker_store_foreach_drained_runner(broker_store_t *self, broker_store_id_fn *fn, void *arg);

//  --- broker_store_answers.c ---

//  The first answer to a request sent with an Idempotency-Key: the REPLY body, or the ERROR
//  {code, message, field, errors} when is_error.
typedef struct {
    const char *key;
    const char *op;
    const char *request_hash; //  of op and args: the same key with another request is refused
    const lynx_value_t *answer;
    bool is_error;
    int64_t created_at_ms;
    //  What broker_store_get_answer fills in (free owned with lynx_value_destroy).
    lynx_value_t *owned;
    char op_buffer[64];
    char hash_buffer[80];
} broker_answer_t;

//  Record an answer (part of the caller's transaction, when one is open). -1 on failure.
int broker_store_put_answer(broker_store_t *self, const broker_answer_t *answer);
//  The answer recorded for key: 0 with *answer filled, 1 when none, -1 on failure.
int broker_store_get_answer(broker_store_t *self, const char *key, broker_answer_t *answer);
//  Forget answers recorded before before_ms.
int broker_store_expire_answers(broker_store_t *self, int64_t before_ms);

//  --- broker_store_artifacts.c ---

//  Replace the job's artifacts with artifacts ([{name, size, sha256, content_type, path}],
//  path relative to data_dir) of attempt. Part of the caller's transaction. -1 on failure.
int broker_store_put_artifacts(broker_store_t *self, const char *job_id, int64_t attempt,
                               const lynx_value_t *artifacts);
//  Forget the artifacts of every job of batch_id (their files were removed). -1 on failure.
int broker_store_forget_batch_artifacts(broker_store_t *self, const char *batch_id);
//  The job's artifacts, by name: [{name, attempt, size, sha256, content_type, path}]; [] when
//  none, NULL on failure.
lynx_value_t *broker_store_job_artifacts(broker_store_t *self, const char *job_id);
//  One page of the batch's jobs that hold an artifact named name, in run_id order after
//  after_run_id: [{job_id, run_id, size, sha256}], at most limit. NULL on failure.
lynx_value_t *broker_store_batch_artifact(broker_store_t *self, const char *batch_id,
                                          const char *name, int64_t after_run_id, int64_t limit);
//  The same for the one artifact named name: [] when there is none.
lynx_value_t *broker_store_job_artifact(broker_store_t *self, const char *job_id, const char *name);

//  --- broker_store_security.c: API tokens and runner enrollments ---

//  An API token's row: only the SHA-256 of the token is kept.
typedef struct {
    char id[16];
    char name[72];
    char role[16];
    char hash[72];
    int64_t created_at_ms;
    int64_t last_used_at_ms; //  0: never
    int64_t revoked_at_ms;   //  0: valid
} broker_token_rec_t;

//  Store a new token. -1 on failure.
int broker_store_put_token(broker_store_t *self, const broker_token_rec_t *token);
//  The token with this id: 0 and *token filled, 1 when none, -1 on failure.
int broker_store_get_token(broker_store_t *self, const char *id, broker_token_rec_t *token);
//  How many tokens named name are not revoked; -1 on failure.
int64_t broker_store_count_live_tokens(broker_store_t *self, const char *name);
//  Visit every token in creation order (stops when fn returns non-zero). 0 or -1.
typedef int(broker_store_token_fn)(const broker_token_rec_t *token, void *arg);
int broker_store_foreach_token(broker_store_t *self, broker_store_token_fn *fn, void *arg);
//  Revoke the live tokens named name at now_ms: how many, or -1 on failure.
int64_t broker_store_revoke_tokens(broker_store_t *self, const char *name, int64_t now_ms);
//  Record that the token was used at now_ms. -1 on failure.
int broker_store_touch_token(broker_store_t *self, const char *id, int64_t now_ms);

//  A runner's request to join, and what an admin decided.
typedef struct {
    char id[32];
    char runner_id[128];
    char public_key[48]; //  Z85, 40 characters
    char host[128];
    char status[16]; //  pending, approved, rejected
    char token_name[72];
    int64_t created_at_ms;
    int64_t decided_at_ms; //  0: pending
} broker_enrollment_rec_t;

//  Insert or replace an enrollment. -1 on failure.
int broker_store_put_enrollment(broker_store_t *self, const broker_enrollment_rec_t *enrollment);
//  The enrollment with this id: 0 and filled, 1 when none, -1 on failure.
int broker_store_get_enrollment(broker_store_t *self, const char *id,
                                broker_enrollment_rec_t *enrollment);
//  Visit enrollments, newest first (status NULL: all). 0 or -1.
typedef int(broker_store_enrollment_fn)(const broker_enrollment_rec_t *enrollment, void *arg);
int broker_store_foreach_enrollment(broker_store_t *self, const char *status,
                                    broker_store_enrollment_fn *fn, void *arg);

//  Visit every batch (in creation order) and count its jobs per state. The callback gets the
//  batch map (borrowed) and counts[LYNX_JOB_STATE_COUNT]. Returns 0 or -1.
typedef int(broker_store_batch_fn)(const lynx_value_t *batch, const int64_t *counts, void *arg);
int broker_store_foreach_batch(broker_store_t *self, broker_store_batch_fn *fn, void *arg);

//  Visit up to limit jobs of a batch in state `status`, ordered by run_id (limit <= 0: all).
//  Stops early if the callback returns non-zero. Returns the number visited or -1.
typedef int(broker_store_job_fn)(const broker_job_rec_t *job, void *arg);
int64_t broker_store_foreach_job(broker_store_t *self, const char *batch_id,
                                 lynx_job_state_t status, int64_t after_run_id, int64_t limit,
                                 broker_store_job_fn *fn, void *arg);

//  As broker_store_foreach_job, with status -1 for every state (ordered by run_id).
int64_t broker_store_list_jobs(broker_store_t *self, const char *batch_id, int status,
                               int64_t after_run_id, int64_t limit, broker_store_job_fn *fn,
                               void *arg);

#endif
