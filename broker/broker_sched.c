//  broker_sched: runners, dispatch and the job lifecycle. Every job change goes through
//  s_transition, which checks it against lynx_job_transition_allowed and keeps the batch
//  counters equal to the jobs table.
#include "broker_core.h"

#include "lynx_time.h"

void broker_batch_destroy(broker_batch_t **batch_p)
{
    if (!batch_p || !*batch_p)
        return;
    broker_batch_t *batch = *batch_p;
    free(batch->name);
    free(batch->engine);
    free(batch->simulation_name);
    free(batch->simulation_version);
    free(batch->sampling_method);
    free(batch);
    *batch_p = NULL;
}

void broker_runner_destroy(broker_runner_t **runner_p)
{
    if (!runner_p || !*runner_p)
        return;
    broker_runner_t *runner = *runner_p;
    free(runner->id);
    free(runner->name);
    zframe_destroy(&runner->routing_id);
    lynx_value_destroy(&runner->capabilities);
    lynx_value_destroy(&runner->engines);
    free(runner);
    *runner_p = NULL;
}

void broker_sched_add_batch(broker_core_t *core, broker_batch_t *batch)
{
    zhashx_insert(core->batches, batch->id, batch);
    zlistx_add_end(core->batch_order, batch);
}

static int64_t s_heartbeat_timeout_ms(const broker_core_t *core)
{
    return (int64_t)core->heartbeat_interval_ms * core->heartbeat_misses;
}

// --------------------------------------------------------------------------------------------
//  Batch status and throughput

void broker_sched_refresh_batch(broker_core_t *core, broker_batch_t *batch)
{
    const int64_t *counts = batch->counts;
    int64_t terminal = counts[LYNX_JOB_COMPLETED] + counts[LYNX_JOB_FAILED] +
                       counts[LYNX_JOB_TIMEOUT] + counts[LYNX_JOB_CANCELLED];
    lynx_batch_state_t status;
    if (terminal == batch->total_jobs) {
        if (counts[LYNX_JOB_CANCELLED] > 0)
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
    zsys_info("broker: batch %s batch=%s completed=%" PRId64 " failed=%" PRId64,
              lynx_batch_state_name(status), batch->id, counts[LYNX_JOB_COMPLETED],
              counts[LYNX_JOB_FAILED] + counts[LYNX_JOB_TIMEOUT]);
    batch->status = status;
}

static void s_note_job_end(broker_batch_t *batch, int64_t now_ms)
{
    batch->recent_ms[batch->recent_next] = now_ms;
    batch->recent_next = (batch->recent_next + 1) % BROKER_RECENT_MAX;
    if (batch->recent_count < BROKER_RECENT_MAX)
        batch->recent_count++;
}

double broker_sched_throughput(const broker_batch_t *batch, int64_t now_ms)
{
    int64_t oldest = now_ms;
    size_t in_window = 0;
    for (size_t i = 0; i < batch->recent_count; i++) {
        int64_t ended = batch->recent_ms[i];
        if (now_ms - ended <= BROKER_THROUGHPUT_WINDOW_MS) {
            in_window++;
            if (ended < oldest)
                oldest = ended;
        }
    }
    if (in_window == 0)
        return 0.0;
    //  A young batch has not filled the window yet: divide by the time it actually covers,
    //  measured from the batch's start, so the first minutes are not under-reported.
    int64_t span_ms = now_ms - batch->created_at_ms;
    if (span_ms > BROKER_THROUGHPUT_WINDOW_MS)
        span_ms = BROKER_THROUGHPUT_WINDOW_MS;
    if (span_ms < 1000)
        span_ms = 1000;
    return (double)in_window * 60000.0 / (double)span_ms;
}

double broker_sched_eta_minutes(const broker_batch_t *batch, int64_t now_ms)
{
    const int64_t *counts = batch->counts;
    int64_t remaining =
        counts[LYNX_JOB_PENDING] + counts[LYNX_JOB_CLAIMED] + counts[LYNX_JOB_RUNNING];
    if (remaining == 0)
        return 0.0;
    double throughput = broker_sched_throughput(batch, now_ms);
    return throughput > 0 ? (double)remaining / throughput : -1.0;
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
    if (batch) {
        batch->counts[rec->status]--;
        batch->counts[to]++;
    }
    rec->status = to;
    return 0;
}

static void s_send_to_runner(broker_core_t *core, broker_runner_t *runner, lynx_msg_t **msg_p)
{
    lynx_err_t err;
    if (!runner || !runner->online) {
        lynx_msg_destroy(msg_p);
        return;
    }
    if (lynx_msg_send(msg_p, zsock_resolve(core->runner_socket), runner->routing_id, &err))
        zsys_warning("broker: send to runner failed runner=%s: %s", runner->id, err.message);
}

static void s_send_ack(broker_core_t *core, zframe_t *routing_id, const char *job_id,
                       int64_t attempt)
{
    lynx_msg_t *ack = lynx_msg_new(LYNX_MSG_ACK);
    lynx_value_set_string(lynx_msg_body(ack), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(ack), "attempt", attempt);
    lynx_err_t err;
    if (lynx_msg_send(&ack, zsock_resolve(core->runner_socket), routing_id, &err))
        zsys_warning("broker: ack failed job=%s: %s", job_id, err.message);
}

//  A result as we store it: only documented fields, each of the documented type, whatever the
//  runner sent.
static lynx_value_t *s_clean_result(const char *job_id, const lynx_value_t *sent, bool success,
                                    const char *error_message)
{
    lynx_value_t *result = lynx_value_map();
    lynx_value_set_string(result, "job_id", job_id);
    lynx_value_set_bool(result, "success", success);
    lynx_value_set_double(result, "execution_time_secs",
                          lynx_value_get_double(sent, "execution_time_secs", 0.0));
    const lynx_value_t *fields[] = {lynx_value_get(sent, "output_files"),
                                    lynx_value_get(sent, "telemetry_data"),
                                    lynx_value_get(sent, "metadata")};
    const char *names[] = {"output_files", "telemetry_data", "metadata"};
    const lynx_value_type_t types[] = {LYNX_VALUE_ARRAY, LYNX_VALUE_MAP, LYNX_VALUE_MAP};
    for (size_t i = 0; i < 3; i++) {
        lynx_value_t *copy = lynx_value_type(fields[i]) == types[i] ? lynx_value_dup(fields[i])
                             : i == 0                               ? lynx_value_array()
                                                                    : lynx_value_null();
        if (lynx_value_set(result, names[i], &copy))
            lynx_value_destroy(&copy);
    }
    lynx_value_set_string(result, "error_message", success ? NULL : error_message);
    return result;
}

//  End the current attempt of an in-flight job. A retryable failure with retries left goes
//  back to Pending; anything else is terminal and gets a stored result. The store is written
//  in one transaction before memory changes become visible; returns -1 if it could not be.
static int s_end_attempt(broker_core_t *core, broker_inflight_t *inflight, lynx_job_state_t outcome,
                         const char *error_message, const lynx_value_t *sent_result, bool retryable)
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
    broker_job_rec_t next = rec;
    if (!lynx_job_transition_allowed(next.status, target)) {
        zsys_error("broker: illegal transition job=%s from=%s to=%s", rec.id,
                   lynx_job_state_name(next.status), lynx_job_state_name(target));
        return -1;
    }
    next.status = target;
    if (target == LYNX_JOB_PENDING) {
        next.retries++;
        next.claimed_at_ms = next.started_at_ms = 0;
        next.assigned_runner[0] = '\0';
    } else
        next.completed_at_ms = now_ms;

    lynx_value_t *result = NULL;
    if (target != LYNX_JOB_PENDING)
        result = s_clean_result(rec.id, sent_result, target == LYNX_JOB_COMPLETED, error_message);
    int rc = broker_store_begin(core->store);
    if (rc == 0)
        rc = broker_store_update_job(core->store, &next, error_message);
    if (rc == 0 && result)
        rc = broker_store_put_result(core->store, rec.id, rec.batch_id, result);
    if (rc == 0)
        rc = broker_store_commit(core->store);
    lynx_value_destroy(&result);
    if (rc) {
        zsys_error("broker: cannot record job end job=%s: %s", rec.id,
                   broker_store_error(core->store));
        broker_store_rollback(core->store);
        return -1;
    }

    //  Durable: now update memory.
    batch->counts[inflight->rec.status]--;
    batch->counts[target]++;
    broker_runner_t *runner = inflight->runner;
    if (runner) {
        runner->active_jobs--;
        if (target == LYNX_JOB_COMPLETED)
            runner->jobs_completed++;
        else
            runner->jobs_failed++;
    }
    if (target == LYNX_JOB_PENDING) {
        batch->queue_empty = false;
        zsys_notice("broker: job requeued job=%s retry=%" PRId64 "/%" PRId64 " reason=\"%s\"",
                    rec.id, next.retries, next.max_retries, error_message ? error_message : "");
    } else {
        s_note_job_end(batch, now_ms);
        zsys_info("broker: job %s job=%s run=%" PRId64 " runner=%s", lynx_job_state_name(target),
                  rec.id, rec.run_id, rec.assigned_runner);
    }
    zhashx_delete(core->inflight, rec.id);
    broker_sched_refresh_batch(core, batch);
    return 0;
}

// --------------------------------------------------------------------------------------------
//  Dispatch

static bool s_runner_has_engine(const broker_runner_t *runner, const char *engine)
{
    for (size_t i = 0; i < lynx_value_size(runner->engines); i++) {
        const char *name = lynx_value_as_string(lynx_value_at(runner->engines, i));
        if (name && strcmp(name, engine) == 0)
            return true;
    }
    return false;
}

static bool s_batch_can_start(const broker_batch_t *batch, const broker_runner_t *runner)
{
    if (batch->queue_empty || batch->counts[LYNX_JOB_PENDING] == 0)
        return false;
    int64_t active = batch->counts[LYNX_JOB_CLAIMED] + batch->counts[LYNX_JOB_RUNNING];
    if (batch->max_parallel_jobs > 0 && active >= batch->max_parallel_jobs)
        return false;
    return s_runner_has_engine(runner, batch->engine);
}

//  The next batch in round-robin order that this runner can serve; it moves to the back.
static broker_batch_t *s_next_batch(broker_core_t *core, const broker_runner_t *runner)
{
    size_t size = zlistx_size(core->batch_order);
    for (size_t i = 0; i < size; i++) {
        broker_batch_t *batch = (broker_batch_t *)zlistx_first(core->batch_order);
        zlistx_move_end(core->batch_order, zlistx_cursor(core->batch_order));
        if (s_batch_can_start(batch, runner))
            return batch;
    }
    return NULL;
}

static int s_take_first(const broker_job_rec_t *job, void *arg)
{
    *(broker_job_rec_t *)arg = *job;
    return 1;
}

//  The run config file the scenario reads, exactly as the docs show it.
lynx_value_t *broker_sched_run_config(const broker_batch_t *batch, const broker_job_rec_t *rec,
                                      lynx_value_t **parameters_p)
{
    char generated_at[LYNX_TIME_RFC3339_SIZE];
    lynx_value_t *config = lynx_value_map();
    lynx_value_set_int(config, "run_id", rec->run_id);
    if (lynx_value_set(config, "parameters", parameters_p))
        lynx_value_destroy(parameters_p);
    lynx_value_t *metadata = lynx_value_map();
    lynx_value_set_string(metadata, "simulation_name", batch->simulation_name);
    lynx_value_set_string(metadata, "simulation_version", batch->simulation_version);
    lynx_value_set_double(metadata, "duration_minutes", batch->duration_minutes);
    lynx_value_set_string(metadata, "sampling_method", batch->sampling_method);
    lynx_value_set_string(metadata, "generated_at",
                          lynx_time_rfc3339(batch->created_at_ms, generated_at));
    if (lynx_value_set(config, "metadata", &metadata))
        lynx_value_destroy(&metadata);
    return config;
}

//  Claim the next Pending job of batch for runner: stored as Claimed, tracked in flight.
//  Returns the ASSIGN to send once the claim is committed, or NULL.
static lynx_msg_t *s_claim(broker_core_t *core, broker_batch_t *batch, broker_runner_t *runner)
{
    broker_job_rec_t rec;
    int64_t found = broker_store_foreach_job(core->store, batch->id, LYNX_JOB_PENDING, -1, 1,
                                             s_take_first, &rec);
    if (found <= 0) {
        if (found < 0)
            zsys_error("broker: cannot read queue batch=%s: %s", batch->id,
                       broker_store_error(core->store));
        batch->queue_empty = true;
        return NULL;
    }
    lynx_value_t *parameters = broker_store_job_parameters(core->store, rec.id);
    if (!parameters) {
        zsys_error("broker: cannot read parameters job=%s: %s", rec.id,
                   broker_store_error(core->store));
        batch->queue_empty = true;
        return NULL;
    }
    broker_inflight_t *inflight = calloc(1, sizeof *inflight);
    inflight->rec = rec;
    inflight->batch = batch;
    inflight->runner = runner;
    s_transition(batch, &inflight->rec, LYNX_JOB_CLAIMED);
    inflight->rec.attempt++;
    inflight->rec.claimed_at_ms = lynx_time_now_ms();
    snprintf(inflight->rec.assigned_runner, sizeof inflight->rec.assigned_runner, "%s", runner->id);
    if (broker_store_update_job(core->store, &inflight->rec, NULL)) {
        zsys_error("broker: cannot claim job=%s: %s", rec.id, broker_store_error(core->store));
        s_transition(batch, &inflight->rec, LYNX_JOB_PENDING);
        free(inflight);
        lynx_value_destroy(&parameters);
        batch->queue_empty = true;
        return NULL;
    }
    zhashx_insert(core->inflight, rec.id, inflight);
    runner->active_jobs++;

    lynx_msg_t *assign = lynx_msg_new(LYNX_MSG_ASSIGN);
    lynx_value_t *body = lynx_msg_body(assign);
    lynx_value_set_string(body, "job_id", rec.id);
    lynx_value_set_string(body, "batch_id", rec.batch_id);
    lynx_value_set_int(body, "attempt", inflight->rec.attempt);
    lynx_value_set_string(body, "engine", batch->engine);
    lynx_value_set_int(body, "timeout_secs", rec.timeout_secs);
    lynx_value_t *run_config = broker_sched_run_config(batch, &inflight->rec, &parameters);
    if (lynx_value_set(body, "run_config", &run_config))
        lynx_value_destroy(&run_config);
    return assign;
}

//  Undo an uncommitted claim in memory: the store still has the job Pending.
static void s_unclaim(broker_core_t *core, const char *job_id)
{
    broker_inflight_t *inflight = (broker_inflight_t *)zhashx_lookup(core->inflight, job_id);
    if (!inflight)
        return;
    inflight->batch->counts[LYNX_JOB_CLAIMED]--;
    inflight->batch->counts[LYNX_JOB_PENDING]++;
    inflight->batch->queue_empty = false;
    inflight->runner->active_jobs--;
    zhashx_delete(core->inflight, job_id);
}

void broker_sched_dispatch(broker_core_t *core)
{
    //  Claims are written in one transaction; the ASSIGNs go out only after it commits.
    zlistx_t *outbox = zlistx_new();
    zlistx_set_destructor(outbox, (zlistx_destructor_fn *)lynx_msg_destroy);
    bool began = false;
    broker_runner_t *runner = (broker_runner_t *)zhashx_first(core->runners);
    for (; runner; runner = (broker_runner_t *)zhashx_next(core->runners)) {
        while (runner->online && runner->active_jobs < runner->max_concurrent_jobs) {
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
            if (assign)
                zlistx_add_end(outbox, assign);
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
        broker_inflight_t *inflight = (broker_inflight_t *)zhashx_lookup(core->inflight, job_id);
        if (committed && inflight) {
            broker_sched_refresh_batch(core, inflight->batch);
            s_send_to_runner(core, inflight->runner, &assign);
        } else {
            s_unclaim(core, job_id);
            lynx_msg_destroy(&assign);
        }
    }
    zlistx_destroy(&outbox);
}

// --------------------------------------------------------------------------------------------
//  Runner messages

static void s_send_runner_error(broker_core_t *core, zframe_t *routing_id, lynx_code_t code,
                                const char *field, const char *message)
{
    lynx_err_t err;
    lynx_err_set(&err, code, field, "%s", message);
    broker_send_error(core->runner_socket, routing_id, 0, &err, NULL);
}

//  The runner that sent this message, when it is registered under that routing id.
static broker_runner_t *s_sender(broker_core_t *core, zframe_t *routing_id, const char *runner_id)
{
    broker_runner_t *runner = (broker_runner_t *)zhashx_lookup(core->runners, runner_id);
    if (runner && runner->online && zframe_eq(runner->routing_id, routing_id))
        return runner;
    return NULL;
}

static broker_runner_t *s_sender_by_route(broker_core_t *core, zframe_t *routing_id)
{
    broker_runner_t *runner = (broker_runner_t *)zhashx_first(core->runners);
    for (; runner; runner = (broker_runner_t *)zhashx_next(core->runners))
        if (runner->online && zframe_eq(runner->routing_id, routing_id))
            return runner;
    return NULL;
}

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

//  A runner that registers again (restart, or reconnect after a broker restart) reports what it
//  still runs and what it finished without an ACK. Those stay attached to it; every other job
//  the broker thought it had is lost.
static void s_reconcile(broker_core_t *core, broker_runner_t *runner, const lynx_value_t *body)
{
    const lynx_value_t *active = lynx_value_get(body, "active_jobs");
    const lynx_value_t *finished = lynx_value_get(body, "finished_jobs");
    zlistx_t *lost = zlistx_new();
    broker_inflight_t *inflight = (broker_inflight_t *)zhashx_first(core->inflight);
    for (; inflight; inflight = (broker_inflight_t *)zhashx_next(core->inflight)) {
        if (strcmp(inflight->rec.assigned_runner, runner->id) != 0)
            continue;
        if (inflight->runner)
            inflight->runner->active_jobs--;
        inflight->runner = NULL;
        if (s_lists_attempt(active, &inflight->rec) || s_lists_attempt(finished, &inflight->rec)) {
            inflight->runner = runner;
            runner->active_jobs++;
        } else
            zlistx_add_end(lost, inflight);
    }
    while ((inflight = (broker_inflight_t *)zlistx_detach(lost, NULL)))
        s_end_attempt(core, inflight, LYNX_JOB_FAILED, "runner lost the job (runner restarted)",
                      NULL, true);
    zlistx_destroy(&lost);
    //  Jobs the runner still runs that we no longer expect from it must stop.
    for (size_t i = 0; i < lynx_value_size(active); i++) {
        const lynx_value_t *entry = lynx_value_at(active, i);
        const char *job_id = lynx_value_get_string(entry, "job_id", "");
        inflight = (broker_inflight_t *)zhashx_lookup(core->inflight, job_id);
        if (inflight && inflight->runner == runner)
            continue;
        lynx_msg_t *kill = lynx_msg_new(LYNX_MSG_KILL);
        lynx_value_set_string(lynx_msg_body(kill), "job_id", job_id);
        lynx_value_set_int(lynx_msg_body(kill), "attempt", lynx_value_get_int(entry, "attempt", 0));
        lynx_value_set_string(lynx_msg_body(kill), "reason",
                              "job is no longer assigned to this runner");
        s_send_to_runner(core, runner, &kill);
    }
}

static void s_on_register(broker_core_t *core, zframe_t *routing_id, lynx_value_t *body)
{
    const char *runner_id = lynx_value_get_string(body, "runner_id", "");
    const lynx_value_t *capabilities = lynx_value_get(body, "capabilities");
    int64_t slots = lynx_value_get_int(capabilities, "max_concurrent_jobs", 0);
    if (!runner_id[0]) {
        s_send_runner_error(core, routing_id, LYNX_EINVALID, "runner_id", "must not be empty");
        return;
    }
    if (slots < 1 || slots > 1024) {
        s_send_runner_error(core, routing_id, LYNX_EINVALID, "capabilities.max_concurrent_jobs",
                            "must be an integer between 1 and 1024");
        return;
    }
    broker_runner_t *runner = (broker_runner_t *)zhashx_lookup(core->runners, runner_id);
    if (!runner) {
        runner = (broker_runner_t *)calloc(1, sizeof *runner);
        runner->id = strdup(runner_id);
        zhashx_insert(core->runners, runner_id, runner);
    }
    free(runner->name);
    runner->name = strdup(lynx_value_get_string(body, "name", runner_id));
    zframe_destroy(&runner->routing_id);
    runner->routing_id = zframe_dup(routing_id);
    lynx_value_destroy(&runner->capabilities);
    runner->capabilities = lynx_value_dup(capabilities);
    lynx_value_destroy(&runner->engines);
    runner->engines = lynx_value_dup(lynx_value_get(body, "engines"));
    runner->max_concurrent_jobs = slots;
    runner->heartbeat_interval_ms =
        lynx_value_get_int(body, "heartbeat_interval_ms", core->heartbeat_interval_ms);
    if (runner->heartbeat_interval_ms < 100 || runner->heartbeat_interval_ms > 600000)
        runner->heartbeat_interval_ms = core->heartbeat_interval_ms;
    runner->last_seen_ms = lynx_time_mono_ms();
    runner->online = true;

    lynx_msg_t *reply = lynx_msg_new(LYNX_MSG_REGISTERED);
    lynx_value_set_string(lynx_msg_body(reply), "runner_id", runner_id);
    lynx_value_set_int(lynx_msg_body(reply), "heartbeat_interval_ms",
                       runner->heartbeat_interval_ms);
    s_send_to_runner(core, runner, &reply);
    s_reconcile(core, runner, body);
    zsys_info("broker: runner registered runner=%s slots=%" PRId64 " active=%" PRId64, runner_id,
              slots, runner->active_jobs);
}

static void s_on_heartbeat(broker_core_t *core, zframe_t *routing_id, lynx_value_t *body)
{
    broker_runner_t *runner =
        s_sender(core, routing_id, lynx_value_get_string(body, "runner_id", ""));
    if (runner)
        runner->last_seen_ms = lynx_time_mono_ms();
    else //  We restarted, or declared it Offline: it must register again.
        s_send_runner_error(core, routing_id, LYNX_ENOTFOUND, "runner_id",
                            "runner is not registered; register again");
}

//  The in-flight job a runner message refers to, if it is the current attempt on this runner.
static broker_inflight_t *s_current_attempt(broker_core_t *core, broker_runner_t *runner,
                                            const lynx_value_t *body, const char *what)
{
    const char *job_id = lynx_value_get_string(body, "job_id", "");
    int64_t attempt = lynx_value_get_int(body, "attempt", -1);
    broker_inflight_t *inflight = (broker_inflight_t *)zhashx_lookup(core->inflight, job_id);
    if (inflight && inflight->rec.attempt == attempt && inflight->runner == runner)
        return inflight;
    zsys_notice("broker: stale %s ignored job=%s attempt=%" PRId64 " runner=%s", what, job_id,
                attempt, runner->id);
    return NULL;
}

static void s_on_started(broker_core_t *core, broker_runner_t *runner, lynx_value_t *body)
{
    broker_inflight_t *inflight = s_current_attempt(core, runner, body, "STARTED");
    if (!inflight || inflight->rec.status != LYNX_JOB_CLAIMED)
        return;
    broker_job_rec_t next = inflight->rec;
    next.status = LYNX_JOB_RUNNING;
    next.started_at_ms = lynx_time_now_ms();
    if (broker_store_update_job(core->store, &next, NULL)) {
        zsys_error("broker: cannot record start job=%s: %s", next.id,
                   broker_store_error(core->store));
        return;
    }
    inflight->rec.started_at_ms = next.started_at_ms;
    s_transition(inflight->batch, &inflight->rec, LYNX_JOB_RUNNING);
    broker_sched_refresh_batch(core, inflight->batch);
}

static void s_on_finished(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id,
                          lynx_value_t *body)
{
    const char *job_id = lynx_value_get_string(body, "job_id", "");
    int64_t attempt = lynx_value_get_int(body, "attempt", -1);
    broker_inflight_t *inflight = s_current_attempt(core, runner, body, "FINISHED");
    if (inflight) {
        const lynx_value_t *result = lynx_value_get(body, "result");
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
        if (s_end_attempt(core, inflight, (lynx_job_state_t)outcome, message, result, retryable))
            return; //  not durable: no ACK, the runner will send it again
    }
    //  Durable, or stale: either way the runner may forget it.
    s_send_ack(core, routing_id, job_id, attempt);
}

void broker_sched_handle(broker_core_t *core, zframe_t *routing_id, lynx_msg_t *msg)
{
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_msg_id_t id = lynx_msg_id(msg);
    if (id == LYNX_MSG_REGISTER) {
        s_on_register(core, routing_id, body);
        broker_sched_dispatch(core);
        return;
    }
    if (id == LYNX_MSG_HEARTBEAT) {
        s_on_heartbeat(core, routing_id, body);
        return;
    }
    broker_runner_t *runner = s_sender_by_route(core, routing_id);
    if (!runner) {
        s_send_runner_error(core, routing_id, LYNX_ENOTFOUND, NULL,
                            "runner is not registered; register again");
        return;
    }
    runner->last_seen_ms = lynx_time_mono_ms();
    if (id == LYNX_MSG_STARTED)
        s_on_started(core, runner, body);
    else if (id == LYNX_MSG_FINISHED)
        s_on_finished(core, runner, routing_id, body);
    else {
        char message[128];
        snprintf(message, sizeof message, "unexpected command %s from a runner",
                 lynx_msg_command(msg));
        s_send_runner_error(core, routing_id, LYNX_EPROTOCOL, NULL, message);
        return;
    }
    broker_sched_dispatch(core);
}

// --------------------------------------------------------------------------------------------
//  Liveness and recovery

void broker_sched_tick(broker_core_t *core)
{
    int64_t now = lynx_time_mono_ms();
    int64_t timeout = s_heartbeat_timeout_ms(core);
    broker_runner_t *runner = (broker_runner_t *)zhashx_first(core->runners);
    for (; runner; runner = (broker_runner_t *)zhashx_next(core->runners))
        if (runner->online &&
            now - runner->last_seen_ms > runner->heartbeat_interval_ms * core->heartbeat_misses) {
            runner->online = false;
            zsys_warning("broker: runner offline runner=%s silent_ms=%" PRId64, runner->id,
                         now - runner->last_seen_ms);
        }
    //  Jobs whose runner is gone (Offline, or unknown since a broker restart) for a whole
    //  heartbeat timeout are failed attempts.
    zlistx_t *lost = zlistx_new();
    broker_inflight_t *inflight = (broker_inflight_t *)zhashx_first(core->inflight);
    for (; inflight; inflight = (broker_inflight_t *)zhashx_next(core->inflight)) {
        broker_runner_t *owner = inflight->runner;
        if (owner && owner->online)
            continue;
        int64_t gone_since = owner ? owner->last_seen_ms : core->started_mono_ms;
        int64_t grace = owner ? owner->heartbeat_interval_ms * core->heartbeat_misses : timeout;
        if (now - gone_since > grace)
            zlistx_add_end(lost, inflight);
    }
    while ((inflight = (broker_inflight_t *)zlistx_detach(lost, NULL)))
        s_end_attempt(core, inflight, LYNX_JOB_FAILED, "runner lost (no heartbeat)", NULL, true);
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
    broker_inflight_t *inflight = calloc(1, sizeof *inflight);
    inflight->rec = *job;
    inflight->batch = ctx->batch;
    zhashx_insert(ctx->core->inflight, job->id, inflight);
    return 0;
}

int broker_sched_recover(broker_core_t *core, lynx_err_t *err)
{
    broker_batch_t *batch = (broker_batch_t *)zhashx_first(core->batches);
    for (; batch; batch = (broker_batch_t *)zhashx_next(core->batches)) {
        s_recover_ctx_t ctx = {core, batch};
        lynx_job_state_t states[] = {LYNX_JOB_CLAIMED, LYNX_JOB_RUNNING};
        for (size_t i = 0; i < 2; i++)
            if (batch->counts[states[i]] > 0 &&
                broker_store_foreach_job(core->store, batch->id, states[i], -1, 0, s_recover_job,
                                         &ctx) < 0)
                return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s",
                                    broker_store_error(core->store));
    }
    if (zhashx_size(core->inflight))
        zsys_notice("broker: waiting for runners to report in-flight jobs jobs=%zu",
                    zhashx_size(core->inflight));
    return 0;
}
