//  broker_queue: the jobs in flight (see the header).
#include "broker_queue.h"

struct _broker_queue_t {
    zhashx_t *by_job; //  job id -> broker_inflight_t, owned
};

static void s_entry_destroy(broker_inflight_t **inflight_p)
{
    free(*inflight_p);
    *inflight_p = NULL;
}

broker_queue_t *broker_queue_new(void)
{
    broker_queue_t *self = (broker_queue_t *)calloc(1, sizeof *self);
    if (self && !(self->by_job = zhashx_new()))
        free(self), self = NULL;
    if (self)
        zhashx_set_destructor(self->by_job, (zhashx_destructor_fn *)s_entry_destroy);
    return self;
}

void broker_queue_destroy(broker_queue_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->by_job);
    free(*self_p);
    *self_p = NULL;
}

broker_inflight_t *broker_queue_add(broker_queue_t *self, const broker_job_rec_t *rec,
                                    broker_batch_t *batch, broker_runner_t *runner)
{
    broker_inflight_t *inflight = (broker_inflight_t *)calloc(1, sizeof *inflight);
    if (!inflight)
        return NULL;
    inflight->rec = *rec;
    inflight->batch = batch;
    inflight->runner = runner;
    inflight->exit = BROKER_EXIT_UNKNOWN;
    if (zhashx_insert(self->by_job, inflight->rec.id, inflight)) {
        free(inflight);
        return NULL;
    }
    return inflight;
}

broker_inflight_t *broker_queue_lookup(const broker_queue_t *self, const char *job_id)
{
    return job_id ? (broker_inflight_t *)zhashx_lookup(self->by_job, job_id) : NULL;
}

void broker_queue_remove(broker_queue_t *self, const char *job_id)
{
    zhashx_delete(self->by_job, job_id);
}

size_t broker_queue_count(const broker_queue_t *self)
{
    return zhashx_size(self->by_job);
}

zlistx_t *broker_queue_select(const broker_queue_t *self, broker_queue_filter_fn *filter,
                              const void *arg)
{
    zlistx_t *list = zlistx_new();
    broker_inflight_t *inflight = (broker_inflight_t *)zhashx_first(self->by_job);
    for (; list && inflight; inflight = (broker_inflight_t *)zhashx_next(self->by_job))
        if (!filter || filter(inflight, arg))
            zlistx_add_end(list, inflight);
    return list;
}

bool broker_queue_on_runner(const broker_inflight_t *inflight, const void *arg)
{
    return inflight->runner == (const broker_runner_t *)arg;
}

void broker_inflight_update(broker_inflight_t *inflight, const broker_job_rec_t *rec)
{
    inflight->rec = *rec;
}

void broker_inflight_set_runner(broker_inflight_t *inflight, broker_runner_t *runner)
{
    inflight->runner = runner;
}

void broker_inflight_request_cancel(broker_inflight_t *inflight)
{
    inflight->cancel_requested = true;
}

void broker_inflight_set_exit(broker_inflight_t *inflight, broker_exit_t exit)
{
    inflight->exit = exit;
}
