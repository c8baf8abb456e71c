//  broker_api: the REQUEST operations API clients (the gateway) call, as one table of
//  operation name -> handler. Each handler returns a reply body or fills err.
#include "broker_core.h"

#include "broker_study.h"
#include "lynx_time.h"

typedef lynx_value_t *(s_op_fn)(broker_core_t *core, const broker_request_t *request,
                                const lynx_value_t *args, lynx_err_t *err, lynx_value_t **errors_p);

void broker_send_error(zsock_t *socket, zframe_t *routing_id, int64_t corr, const lynx_err_t *err,
                       lynx_value_t **errors_p)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_ERROR);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "code", lynx_code_name(err->code));
    lynx_value_set_string(body, "message", err->message);
    lynx_value_set_int(body, "corr", corr);
    if (err->field[0])
        lynx_value_set_string(body, "field", err->field);
    if (errors_p && *errors_p && lynx_value_set(body, "errors", errors_p))
        lynx_value_destroy(errors_p);
    lynx_err_t send_err;
    if (lynx_msg_send(&msg, zsock_resolve(socket), routing_id, &send_err))
        zsys_warning("broker: cannot send error reply: %s", send_err.message);
}

static void s_set_time(lynx_value_t *map, const char *key, int64_t epoch_ms)
{
    char text[LYNX_TIME_RFC3339_SIZE];
    lynx_value_set_string(map, key, epoch_ms > 0 ? lynx_time_rfc3339(epoch_ms, text) : NULL);
}

//  Store a freshly built child under key, freeing it if the map refuses it.
static void s_set_owned(lynx_value_t *map, const char *key, lynx_value_t *child)
{
    if (lynx_value_set(map, key, &child))
        lynx_value_destroy(&child);
}

static broker_batch_t *s_find_batch(broker_core_t *core, const lynx_value_t *args, lynx_err_t *err)
{
    const char *batch_id = lynx_value_get_string(args, "batch_id", "");
    broker_batch_t *batch = (broker_batch_t *)zhashx_lookup(core->batches, batch_id);
    if (!batch)
        lynx_err_set(err, LYNX_ENOTFOUND, "batch_id", "no batch with id '%.64s'", batch_id);
    return batch;
}

// --------------------------------------------------------------------------------------------
//  Reading batches and jobs

static lynx_value_t *s_op_health(broker_core_t *core, const broker_request_t *request,
                                 const lynx_value_t *args, lynx_err_t *err, lynx_value_t **errors_p)
{
    (void)request;
    (void)args, (void)err, (void)errors_p;
    int64_t online = 0;
    broker_runner_t *runner = (broker_runner_t *)zhashx_first(core->runners);
    for (; runner; runner = (broker_runner_t *)zhashx_next(core->runners))
        online += runner->online;
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "status", "ok");
    lynx_value_set_int(reply, "batches", (int64_t)zhashx_size(core->batches));
    lynx_value_set_int(reply, "runners_online", online);
    lynx_value_set_int(reply, "jobs_in_flight", (int64_t)zhashx_size(core->inflight));
    return reply;
}

static lynx_value_t *s_op_batch_get(broker_core_t *core, const broker_request_t *request,
                                    const lynx_value_t *args, lynx_err_t *err,
                                    lynx_value_t **errors_p)
{
    (void)request;
    (void)errors_p;
    broker_batch_t *batch = s_find_batch(core, args, err);
    if (!batch)
        return NULL;
    lynx_value_t *stored = broker_store_get_batch(core->store, batch->id);
    int64_t now_ms = lynx_time_now_ms();
    lynx_value_t *view = lynx_value_map();
    lynx_value_set_string(view, "id", batch->id);
    lynx_value_set_string(view, "name", batch->name);
    lynx_value_set_string(view, "status", lynx_batch_state_name(batch->status));
    lynx_value_set_int(view, "total_jobs", batch->total_jobs);
    lynx_value_set_int(view, "completed_jobs", batch->counts[LYNX_JOB_COMPLETED]);
    lynx_value_set_int(view, "failed_jobs",
                       batch->counts[LYNX_JOB_FAILED] + batch->counts[LYNX_JOB_TIMEOUT]);
    s_set_time(view, "created_at", batch->created_at_ms);
    lynx_value_set_string(view, "config_hash", lynx_value_get_string(stored, "config_hash", ""));
    lynx_value_set_int(view, "seed", lynx_value_get_int(stored, "seed", 0));
    lynx_value_set_string(view, "sampling_method", batch->sampling_method);
    lynx_value_destroy(&stored);

    lynx_value_t *by_status = lynx_value_map();
    for (int state = 0; state < LYNX_JOB_STATE_COUNT; state++)
        lynx_value_set_int(by_status, lynx_job_state_name((lynx_job_state_t)state),
                           batch->counts[state]);
    lynx_value_t *reply = lynx_value_map();
    s_set_owned(reply, "batch", view);
    s_set_owned(reply, "jobs_by_status", by_status);
    lynx_value_set_double(reply, "throughput_jobs_per_minute",
                          broker_sched_throughput(batch, now_ms));
    double eta = broker_sched_eta_minutes(batch, now_ms);
    if (eta >= 0)
        lynx_value_set_double(reply, "estimated_completion_time_mins", eta);
    else
        lynx_value_set_null(reply, "estimated_completion_time_mins");
    return reply;
}

static lynx_value_t *s_op_batch_results(broker_core_t *core, const broker_request_t *request,
                                        const lynx_value_t *args, lynx_err_t *err,
                                        lynx_value_t **errors_p)
{
    (void)request;
    (void)errors_p;
    broker_batch_t *batch = s_find_batch(core, args, err);
    if (!batch)
        return NULL;
    lynx_value_t *results = broker_store_batch_results(core->store, batch->id);
    if (!results) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
        return NULL;
    }
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "batch_id", batch->id);
    lynx_value_set_string(reply, "status", lynx_batch_state_name(batch->status));
    lynx_value_set_int(reply, "total_jobs", batch->total_jobs);
    lynx_value_set_int(reply, "count", (int64_t)lynx_value_size(results));
    s_set_owned(reply, "results", results);
    return reply;
}

//  Load a job by args.job_id into rec; NULL batch (and err) when there is no such job.
static broker_batch_t *s_find_job(broker_core_t *core, const lynx_value_t *args,
                                  broker_job_rec_t *rec, lynx_err_t *err)
{
    const char *job_id = lynx_value_get_string(args, "job_id", "");
    int rc = broker_store_get_job(core->store, job_id, rec);
    if (rc < 0) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
        return NULL;
    }
    broker_batch_t *batch =
        rc == 0 ? (broker_batch_t *)zhashx_lookup(core->batches, rec->batch_id) : NULL;
    if (!batch)
        lynx_err_set(err, LYNX_ENOTFOUND, "job_id", "no job with id '%.64s'", job_id);
    return batch;
}

static lynx_value_t *s_op_job_get(broker_core_t *core, const broker_request_t *request,
                                  const lynx_value_t *args, lynx_err_t *err,
                                  lynx_value_t **errors_p)
{
    (void)request;
    (void)errors_p;
    broker_job_rec_t rec;
    broker_batch_t *batch = s_find_job(core, args, &rec, err);
    if (!batch)
        return NULL;
    //  The in-flight copy is the freshest (a claim may not be re-read from disk yet).
    broker_inflight_t *inflight = (broker_inflight_t *)zhashx_lookup(core->inflight, rec.id);
    if (inflight)
        rec = inflight->rec;
    lynx_value_t *parameters = broker_store_job_parameters(core->store, rec.id);
    char *error_message = broker_store_job_error(core->store, rec.id);
    lynx_value_t *job = lynx_value_map();
    lynx_value_set_string(job, "id", rec.id);
    lynx_value_set_string(job, "job_id", rec.id);
    lynx_value_set_string(job, "batch_id", rec.batch_id);
    lynx_value_set_int(job, "run_id", rec.run_id);
    if (!parameters)
        parameters = lynx_value_map();
    s_set_owned(job, "run_config", broker_sched_run_config(batch, &rec, &parameters));
    lynx_value_set_string(job, "status", lynx_job_state_name(rec.status));
    lynx_value_set_int(job, "retries", rec.retries);
    lynx_value_set_int(job, "max_retries", rec.max_retries);
    lynx_value_set_int(job, "timeout_secs", rec.timeout_secs);
    lynx_value_set_int(job, "attempt", rec.attempt);
    s_set_time(job, "created_at", rec.created_at_ms);
    s_set_time(job, "claimed_at", rec.claimed_at_ms);
    s_set_time(job, "started_at", rec.started_at_ms);
    s_set_time(job, "completed_at", rec.completed_at_ms);
    lynx_value_set_string(job, "assigned_runner",
                          rec.assigned_runner[0] ? rec.assigned_runner : NULL);
    lynx_value_set_string(job, "error_message", error_message);
    free(error_message);
    return job;
}

static lynx_value_t *s_op_job_results(broker_core_t *core, const broker_request_t *request,
                                      const lynx_value_t *args, lynx_err_t *err,
                                      lynx_value_t **errors_p)
{
    (void)request;
    (void)errors_p;
    broker_job_rec_t rec;
    if (!s_find_job(core, args, &rec, err))
        return NULL;
    lynx_value_t *result = broker_store_get_result(core->store, rec.id);
    if (!result)
        lynx_err_set(err, LYNX_ENOTFOUND, "job_id", "job %s has no result yet (status %s)", rec.id,
                     lynx_job_state_name(rec.status));
    return result;
}

static const struct {
    const char *op;
    s_op_fn *handler;
} s_ops[] = {
    {"health", s_op_health},       {"batch.submit", broker_submit_op},
    {"batch.get", s_op_batch_get}, {"batch.results", s_op_batch_results},
    {"job.get", s_op_job_get},     {"job.results", s_op_job_results},
};

void broker_api_reply(broker_core_t *core, const broker_request_t *request, lynx_value_t **body_p)
{
    lynx_msg_t *reply = lynx_msg_new(LYNX_MSG_REPLY);
    lynx_value_set_int(lynx_msg_body(reply), "corr", request->corr);
    if (lynx_value_set(lynx_msg_body(reply), "body", body_p))
        lynx_value_destroy(body_p);
    lynx_err_t err;
    if (lynx_msg_send(&reply, zsock_resolve(core->api_socket), request->routing_id, &err))
        zsys_warning("broker: cannot send reply corr=%" PRId64 ": %s", request->corr, err.message);
}

void broker_api_handle(broker_core_t *core, zframe_t *routing_id, lynx_msg_t *msg)
{
    lynx_value_t *body = lynx_msg_body(msg);
    broker_request_t request = {
        .routing_id = routing_id,
        .corr = lynx_value_get_int(body, "corr", 0),
        .deadline_ms = lynx_value_get_int(body, "deadline_ms", 0),
    };
    lynx_err_t err;
    lynx_err_clear(&err);
    if (lynx_msg_id(msg) != LYNX_MSG_REQUEST) {
        lynx_err_set(&err, LYNX_EPROTOCOL, NULL, "expected REQUEST, got %s", lynx_msg_command(msg));
        broker_send_error(core->api_socket, routing_id, request.corr, &err, NULL);
        return;
    }
    const char *op = lynx_value_get_string(body, "op", "");
    //  A request that waited past its deadline has been answered 503 already: acting on it now
    //  (say, creating a batch) would surprise the client that was told it failed.
    if (request.deadline_ms > 0 && lynx_time_now_ms() > request.deadline_ms) {
        if (request.corr != 0) //  corr 0 is a gateway's liveness ping: not worth a line
            zsys_warning("broker: expired request dropped op=%s corr=%" PRId64, op, request.corr);
        return;
    }
    const lynx_value_t *args = lynx_value_get(body, "args");
    s_op_fn *handler = NULL;
    for (size_t i = 0; i < sizeof s_ops / sizeof s_ops[0]; i++)
        if (strcmp(s_ops[i].op, op) == 0)
            handler = s_ops[i].handler;
    if (!handler) {
        lynx_err_set(&err, LYNX_ENOTFOUND, "op", "unknown operation '%.64s'", op);
        broker_send_error(core->api_socket, routing_id, request.corr, &err, NULL);
        return;
    }
    lynx_value_t *errors = NULL;
    lynx_value_t *reply_body = handler(core, &request, args, &err, &errors);
    if (reply_body)
        broker_api_reply(core, &request, &reply_body);
    else if (err.code != LYNX_OK) //  LYNX_OK without a body: the handler answers later
        broker_send_error(core->api_socket, routing_id, request.corr, &err, &errors);
    lynx_value_destroy(&errors);
}
