//  broker_api: the REQUEST operations API clients (the gateway) call, as one table of
//  operation name -> handler. Each handler returns a reply body or fills err.
#include "broker_core.h"

#include "broker_rng.h"
#include "broker_study.h"
#include "lynx_time.h"

#define BROKER_NAME_MAX 256
#define BROKER_DRY_RUN_PREVIEW 5 //  parameter sets shown by a dry run

typedef lynx_value_t *(s_op_fn)(broker_core_t *core, const lynx_value_t *args, lynx_err_t *err,
                                lynx_value_t **errors_p);

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
//  batch.submit

static void s_add_error(lynx_value_t *errors, const char *field, const char *message)
{
    lynx_value_t *entry = lynx_value_map();
    lynx_value_set_string(entry, "field", field);
    lynx_value_set_string(entry, "message", message);
    if (lynx_value_append(errors, &entry))
        lynx_value_destroy(&entry);
}

//  The submission's own fields (everything but the config's inside).
static int64_t s_check_submission(const lynx_value_t *args, lynx_value_t *errors)
{
    const lynx_value_t *name = lynx_value_get(args, "name");
    if (!name)
        s_add_error(errors, "name", "required");
    else if (lynx_value_type(name) != LYNX_VALUE_STRING || lynx_value_string_len(name) == 0)
        s_add_error(errors, "name", "must be a non-empty string");
    else if (lynx_value_string_len(name) > BROKER_NAME_MAX)
        s_add_error(errors, "name", "must be at most 256 characters");
    const lynx_value_t *runs_override = lynx_value_get(args, "runs_override");
    int64_t runs = 0;
    if (runs_override && lynx_value_type(runs_override) != LYNX_VALUE_NULL) {
        runs = lynx_value_get_int(args, "runs_override", -1);
        if (runs < 1 || runs > 10000000) {
            s_add_error(errors, "runs_override", "must be an integer between 1 and 10000000");
            runs = 0;
        }
    }
    if (!lynx_value_get(args, "config"))
        s_add_error(errors, "config", "required");
    else if (lynx_value_type(lynx_value_get(args, "config")) != LYNX_VALUE_MAP)
        s_add_error(errors, "config", "must be an object");
    return runs;
}

//  A time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix milliseconds, a 12-bit sequence
//  that keeps ids from one millisecond in order, then 62 random bits from the core's generator
//  (seeded from the OS). Ordered ids make a million-job insert append to the id index instead of
//  scattering over it, and need no system call per job.
static void s_new_id(broker_core_t *core, char *id)
{
    int64_t now_ms = lynx_time_now_ms();
    if (now_ms > core->id_ms) {
        core->id_ms = now_ms;
        core->id_sequence = 0;
    } else if (++core->id_sequence > 0xfff) { //  4096 ids this millisecond: borrow the next one
        core->id_ms++;
        core->id_sequence = 0;
    }
    uint64_t high = ((uint64_t)core->id_ms << 16) | 0x7000u | (uint64_t)core->id_sequence;
    uint64_t low = (broker_rng_next(&core->id_rng) >> 2) | (0x2ull << 62); //  RFC variant
    snprintf(id, BROKER_ID_SIZE, "%08x-%04x-%04x-%04x-%012" PRIx64, (unsigned)(high >> 32),
             (unsigned)((high >> 16) & 0xffff), (unsigned)(high & 0xffff), (unsigned)(low >> 48),
             (uint64_t)(low & 0xffffffffffffull));
}

//  SHA-1 of the config's msgpack form: equal configs submitted the same way share a hash.
static void s_config_hash(const lynx_value_t *config, char *hash, size_t size)
{
    unsigned char *data = NULL;
    size_t length = 0;
    hash[0] = '\0';
    if (lynx_msgpack_pack(config, &data, &length))
        return;
    zdigest_t *digest = zdigest_new();
    zdigest_update(digest, data, length);
    snprintf(hash, size, "%s", zdigest_string(digest));
    for (char *c = hash; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    zdigest_destroy(&digest);
    free(data);
}

broker_batch_t *broker_batch_from_study(const char *id, const char *name,
                                        const broker_study_t *study, int64_t created_at_ms)
{
    broker_batch_t *batch = (broker_batch_t *)calloc(1, sizeof *batch);
    snprintf(batch->id, sizeof batch->id, "%s", id);
    batch->name = strdup(name);
    batch->engine = strdup(broker_study_engine(study));
    batch->simulation_name = strdup(broker_study_simulation_name(study));
    batch->simulation_version = strdup(broker_study_simulation_version(study));
    batch->sampling_method = strdup(broker_study_sampling_method(study));
    batch->duration_minutes = broker_study_duration_minutes(study);
    batch->created_at_ms = created_at_ms;
    batch->total_jobs = broker_study_runs(study);
    batch->max_parallel_jobs = broker_study_max_parallel_jobs(study);
    batch->status = LYNX_BATCH_PENDING;
    return batch;
}

//  Write the batch row and every job row in one transaction.
static int s_persist_batch(broker_core_t *core, const broker_batch_rec_t *rec,
                           broker_study_t *study, lynx_err_t *err)
{
    if (broker_store_begin(core->store))
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
    int rc = broker_store_insert_batch(core->store, rec);
    broker_job_rec_t job = {0};
    snprintf(job.batch_id, sizeof job.batch_id, "%s", rec->id);
    job.status = LYNX_JOB_PENDING;
    job.max_retries = broker_study_max_retries(study);
    job.timeout_secs = broker_study_timeout_secs(study);
    job.created_at_ms = rec->created_at_ms;
    for (int64_t run = 0; rc == 0 && run < rec->total_jobs; run++) {
        s_new_id(core, job.id);
        job.run_id = run;
        lynx_value_t *parameters = broker_study_run_parameters(study, run);
        rc = parameters ? broker_store_insert_job(core->store, &job, parameters) : -1;
        lynx_value_destroy(&parameters);
    }
    if (rc == 0)
        rc = broker_store_commit(core->store);
    if (rc) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "cannot store batch: %s",
                     broker_store_error(core->store));
        broker_store_rollback(core->store);
    }
    return rc;
}

//  What a submission would create, without creating it: the size, the seed and the first
//  parameter sets.
static lynx_value_t *s_dry_run_reply(const broker_study_t *study, lynx_value_t *warnings)
{
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_bool(reply, "dry_run", true);
    lynx_value_set_int(reply, "total_jobs", broker_study_runs(study));
    lynx_value_set_int(reply, "seed", (int64_t)broker_study_seed(study));
    lynx_value_set_string(reply, "sampling_method", broker_study_sampling_method(study));
    s_set_owned(reply, "warnings", warnings);
    lynx_value_t *preview = lynx_value_array();
    int64_t shown = broker_study_runs(study) < BROKER_DRY_RUN_PREVIEW ? broker_study_runs(study)
                                                                      : BROKER_DRY_RUN_PREVIEW;
    for (int64_t run = 0; run < shown; run++) {
        lynx_value_t *parameters = broker_study_run_parameters(study, run);
        if (parameters && lynx_value_append(preview, &parameters))
            lynx_value_destroy(&parameters);
    }
    s_set_owned(reply, "parameters", preview);
    return reply;
}

static lynx_value_t *s_op_submit(broker_core_t *core, const lynx_value_t *args, lynx_err_t *err,
                                 lynx_value_t **errors_p)
{
    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    int64_t runs_override = s_check_submission(args, errors);
    const lynx_value_t *config = lynx_value_get(args, "config");
    broker_study_t *study = NULL;
    if (lynx_value_type(config) == LYNX_VALUE_MAP)
        study = broker_study_new(config, runs_override, errors, warnings);
    if (lynx_value_size(errors) > 0) {
        const lynx_value_t *first = lynx_value_at(errors, 0);
        size_t more = lynx_value_size(errors) - 1;
        char suffix[64] = "";
        if (more)
            snprintf(suffix, sizeof suffix, " (and %zu more error%s)", more, more > 1 ? "s" : "");
        lynx_err_set(err, LYNX_EINVALID, lynx_value_get_string(first, "field", ""), "%s: %s%s",
                     lynx_value_get_string(first, "field", ""),
                     lynx_value_get_string(first, "message", ""), suffix);
        *errors_p = errors;
        broker_study_destroy(&study);
        lynx_value_destroy(&warnings);
        return NULL;
    }
    lynx_value_destroy(&errors);
    if (broker_study_sample(study)) {
        broker_study_destroy(&study);
        lynx_value_destroy(&warnings);
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory while sampling");
        return NULL;
    }
    if (lynx_value_get_bool(args, "dry_run", false)) {
        lynx_value_t *reply = s_dry_run_reply(study, warnings);
        broker_study_destroy(&study);
        return reply;
    }
    char hash[64];
    s_config_hash(config, hash, sizeof hash);
    broker_batch_rec_t rec = {
        .name = lynx_value_get_string(args, "name", ""),
        .status = LYNX_BATCH_PENDING,
        .total_jobs = broker_study_runs(study),
        .created_at_ms = lynx_time_now_ms(),
        .config = config,
        .config_hash = hash,
        .seed = broker_study_seed(study),
    };
    s_new_id(core, rec.id);
    if (s_persist_batch(core, &rec, study, err)) {
        broker_study_destroy(&study);
        lynx_value_destroy(&warnings);
        return NULL;
    }
    broker_batch_t *batch = broker_batch_from_study(rec.id, rec.name, study, rec.created_at_ms);
    batch->counts[LYNX_JOB_PENDING] = rec.total_jobs;
    broker_sched_add_batch(core, batch);
    zsys_info("broker: batch accepted batch=%s name=\"%s\" jobs=%" PRId64 " seed=%" PRIu64, rec.id,
              rec.name, rec.total_jobs, rec.seed);
    broker_study_destroy(&study);

    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "batch_id", rec.id);
    lynx_value_set_int(reply, "total_jobs", rec.total_jobs);
    lynx_value_set_null(reply, "estimated_completion_time_mins");
    lynx_value_set_int(reply, "seed", (int64_t)rec.seed);
    s_set_owned(reply, "warnings", warnings);
    broker_sched_dispatch(core);
    return reply;
}

// --------------------------------------------------------------------------------------------
//  Reading batches and jobs

static lynx_value_t *s_op_health(broker_core_t *core, const lynx_value_t *args, lynx_err_t *err,
                                 lynx_value_t **errors_p)
{
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

static lynx_value_t *s_op_batch_get(broker_core_t *core, const lynx_value_t *args, lynx_err_t *err,
                                    lynx_value_t **errors_p)
{
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

static lynx_value_t *s_op_batch_results(broker_core_t *core, const lynx_value_t *args,
                                        lynx_err_t *err, lynx_value_t **errors_p)
{
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

static lynx_value_t *s_op_job_get(broker_core_t *core, const lynx_value_t *args, lynx_err_t *err,
                                  lynx_value_t **errors_p)
{
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

static lynx_value_t *s_op_job_results(broker_core_t *core, const lynx_value_t *args,
                                      lynx_err_t *err, lynx_value_t **errors_p)
{
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
    {"health", s_op_health},       {"batch.submit", s_op_submit},
    {"batch.get", s_op_batch_get}, {"batch.results", s_op_batch_results},
    {"job.get", s_op_job_get},     {"job.results", s_op_job_results},
};

void broker_api_handle(broker_core_t *core, zframe_t *routing_id, lynx_msg_t *msg)
{
    lynx_value_t *body = lynx_msg_body(msg);
    int64_t corr = lynx_value_get_int(body, "corr", 0);
    lynx_err_t err;
    lynx_err_clear(&err);
    if (lynx_msg_id(msg) != LYNX_MSG_REQUEST) {
        lynx_err_set(&err, LYNX_EPROTOCOL, NULL, "expected REQUEST, got %s", lynx_msg_command(msg));
        broker_send_error(core->api_socket, routing_id, corr, &err, NULL);
        return;
    }
    const char *op = lynx_value_get_string(body, "op", "");
    //  A request that waited past its deadline has been answered 503 already: acting on it now
    //  (say, creating a batch) would surprise the client that was told it failed.
    int64_t deadline_ms = lynx_value_get_int(body, "deadline_ms", 0);
    if (deadline_ms > 0 && lynx_time_now_ms() > deadline_ms) {
        zsys_warning("broker: expired request dropped op=%s corr=%" PRId64, op, corr);
        return;
    }
    const lynx_value_t *args = lynx_value_get(body, "args");
    s_op_fn *handler = NULL;
    for (size_t i = 0; i < sizeof s_ops / sizeof s_ops[0]; i++)
        if (strcmp(s_ops[i].op, op) == 0)
            handler = s_ops[i].handler;
    if (!handler) {
        lynx_err_set(&err, LYNX_ENOTFOUND, "op", "unknown operation '%.64s'", op);
        broker_send_error(core->api_socket, routing_id, corr, &err, NULL);
        return;
    }
    lynx_value_t *errors = NULL;
    lynx_value_t *reply_body = handler(core, args, &err, &errors);
    if (!reply_body) {
        broker_send_error(core->api_socket, routing_id, corr, &err, &errors);
        lynx_value_destroy(&errors);
        return;
    }
    lynx_msg_t *reply = lynx_msg_new(LYNX_MSG_REPLY);
    lynx_value_set_int(lynx_msg_body(reply), "corr", corr);
    s_set_owned(lynx_msg_body(reply), "body", reply_body);
    if (lynx_msg_send(&reply, zsock_resolve(core->api_socket), routing_id, &err))
        zsys_warning("broker: cannot send reply op=%s: %s", op, err.message);
}
