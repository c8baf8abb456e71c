//  broker_health: black-hole runners. A runner whose last K attempts all failed while other
//  runners completed jobs of the same batches is quarantined (HTCondor's and Slurm's node
//  health checks do the same): it gets no work until an operator resumes it, and the retries
//  its failures cost are given back to the jobs that can still use them.
//
//  A broken runner fails fast, often before any other runner has completed anything, so a
//  runner whose streak reached K without that evidence yet is *suspect*: it takes no work
//  while a healthy runner able to serve the batch exists, and the first completion elsewhere
//  quarantines it. With no other runner it keeps working: without evidence the batch, not the
//  runner, may be what fails.
#include "broker_core.h"

#include "lynx_time.h"

#define BROKER_HEALTH_ERROR_MAX 1024 //  bytes of the last error kept

//  One counted failure: which attempt, of which batch.
typedef struct {
    char job_id[BROKER_ID_SIZE];
    char batch_id[BROKER_ID_SIZE];
    int64_t attempt;
} s_failure_t;

struct _broker_health_t {
    s_failure_t *failures; //  the streak's last `limit` failures, oldest first
    size_t count;
    size_t limit;
    int64_t streak; //  failures in a row (may exceed limit)
    char last_error[BROKER_HEALTH_ERROR_MAX];
    bool suspect_logged;
    //  The quarantine, while it lasts.
    bool quarantined;
    char reason[256];
    char quarantine_error[BROKER_HEALTH_ERROR_MAX];
    int64_t since_ms;
    int64_t failed_attempts;
};

broker_health_t *broker_health_new(size_t limit)
{
    broker_health_t *self = (broker_health_t *)calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->limit = limit;
    self->failures = limit ? (s_failure_t *)calloc(limit, sizeof *self->failures) : NULL;
    if (limit && !self->failures)
        free(self), self = NULL;
    return self;
}

void broker_health_destroy(broker_health_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->failures);
    free(*self_p);
    *self_p = NULL;
}

static void s_clear(broker_health_t *self)
{
    self->count = 0;
    self->streak = 0;
    self->suspect_logged = false;
}

int64_t broker_health_streak(const broker_health_t *self)
{
    return self ? self->streak : 0;
}

//  The streak reached the limit (quarantine is on and the runner failed that often in a row).
static bool s_full(const broker_health_t *self)
{
    return self && self->limit > 0 && self->count == self->limit;
}

// --------------------------------------------------------------------------------------------
//  Health records by runner id (they outlive a runner's connection, and a quarantine the store
//  kept exists before its runner registers)

broker_health_t *broker_health_of(broker_core_t *core, const char *runner_id)
{
    broker_health_t *health = (broker_health_t *)zhashx_lookup(core->health, runner_id);
    if (!health) {
        health = broker_health_new((size_t)core->quarantine_after);
        if (health)
            zhashx_insert(core->health, runner_id, health);
    }
    return health;
}

static void s_set_quarantine(broker_health_t *self, const broker_quarantine_rec_t *rec)
{
    self->quarantined = true;
    snprintf(self->reason, sizeof self->reason, "%s", rec->reason ? rec->reason : "");
    snprintf(self->quarantine_error, sizeof self->quarantine_error, "%s",
             rec->last_error ? rec->last_error : "");
    self->since_ms = rec->since_ms;
    self->failed_attempts = rec->failed_attempts;
}

static void s_load_quarantine(const broker_quarantine_rec_t *rec, void *arg)
{
    broker_health_t *health = broker_health_of((broker_core_t *)arg, rec->runner_id);
    if (health)
        s_set_quarantine(health, rec);
}

int broker_health_load(broker_core_t *core)
{
    return broker_store_foreach_quarantined_runner(core->store, s_load_quarantine, core);
}

bool broker_health_quarantined(const broker_health_t *self)
{
    return self && self->quarantined;
}

lynx_value_t *broker_health_view(const broker_health_t *self)
{
    if (!broker_health_quarantined(self))
        return lynx_value_null();
    lynx_value_t *view = lynx_value_map();
    lynx_value_set_string(view, "reason", self->reason);
    lynx_value_set_string(view, "last_error", self->quarantine_error);
    char since[LYNX_TIME_RFC3339_SIZE];
    lynx_value_set_string(view, "since", lynx_time_rfc3339(self->since_ms, since));
    lynx_value_set_int(view, "failed_attempts", self->failed_attempts);
    return view;
}

// --------------------------------------------------------------------------------------------
//  Evidence, refunds and the quarantine itself

//  A runner other than runner completed a job of the batch.
static bool s_completed_elsewhere(broker_core_t *core, const char *batch_id,
                                  const broker_runner_t *runner)
{
    broker_batch_t *batch = (broker_batch_t *)zhashx_lookup(core->batches, batch_id);
    if (!batch || !batch->completed_by)
        return false;
    for (const char *id = (const char *)zlistx_first(batch->completed_by); id;
         id = (const char *)zlistx_next(batch->completed_by))
        if (strcmp(id, runner->id) != 0)
            return true;
    return false;
}

//  Every batch of the streak's failures has a completion by another runner.
static bool s_evidence(broker_core_t *core, const broker_runner_t *runner)
{
    const broker_health_t *health = runner->health;
    for (size_t i = 0; i < health->count; i++)
        if (!s_completed_elsewhere(core, health->failures[i].batch_id, runner))
            return false;
    return true;
}

//  Give back the retry one failed attempt cost its job, when the job can still use it (it is
//  Pending or in flight on another runner); a job that ended stays as it ended.
static int s_refund(broker_core_t *core, const s_failure_t *failure)
{
    broker_inflight_t *inflight =
        (broker_inflight_t *)zhashx_lookup(core->inflight, failure->job_id);
    broker_job_rec_t rec;
    char *error_message = NULL;
    if (inflight)
        rec = inflight->rec;
    else {
        int rc = broker_store_get_job(core->store, failure->job_id, &rec);
        if (rc != 0 || rec.status != LYNX_JOB_PENDING)
            return rc < 0 ? -1 : 0;
        error_message = broker_store_job_error(core->store, rec.id);
    }
    if (rec.retries <= 0) {
        free(error_message);
        return 0;
    }
    rec.retries--;
    int rc = broker_store_update_job(core->store, &rec, error_message);
    if (rc == 0)
        rc = broker_store_uncharge_attempt(core->store, failure->job_id, failure->attempt);
    free(error_message);
    if (rc == 0 && inflight)
        inflight->rec.retries = rec.retries;
    return rc;
}

static void s_quarantine(broker_core_t *core, broker_runner_t *runner)
{
    broker_health_t *health = runner->health;
    char reason[256];
    snprintf(reason, sizeof reason,
             "its last %" PRId64 " attempts failed while other runners completed jobs of the same"
             " batches",
             health->streak);
    broker_quarantine_rec_t rec = {.runner_id = runner->id,
                                   .reason = reason,
                                   .last_error = health->last_error,
                                   .since_ms = lynx_time_now_ms(),
                                   .failed_attempts = health->streak};
    //  One savepoint: the quarantine and the refunds are durable together, or not at all.
    int rc = broker_store_begin(core->store);
    if (rc == 0)
        rc = broker_store_set_runner_quarantine(core->store, runner->id, &rec);
    for (size_t i = 0; rc == 0 && i < health->count; i++)
        rc = s_refund(core, &health->failures[i]);
    if (rc == 0)
        rc = broker_store_commit(core->store);
    if (rc) {
        zsys_error("broker: cannot quarantine runner=%s: %s", runner->id,
                   broker_store_error(core->store));
        broker_store_rollback(core->store);
        return;
    }
    s_set_quarantine(health, &rec);
    zsys_warning("broker: runner quarantined runner=%s failed=%" PRId64
                 " reason=\"%s\" last_error=\"%s\"; resume it with POST /runners/%s/resume",
                 runner->id, health->streak, reason, health->last_error, runner->id);
    lynx_value_t *extra = lynx_value_map();
    lynx_value_set_string(extra, "reason", reason);
    lynx_value_set_string(extra, "last_error", health->last_error);
    lynx_value_set_int(extra, "failed_attempts", health->streak);
    //  Offline outranks Quarantined in a runner's status (broker_runners_status).
    broker_outbox_runner_event(core->outbox, runner->id, runner->online ? "Quarantined" : "Offline",
                               &extra);
    s_clear(health);
}

//  Quarantine the runner if its streak is full and the evidence is in; note it suspect if not.
static void s_judge(broker_core_t *core, broker_runner_t *runner)
{
    broker_health_t *health = runner->health;
    if (!s_full(health) || health->quarantined)
        return;
    if (s_evidence(core, runner))
        s_quarantine(core, runner);
    else if (!health->suspect_logged) {
        health->suspect_logged = true;
        zsys_notice("broker: runner suspect runner=%s failed=%" PRId64
                    " (no other runner has completed jobs of these batches yet)",
                    runner->id, health->streak);
    }
}

void broker_health_attempt_ended(broker_core_t *core, broker_runner_t *runner,
                                 const broker_attempt_end_t *end)
{
    broker_health_t *health = runner->health;
    if (!health || !core->quarantine_after)
        return;
    if (end->outcome == LYNX_JOB_COMPLETED) {
        s_clear(health);
        broker_batch_t *batch = (broker_batch_t *)zhashx_lookup(core->batches, end->batch_id);
        bool known = false;
        for (const char *id = batch ? (const char *)zlistx_first(batch->completed_by) : NULL;
             id && !known; id = (const char *)zlistx_next(batch->completed_by))
            known = strcmp(id, runner->id) == 0;
        if (batch && !known) {
            zlistx_add_end(batch->completed_by, runner->id); //  the list copies it
            //  New evidence: suspects failing in this batch may now be judged.
            broker_runner_t *other = (broker_runner_t *)zhashx_first(core->runners);
            zlistx_t *suspects = zlistx_new();
            for (; other; other = (broker_runner_t *)zhashx_next(core->runners))
                if (other != runner && s_full(other->health))
                    zlistx_add_end(suspects, other);
            for (other = (broker_runner_t *)zlistx_first(suspects); other;
                 other = (broker_runner_t *)zlistx_next(suspects))
                s_judge(core, other);
            zlistx_destroy(&suspects);
        }
        return;
    }
    //  Only failures a healthy runner would not have: not cancels, not early terminations.
    bool counted = !end->cancelled && (end->outcome == LYNX_JOB_TIMEOUT ||
                                       (end->outcome == LYNX_JOB_FAILED && end->retryable));
    if (!counted)
        return;
    if (health->count == health->limit) {
        memmove(health->failures, health->failures + 1,
                (health->limit - 1) * sizeof *health->failures);
        health->count--;
    }
    s_failure_t *failure = &health->failures[health->count++];
    snprintf(failure->job_id, sizeof failure->job_id, "%s", end->job_id);
    snprintf(failure->batch_id, sizeof failure->batch_id, "%s", end->batch_id);
    failure->attempt = end->attempt;
    health->streak++;
    snprintf(health->last_error, sizeof health->last_error, "%s",
             end->error_message ? end->error_message : "");
    s_judge(core, runner);
}

bool broker_health_suspect(const broker_health_t *self)
{
    return s_full(self);
}

void broker_health_resume(broker_health_t *health, broker_store_t *store, const char *runner_id)
{
    if (!health)
        return;
    bool was_quarantined = health->quarantined;
    if (was_quarantined && broker_store_set_runner_quarantine(store, runner_id, NULL)) {
        zsys_error("broker: cannot lift quarantine runner=%s: %s", runner_id,
                   broker_store_error(store));
        return;
    }
    s_clear(health);
    health->quarantined = false;
    if (was_quarantined)
        zsys_notice("broker: runner quarantine lifted runner=%s", runner_id);
}
