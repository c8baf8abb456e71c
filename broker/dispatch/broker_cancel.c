//  broker_cancel: cancelling batches and jobs. Pending jobs end Cancelled at once (one UPDATE
//  for a whole batch); running attempts are killed on their runner and end Cancelled when it
//  reports (or at once when no runner can be told). A job or batch that already ended is a
//  conflict.
#include "broker_core.h"

#include "lynx_time.h"

//  Cancel one in-flight attempt: its runner is told to kill it and the attempt will end
//  Cancelled; with no runner to tell, it ends now.
static void s_cancel_inflight(broker_core_t *core, broker_inflight_t *inflight)
{
    if (inflight->cancel_requested)
        return;
    broker_inflight_request_cancel(inflight);
    if (inflight->runner && inflight->runner->online)
        broker_sched_send_kill(core, inflight, "cancelled");
    else
        broker_sched_end_attempt(core, inflight, LYNX_JOB_CANCELLED, "cancelled", NULL, false);
}

static bool s_of_batch(const broker_inflight_t *inflight, const void *arg)
{
    return inflight->batch == (const broker_batch_t *)arg;
}

//  Cancel the Pending jobs of a batch (or just job_id) in the store and in the counters.
static int s_cancel_pending(broker_core_t *core, broker_batch_t *batch, const char *job_id,
                            lynx_err_t *err)
{
    int64_t cancelled =
        broker_store_cancel_pending(core->store, batch->id, job_id, lynx_time_now_ms());
    if (cancelled < 0)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
    //  Not counted in the batch's throughput: these jobs never ran.
    broker_batch_move(batch, LYNX_JOB_PENDING, LYNX_JOB_CANCELLED, cancelled);
    return 0;
}

static bool s_batch_terminal(const broker_batch_t *batch)
{
    return batch->status == LYNX_BATCH_COMPLETED || batch->status == LYNX_BATCH_FAILED ||
           batch->status == LYNX_BATCH_CANCELLED;
}

//  A submit token cancels only what it submitted; admin (and a caller without tokens) any.
static bool s_may_cancel(const broker_request_t *request, const broker_batch_t *batch,
                         lynx_err_t *err)
{
    if (request->role >= LYNX_ROLE_ADMIN || !request->principal)
        return true;
    if (batch->token_name && strcmp(batch->token_name, request->principal) == 0)
        return true;
    lynx_err_set(err, LYNX_EFORBIDDEN, NULL,
                 "token '%s' may cancel only the batches it submitted; batch %s was not",
                 request->principal, batch->id);
    return false;
}

lynx_value_t *broker_sched_op_cancel_batch(broker_core_t *core, const broker_request_t *request,
                                           const lynx_value_t *args, lynx_err_t *err,
                                           lynx_value_t **errors_p)
{
    (void)errors_p;
    const char *batch_id = lynx_value_get_string(args, "batch_id", "");
    broker_batch_t *batch = broker_batches_lookup(core->batches, batch_id);
    if (!batch) {
        lynx_err_set(err, LYNX_ENOTFOUND, "batch_id", "no batch with id '%.64s'", batch_id);
        return NULL;
    }
    if (!s_may_cancel(request, batch, err))
        return NULL;
    if (s_batch_terminal(batch)) {
        lynx_err_set(err, LYNX_ECONFLICT, "batch_id", "batch %s is already %s; nothing to cancel",
                     batch->id, lynx_batch_state_name(batch->status));
        return NULL;
    }
    if (!batch->cancelled && broker_store_set_batch_cancelled(core->store, batch->id)) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
        return NULL;
    }
    broker_batch_set_cancelled(batch);
    if (s_cancel_pending(core, batch, NULL, err))
        return NULL;
    zlistx_t *running = broker_queue_select(core->queue, s_of_batch, batch);
    broker_inflight_t *inflight;
    size_t killing = zlistx_size(running);
    while ((inflight = (broker_inflight_t *)zlistx_detach(running, NULL)))
        s_cancel_inflight(core, inflight);
    zlistx_destroy(&running);
    broker_sched_refresh_batch(core, batch);
    zsys_notice("broker: batch cancelled batch=%s killing=%zu", batch->id, killing);
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "batch_id", batch->id);
    lynx_value_set_string(reply, "status", lynx_batch_state_name(batch->status));
    lynx_value_set_int(reply, "cancelled_jobs", batch->counts[LYNX_JOB_CANCELLED]);
    lynx_value_set_int(reply, "stopping_jobs", (int64_t)killing);
    return reply;
}

lynx_value_t *broker_sched_op_cancel_job(broker_core_t *core, const broker_request_t *request,
                                         const lynx_value_t *args, lynx_err_t *err,
                                         lynx_value_t **errors_p)
{
    (void)errors_p;
    const char *job_id = lynx_value_get_string(args, "job_id", "");
    broker_job_rec_t rec;
    int rc = broker_store_get_job(core->store, job_id, &rec);
    broker_batch_t *batch = rc == 0 ? broker_batches_lookup(core->batches, rec.batch_id) : NULL;
    if (rc < 0) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
        return NULL;
    }
    if (!batch) {
        lynx_err_set(err, LYNX_ENOTFOUND, "job_id", "no job with id '%.64s'", job_id);
        return NULL;
    }
    if (!s_may_cancel(request, batch, err))
        return NULL;
    broker_inflight_t *inflight = broker_queue_lookup(core->queue, rec.id);
    const char *outcome = "Cancelled";
    if (inflight) {
        s_cancel_inflight(core, inflight);
        outcome = broker_queue_lookup(core->queue, rec.id) ? "Cancelling" : "Cancelled";
    } else if (rec.status == LYNX_JOB_PENDING) {
        if (s_cancel_pending(core, batch, rec.id, err))
            return NULL;
    } else {
        lynx_err_set(err, LYNX_ECONFLICT, "job_id", "job %s is already %s; nothing to cancel",
                     rec.id, lynx_job_state_name(rec.status));
        return NULL;
    }
    broker_sched_refresh_batch(core, batch);
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "job_id", rec.id);
    lynx_value_set_string(reply, "status", outcome);
    return reply;
}
