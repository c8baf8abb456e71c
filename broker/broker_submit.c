//  broker_submit: the batch.submit operation. Validates and samples the study, then writes the
//  batch and its jobs. A big batch is written in chunks, one transaction per loop turn, so the
//  loop keeps serving runners and other clients; its row says "Creating" until the last chunk
//  commits, the client is answered only then, and a broker that dies half-way removes the
//  partial batch at its next start (it was never acknowledged).
#include "broker_core.h"

#include "broker_study.h"
#include "lynx_problems.h"
#include "lynx_time.h"

#define BROKER_NAME_MAX 256
#define BROKER_SUBMITTED_BY_MAX 128 //  characters of submitted_by (UTF-8 code points)
#define BROKER_DRY_RUN_PREVIEW 5    //  parameter sets shown by a dry run
#define BROKER_SUBMIT_CHUNK 20000   //  jobs written per loop turn

//  A batch being written.
typedef struct {
    broker_core_t *core;
    zframe_t *routing_id;
    int64_t corr;
    int64_t deadline_ms;
    broker_study_t *study;
    broker_batch_rec_t rec;
    char *name;
    char *submitted_by; //  NULL: not given
    char *token_name;   //  the token it came with; NULL without auth
    lynx_value_t *warnings;
    lynx_value_t *sections; //  the config sections runners need (broker_section_names), kept
    char config_hash[48];
    int64_t next_run;      //  first run not yet written
    bool started;          //  the Creating row exists
    char *idempotency_key; //  the request's, or NULL: its answer is recorded with the batch
    char request_hash[65];
} s_submission_t;

//  submitted_by, when given (null counts as not given): who submitted the batch, for the batch
//  views; 1 to 128 characters, none of them a control character.
static void s_check_submitted_by(const lynx_value_t *submitted_by, lynx_value_t *errors)
{
    if (!submitted_by || lynx_value_type(submitted_by) == LYNX_VALUE_NULL)
        return;
    if (lynx_value_type(submitted_by) != LYNX_VALUE_STRING) {
        lynx_problems_add(errors, "submitted_by", NULL, "must be a string");
        return;
    }
    const unsigned char *text = (const unsigned char *)lynx_value_as_string(submitted_by);
    size_t length = lynx_value_string_len(submitted_by), characters = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < 0x20 || text[i] == 0x7f) {
            char message[96];
            snprintf(message, sizeof message,
                     "must be printable: control character 0x%02x at character %zu", text[i],
                     characters + 1);
            lynx_problems_add(errors, "submitted_by", NULL, message);
            return;
        }
        characters += (text[i] & 0xc0) != 0x80; //  UTF-8 continuation bytes end no character
    }
    if (characters < 1 || characters > BROKER_SUBMITTED_BY_MAX)
        lynx_problems_add(errors, "submitted_by", NULL, "must be 1 to 128 characters");
}

//  The submission's own fields (everything but the config's inside). Returns runs_override, 0
//  when absent or invalid.
static int64_t s_check_submission(const lynx_value_t *args, lynx_value_t *errors)
{
    const lynx_value_t *name = lynx_value_get(args, "name");
    if (!name)
        lynx_problems_add(errors, "name", NULL, "required");
    else if (lynx_value_type(name) != LYNX_VALUE_STRING || lynx_value_string_len(name) == 0)
        lynx_problems_add(errors, "name", NULL, "must be a non-empty string");
    else if (lynx_value_string_len(name) > BROKER_NAME_MAX)
        lynx_problems_add(errors, "name", NULL, "must be at most 256 characters");
    s_check_submitted_by(lynx_value_get(args, "submitted_by"), errors);
    const lynx_value_t *runs_override = lynx_value_get(args, "runs_override");
    int64_t runs = 0;
    if (runs_override && lynx_value_type(runs_override) != LYNX_VALUE_NULL) {
        runs = lynx_value_get_int(args, "runs_override", -1);
        if (runs < 1 || runs > 10000000) {
            lynx_problems_add(errors, "runs_override", NULL,
                              "must be an integer between 1 and 10000000");
            runs = 0;
        }
    }
    if (!lynx_value_get(args, "config"))
        lynx_problems_add(errors, "config", NULL, "required");
    else if (lynx_value_type(lynx_value_get(args, "config")) != LYNX_VALUE_MAP)
        lynx_problems_add(errors, "config", NULL, "must be an object");
    return runs;
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

//  What a submission would create, without creating it: the size, the seed and the first
//  parameter sets.
static lynx_value_t *s_dry_run_reply(const broker_study_t *study, lynx_value_t *warnings)
{
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_bool(reply, "dry_run", true);
    lynx_value_set_int(reply, "total_jobs", broker_study_runs(study));
    lynx_value_set_int(reply, "seed", (int64_t)broker_study_seed(study));
    lynx_value_set_string(reply, "sampling_method", broker_study_sampling_method(study));
    lynx_value_set_owned(reply, "warnings", warnings);
    lynx_value_t *preview = lynx_value_array();
    int64_t runs = broker_study_runs(study);
    int64_t shown = runs < BROKER_DRY_RUN_PREVIEW ? runs : BROKER_DRY_RUN_PREVIEW;
    for (int64_t run = 0; run < shown; run++) {
        lynx_value_t *parameters = broker_study_run_parameters(study, run);
        if (parameters && lynx_value_append(preview, &parameters))
            lynx_value_destroy(&parameters);
    }
    lynx_value_set_owned(reply, "parameters", preview);
    return reply;
}

static void s_submission_destroy(s_submission_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_submission_t *self = *self_p;
    zframe_destroy(&self->routing_id);
    broker_study_destroy(&self->study);
    lynx_value_destroy(&self->warnings);
    lynx_value_destroy(&self->sections);
    free(self->name);
    free(self->idempotency_key);
    free(self->submitted_by);
    free(self->token_name);
    free(self);
    *self_p = NULL;
}

//  The answer to the submit: {batch_id, total_jobs, estimated_completion_time_mins, seed,
//  warnings}.
static lynx_value_t *s_reply(const s_submission_t *self)
{
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "batch_id", self->rec.id);
    lynx_value_set_int(reply, "total_jobs", self->rec.total_jobs);
    lynx_value_set_null(reply, "estimated_completion_time_mins");
    lynx_value_set_int(reply, "seed", (int64_t)self->rec.seed);
    lynx_value_set_owned(reply, "warnings",
                         self->warnings ? lynx_value_dup(self->warnings) : lynx_value_array());
    return reply;
}

//  Write the next chunk of jobs (and the batch row first) in one transaction.
static int s_write_chunk(s_submission_t *self, lynx_err_t *err)
{
    broker_store_t *store = self->core->store;
    if (broker_store_begin(store))
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(store));
    int rc = 0;
    if (!self->started) {
        rc = broker_store_insert_batch(store, &self->rec);
        self->started = rc == 0;
    }
    broker_job_rec_t job = {0};
    snprintf(job.batch_id, sizeof job.batch_id, "%s", self->rec.id);
    job.status = LYNX_JOB_PENDING;
    job.max_retries = broker_study_max_retries(self->study);
    job.timeout_secs = broker_study_timeout_secs(self->study);
    job.created_at_ms = self->rec.created_at_ms;
    int64_t end = self->next_run + BROKER_SUBMIT_CHUNK;
    if (end > self->rec.total_jobs)
        end = self->rec.total_jobs;
    for (int64_t run = self->next_run; rc == 0 && run < end; run++) {
        broker_ids_next(self->core->ids, job.id);
        job.run_id = run;
        lynx_value_t *parameters = broker_study_run_parameters(self->study, run);
        rc = parameters ? broker_store_insert_job(store, &job, parameters) : -1;
        lynx_value_destroy(&parameters);
    }
    if (rc == 0 && end == self->rec.total_jobs)
        rc = broker_store_update_batch_status(store, self->rec.id, LYNX_BATCH_PENDING);
    //  The key's answer becomes durable with the batch it created: never one without the other.
    if (rc == 0 && end == self->rec.total_jobs && self->idempotency_key) {
        lynx_value_t *reply = s_reply(self);
        broker_answer_t answer = {.key = self->idempotency_key,
                                  .op = "batch.submit",
                                  .request_hash = self->request_hash,
                                  .answer = reply,
                                  .created_at_ms = lynx_time_now_ms()};
        rc = reply ? broker_store_put_answer(store, &answer) : -1;
        lynx_value_destroy(&reply);
    }
    if (rc == 0)
        rc = broker_store_commit(store);
    if (rc) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "cannot store batch: %s",
                     broker_store_error(store));
        broker_store_rollback(store);
        return -1;
    }
    self->next_run = end;
    return 0;
}

//  The batch is complete on disk: schedule it and build the answer.
static lynx_value_t *s_finish(s_submission_t *self)
{
    broker_core_t *core = self->core;
    broker_batch_origin_t origin = {.id = self->rec.id,
                                    .name = self->name,
                                    .study = self->study,
                                    .config = self->sections,
                                    .created_at_ms = self->rec.created_at_ms,
                                    .seed = self->rec.seed,
                                    .config_hash = self->config_hash,
                                    .submitted_by = self->submitted_by,
                                    .token_name = self->token_name};
    broker_batch_t *batch = broker_batch_new(&origin);
    int64_t counts[LYNX_JOB_STATE_COUNT] = {[LYNX_JOB_PENDING] = self->rec.total_jobs};
    if (batch)
        broker_batch_restore(batch, counts, LYNX_BATCH_PENDING, false);
    else
        zsys_error("broker: out of memory tracking batch=%s", self->rec.id);
    broker_sched_add_batch(core, &batch);
    zsys_info("broker: batch accepted batch=%s name=\"%s\" jobs=%" PRId64 " seed=%" PRIu64,
              self->rec.id, self->name, self->rec.total_jobs, self->rec.seed);
    return s_reply(self);
}

//  Remove what a failed or abandoned submission wrote.
static void s_undo(s_submission_t *self)
{
    if (self->started && broker_store_delete_batch(self->core->store, self->rec.id))
        zsys_error("broker: cannot remove partial batch batch=%s: %s (removed at next start)",
                   self->rec.id, broker_store_error(self->core->store));
}

static int s_on_chunk_timer(zloop_t *loop, int timer_id, void *arg);

//  The big submissions being written, oldest first.
struct broker_submissions_t {
    zlistx_t *list; //  of s_submission_t
};

static void s_schedule_chunk(broker_core_t *core)
{
    zloop_timer(core->loop, 1, 1, s_on_chunk_timer, core);
}

//  One chunk of the oldest submission per loop turn; other events run in between.
static int s_on_chunk_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    broker_core_t *core = (broker_core_t *)arg;
    s_submission_t *self = (s_submission_t *)zlistx_first(core->submissions->list);
    if (!self)
        return 0;
    broker_request_t request = {
        .routing_id = self->routing_id, .corr = self->corr, .deadline_ms = self->deadline_ms};
    lynx_err_t err;
    lynx_err_clear(&err);
    bool expired = self->deadline_ms > 0 && lynx_time_now_ms() > self->deadline_ms;
    if (expired || s_write_chunk(self, &err)) {
        if (expired)
            zsys_warning("broker: submission abandoned, client gave up batch=%s written=%" PRId64
                         "/%" PRId64,
                         self->rec.id, self->next_run, self->rec.total_jobs);
        else
            broker_send_error(core->api_socket, self->routing_id, self->corr, &err, NULL);
        s_undo(self);
        zlistx_delete(core->submissions->list, zlistx_cursor(core->submissions->list));
    } else if (self->next_run == self->rec.total_jobs) {
        lynx_value_t *reply = s_finish(self);
        broker_send_reply(core->api_socket, request.routing_id, request.corr, &reply);
        zlistx_delete(core->submissions->list, zlistx_cursor(core->submissions->list));
        broker_sched_dispatch(core);
    }
    if (zlistx_size(core->submissions->list))
        s_schedule_chunk(core);
    return 0;
}

bool broker_submissions_has_key(const broker_submissions_t *self, const char *key)
{
    zlistx_t *list = self->list;
    for (s_submission_t *each = (s_submission_t *)zlistx_first(list); each;
         each = (s_submission_t *)zlistx_next(list))
        if (each->idempotency_key && strcmp(each->idempotency_key, key) == 0)
            return true;
    return false;
}

broker_submissions_t *broker_submissions_new(void)
{
    broker_submissions_t *self = calloc(1, sizeof *self);
    if (self && !(self->list = zlistx_new()))
        free(self), self = NULL;
    if (self)
        zlistx_set_destructor(self->list, (zlistx_destructor_fn *)s_submission_destroy);
    return self;
}

void broker_submissions_destroy(broker_submissions_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zlistx_destroy(&(*self_p)->list);
    free(*self_p);
    *self_p = NULL;
}

broker_study_t *broker_submit_check(const lynx_value_t *args, lynx_value_t *errors,
                                    lynx_value_t *warnings)
{
    size_t known = lynx_value_size(errors);
    int64_t runs_override = s_check_submission(args, errors);
    const lynx_value_t *config = lynx_value_get(args, "config");
    broker_study_t *study = NULL;
    if (lynx_value_type(config) == LYNX_VALUE_MAP)
        study = broker_study_new(config, runs_override, errors, warnings);
    if (lynx_value_size(errors) > known)
        broker_study_destroy(&study);
    return study;
}

lynx_value_t *broker_submit_op(broker_core_t *core, const broker_request_t *request,
                               const lynx_value_t *args, lynx_err_t *err, lynx_value_t **errors_p)
{
    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    broker_study_t *study = broker_submit_check(args, errors, warnings);
    const lynx_value_t *config = lynx_value_get(args, "config");
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

    s_submission_t *self = (s_submission_t *)calloc(1, sizeof *self);
    self->core = core;
    self->routing_id = zframe_dup(request->routing_id);
    self->corr = request->corr;
    self->deadline_ms = request->deadline_ms;
    if (request->idempotency_key) {
        self->idempotency_key = strdup(request->idempotency_key);
        snprintf(self->request_hash, sizeof self->request_hash, "%s", request->request_hash);
    }
    self->study = study;
    self->warnings = warnings;
    self->name = strdup(lynx_value_get_string(args, "name", ""));
    const char *submitted_by = lynx_value_get_string(args, "submitted_by", NULL);
    self->submitted_by = submitted_by ? strdup(submitted_by) : NULL;
    self->token_name = request->principal ? strdup(request->principal) : NULL;
    //  The request (and its config) is gone once a big batch goes on in later loop turns.
    self->sections = lynx_value_map();
    for (size_t i = 0; i < BROKER_SECTION_COUNT; i++) {
        lynx_value_t *copy = lynx_value_dup(lynx_value_get(config, broker_section_names[i]));
        if (copy && lynx_value_set(self->sections, broker_section_names[i], &copy))
            lynx_value_destroy(&copy);
    }
    s_config_hash(config, self->config_hash, sizeof self->config_hash);
    self->rec = (broker_batch_rec_t){
        .name = self->name,
        .submitted_by = self->submitted_by,
        .token_name = self->token_name,
        .status = LYNX_BATCH_PENDING,
        .creating = true,
        .total_jobs = broker_study_runs(study),
        .created_at_ms = lynx_time_now_ms(),
        .config = config,
        .config_hash = self->config_hash,
        .seed = broker_study_seed(study),
    };
    broker_ids_next(core->ids, self->rec.id);
    if (self->rec.total_jobs > BROKER_SUBMIT_CHUNK) {
        //  config and hash are borrowed by rec: write the batch row now, while they live.
        if (s_write_chunk(self, err)) {
            s_undo(self);
            s_submission_destroy(&self);
            return NULL;
        }
        self->rec.config = NULL; //  borrowed from the request, which is gone after this call
        zlistx_add_end(core->submissions->list, self);
        if (zlistx_size(core->submissions->list) == 1)
            s_schedule_chunk(core);
        lynx_err_clear(err); //  answered when the last chunk commits
        return NULL;
    }
    lynx_value_t *reply = NULL;
    if (s_write_chunk(self, err) == 0) {
        reply = s_finish(self);
        broker_sched_dispatch(core);
    } else
        s_undo(self);
    s_submission_destroy(&self);
    return reply;
}
