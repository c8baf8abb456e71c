//  broker_quarantine: judging failure streaks (see the header).
#include "broker_quarantine.h"

#include "broker_health.h"
#include "broker_runners.h"

//  A runner other than runner completed a job of the batch.
static bool s_completed_elsewhere(broker_core_t *core, const char *batch_id,
                                  const broker_runner_t *runner)
{
    broker_batch_t *batch = broker_batches_lookup(core->batches, batch_id);
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
    const broker_health_failure_t *failures = NULL;
    size_t count = broker_health_failures(runner->health, &failures);
    for (size_t i = 0; i < count; i++)
        if (!s_completed_elsewhere(core, failures[i].batch_id, runner))
            return false;
    return true;
}

//  The failed attempt was the runner's fault: its history says it did not count, and the retry
//  it cost goes back to its job when the job can still use it (Pending or in flight on another
//  runner); a job that ended stays as it ended.
static int s_refund(broker_core_t *core, const broker_health_failure_t *failure)
{
    broker_inflight_t *inflight = broker_queue_lookup(core->queue, failure->job_id);
    broker_job_rec_t rec;
    char *error_message = NULL;
    if (inflight)
        rec = inflight->rec;
    else {
        int rc = broker_store_get_job(core->store, failure->job_id, &rec);
        if (rc < 0)
            return -1;
        if (rc != 0 || rec.status != LYNX_JOB_PENDING)
            return rc == 0 ? broker_store_uncharge_attempt(core->store, failure->job_id,
                                                           failure->attempt)
                           : 0;
        error_message = broker_store_job_error(core->store, rec.id);
    }
    if (rec.retries <= 0) {
        free(error_message);
        return broker_store_uncharge_attempt(core->store, failure->job_id, failure->attempt);
    }
    rec.retries--;
    int rc = broker_store_update_job(core->store, &rec, error_message);
    if (rc == 0)
        rc = broker_store_uncharge_attempt(core->store, failure->job_id, failure->attempt);
    free(error_message);
    if (rc == 0 && inflight)
        broker_inflight_update(inflight, &rec);
    return rc;
}

static void s_quarantine(broker_core_t *core, broker_runner_t *runner)
{
    broker_health_t *health = runner->health;
    int64_t streak = broker_health_streak(health);
    char reason[256], last_error[1024];
    snprintf(reason, sizeof reason,
             "its last %" PRId64 " attempts failed while other runners completed jobs of the same"
             " batches",
             streak);
    snprintf(last_error, sizeof last_error, "%s", broker_health_last_error(health));
    broker_quarantine_rec_t rec = {.runner_id = runner->id,
                                   .reason = reason,
                                   .last_error = last_error,
                                   .since_ms = lynx_time_now_ms(),
                                   .failed_attempts = streak};
    //  One savepoint: the quarantine and the refunds are durable together, or not at all.
    const broker_health_failure_t *failures = NULL;
    size_t count = broker_health_failures(health, &failures);
    int rc = broker_store_begin(core->store);
    if (rc == 0)
        rc = broker_store_set_runner_quarantine(core->store, runner->id, &rec);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = s_refund(core, &failures[i]);
    if (rc == 0)
        rc = broker_store_commit(core->store);
    if (rc) {
        zsys_error("broker: cannot quarantine runner=%s: %s", runner->id,
                   broker_store_error(core->store));
        broker_store_rollback(core->store);
        return;
    }
    broker_health_quarantine(health, &rec);
    zsys_warning("broker: runner quarantined runner=%s failed=%" PRId64
                 " reason=\"%s\" last_error=\"%s\"; resume it with POST /runners/%s/resume",
                 runner->id, streak, reason, last_error, runner->id);
    lynx_value_t *extra = lynx_value_map();
    lynx_value_set_string(extra, "reason", reason);
    lynx_value_set_string(extra, "last_error", last_error);
    lynx_value_set_int(extra, "failed_attempts", streak);
    broker_outbox_runner_event(core->outbox, runner->id, broker_runners_status(runner), &extra);
}

//  Quarantine the runner if its streak is full and the evidence is in; note it suspect if not.
static void s_judge(broker_core_t *core, broker_runner_t *runner)
{
    broker_health_t *health = runner->health;
    if (!broker_health_suspect(health) || broker_health_quarantined(health))
        return;
    if (s_evidence(core, runner))
        s_quarantine(core, runner);
    else if (broker_health_first_suspicion(health))
        zsys_notice("broker: runner suspect runner=%s failed=%" PRId64
                    " (no other runner has completed jobs of these batches yet)",
                    runner->id, broker_health_streak(health));
}

void broker_quarantine_attempt_ended(broker_core_t *core, broker_runner_t *runner,
                                     const broker_attempt_end_t *end)
{
    broker_health_t *health = runner->health;
    if (!health || !broker_runners_quarantine_after(core->runners))
        return;
    if (end->outcome == LYNX_JOB_COMPLETED) {
        broker_health_clear(health);
        broker_batch_t *batch = broker_batches_lookup(core->batches, end->batch_id);
        if (batch && broker_batch_add_completion(batch, runner->id)) {
            //  New evidence: suspects failing in this batch may now be judged.
            for (size_t i = 0; i < broker_runners_count(core->runners); i++) {
                broker_runner_t *other = broker_runners_at(core->runners, i);
                if (other != runner && broker_health_suspect(other->health))
                    s_judge(core, other);
            }
        }
        return;
    }
    //  Only failures a healthy runner would not have: not cancels, not early terminations.
    bool counted = !end->cancelled && (end->outcome == LYNX_JOB_TIMEOUT ||
                                       (end->outcome == LYNX_JOB_FAILED && end->retryable));
    if (!counted)
        return;
    broker_health_record_failure(health, end->job_id, end->batch_id, end->attempt,
                                 end->error_message);
    s_judge(core, runner);
}

static void s_load_quarantine(const broker_quarantine_rec_t *rec, void *arg)
{
    broker_health_t *health = broker_runners_health_of((broker_runners_t *)arg, rec->runner_id);
    if (health)
        broker_health_quarantine(health, rec);
}

int broker_quarantine_load(broker_core_t *core)
{
    return broker_store_foreach_quarantined_runner(core->store, s_load_quarantine, core->runners);
}

bool broker_quarantine_lift(broker_core_t *core, broker_runner_t *runner)
{
    broker_health_t *health = runner->health;
    bool was_quarantined = broker_health_quarantined(health);
    if (was_quarantined && broker_store_set_runner_quarantine(core->store, runner->id, NULL)) {
        zsys_error("broker: cannot lift quarantine runner=%s: %s", runner->id,
                   broker_store_error(core->store));
        return false;
    }
    broker_health_resume(health);
    if (was_quarantined)
        zsys_notice("broker: runner quarantine lifted runner=%s", runner->id);
    return was_quarantined;
}
