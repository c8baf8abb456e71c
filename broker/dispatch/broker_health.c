//  broker_health: one runner's health record (see the header).
#include "broker_health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lynx_time.h"

#define BROKER_HEALTH_ERROR_MAX 1024 //  bytes of the last error kept

struct _broker_health_t {
    broker_health_failure_t *failures; //  the streak's last `limit` failures, oldest first
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
    self->failures =
        limit ? (broker_health_failure_t *)calloc(limit, sizeof *self->failures) : NULL;
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

void broker_health_clear(broker_health_t *self)
{
    self->count = 0;
    self->streak = 0;
    self->suspect_logged = false;
}

int64_t broker_health_streak(const broker_health_t *self)
{
    return self ? self->streak : 0;
}

bool broker_health_suspect(const broker_health_t *self)
{
    return self && self->limit > 0 && self->count == self->limit;
}

void broker_health_quarantine(broker_health_t *self, const broker_quarantine_rec_t *rec)
{
    self->quarantined = true;
    snprintf(self->reason, sizeof self->reason, "%s", rec->reason ? rec->reason : "");
    snprintf(self->quarantine_error, sizeof self->quarantine_error, "%s",
             rec->last_error ? rec->last_error : "");
    self->since_ms = rec->since_ms;
    self->failed_attempts = rec->failed_attempts;
    broker_health_clear(self);
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

const char *broker_health_last_error(const broker_health_t *self)
{
    return self ? self->last_error : "";
}

size_t broker_health_failures(const broker_health_t *self, const broker_health_failure_t **list)
{
    *list = self ? self->failures : NULL;
    return self ? self->count : 0;
}

void broker_health_record_failure(broker_health_t *self, const char *job_id, const char *batch_id,
                                  int64_t attempt, const char *error_message)
{
    if (!self || self->limit == 0)
        return;
    if (self->count == self->limit) {
        memmove(self->failures, self->failures + 1, (self->limit - 1) * sizeof *self->failures);
        self->count--;
    }
    broker_health_failure_t *failure = &self->failures[self->count++];
    snprintf(failure->job_id, sizeof failure->job_id, "%s", job_id);
    snprintf(failure->batch_id, sizeof failure->batch_id, "%s", batch_id);
    failure->attempt = attempt;
    self->streak++;
    snprintf(self->last_error, sizeof self->last_error, "%s", error_message ? error_message : "");
}

bool broker_health_first_suspicion(broker_health_t *self)
{
    if (!broker_health_suspect(self) || self->suspect_logged)
        return false;
    self->suspect_logged = true;
    return true;
}

void broker_health_resume(broker_health_t *self)
{
    if (!self)
        return;
    broker_health_clear(self);
    self->quarantined = false;
}
