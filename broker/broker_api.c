//  broker_api: the REQUEST operations API clients (the gateway) call, as one table of
//  operation name -> handler. Each handler returns a reply body or fills err.
#include "broker_core.h"
#include "broker_quarantine.h"

#include "broker_study.h"
#include "lynx_time.h"

typedef lynx_value_t *(s_op_fn)(broker_core_t *core, const broker_request_t *request,
                                const lynx_value_t *args, lynx_err_t *err, lynx_value_t **errors_p);

static void s_set_time(lynx_value_t *map, const char *key, int64_t epoch_ms)
{
    char text[LYNX_TIME_RFC3339_SIZE];
    lynx_value_set_string(map, key, epoch_ms > 0 ? lynx_time_rfc3339(epoch_ms, text) : NULL);
}

static broker_batch_t *s_find_batch(broker_core_t *core, const lynx_value_t *args, lynx_err_t *err)
{
    const char *batch_id = lynx_value_get_string(args, "batch_id", "");
    broker_batch_t *batch = broker_batches_lookup(core->batches, batch_id);
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
    for (size_t i = 0; i < broker_runners_count(core->runners); i++) {
        const broker_runner_t *runner = broker_runners_at(core->runners, i);
        online += runner->online;
    }
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "status", "ok");
    lynx_value_set_int(reply, "batches", (int64_t)broker_batches_count(core->batches));
    lynx_value_set_int(reply, "runners_online", online);
    lynx_value_set_int(reply, "jobs_in_flight", (int64_t)broker_queue_count(core->queue));
    lynx_value_set_string(reply, "telemetry_endpoint", broker_telemetry_endpoint(core->telemetry));
    lynx_value_set_string(reply, "storage", core->storage_full ? "full" : "ok");
    return reply;
}

//  Why a batch with Pending jobs gets none started, or NULL when nothing stands in its way.
static const char *s_waiting_reason(broker_core_t *core, const broker_batch_t *batch, char *text,
                                    size_t size)
{
    if (batch->counts[LYNX_JOB_PENDING] == 0 || batch->cancelled)
        return NULL;
    return broker_match_unservable(core, batch, text, size);
}

static lynx_value_t *s_batch_view(broker_core_t *core, broker_batch_t *batch)
{
    int64_t now_ms = lynx_time_now_ms();
    lynx_value_t *view = lynx_value_map();
    lynx_value_set_string(view, "id", batch->id);
    lynx_value_set_string(view, "name", batch->name);
    lynx_value_set_string(view, "submitted_by", batch->submitted_by);
    lynx_value_set_string(view, "token_name", batch->token_name);
    lynx_value_set_string(view, "status", lynx_batch_state_name(batch->status));
    lynx_value_set_int(view, "total_jobs", batch->total_jobs);
    lynx_value_set_int(view, "completed_jobs", batch->counts[LYNX_JOB_COMPLETED]);
    lynx_value_set_int(view, "failed_jobs",
                       batch->counts[LYNX_JOB_FAILED] + batch->counts[LYNX_JOB_TIMEOUT]);
    s_set_time(view, "created_at", batch->created_at_ms);
    lynx_value_set_string(view, "config_hash", batch->config_hash);
    lynx_value_set_int(view, "seed", (int64_t)batch->seed);
    lynx_value_set_string(view, "sampling_method", batch->sampling_method);
    lynx_value_set_string(view, "engine", batch->engine);
    lynx_value_set_bool(view, "cancelled", batch->cancelled);

    lynx_value_t *by_status = lynx_value_map();
    for (int state = 0; state < LYNX_JOB_STATE_COUNT; state++)
        lynx_value_set_int(by_status, lynx_job_state_name((lynx_job_state_t)state),
                           batch->counts[state]);
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_owned(reply, "batch", view);
    lynx_value_set_owned(reply, "jobs_by_status", by_status);
    lynx_value_set_double(reply, "throughput_jobs_per_minute",
                          broker_stats_throughput(batch->stats, now_ms));
    double eta = broker_stats_eta_minutes(batch->stats, broker_batch_remaining(batch), now_ms);
    if (eta >= 0)
        lynx_value_set_double(reply, "estimated_completion_time_mins", eta);
    else
        lynx_value_set_null(reply, "estimated_completion_time_mins");
    char reason[512];
    lynx_value_set_string(reply, "waiting_reason",
                          s_waiting_reason(core, batch, reason, sizeof reason));
    return reply;
}

static lynx_value_t *s_op_batch_get(broker_core_t *core, const broker_request_t *request,
                                    const lynx_value_t *args, lynx_err_t *err,
                                    lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    broker_batch_t *batch = s_find_batch(core, args, err);
    return batch ? s_batch_view(core, batch) : NULL;
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
    lynx_value_set_owned(reply, "results", results);
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
    broker_batch_t *batch = rc == 0 ? broker_batches_lookup(core->batches, rec->batch_id) : NULL;
    if (!batch)
        lynx_err_set(err, LYNX_ENOTFOUND, "job_id", "no job with id '%.64s'", job_id);
    return batch;
}

//  A job as GET /jobs/{id} shows it: every documented field. The in-flight copy of the record
//  is the freshest.
static lynx_value_t *s_job_view(broker_core_t *core, broker_batch_t *batch,
                                const broker_job_rec_t *stored)
{
    broker_job_rec_t rec = *stored;
    broker_inflight_t *inflight = broker_queue_lookup(core->queue, rec.id);
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
    lynx_value_set_owned(job, "run_config", broker_sched_run_config(batch, &rec, &parameters));
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

//  One entry of a job's attempt history, as GET /jobs/{id} shows it.
static lynx_value_t *s_attempt_view(const broker_attempt_rec_t *attempt)
{
    lynx_value_t *view = lynx_value_map();
    lynx_value_set_int(view, "attempt", attempt->attempt);
    lynx_value_set_string(view, "runner_id", attempt->runner_id[0] ? attempt->runner_id : NULL);
    lynx_value_set_string(view, "status", lynx_job_state_name(attempt->status));
    s_set_time(view, "claimed_at", attempt->claimed_at_ms);
    s_set_time(view, "started_at", attempt->started_at_ms);
    s_set_time(view, "ended_at", attempt->ended_at_ms);
    const int64_t codes[] = {attempt->exit.code, attempt->exit.signal};
    const char *keys[] = {"exit_code", "exit_signal"};
    for (size_t i = 0; i < 2; i++)
        if (codes[i] >= 0)
            lynx_value_set_int(view, keys[i], codes[i]);
        else
            lynx_value_set_null(view, keys[i]);
    lynx_value_set_string(view, "error_message", attempt->error_message);
    if (attempt->trigger)
        lynx_value_set_owned(view, "trigger", lynx_value_dup(attempt->trigger));
    else
        lynx_value_set_null(view, "trigger");
    lynx_value_set_bool(view, "charged", attempt->charged);
    return view;
}

static int s_collect_attempt(const broker_attempt_rec_t *attempt, void *arg)
{
    return lynx_value_append_owned((lynx_value_t *)arg, s_attempt_view(attempt));
}

//  Every attempt so far: those followed by a retry are kept in the store; the current (in
//  flight) or final one is the job row itself, with its result.
static lynx_value_t *s_attempts_view(broker_core_t *core, const broker_job_rec_t *rec)
{
    lynx_value_t *list = lynx_value_array();
    if (broker_store_foreach_attempt(core->store, rec->id, s_collect_attempt, list))
        zsys_warning("broker: cannot read attempts job=%s: %s", rec->id,
                     broker_store_error(core->store));
    size_t kept = lynx_value_size(list);
    int64_t last_kept = kept ? lynx_value_get_int(lynx_value_at(list, kept - 1), "attempt", 0) : 0;
    if (rec->attempt <= last_kept || rec->status == LYNX_JOB_PENDING)
        return list;
    broker_attempt_rec_t current = {.attempt = rec->attempt,
                                    .status = rec->status,
                                    .claimed_at_ms = rec->claimed_at_ms,
                                    .started_at_ms = rec->started_at_ms,
                                    .ended_at_ms = rec->completed_at_ms,
                                    .exit = BROKER_EXIT_UNKNOWN,
                                    .charged = true};
    snprintf(current.runner_id, sizeof current.runner_id, "%s", rec->assigned_runner);
    lynx_value_t *result = NULL;
    char *error_message = NULL;
    if (lynx_job_state_terminal(rec->status)) {
        broker_store_result_exit(core->store, rec->id, &current.exit);
        result = broker_store_get_result(core->store, rec->id);
        const lynx_value_t *trigger =
            lynx_value_get(lynx_value_get(result, "telemetry_data"), "trigger");
        current.trigger = lynx_value_type(trigger) == LYNX_VALUE_MAP ? trigger : NULL;
        error_message = broker_store_job_error(core->store, rec->id);
        current.error_message = error_message;
    }
    lynx_value_append_owned(list, s_attempt_view(&current));
    lynx_value_destroy(&result);
    free(error_message);
    return list;
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
    broker_inflight_t *inflight = broker_queue_lookup(core->queue, rec.id);
    lynx_value_t *view = s_job_view(core, batch, &rec);
    lynx_value_set_owned(view, "attempts", s_attempts_view(core, inflight ? &inflight->rec : &rec));
    return view;
}

//  GET /jobs/{id}/telemetry: the stored series as JSON columns, or CSV (?format=csv), with
//  ?variables=a,b to pick columns.
static lynx_value_t *s_op_job_telemetry(broker_core_t *core, const broker_request_t *request,
                                        const lynx_value_t *args, lynx_err_t *err,
                                        lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    broker_job_rec_t rec;
    if (!s_find_job(core, args, &rec, err))
        return NULL;
    const char *format = lynx_value_get_string(args, "format", "json");
    const char *variables = lynx_value_get_string(args, "variables", NULL);
    if (strcmp(format, "csv") == 0) {
        char *csv =
            broker_telemetry_read_csv(core->telemetry, rec.batch_id, rec.id, variables, err);
        if (!csv)
            return NULL;
        lynx_value_t *reply = lynx_value_map();
        lynx_value_set_string(reply, "content_type", "text/csv");
        lynx_value_set_string(reply, "text", csv);
        free(csv);
        return reply;
    }
    if (strcmp(format, "json") != 0) {
        lynx_err_set(err, LYNX_EINVALID, "format", "format: must be json or csv, got '%.32s'",
                     format);
        return NULL;
    }
    return broker_telemetry_read(core->telemetry, rec.batch_id, rec.id, variables, err);
}

// --------------------------------------------------------------------------------------------
//  Listing with cursors

#define BROKER_PAGE_DEFAULT 50
#define BROKER_PAGE_MAX 1000

//  The list arguments every listing takes: status filter (a state name), limit, cursor.
typedef struct {
    int status; //  -1: any
    int64_t limit;
    const char *cursor; //  "" for the first page
} s_page_t;

static int s_parse_page(const lynx_value_t *args, int (*parse_status)(const char *), s_page_t *page,
                        lynx_err_t *err)
{
    const char *status = lynx_value_get_string(args, "status", NULL);
    page->status = status ? parse_status(status) : -1;
    if (status && page->status < 0)
        return lynx_err_set(err, LYNX_EINVALID, "status", "status: unknown state '%.32s'", status);
    const char *limit = lynx_value_get_string(args, "limit", NULL);
    char *end = NULL;
    page->limit = limit ? strtoll(limit, &end, 10) : BROKER_PAGE_DEFAULT;
    if (limit && (!*limit || *end || page->limit < 1 || page->limit > BROKER_PAGE_MAX))
        return lynx_err_set(err, LYNX_EINVALID, "limit",
                            "limit: must be an integer between 1 and %d", BROKER_PAGE_MAX);
    page->cursor = lynx_value_get_string(args, "cursor", "");
    return 0;
}

static lynx_value_t *s_page_reply(const char *key, lynx_value_t *items, const char *next_cursor)
{
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_int(reply, "count", (int64_t)lynx_value_size(items));
    lynx_value_set_owned(reply, key, items);
    lynx_value_set_string(reply, "next_cursor", next_cursor);
    return reply;
}

static int s_compare_batches(const void *a, const void *b)
{
    return strcmp((*(broker_batch_t *const *)a)->id, (*(broker_batch_t *const *)b)->id);
}

//  GET /batches: newest first would surprise a cursor; ids are time-ordered, so id order is
//  submission order and the cursor is the last id seen.
static lynx_value_t *s_op_batch_list(broker_core_t *core, const broker_request_t *request,
                                     const lynx_value_t *args, lynx_err_t *err,
                                     lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    s_page_t page;
    if (s_parse_page(args, lynx_batch_state_parse, &page, err))
        return NULL;
    size_t count = broker_batches_count(core->batches);
    broker_batch_t **sorted = (broker_batch_t **)calloc(count + 1, sizeof *sorted);
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        broker_batch_t *batch = broker_batches_at(core->batches, i);
        if ((page.status < 0 || (int)batch->status == page.status) &&
            strcmp(batch->id, page.cursor) > 0)
            sorted[total++] = batch;
    }
    qsort(sorted, total, sizeof *sorted, s_compare_batches);
    lynx_value_t *items = lynx_value_array();
    size_t shown = total < (size_t)page.limit ? total : (size_t)page.limit;
    for (size_t i = 0; i < shown; i++) {
        lynx_value_t *view = s_batch_view(core, sorted[i]);
        lynx_value_t *summary = lynx_value_dup(lynx_value_get(view, "batch"));
        lynx_value_t *by_status = lynx_value_dup(lynx_value_get(view, "jobs_by_status"));
        lynx_value_set_owned(summary, "jobs_by_status", by_status);
        lynx_value_destroy(&view);
        if (lynx_value_append(items, &summary))
            lynx_value_destroy(&summary);
    }
    const char *next = shown < total ? sorted[shown - 1]->id : NULL;
    lynx_value_t *reply = s_page_reply("batches", items, next);
    free(sorted);
    return reply;
}

typedef struct {
    broker_core_t *core;
    broker_batch_t *batch;
    lynx_value_t *items;
    int64_t limit;
    int64_t last_run_id;
    bool more; //  a row beyond the page exists
} s_job_page_t;

static int s_collect_job(const broker_job_rec_t *job, void *arg)
{
    s_job_page_t *page = (s_job_page_t *)arg;
    if ((int64_t)lynx_value_size(page->items) == page->limit) {
        page->more = true;
        return 1;
    }
    lynx_value_t *view = s_job_view(page->core, page->batch, job);
    if (lynx_value_append(page->items, &view))
        lynx_value_destroy(&view);
    page->last_run_id = job->run_id;
    return 0;
}

//  GET /batches/{id}/jobs: in run_id order; the cursor is the last run_id seen.
static lynx_value_t *s_op_batch_jobs(broker_core_t *core, const broker_request_t *request,
                                     const lynx_value_t *args, lynx_err_t *err,
                                     lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    broker_batch_t *batch = s_find_batch(core, args, err);
    s_page_t page;
    if (!batch || s_parse_page(args, lynx_job_state_parse, &page, err))
        return NULL;
    char *end = NULL;
    int64_t after = *page.cursor ? strtoll(page.cursor, &end, 10) : -1;
    if (*page.cursor && (*end || after < -1)) {
        lynx_err_set(err, LYNX_EINVALID, "cursor", "cursor: not a cursor this listing returned");
        return NULL;
    }
    //  One row more than the page tells whether another page exists.
    s_job_page_t collected = {core, batch, lynx_value_array(), page.limit, -1, false};
    if (broker_store_list_jobs(core->store, batch->id, page.status, after, page.limit + 1,
                               s_collect_job, &collected) < 0) {
        lynx_value_destroy(&collected.items);
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
        return NULL;
    }
    char next[32];
    snprintf(next, sizeof next, "%" PRId64, collected.last_run_id);
    return s_page_reply("jobs", collected.items, collected.more ? next : NULL);
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
    if (!result) {
        lynx_err_set(err, LYNX_ENOTFOUND, "job_id", "job %s has no result yet (status %s)", rec.id,
                     lynx_job_state_name(rec.status));
        return NULL;
    }
    //  As a row of batch.results: how the job ended, without parsing error_message.
    lynx_value_set_int(result, "run_id", rec.run_id);
    lynx_value_set_string(result, "status", lynx_job_state_name(rec.status));
    lynx_value_set_int(result, "attempt", rec.attempt);
    return result;
}

// --------------------------------------------------------------------------------------------
//  Runners

static lynx_value_t *s_runner_view(broker_core_t *core, const broker_runner_t *runner)
{
    lynx_value_t *view = lynx_value_map();
    lynx_value_set_string(view, "runner_id", runner->id);
    lynx_value_set_string(view, "name", runner->name);
    lynx_value_set_string(view, "status", broker_runners_status(runner));
    lynx_value_t *capabilities = lynx_value_dup(runner->capabilities);
    if (!capabilities || lynx_value_set(view, "capabilities", &capabilities))
        lynx_value_destroy(&capabilities);
    lynx_value_t *engines = lynx_value_dup(runner->engines);
    if (!engines || lynx_value_set(view, "engines", &engines))
        lynx_value_destroy(&engines);
    lynx_value_t *active = lynx_value_array();
    zlistx_t *mine = broker_queue_select(core->queue, broker_queue_on_runner, runner);
    for (broker_inflight_t *inflight = mine ? (broker_inflight_t *)zlistx_first(mine) : NULL;
         inflight; inflight = (broker_inflight_t *)zlistx_next(mine)) {
        lynx_value_t *id = lynx_value_string(inflight->rec.id);
        if (lynx_value_append(active, &id))
            lynx_value_destroy(&id);
    }
    zlistx_destroy(&mine);
    if (lynx_value_set(view, "active_jobs", &active))
        lynx_value_destroy(&active);
    //  last_seen is monotonic; report it as wall-clock time.
    int64_t seen_ms = lynx_time_now_ms() - (lynx_time_mono_ms() - runner->last_seen_ms);
    char text[LYNX_TIME_RFC3339_SIZE];
    lynx_value_set_string(view, "last_heartbeat", lynx_time_rfc3339(seen_ms, text));
    lynx_value_set_int(view, "jobs_completed", runner->jobs_completed);
    lynx_value_set_int(view, "jobs_failed", runner->jobs_failed);
    lynx_value_set_string(view, "hostname", runner->hostname);
    lynx_value_set_owned(view, "quarantine", broker_health_view(runner->health));
    return view;
}

static broker_runner_t *s_find_runner(broker_core_t *core, const lynx_value_t *args,
                                      lynx_err_t *err)
{
    const char *runner_id = lynx_value_get_string(args, "runner_id", "");
    broker_runner_t *runner = broker_runners_lookup(core->runners, runner_id);
    if (!runner)
        lynx_err_set(err, LYNX_ENOTFOUND, "runner_id", "no runner with id '%.128s'", runner_id);
    return runner;
}

static int s_compare_runner_ids(const void *a, const void *b)
{
    return strcmp((*(broker_runner_t *const *)a)->id, (*(broker_runner_t *const *)b)->id);
}

static lynx_value_t *s_op_runner_list(broker_core_t *core, const broker_request_t *request,
                                      const lynx_value_t *args, lynx_err_t *err,
                                      lynx_value_t **errors_p)
{
    (void)request, (void)args, (void)err, (void)errors_p;
    size_t count = broker_runners_count(core->runners);
    broker_runner_t **sorted = (broker_runner_t **)calloc(count + 1, sizeof *sorted);
    size_t index = 0;
    for (; index < count; index++)
        sorted[index] = broker_runners_at(core->runners, index);
    qsort(sorted, count, sizeof *sorted, s_compare_runner_ids);
    lynx_value_t *list = lynx_value_array();
    for (index = 0; index < count; index++) {
        lynx_value_t *view = s_runner_view(core, sorted[index]);
        if (lynx_value_append(list, &view))
            lynx_value_destroy(&view);
    }
    free(sorted);
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_int(reply, "count", (int64_t)count);
    if (lynx_value_set(reply, "runners", &list))
        lynx_value_destroy(&list);
    return reply;
}

static lynx_value_t *s_op_runner_get(broker_core_t *core, const broker_request_t *request,
                                     const lynx_value_t *args, lynx_err_t *err,
                                     lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    broker_runner_t *runner = s_find_runner(core, args, err);
    return runner ? s_runner_view(core, runner) : NULL;
}

// --------------------------------------------------------------------------------------------
//  Runner operations that change what the scheduler may do

//  Drain or resume; the choice survives a broker restart.
static lynx_value_t *s_set_draining(broker_core_t *core, const lynx_value_t *args, bool draining,
                                    lynx_err_t *err)
{
    broker_runner_t *runner = s_find_runner(core, args, err);
    if (!runner || broker_runners_set_draining(core->runners, core->store, runner, draining, err))
        return NULL;
    if (!draining) {
        if (broker_quarantine_lift(core, runner))
            broker_outbox_runner_event(core->outbox, runner->id, broker_runners_status(runner),
                                       NULL);
        broker_sched_dispatch(core);
    }
    return s_runner_view(core, runner);
}

static lynx_value_t *s_op_runner_drain(broker_core_t *core, const broker_request_t *request,
                                       const lynx_value_t *args, lynx_err_t *err,
                                       lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    return s_set_draining(core, args, true, err);
}

static lynx_value_t *s_op_runner_resume(broker_core_t *core, const broker_request_t *request,
                                        const lynx_value_t *args, lynx_err_t *err,
                                        lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    return s_set_draining(core, args, false, err);
}

static const struct {
    const char *op;
    s_op_fn *handler;
} s_ops[] = {
    {"health", s_op_health},
    {"batch.submit", broker_submit_op},
    {"batch.get", s_op_batch_get},
    {"batch.results", s_op_batch_results},
    {"job.get", s_op_job_get},
    {"job.results", s_op_job_results},
    {"runner.list", s_op_runner_list},
    {"runner.get", s_op_runner_get},
    {"runner.drain", s_op_runner_drain},
    {"runner.resume", s_op_runner_resume},
    {"batch.cancel", broker_sched_op_cancel_batch},
    {"job.cancel", broker_sched_op_cancel_job},
    {"batch.list", s_op_batch_list},
    {"job.telemetry", s_op_job_telemetry},
    {"batch.jobs", s_op_batch_jobs},
    {"job.artifacts", broker_artifact_op_list},
    {"job.artifact", broker_artifact_op_read},
    {"batch.artifact_index", broker_artifact_op_batch_index},
    {"token.verify", broker_security_op_token_verify},
    {"enrollment.create", broker_security_op_enroll},
    {"enrollment.list", broker_security_op_enrollments},
    {"enrollment.approve", broker_security_op_approve},
    {"enrollment.reject", broker_security_op_reject},
    {"runner.revoke_key", broker_security_op_revoke},
};

void broker_api_handle(broker_core_t *core, zframe_t *routing_id, lynx_msg_t *msg)
{
    lynx_value_t *body = lynx_msg_body(msg);
    broker_request_t request = {
        .routing_id = routing_id,
        .corr = lynx_value_get_int(body, "corr", 0),
        .deadline_ms = lynx_value_get_int(body, "deadline_ms", 0),
        .principal = lynx_value_get_string(lynx_value_get(body, "principal"), "name", NULL),
        .role = LYNX_ROLE_ADMIN,
    };
    lynx_role_parse(lynx_value_get_string(lynx_value_get(body, "principal"), "role", NULL),
                    &request.role);
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
    char request_hash[65] = "";
    const char *key = lynx_value_get_string(body, "idempotency_key", NULL);
    if (key && *key && broker_idempotency_applies(op, args)) {
        broker_idempotency_hash(op, args, request_hash);
        request.idempotency_key = key;
        request.request_hash = request_hash;
        if (broker_idempotency_replay(core, &request, op))
            return;
    }
    if (core->storage_full && broker_idempotency_applies(op, args)) {
        broker_storage_refuse(core, &err);
        broker_send_error(core->api_socket, routing_id, request.corr, &err, NULL);
        return;
    }
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
    //  A submit records its answer with its batch (broker_submit); the others here.
    if (request.idempotency_key && strcmp(op, "batch.submit") != 0 &&
        (reply_body || err.code != LYNX_OK))
        broker_idempotency_record(core, &request, op, reply_body, &err, errors);
    if (request.idempotency_key && strcmp(op, "batch.submit") == 0 && !reply_body &&
        err.code != LYNX_OK)
        broker_idempotency_record(core, &request, op, NULL, &err, errors);
    if (reply_body)
        broker_send_reply(core->api_socket, request.routing_id, request.corr, &reply_body);
    else if (err.code != LYNX_OK) //  LYNX_OK without a body: the handler answers later
        broker_send_error(core->api_socket, routing_id, request.corr, &err, &errors);
    lynx_value_destroy(&errors);
}
