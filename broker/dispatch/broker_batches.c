//  broker_batches: batch records and the stride scheduling between them (see the header).
#include "broker_batches.h"

#include "broker_study.h"

const char *const broker_section_names[BROKER_SECTION_COUNT] = {"early_termination", "telemetry",
                                                                "artifacts"};

struct _broker_batches_t {
    zhashx_t *by_id;      //  id -> broker_batch_t, owned
    broker_batch_t **all; //  the same records, in submission order
    size_t count;
    size_t alloc;
    uint64_t round; //  dispatch rounds started
};

broker_batch_t *broker_batch_new(const broker_batch_origin_t *origin)
{
    const broker_study_t *study = origin->study;
    broker_batch_t *batch = (broker_batch_t *)calloc(1, sizeof *batch);
    if (!batch)
        return NULL;
    snprintf(batch->id, sizeof batch->id, "%s", origin->id);
    batch->name = strdup(origin->name);
    batch->submitted_by = origin->submitted_by ? strdup(origin->submitted_by) : NULL;
    batch->token_name = origin->token_name ? strdup(origin->token_name) : NULL;
    batch->engine = strdup(broker_study_engine(study));
    batch->simulation_name = strdup(broker_study_simulation_name(study));
    batch->simulation_version = strdup(broker_study_simulation_version(study));
    batch->sampling_method = strdup(broker_study_sampling_method(study));
    batch->duration_minutes = broker_study_duration_minutes(study);
    batch->created_at_ms = origin->created_at_ms;
    batch->stats = broker_stats_new(origin->created_at_ms);
    batch->completed_by = zlistx_new();
    lynx_time_rfc3339(origin->created_at_ms, batch->generated_at);
    batch->total_jobs = broker_study_runs(study);
    batch->max_parallel_jobs = broker_study_max_parallel_jobs(study);
    batch->gpu = broker_study_gpu(study);
    batch->priority = broker_study_priority(study);
    batch->seed = origin->seed;
    snprintf(batch->config_hash, sizeof batch->config_hash, "%s",
             origin->config_hash ? origin->config_hash : "");
    size_t count = 0;
    const char *const *tags = broker_study_required_capabilities(study, &count);
    batch->required = (char **)calloc(count + 1, sizeof *batch->required);
    for (size_t i = 0; batch->required && i < count; i++)
        batch->required[batch->required_count++] = strdup(tags[i]);
    for (size_t i = 0; i < BROKER_SECTION_COUNT; i++) {
        const lynx_value_t *section = lynx_value_get(origin->config, broker_section_names[i]);
        batch->sections[i] =
            lynx_value_type(section) == LYNX_VALUE_MAP ? lynx_value_dup(section) : NULL;
    }
    batch->status = LYNX_BATCH_PENDING;
    if (!batch->name || !batch->engine || !batch->stats || !batch->completed_by ||
        !batch->required) {
        broker_batch_destroy(&batch);
        return NULL;
    }
    zlistx_set_duplicator(batch->completed_by, (zlistx_duplicator_fn *)strdup);
    zlistx_set_destructor(batch->completed_by, (zlistx_destructor_fn *)zstr_free);
    return batch;
}

void broker_batch_destroy(broker_batch_t **batch_p)
{
    if (!batch_p || !*batch_p)
        return;
    broker_batch_t *batch = *batch_p;
    free(batch->name);
    free(batch->submitted_by);
    free(batch->token_name);
    free(batch->engine);
    free(batch->simulation_name);
    free(batch->simulation_version);
    free(batch->sampling_method);
    for (size_t i = 0; i < batch->required_count; i++)
        free(batch->required[i]);
    free(batch->required);
    for (size_t i = 0; i < BROKER_SECTION_COUNT; i++)
        lynx_value_destroy(&batch->sections[i]);
    zlistx_destroy(&batch->completed_by);
    broker_stats_destroy(&batch->stats);
    free(batch);
    *batch_p = NULL;
}

int64_t broker_batch_remaining(const broker_batch_t *batch)
{
    const int64_t *counts = batch->counts;
    return counts[LYNX_JOB_PENDING] + counts[LYNX_JOB_CLAIMED] + counts[LYNX_JOB_RUNNING];
}

bool broker_batch_completed_by(const broker_batch_t *batch, const char *runner_id)
{
    for (const char *id = (const char *)zlistx_first(batch->completed_by); id;
         id = (const char *)zlistx_next(batch->completed_by))
        if (strcmp(id, runner_id) == 0)
            return true;
    return false;
}

void broker_batch_restore(broker_batch_t *batch, const int64_t counts[LYNX_JOB_STATE_COUNT],
                          lynx_batch_state_t status, bool cancelled)
{
    memcpy(batch->counts, counts, sizeof batch->counts);
    batch->status = status;
    batch->cancelled = cancelled;
}

void broker_batch_move(broker_batch_t *batch, lynx_job_state_t from, lynx_job_state_t to,
                       int64_t count)
{
    batch->counts[from] -= count;
    batch->counts[to] += count;
}

void broker_batch_set_status(broker_batch_t *batch, lynx_batch_state_t status)
{
    batch->status = status;
}

void broker_batch_set_cancelled(broker_batch_t *batch)
{
    batch->cancelled = true;
}

void broker_batch_set_queue_empty(broker_batch_t *batch, bool empty)
{
    batch->queue_empty = empty;
}

void broker_batch_served(broker_batch_t *batch)
{
    batch->pass += 1.0 / (double)batch->priority;
}

void broker_batch_declined(broker_batch_t *batch, uint64_t round, const void *runner)
{
    batch->declined_round = round;
    batch->declined_by = runner;
}

bool broker_batch_add_completion(broker_batch_t *batch, const char *runner_id)
{
    if (broker_batch_completed_by(batch, runner_id))
        return false;
    zlistx_add_end(batch->completed_by, (void *)runner_id); //  the list copies it
    return true;
}

// --------------------------------------------------------------------------------------------
//  The set

broker_batches_t *broker_batches_new(void)
{
    broker_batches_t *self = (broker_batches_t *)calloc(1, sizeof *self);
    if (self && !(self->by_id = zhashx_new()))
        free(self), self = NULL;
    if (self)
        zhashx_set_destructor(self->by_id, (zhashx_destructor_fn *)broker_batch_destroy);
    return self;
}

void broker_batches_destroy(broker_batches_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->by_id);
    free((*self_p)->all);
    free(*self_p);
    *self_p = NULL;
}

//  The smallest pass among batches still waiting for runners (0 when none waits).
static double s_min_pass(const broker_batches_t *self)
{
    double pass = -1;
    for (size_t i = 0; i < self->count; i++) {
        const broker_batch_t *batch = self->all[i];
        if (batch->counts[LYNX_JOB_PENDING] > 0 && (pass < 0 || batch->pass < pass))
            pass = batch->pass;
    }
    return pass < 0 ? 0 : pass;
}

int broker_batches_add(broker_batches_t *self, broker_batch_t **batch_p)
{
    if (self->count == self->alloc) {
        size_t alloc = self->alloc ? self->alloc * 2 : 16;
        broker_batch_t **all = (broker_batch_t **)realloc(self->all, alloc * sizeof *all);
        if (!all)
            return -1;
        self->all = all;
        self->alloc = alloc;
    }
    broker_batch_t *batch = *batch_p;
    batch->pass = s_min_pass(self);
    zhashx_insert(self->by_id, batch->id, batch);
    self->all[self->count++] = batch;
    *batch_p = NULL;
    return 0;
}

broker_batch_t *broker_batches_lookup(const broker_batches_t *self, const char *batch_id)
{
    return batch_id ? (broker_batch_t *)zhashx_lookup(self->by_id, batch_id) : NULL;
}

size_t broker_batches_count(const broker_batches_t *self)
{
    return self->count;
}

broker_batch_t *broker_batches_at(const broker_batches_t *self, size_t index)
{
    return index < self->count ? self->all[index] : NULL;
}

broker_batch_t *broker_batches_next(const broker_batches_t *self,
                                    broker_batches_filter_fn *can_start, void *arg)
{
    broker_batch_t *best = NULL;
    for (size_t i = 0; i < self->count; i++) {
        broker_batch_t *batch = self->all[i];
        if ((!best || batch->pass < best->pass) && can_start(batch, arg))
            best = batch;
    }
    return best;
}

uint64_t broker_batches_start_round(broker_batches_t *self)
{
    return ++self->round;
}

uint64_t broker_batches_round(const broker_batches_t *self)
{
    return self->round;
}
