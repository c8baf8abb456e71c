//  broker_health: one runner's health record, a value object. It keeps the runner's streak of
//  failed attempts (the last `limit` of them, with their batches) and, once quarantined, why.
//  The rules that judge a streak (evidence from other runners, refunds, the durable
//  quarantine) are broker_quarantine's; this only holds the facts. Records are kept by runner
//  id in broker_runners and outlive a runner's connection.
#ifndef BROKER_HEALTH_H_INCLUDED
#define BROKER_HEALTH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker_store.h"
#include "lynx_value.h"

typedef struct _broker_health_t broker_health_t;

//  One counted failure: which attempt, of which batch.
typedef struct {
    char job_id[BROKER_ID_SIZE];
    char batch_id[BROKER_ID_SIZE];
    int64_t attempt;
} broker_health_failure_t;

//  An empty record; limit is the streak that makes the runner judgeable (0: never). NULL on
//  out-of-memory.
broker_health_t *broker_health_new(size_t limit);
//  Destroy; sets *self_p to NULL. NULL-safe.
void broker_health_destroy(broker_health_t **self_p);

//  Failed attempts in a row, 0 after a success (NULL-safe).
int64_t broker_health_streak(const broker_health_t *self);
//  The streak reached the limit: quarantined once the evidence is in, suspect until then
//  (NULL-safe: false).
bool broker_health_suspect(const broker_health_t *self);
bool broker_health_quarantined(const broker_health_t *self);
//  {reason, last_error, since, failed_attempts} of a quarantine, or a null value.
lynx_value_t *broker_health_view(const broker_health_t *self);
//  The error of the latest counted failure ("" when none).
const char *broker_health_last_error(const broker_health_t *self);
//  The streak's failures, oldest first (borrowed); returns how many.
size_t broker_health_failures(const broker_health_t *self, const broker_health_failure_t **list);

//  A success: the streak starts again.
void broker_health_clear(broker_health_t *self);
//  Count one failed attempt (the oldest drops out past the limit).
void broker_health_record_failure(broker_health_t *self, const char *job_id, const char *batch_id,
                                  int64_t attempt, const char *error_message);
//  True the first time it is asked for the current full streak: suspects are logged once.
bool broker_health_first_suspicion(broker_health_t *self);
//  The runner is quarantined for rec's reason (from a judgement, or as the store kept it);
//  the streak starts again.
void broker_health_quarantine(broker_health_t *self, const broker_quarantine_rec_t *rec);
//  An operator resumed it: no quarantine, no streak.
void broker_health_resume(broker_health_t *self);

#endif
