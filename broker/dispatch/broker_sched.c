//  broker_sched: runners, dispatch and the job lifecycle. Every job change goes through
//  s_transition, which checks it against lynx_job_transition_allowed and keeps the batch
//  counters equal to the jobs table.
#include "broker_core.h"
#include "broker_quarantine.h"
#include "broker_result.h"

#include "lynx_time.h"

#define BROKER_RETRY_LOOKAHEAD 16 //  Pending jobs looked at to find one for a different runner

void broker_sched_add_batch(broker_core_t *core, broker_batch_t **batch_p)
{
    broker_batch_t *batch = *batch_p;
    if (!batch)
        return;
    lynx_err_t err;
    if (broker_telemetry_configure_batch(core->telemetry, batch->id,
                                         batch->sections[BROKER_SECTION_TELEMETRY], &err))
        zsys_warning("broker: telemetry settings refused batch=%s: %s (defaults used)", batch->id,
                     err.message);
    if (broker_batches_add(core->batches, batch_p)) {
        zsys_error("broker: out of memory tracking batch=%s", batch->id);
        broker_batch_destroy(batch_p);
    }
}

static int64_t s_heartbeat_timeout_ms(const broker_core_t *core)
{
    return (int64_t)core->heartbeat_interval_ms * core->heartbeat_misses;
}

// --------------------------------------------------------------------------------------------
//  Batch status

void broker_sched_refresh_batch(broker_core_t *core, broker_batch_t *batch)
{
    const int64_t *counts = batch->counts;
    int64_t terminal = counts[LYNX_JOB_COMPLETED] + counts[LYNX_JOB_FAILED] +
                       counts[LYNX_JOB_TIMEOUT] + counts[LYNX_JOB_CANCELLED];
    lynx_batch_state_t status;
    if (terminal == batch->total_jobs) {
        if (batch->cancelled || counts[LYNX_JOB_CANCELLED] > 0)
            status = LYNX_BATCH_CANCELLED;
        else if (counts[LYNX_JOB_FAILED] + counts[LYNX_JOB_TIMEOUT] > 0)
            status = LYNX_BATCH_FAILED;
        else
            status = LYNX_BATCH_COMPLETED;
    } else if (counts[LYNX_JOB_PENDING] == batch->total_jobs && batch->status == LYNX_BATCH_PENDING)
        status = LYNX_BATCH_PENDING;
    else
        status = LYNX_BATCH_RUNNING;
    if (status == batch->status)
        return;
    if (broker_store_update_batch_status(core->store, batch->id, status))
        zsys_error("broker: cannot record batch status batch=%s: %s", batch->id,
                   broker_store_error(core->store));
    broker_republish_batch_event(broker_telemetry_republish(core->telemetry), batch->id,
                                 lynx_batch_state_name(status), NULL);
    zsys_info("broker: batch %s batch=%s completed=%" PRId64 " failed=%" PRId64,
              lynx_batch_state_name(status), batch->id, counts[LYNX_JOB_COMPLETED],
              counts[LYNX_JOB_FAILED] + counts[LYNX_JOB_TIMEOUT]);
    broker_batch_set_status(batch, status);
}

// --------------------------------------------------------------------------------------------
//  Transitions

//  Move a job record to a new state, keeping counters in step. Returns -1 (and logs) for an
//  illegal transition, which is always our bug or a stale message we failed to filter.
static int s_transition(broker_batch_t *batch, broker_job_rec_t *rec, lynx_job_state_t to)
{
    if (!lynx_job_transition_allowed(rec->status, to)) {
        zsys_error("broker: illegal transition job=%s from=%s to=%s", rec->id,
                   lynx_job_state_name(rec->status), lynx_job_state_name(to));
        return -1;
    }
    if (batch)
        broker_batch_move(batch, rec->status, to, 1);
    rec->status = to;
    return 0;
}

//  Announce a job's new status (held by the outbox until the turn commits).
static void s_event(broker_core_t *core, const broker_job_rec_t *rec, lynx_job_state_t status,
                    const char *error_message, const lynx_value_t *trigger)
{
    if (trigger)
        zsys_notice("broker: early termination job=%s rule=%s", rec->id,
                    lynx_value_get_string(trigger, "rule_name", "?"));
    broker_outbox_job_event(core->outbox, rec, status, error_message, trigger);
}

int broker_sched_send(broker_core_t *core, broker_runner_t *runner, lynx_msg_t **msg_p)
{
    if (!runner || !runner->online) {
        lynx_msg_destroy(msg_p);
        return -1;
    }
    return broker_outbox_post(core->outbox, runner->routing_id, msg_p);
}

void broker_sched_send_kill(broker_core_t *core, const broker_inflight_t *inflight,
                            const char *reason)
{
    lynx_msg_t *kill = lynx_msg_new(LYNX_MSG_KILL);
    lynx_value_set_string(lynx_msg_body(kill), "job_id", inflight->rec.id);
    lynx_value_set_int(lynx_msg_body(kill), "attempt", inflight->rec.attempt);
    lynx_value_set_string(lynx_msg_body(kill), "reason", reason);
    broker_sched_send(core, inflight->runner, &kill);
}

void broker_sched_ack(broker_core_t *core, zframe_t *routing_id, const char *job_id,
                      int64_t attempt)
{
    lynx_msg_t *ack = lynx_msg_new(LYNX_MSG_ACK);
    lynx_value_set_string(lynx_msg_body(ack), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(ack), "attempt", attempt);
    broker_outbox_post(core->outbox, routing_id, &ack);
}

//  End the current attempt of an in-flight job. A retryable failure with retries left goes
//  back to Pending; anything else is terminal and gets a stored result. The store is written
//  in one transaction before memory changes become visible; returns -1 if it could not be.
int broker_sched_end_attempt(broker_core_t *core, broker_inflight_t *inflight,
                             lynx_job_state_t outcome, const char *error_message,
                             const lynx_value_t *sent_result, bool retryable)
{
    broker_job_rec_t rec = inflight->rec;
    broker_batch_t *batch = inflight->batch;
    int64_t now_ms = lynx_time_now_ms();
    if (rec.status == LYNX_JOB_CLAIMED && outcome != LYNX_JOB_PENDING &&
        outcome != LYNX_JOB_CANCELLED) {
        //  The STARTED message was lost or overtaken: the job did run.
        rec.started_at_ms = rec.claimed_at_ms;
        rec.status = LYNX_JOB_RUNNING;
    }
    lynx_job_state_t target = outcome;
    if (outcome == LYNX_JOB_FAILED && retryable && rec.retries < rec.max_retries)
        target = LYNX_JOB_PENDING;
    //  Once cancelled, an attempt that did not complete ends Cancelled and is never retried.
    if ((inflight->cancel_requested || batch->cancelled) && target != LYNX_JOB_COMPLETED) {
        target = LYNX_JOB_CANCELLED;
        if (!error_message || outcome == LYNX_JOB_PENDING || outcome == LYNX_JOB_FAILED)
            error_message = "cancelled";
    }
    broker_job_rec_t next = rec;
    if (!lynx_job_transition_allowed(next.status, target)) {
        zsys_error("broker: illegal transition job=%s from=%s to=%s", rec.id,
                   lynx_job_state_name(next.status), lynx_job_state_name(target));
        return -1;
    }
    next.status = target;
    //  Pending as the outcome itself: the attempt ended through no fault of the job (its runner
    //  was stopped), so it does not use up a retry.
    bool charged = outcome != LYNX_JOB_PENDING;
    if (target == LYNX_JOB_PENDING) {
        if (charged)
            next.retries++;
        next.claimed_at_ms = next.started_at_ms = 0;
        snprintf(next.last_runner, sizeof next.last_runner, "%s", rec.assigned_runner);
        next.assigned_runner[0] = '\0';
    } else
        next.completed_at_ms = now_ms;

    //  An early termination's trigger event goes to subscribers too, with the job's end.
    const lynx_value_t *trigger =
        lynx_value_get(lynx_value_get(sent_result, "telemetry_data"), "trigger");
    if (lynx_value_type(trigger) != LYNX_VALUE_MAP)
        trigger = NULL;
    lynx_value_t *result = NULL;
    if (target != LYNX_JOB_PENDING)
        result =
            broker_result_clean(rec.id, sent_result, target == LYNX_JOB_COMPLETED, error_message);
    int rc = broker_store_begin(core->store);
    if (rc == 0)
        rc = broker_store_update_job(core->store, &next, error_message);
    if (rc == 0 && result)
        rc = broker_store_put_result(core->store, rec.id, rec.batch_id, result, inflight->exit);
    if (rc == 0 && !result) {
        //  A retry follows: the job row will describe the next attempt, so this one is kept.
        broker_attempt_rec_t ended = {.attempt = rec.attempt,
                                      .status = outcome,
                                      .claimed_at_ms = rec.claimed_at_ms,
                                      .started_at_ms = rec.started_at_ms,
                                      .ended_at_ms = now_ms,
                                      .exit = inflight->exit,
                                      .error_message = error_message,
                                      .trigger = trigger,
                                      .charged = charged};
        snprintf(ended.job_id, sizeof ended.job_id, "%s", rec.id);
        snprintf(ended.runner_id, sizeof ended.runner_id, "%s", rec.assigned_runner);
        rc = broker_store_add_attempt(core->store, &ended);
    }
    if (rc == 0)
        rc = broker_store_commit(core->store);
    lynx_value_destroy(&result);
    if (rc) {
        zsys_error("broker: cannot record job end job=%s: %s", rec.id,
                   broker_store_error(core->store));
        broker_store_rollback(core->store);
        return -1;
    } //  Durable (or pending the turn's commit): announce and update memory.
    s_event(core, &next, target, error_message, trigger);

    broker_telemetry_job_ended(core->telemetry, rec.id);
    broker_batch_move(batch, inflight->rec.status, target, 1);
    broker_runner_t *runner = inflight->runner;
    if (runner)
        broker_runners_detach(runner, target, charged);
    if (target == LYNX_JOB_PENDING) {
        broker_batch_set_queue_empty(batch, false);
        zsys_notice("broker: job requeued job=%s retry=%" PRId64 "/%" PRId64 " reason=\"%s\"",
                    rec.id, next.retries, next.max_retries, error_message ? error_message : "");
    } else {
        broker_stats_job_ended(batch->stats, now_ms); //  a job that ran (see broker_stats.h)
        zsys_debug("broker: job %s job=%s run=%" PRId64 " runner=%s", lynx_job_state_name(target),
                   rec.id, rec.run_id, rec.assigned_runner);
    }
    broker_queue_remove(core->queue, rec.id);
    broker_sched_refresh_batch(core, batch);
    return 0;
}

// --------------------------------------------------------------------------------------------
//  Dispatch

//  A suspect runner (broker_health_suspect) leaves a batch to a healthy runner that can serve
//  it, busy or not; a lone suspect keeps working.
static bool s_may_serve(broker_core_t *core, const broker_runner_t *runner,
                        const broker_batch_t *batch)
{
    if (!broker_health_suspect(runner->health))
        return true;
    for (size_t i = 0; i < broker_runners_count(core->runners); i++) {
        const broker_runner_t *other = broker_runners_at(core->runners, i);
        if (other != runner && other->online && !other->draining &&
            !broker_health_suspect(other->health) && !broker_health_quarantined(other->health) &&
            broker_match_fits(other, batch))
            return false;
    }
    return true;
}

static bool s_batch_can_start(broker_core_t *core, const broker_batch_t *batch,
                              const broker_runner_t *runner)
{
    if (batch->queue_empty || batch->counts[LYNX_JOB_PENDING] == 0 || batch->cancelled)
        return false;
    if (batch->declined_round == broker_batches_round(core->batches) &&
        batch->declined_by == runner)
        return false;
    int64_t active = batch->counts[LYNX_JOB_CLAIMED] + batch->counts[LYNX_JOB_RUNNING];
    if (batch->max_parallel_jobs > 0 && active >= batch->max_parallel_jobs)
        return false;
    return broker_match_fits(runner, batch) && s_may_serve(core, runner, batch);
}

//  Stride scheduling: of the batches this runner can serve, the one with the smallest pass;
//  each dispatch advances a batch's pass by 1 / priority. Equal priorities take turns, so a
//  million-run batch does not starve a five-run one submitted after it.
typedef struct {
    broker_core_t *core;
    const broker_runner_t *runner;
} s_start_ctx_t;

static bool s_can_start(const broker_batch_t *batch, void *arg)
{
    s_start_ctx_t *ctx = (s_start_ctx_t *)arg;
    return s_batch_can_start(ctx->core, batch, ctx->runner);
}

//  The waiting batch with the lowest pass that runner may serve (stride scheduling).
static broker_batch_t *s_next_batch(broker_core_t *core, const broker_runner_t *runner)
{
    s_start_ctx_t ctx = {core, runner};
    return broker_batches_next(core->batches, s_can_start, &ctx);
}

//  Choosing among the first Pending jobs: the first one whose last failed attempt was not on
//  this runner, so a retry prefers a different machine; a runner that has been failing gets
//  a fresh job rather than someone's retry.
typedef struct {
    const broker_runner_t *runner;
    bool failing;
    broker_job_rec_t *chosen;
    broker_job_rec_t first;
    bool taken;
} s_pick_t;

static int s_pick_job(const broker_job_rec_t *job, void *arg)
{
    s_pick_t *pick = (s_pick_t *)arg;
    if (!pick->first.id[0])
        pick->first = *job;
    if (strcmp(job->last_runner, pick->runner->id) == 0 || (pick->failing && job->retries > 0))
        return 0;
    *pick->chosen = *job;
    pick->taken = true;
    return 1;
}

static bool s_other_runner_free(broker_core_t *core, const broker_batch_t *batch,
                                const broker_runner_t *runner)
{
    for (size_t i = 0; i < broker_runners_count(core->runners); i++) {
        const broker_runner_t *other = broker_runners_at(core->runners, i);
        if (other != runner && broker_runners_available(other) &&
            broker_match_engine(other, batch->engine))
            return true;
    }
    return false;
}

//  The run config file the scenario reads, exactly as the docs show it.
lynx_value_t *broker_sched_run_config(const broker_batch_t *batch, const broker_job_rec_t *rec,
                                      lynx_value_t **parameters_p)
{

    lynx_value_t *config = lynx_value_map();
    lynx_value_set_int(config, "run_id", rec->run_id);
    if (lynx_value_set(config, "parameters", parameters_p))
        lynx_value_destroy(parameters_p);
    lynx_value_t *metadata = lynx_value_map();
    lynx_value_set_string(metadata, "simulation_name", batch->simulation_name);
    lynx_value_set_string(metadata, "simulation_version", batch->simulation_version);
    lynx_value_set_double(metadata, "duration_minutes", batch->duration_minutes);
    lynx_value_set_string(metadata, "sampling_method", batch->sampling_method);
    lynx_value_set_string(metadata, "generated_at", batch->generated_at);
    if (lynx_value_set(config, "metadata", &metadata))
        lynx_value_destroy(&metadata);
    return config;
}

//  Claim the next Pending job of batch for runner: stored as Claimed, tracked in flight.
//  Returns the ASSIGN to send once the claim is committed, or NULL.
static lynx_msg_t *s_claim(broker_core_t *core, broker_batch_t *batch, broker_runner_t *runner)
{
    broker_job_rec_t rec;
    s_pick_t pick = {
        .runner = runner, .failing = broker_health_streak(runner->health) > 0, .chosen = &rec};
    int64_t found = broker_store_foreach_job(core->store, batch->id, LYNX_JOB_PENDING, -1,
                                             BROKER_RETRY_LOOKAHEAD, s_pick_job, &pick);
    if (found > 0 && !pick.taken) {
        //  Every job in view last failed on this runner: leave them to another runner if one
        //  can take this batch now, else run one here rather than idle.
        if (s_other_runner_free(core, batch, runner))
            return NULL;
        rec = pick.first;
    }
    if (found <= 0) {
        if (found < 0)
            zsys_error("broker: cannot read queue batch=%s: %s", batch->id,
                       broker_store_error(core->store));
        broker_batch_set_queue_empty(batch, true);
        return NULL;
    }
    lynx_value_t *parameters = broker_store_job_parameters(core->store, rec.id);
    if (!parameters) {
        zsys_error("broker: cannot read parameters job=%s: %s", rec.id,
                   broker_store_error(core->store));
        broker_batch_set_queue_empty(batch, true);
        return NULL;
    }
    broker_job_rec_t claimed = rec;
    s_transition(batch, &claimed, LYNX_JOB_CLAIMED);
    claimed.attempt++;
    claimed.claimed_at_ms = lynx_time_now_ms();
    snprintf(claimed.assigned_runner, sizeof claimed.assigned_runner, "%s", runner->id);
    broker_inflight_t *inflight = broker_queue_add(core->queue, &claimed, batch, runner);
    if (!inflight || broker_store_update_job(core->store, &claimed, NULL)) {
        zsys_error("broker: cannot claim job=%s: %s", rec.id,
                   inflight ? broker_store_error(core->store) : "out of memory");
        broker_queue_remove(core->queue, rec.id);
        s_transition(batch, &claimed, LYNX_JOB_PENDING);
        lynx_value_destroy(&parameters);
        broker_batch_set_queue_empty(batch, true);
        return NULL;
    }
    broker_runners_attach(runner);
    s_event(core, &inflight->rec, LYNX_JOB_CLAIMED, NULL, NULL);

    lynx_msg_t *assign = lynx_msg_new(LYNX_MSG_ASSIGN);
    lynx_value_t *body = lynx_msg_body(assign);
    lynx_value_set_string(body, "job_id", rec.id);
    lynx_value_set_string(body, "batch_id", rec.batch_id);
    lynx_value_set_int(body, "attempt", inflight->rec.attempt);
    lynx_value_set_string(body, "engine", batch->engine);
    lynx_value_set_int(body, "timeout_secs",
                       rec.timeout_secs); //  The runner's watchdog and telemetry forwarding need
                                          //  these with every job.
    for (size_t i = 0; i < BROKER_SECTION_COUNT; i++) {
        lynx_value_t *copy = batch->sections[i] ? lynx_value_dup(batch->sections[i]) : NULL;
        if (copy && lynx_value_set(body, broker_section_names[i], &copy))
            lynx_value_destroy(&copy);
    }
    lynx_value_t *run_config = broker_sched_run_config(batch, &inflight->rec, &parameters);
    if (lynx_value_set(body, "run_config", &run_config))
        lynx_value_destroy(&run_config);
    return assign;
}

//  Undo an uncommitted claim in memory: the store still has the job Pending.
static void s_unclaim(broker_core_t *core, const char *job_id)
{
    broker_inflight_t *inflight = broker_queue_lookup(core->queue, job_id);
    if (!inflight)
        return;
    broker_batch_move(inflight->batch, LYNX_JOB_CLAIMED, LYNX_JOB_PENDING, 1);
    broker_batch_set_queue_empty(inflight->batch, false);
    broker_runners_release(inflight->runner);
    broker_queue_remove(core->queue, job_id);
}

void broker_sched_dispatch(broker_core_t *core)
{
    if (core->storage_full) //  a claim is a write: none until space returns
        return;
    //  Claims are written in one transaction; the ASSIGNs go out only after it commits.
    zlistx_t *outbox = zlistx_new();
    zlistx_set_destructor(outbox, (zlistx_destructor_fn *)lynx_msg_destroy);
    bool began = false;
    uint64_t round = broker_batches_start_round(core->batches);
    size_t batches = broker_batches_count(core->batches);
    //  Each round starts at the next runner, so free slots fill across runners in turn rather
    //  than always on the first one registered.
    size_t count = broker_runners_count(core->runners);
    for (size_t k = 0; k < count; k++) {
        broker_runner_t *runner = broker_runners_at(core->runners, (size_t)((round + k) % count));
        //  Give up on this runner after every batch in turn declined it.
        for (size_t misses = 0; broker_runners_available(runner) && misses < batches;) {
            broker_batch_t *batch = s_next_batch(core, runner);
            if (!batch)
                break;
            if (!began) {
                if (broker_store_begin(core->store)) {
                    zsys_error("broker: cannot dispatch: %s", broker_store_error(core->store));
                    zlistx_destroy(&outbox);
                    return;
                }
                began = true;
            }
            lynx_msg_t *assign = s_claim(core, batch, runner);
            if (assign) {
                zlistx_add_end(outbox, assign);
                broker_batch_served(batch);
                misses = 0;
            } else {
                broker_batch_declined(batch, round, runner);
                misses++;
            }
        }
    }
    bool committed = began && broker_store_commit(core->store) == 0;
    if (began && !committed) {
        zsys_error("broker: cannot commit claims: %s", broker_store_error(core->store));
        broker_store_rollback(core->store);
    }
    lynx_msg_t *assign;
    while ((assign = (lynx_msg_t *)zlistx_detach(outbox, NULL))) {
        const char *job_id = lynx_value_get_string(lynx_msg_body(assign), "job_id", "");
        broker_inflight_t *inflight = broker_queue_lookup(core->queue, job_id);
        if (committed && inflight) {
            broker_sched_refresh_batch(core, inflight->batch);
            broker_sched_send(core, inflight->runner, &assign);
        } else {
            s_unclaim(core, job_id);
            lynx_msg_destroy(&assign);
        }
    }
    zlistx_destroy(&outbox);
}

broker_inflight_t *broker_sched_current_attempt(broker_core_t *core, broker_runner_t *runner,
                                                const lynx_value_t *body, const char *what)
{
    const char *job_id = lynx_value_get_string(body, "job_id", "");
    int64_t attempt = lynx_value_get_int(body, "attempt", -1);
    broker_inflight_t *inflight = broker_queue_lookup(core->queue, job_id);
    if (inflight && inflight->rec.attempt == attempt && inflight->runner == runner)
        return inflight;
    zsys_notice("broker: stale %s ignored job=%s attempt=%" PRId64 " runner=%s", what, job_id,
                attempt, runner->id);
    return NULL;
}

void broker_sched_started(broker_core_t *core, broker_runner_t *runner, lynx_value_t *body)
{
    if (core->storage_full) //  a Claimed job that runs ends all the same (FINISHED implies it)
        return;
    broker_inflight_t *inflight = broker_sched_current_attempt(core, runner, body, "STARTED");
    if (!inflight || inflight->rec.status != LYNX_JOB_CLAIMED)
        return;
    //  Written (within the turn's commit) so the counters always equal a recount of the table.
    broker_job_rec_t next = inflight->rec;
    next.status = LYNX_JOB_RUNNING;
    next.started_at_ms = lynx_time_now_ms();
    if (broker_store_update_job(core->store, &next, NULL)) {
        zsys_error("broker: cannot record start job=%s: %s", next.id,
                   broker_store_error(core->store));
        return;
    }
    broker_job_rec_t started = inflight->rec;
    started.started_at_ms = next.started_at_ms;
    s_transition(inflight->batch, &started, LYNX_JOB_RUNNING);
    broker_inflight_update(inflight, &started);
    s_event(core, &inflight->rec, LYNX_JOB_RUNNING, NULL, NULL);
    broker_sched_refresh_batch(core, inflight->batch);
}

int broker_sched_finished(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id,
                          broker_inflight_t *inflight, const lynx_value_t *body,
                          const lynx_value_t *result)
{
    const char *job_id = lynx_value_get_string(body, "job_id", "");
    int64_t attempt = lynx_value_get_int(body, "attempt", -1);
    {
        const char *status = lynx_value_get_string(body, "status", "");
        int outcome = lynx_job_state_parse(status);
        const char *message = lynx_value_get_string(result, "error_message", NULL);
        char unknown[128];
        if (outcome != LYNX_JOB_COMPLETED && outcome != LYNX_JOB_FAILED &&
            outcome != LYNX_JOB_TIMEOUT && outcome != LYNX_JOB_CANCELLED) {
            snprintf(unknown, sizeof unknown, "runner reported unknown status '%.64s'", status);
            message = unknown;
            outcome = LYNX_JOB_FAILED;
        }
        if (outcome != LYNX_JOB_COMPLETED && !message)
            message = status;
        bool retryable = lynx_value_get_bool(body, "retryable", true);
        broker_inflight_set_exit(inflight,
                                 (broker_exit_t){lynx_value_get_int(body, "exit_code", -1),
                                                 lynx_value_get_int(body, "exit_signal", -1)});
        char batch_id[BROKER_ID_SIZE];
        snprintf(batch_id, sizeof batch_id, "%s", inflight->rec.batch_id);
        broker_attempt_end_t end = {.job_id = job_id,
                                    .batch_id = batch_id,
                                    .attempt = attempt,
                                    .outcome = (lynx_job_state_t)outcome,
                                    .retryable = retryable,
                                    .cancelled =
                                        inflight->cancel_requested || inflight->batch->cancelled,
                                    .error_message = message};
        if (broker_sched_end_attempt(core, inflight, (lynx_job_state_t)outcome, message, result,
                                     retryable))
            return -1; //  not durable: no ACK, the runner will send it again
        broker_quarantine_attempt_ended(core, runner, &end);
    }
    broker_sched_ack(core, routing_id, job_id, attempt);
    return 0;
}

//  A runner that stops says so: it is Offline at once, and what it was running (it killed
//  those attempts on its way out) goes back to Pending without using up retries, instead of
//  waiting out a heartbeat timeout and failing them.
void broker_sched_runner_left(broker_core_t *core, broker_runner_t *runner, lynx_value_t *body)
{
    const char *reason = lynx_value_get_string(body, "reason", "stopped");
    broker_runners_left(runner);
    char message[256];
    snprintf(message, sizeof message, "runner %s stopped (%s)", runner->id, reason);
    zlistx_t *orphans = broker_queue_select(core->queue, broker_queue_on_runner, runner);
    broker_inflight_t *inflight;
    size_t requeued = zlistx_size(orphans);
    while ((inflight = (broker_inflight_t *)zlistx_detach(orphans, NULL)))
        broker_sched_end_attempt(core, inflight, LYNX_JOB_PENDING, message, NULL, true);
    zlistx_destroy(&orphans);
    zsys_notice("broker: runner disconnected runner=%s reason=\"%s\" requeued=%zu", runner->id,
                reason, requeued);
    broker_outbox_runner_event(core->outbox, runner->id, broker_runners_status(runner), NULL);
}

// --------------------------------------------------------------------------------------------
//  Liveness and recovery

//  Backstop for the runner's own timeout: an attempt with no result timeout_secs plus a grace
//  after it started ends Timeout here, and its runner is told to kill it.
typedef struct {
    int64_t now_ms;   //  wall clock, for the timeout backstop; monotonic, for lost runners
    int64_t grace_ms; //  timeout backstop grace, or the heartbeat timeout for unknown runners
    int64_t misses;   //  heartbeat misses that make a runner's silence a loss
    int64_t started_mono_ms;
} s_when_t;

//  No result timeout_secs plus the grace after the attempt started.
static bool s_is_late(const broker_inflight_t *inflight, const void *arg)
{
    const s_when_t *when = (const s_when_t *)arg;
    const broker_job_rec_t *rec = &inflight->rec;
    int64_t since = rec->started_at_ms ? rec->started_at_ms : rec->claimed_at_ms;
    return rec->timeout_secs > 0 && since > 0 &&
           when->now_ms > since + rec->timeout_secs * 1000 + when->grace_ms;
}

//  Its runner is gone (Offline, or unknown since a broker restart) for a whole heartbeat
//  timeout.
static bool s_is_lost(const broker_inflight_t *inflight, const void *arg)
{
    const s_when_t *when = (const s_when_t *)arg;
    const broker_runner_t *owner = inflight->runner;
    if (owner && owner->online)
        return false;
    int64_t gone_since = owner ? owner->last_seen_ms : when->started_mono_ms;
    int64_t grace = owner ? owner->heartbeat_interval_ms * when->misses : when->grace_ms;
    return when->now_ms - gone_since > grace;
}

static void s_enforce_timeouts(broker_core_t *core)
{
    s_when_t when = {.now_ms = lynx_time_now_ms(), .grace_ms = core->timeout_grace_ms};
    zlistx_t *late = broker_queue_select(core->queue, s_is_late, &when);
    broker_inflight_t *inflight;
    while ((inflight = (broker_inflight_t *)zlistx_detach(late, NULL))) {
        if (broker_artifacts_busy(core->artifacts, inflight->rec.id))
            continue; //  its result is in, its files are on their way
        char message[256];
        snprintf(message, sizeof message,
                 "timed out: no result %" PRId64 " s after the %" PRId64
                 " s limit (broker backstop; runner %s)",
                 core->timeout_grace_ms / 1000, inflight->rec.timeout_secs,
                 inflight->rec.assigned_runner);
        broker_sched_send_kill(core, inflight, "timed out (broker backstop)");
        broker_sched_end_attempt(core, inflight, LYNX_JOB_TIMEOUT, message, NULL, false);
    }
    zlistx_destroy(&late);
}

void broker_sched_tick(broker_core_t *core)
{
    if (core->storage_full) //  timeouts and lost runners end attempts: writes, later
        return;
    int64_t now = lynx_time_mono_ms();
    int64_t timeout = s_heartbeat_timeout_ms(core);
    s_enforce_timeouts(core);
    //  Jobs whose runner is gone for a whole heartbeat timeout are failed attempts.
    s_when_t when = {.now_ms = now,
                     .grace_ms = timeout,
                     .misses = core->heartbeat_misses,
                     .started_mono_ms = core->started_mono_ms};
    zlistx_t *lost = broker_queue_select(core->queue, s_is_lost, &when);
    broker_inflight_t *inflight;
    while ((inflight = (broker_inflight_t *)zlistx_detach(lost, NULL)))
        broker_sched_end_attempt(core, inflight, LYNX_JOB_FAILED, "runner lost (no heartbeat)",
                                 NULL, true);
    zlistx_destroy(&lost);
    broker_sched_dispatch(core);
}

typedef struct {
    broker_core_t *core;
    broker_batch_t *batch;
} s_recover_ctx_t;

static int s_recover_job(const broker_job_rec_t *job, void *arg)
{
    s_recover_ctx_t *ctx = (s_recover_ctx_t *)arg;
    return broker_queue_add(ctx->core->queue, job, ctx->batch, NULL) ? 0 : -1;
}

int broker_sched_recover(broker_core_t *core, lynx_err_t *err)
{
    for (size_t b = 0; b < broker_batches_count(core->batches); b++) {
        broker_batch_t *batch = broker_batches_at(core->batches, b);
        s_recover_ctx_t ctx = {core, batch};
        lynx_job_state_t states[] = {LYNX_JOB_CLAIMED, LYNX_JOB_RUNNING};
        for (size_t i = 0; i < 2; i++)
            if (batch->counts[states[i]] > 0 &&
                broker_store_foreach_job(core->store, batch->id, states[i], -1, 0, s_recover_job,
                                         &ctx) < 0)
                return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s",
                                    broker_store_error(core->store));
    }
    if (broker_queue_count(core->queue))
        zsys_notice("broker: waiting for runners to report in-flight jobs jobs=%zu",
                    broker_queue_count(core->queue));
    return 0;
}

// --------------------------------------------------------------------------------------------
//  Registration

//  True when list (array of {job_id, attempt}) names this job attempt.
static bool s_lists_attempt(const lynx_value_t *list, const broker_job_rec_t *rec)
{
    for (size_t i = 0; i < lynx_value_size(list); i++) {
        const lynx_value_t *entry = lynx_value_at(list, i);
        if (strcmp(lynx_value_get_string(entry, "job_id", ""), rec->id) == 0 &&
            lynx_value_get_int(entry, "attempt", -1) == rec->attempt)
            return true;
    }
    return false;
}

//  The attempts the store says are runner_id's (arg), whichever record they point at.
static bool s_assigned_to(const broker_inflight_t *inflight, const void *arg)
{
    return strcmp(inflight->rec.assigned_runner, (const char *)arg) == 0;
}

//  A runner that registers again (restart, or reconnect after a broker restart) reports what it
//  still runs and what it finished without an ACK. Those stay attached to it; every other job
//  the broker thought it had is lost.
void broker_sched_reconcile(broker_core_t *core, broker_runner_t *runner, const lynx_value_t *body)
{
    const lynx_value_t *active = lynx_value_get(body, "active_jobs");
    const lynx_value_t *finished = lynx_value_get(body, "finished_jobs");
    zlistx_t *lost = zlistx_new();
    zlistx_t *assigned = broker_queue_select(core->queue, s_assigned_to, runner->id);
    broker_inflight_t *inflight;
    while ((inflight = (broker_inflight_t *)zlistx_detach(assigned, NULL))) {
        if (inflight->runner)
            broker_runners_release(inflight->runner);
        broker_inflight_set_runner(inflight, NULL);
        if (s_lists_attempt(active, &inflight->rec) || s_lists_attempt(finished, &inflight->rec)) {
            broker_inflight_set_runner(inflight, runner);
            broker_runners_attach(runner);
        } else
            zlistx_add_end(lost, inflight);
    }
    zlistx_destroy(&assigned);
    while ((inflight = (broker_inflight_t *)zlistx_detach(lost, NULL)))
        broker_sched_end_attempt(core, inflight, LYNX_JOB_FAILED,
                                 "runner lost the job (runner restarted)", NULL, true);
    zlistx_destroy(&lost);
    //  Jobs the runner still runs that we no longer expect from it must stop.
    for (size_t i = 0; i < lynx_value_size(active); i++) {
        const lynx_value_t *entry = lynx_value_at(active, i);
        const char *job_id = lynx_value_get_string(entry, "job_id", "");
        inflight = broker_queue_lookup(core->queue, job_id);
        if (inflight && inflight->runner == runner)
            continue;
        lynx_msg_t *kill = lynx_msg_new(LYNX_MSG_KILL);
        lynx_value_set_string(lynx_msg_body(kill), "job_id", job_id);
        lynx_value_set_int(lynx_msg_body(kill), "attempt", lynx_value_get_int(entry, "attempt", 0));
        lynx_value_set_string(lynx_msg_body(kill), "reason",
                              "job is no longer assigned to this runner");
        broker_sched_send(core, runner, &kill);
    }
}

void broker_sched_welcome(broker_core_t *core, broker_runner_t *runner, const lynx_value_t *body)
{
    lynx_msg_t *reply = lynx_msg_new(LYNX_MSG_REGISTERED);
    lynx_value_set_string(lynx_msg_body(reply), "runner_id", runner->id);
    lynx_value_set_int(lynx_msg_body(reply), "heartbeat_interval_ms",
                       runner->heartbeat_interval_ms);
    if (core->events_port > 0)
        lynx_value_set_int(lynx_msg_body(reply), "events_port", core->events_port);
    broker_sched_send(core, runner, &reply);
    broker_sched_reconcile(core, runner, body);
    zsys_info("broker: runner registered runner=%s slots=%" PRId64 " active=%" PRId64, runner->id,
              runner->max_concurrent_jobs, runner->active_jobs);
}
