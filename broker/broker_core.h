//  broker_core: the actor's context. It holds the sockets, the settings and a handle to each
//  module (each owns its state behind an opaque type); only broker.c writes it, while the
//  scheduler (dispatch/broker_sched.c), the protocol table and the API operations read it to
//  reach the modules. Internal to broker/.
#ifndef BROKER_CORE_H_INCLUDED
#define BROKER_CORE_H_INCLUDED

#include <czmq.h>

#include "broker_artifacts.h"
#include "broker_batches.h"
#include "broker_ids.h"
#include "broker_keys.h"
#include "broker_outbox.h"
#include "broker_queue.h"
#include "broker_runners.h"
#include "broker_stats.h"
#include "broker_store.h"
#include "broker_telemetry.h"
#include "lynx_msg.h"
#include "lynx_state.h"
#include "lynx_time.h"
#include "lynx_token.h"

typedef struct broker_submissions_t broker_submissions_t;

typedef struct {
    zsock_t *runner_socket;
    zsock_t *api_socket;
    zsock_t *events_socket; //  SUB: heartbeats published by runners
    zloop_t *loop;
    broker_store_t *store;
    broker_batches_t *batches; //  the batches in memory, and which one is served next
    broker_runners_t *runners; //  the runner registry (records, drained ids, health)
    broker_queue_t *queue;     //  the jobs in flight (Claimed or Running)
    int heartbeat_interval_ms;
    int heartbeat_misses;
    int64_t timeout_grace_ms; //  broker backstop waits this long past a job's timeout
    broker_ids_t *ids;        //  job and batch ids, seeded from the OS at start-up
    int events_port;          //  port of the SUB socket runners publish heartbeats to
    broker_outbox_t *outbox;  //  messages and events held until the current turn commits
    broker_telemetry_t *telemetry;
    broker_artifacts_t *artifacts;     //  attempts' files being fetched, and their place on disk
    bool fatal;                        //  the store failed: the actor stops
    broker_submissions_t *submissions; //  big batches being written chunk by chunk
    int64_t started_mono_ms;           //  jobs recovered at startup wait from here for their runner
    int artifact_retention_days;       //  0: artifacts are kept
    char data_dir[4096];               //  where the store, series and artifacts live
    int64_t min_free_bytes;            //  below this free space the broker refuses writes
    bool storage_full;                 //  it does now (broker_storage)
    int64_t free_bytes;                //  at the last check
    int64_t next_retention_mono_ms;    //  when the next retention sweep is due
    broker_keys_t *keys;               //  CURVE identity and allow lists; NULL when insecure
} broker_core_t;

//  --- broker_sched.c: batches, runners and the job lifecycle ---

//  Track a batch: telemetry learns its settings, dispatch may serve it. Takes *batch_p.
void broker_sched_add_batch(broker_core_t *core, broker_batch_t **batch_p);
//  Recompute the batch status from its counters; store it when it changed.
void broker_sched_refresh_batch(broker_core_t *core, broker_batch_t *batch);
//  Tell the runner of an in-flight attempt to kill it.
void broker_sched_send_kill(broker_core_t *core, const broker_inflight_t *inflight,
                            const char *reason);

//  --- broker_match.c: runners and batches that fit ---

bool broker_match_engine(const broker_runner_t *runner, const char *engine);
bool broker_match_offers(const broker_runner_t *runner, const char *tag);
//  Engine, every required capability, and a GPU when the batch asks for one.
bool broker_match_fits(const broker_runner_t *runner, const broker_batch_t *batch);
//  Why no live runner can take this batch's jobs, or NULL when one can. The reason is
//  written into text (size bytes), which is returned.
const char *broker_match_unservable(broker_core_t *core, const broker_batch_t *batch, char *text,
                                    size_t size);
//  Hand Pending jobs to runners with free slots. Safe to call any time.
void broker_sched_dispatch(broker_core_t *core);
//  The run config file the scenario reads ({run_id, parameters, metadata}); takes ownership of
//  *parameters_p.
lynx_value_t *broker_sched_run_config(const broker_batch_t *batch, const broker_job_rec_t *rec,
                                      lynx_value_t **parameters_p);
//  A runner's STARTED, FINISHED and DISCONNECT (see broker_protocol): the current attempt's
//  job moves on, a stale attempt is ignored (FINISHED is still ACKed), and a leaving runner's
//  attempts go back to Pending without using up retries.
void broker_sched_started(broker_core_t *core, broker_runner_t *runner, lynx_value_t *body);
//  The in-flight job a runner message (body: job_id, attempt) refers to when it is the current
//  attempt on runner; otherwise NULL, logged as a stale what.
broker_inflight_t *broker_sched_current_attempt(broker_core_t *core, broker_runner_t *runner,
                                                const lynx_value_t *body, const char *what);
//  End the current attempt inflight as the FINISHED body says, with result (the runner's, plus
//  the broker's artifacts), and ACK once durable. -1 when the store failed (no ACK).
int broker_sched_finished(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id,
                          broker_inflight_t *inflight, const lynx_value_t *body,
                          const lynx_value_t *result);
//  ACK an attempt's FINISHED (held in the outbox until the turn commits).
void broker_sched_ack(broker_core_t *core, zframe_t *routing_id, const char *job_id,
                      int64_t attempt);
void broker_sched_runner_left(broker_core_t *core, broker_runner_t *runner, lynx_value_t *body);
//  A runner was admitted: REGISTERED, then reconcile what it reports it still runs
//  (active_jobs) or holds (finished_jobs) with what we think it has: those stay attached, the
//  rest are lost attempts, and what it runs that is no longer its own gets a KILL.
void broker_sched_welcome(broker_core_t *core, broker_runner_t *runner, const lynx_value_t *body);
void broker_sched_reconcile(broker_core_t *core, broker_runner_t *runner, const lynx_value_t *body);
//  End the current attempt of an in-flight job with outcome (a retryable Failed with retries
//  left goes back to Pending). Durable before memory changes; -1 when the store failed.
int broker_sched_end_attempt(broker_core_t *core, broker_inflight_t *inflight,
                             lynx_job_state_t outcome, const char *error_message,
                             const lynx_value_t *sent_result, bool retryable);
//  Send a message to a runner, or hold it in the outbox while a turn is open (destroyed
//  whatever happens). -1 when it could not be sent.
int broker_sched_send(broker_core_t *core, broker_runner_t *runner, lynx_msg_t **msg_p);
//  Periodic duties: runners that stopped heartbeating go Offline, their jobs are requeued.
void broker_sched_tick(broker_core_t *core);
//  Jobs left Claimed/Running by a previous broker process go back to Pending at startup.
int broker_sched_recover(broker_core_t *core, lynx_err_t *err);

//  --- broker_api.c: REQUEST operations ---

//  Where an API request came from, so an answer can be sent now or later.
typedef struct {
    zframe_t *routing_id; //  borrowed for the handler's duration; copy it to answer later
    int64_t corr;
    int64_t deadline_ms;         //  epoch ms after which the client has given up (0: none)
    const char *idempotency_key; //  the client's Idempotency-Key, or NULL (borrowed)
    const char *request_hash;    //  of op and args, with a key: what the key stands for
    //  Who asks, as the gateway checked it: the token's name (NULL when the gateway runs with
    //  --auth none or the caller is trusted) and its role (LYNX_ROLE_ADMIN when no token).
    const char *principal;
    lynx_role_t role;
} broker_request_t;

//  REQUEST handlers living beside the state they read.
typedef lynx_value_t *(broker_op_fn)(broker_core_t *core, const broker_request_t *request,
                                     const lynx_value_t *args, lynx_err_t *err,
                                     lynx_value_t **errors_p);
broker_op_fn broker_sched_op_cancel_batch, broker_sched_op_cancel_job;
//  broker_artifact_ops.c: job.artifacts (the list) and job.artifact (a range of one file, or
//  its last lines with tail).
broker_op_fn broker_artifact_op_list, broker_artifact_op_read, broker_artifact_op_batch_index;

//  --- broker_security.c: who may talk to the broker ---

//  The gate before the runner protocol table: with CURVE on, a message is taken only from a
//  connection whose key is still enrolled, and a REGISTER or HEARTBEAT only for the runner id
//  that key is enrolled for. Otherwise answers an ERROR (when routing_id is given) and false.
bool broker_security_admit(broker_core_t *core, zframe_t *routing_id, const lynx_msg_t *msg,
                           lynx_value_t *body);
//  With CURVE on, false for TELEMETRY from a key no longer enrolled, or about a running job
//  from another runner than the one it runs on.
bool broker_security_admit_telemetry(broker_core_t *core, const lynx_msg_t *msg);
//  Periodic: pick up keys an admin added or removed by hand; revoke runners whose file went.
void broker_security_tick(broker_core_t *core);
//  token.verify, enrollment.create/list/approve/reject, runner.revoke_key.
broker_op_fn broker_security_op_token_verify, broker_security_op_enroll,
    broker_security_op_enrollments, broker_security_op_approve, broker_security_op_reject,
    broker_security_op_revoke;

//  --- broker_submit.c: batch.submit ---

//  The batch.submit operation: validate, sample, persist (big batches in chunks across loop
//  turns, answering when the last chunk is committed), then dispatch. Returns the reply body,
//  or NULL with err, or NULL with err->code LYNX_OK when the answer will come later.
lynx_value_t *broker_submit_op(broker_core_t *core, const broker_request_t *request,
                               const lynx_value_t *args, lynx_err_t *err, lynx_value_t **errors_p);
//  What batch.submit checks before it touches the store: the submission's own fields (name,
//  submitted_by, runs_override, config) and the study in config. Returns the study (owned, not
//  yet sampled), or NULL after appending every problem to errors as a {field, message} map;
//  unknown fields are appended to warnings (may be NULL). Reads nothing but args.
broker_study_t *broker_submit_check(const lynx_value_t *args, lynx_value_t *errors,
                                    lynx_value_t *warnings);
//  The submissions being written, owned by broker_submit. Destroying abandons them; their
//  rows are still "Creating" and are removed at the next start.
broker_submissions_t *broker_submissions_new(void);
void broker_submissions_destroy(broker_submissions_t **self_p);

//  --- broker_idempotency.c: Idempotency-Key on mutating requests ---

//  True for an operation a key applies to (submit but not a dry run, cancel, drain, resume).
bool broker_idempotency_applies(const char *op, const lynx_value_t *args);
//  What a key stands for: the SHA-256 of op and args.
void broker_idempotency_hash(const char *op, const lynx_value_t *args, char hash[65]);
//  Answer a request whose key was seen: the first answer, a conflict (another request with the
//  same key) or "still in progress". False when the key is new: run the request.
bool broker_idempotency_replay(broker_core_t *core, const broker_request_t *request,
                               const char *op);
//  Record the answer (reply, or err and errors) a keyed request got.
void broker_idempotency_record(broker_core_t *core, const broker_request_t *request, const char *op,
                               const lynx_value_t *reply, const lynx_err_t *err,
                               const lynx_value_t *errors);
//  Forget answers older than 24 hours.
void broker_idempotency_expire(broker_core_t *core);
//  True while a submission with this key is being written (broker_submit.c).
bool broker_submissions_has_key(const broker_submissions_t *self, const char *key);

//  --- broker_storage.c: a full disk ---

//  The tick: measure the data dir's free space; below min_free_bytes the broker is storage_full
//  (refuses new writes, serves reads, leaves runners' results unacknowledged at the runners),
//  and it is not again once twice that is free. Logs each change.
void broker_storage_check(broker_core_t *core);
//  The ERROR a refused write gets (storage_full, 507), in err. Returns -1.
int broker_storage_refuse(const broker_core_t *core, lynx_err_t *err);

//  --- broker_retention.c ---

//  Remove the artifacts of batches that ended more than artifact_retention_days ago (never a
//  batch that still runs); at most once an hour, at once when force. Returns how many.
size_t broker_retention_sweep(broker_core_t *core, bool force);

//  Answer one API request; sends the REPLY or ERROR on the API socket.
void broker_api_handle(broker_core_t *core, zframe_t *routing_id, lynx_msg_t *msg);

#endif
