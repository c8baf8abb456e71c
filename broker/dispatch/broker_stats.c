//  broker_stats: a ring of a batch's recent job end times.
#include "broker_stats.h"

#include <stdlib.h>

struct _broker_stats_t {
    int64_t started_ms;
    int64_t recent_ms[BROKER_STATS_RECENT_MAX]; //  ring of recent job end times
    size_t next;
    size_t count;
};

broker_stats_t *broker_stats_new(int64_t started_ms)
{
    broker_stats_t *self = (broker_stats_t *)calloc(1, sizeof *self);
    if (self)
        self->started_ms = started_ms;
    return self;
}

void broker_stats_destroy(broker_stats_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void broker_stats_job_ended(broker_stats_t *self, int64_t now_ms)
{
    if (!self)
        return;
    self->recent_ms[self->next] = now_ms;
    self->next = (self->next + 1) % BROKER_STATS_RECENT_MAX;
    if (self->count < BROKER_STATS_RECENT_MAX)
        self->count++;
}

double broker_stats_throughput(const broker_stats_t *self, int64_t now_ms)
{
    size_t in_window = 0;
    for (size_t i = 0; self && i < self->count; i++)
        if (now_ms - self->recent_ms[i] <= BROKER_STATS_WINDOW_MS)
            in_window++;
    if (in_window == 0)
        return 0.0;
    //  A young batch has not filled the window yet: divide by the time it actually covers,
    //  measured from the batch's start, so the first minutes are not under-reported.
    int64_t span_ms = now_ms - self->started_ms;
    if (span_ms > BROKER_STATS_WINDOW_MS)
        span_ms = BROKER_STATS_WINDOW_MS;
    if (span_ms < 1000)
        span_ms = 1000;
    return (double)in_window * 60000.0 / (double)span_ms;
}

double broker_stats_eta_minutes(const broker_stats_t *self, int64_t remaining, int64_t now_ms)
{
    if (remaining <= 0)
        return 0.0;
    double throughput = broker_stats_throughput(self, now_ms);
    return throughput > 0 ? (double)remaining / throughput : -1.0;
}
