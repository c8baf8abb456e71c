//  broker_batches: the batches this broker holds in memory, a record each with its per-state
//  job counters (equal to a recount of the jobs table), and the stride scheduling that picks
//  which batch a free slot serves next. Records are read by the other modules; they change
//  only through the functions here.
#ifndef BROKER_BATCHES_H_INCLUDED
#define BROKER_BATCHES_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker_stats.h"
#include "broker_store.h"
#include "lynx_state.h"
#include "lynx_time.h"
#include "lynx_value.h"

typedef struct _broker_study_t broker_study_t;

//  A batch with work left or recently finished. Read-only outside broker_batches.c.
//  The config sections runners need with every job (each ASSIGN carries them), by index into
//  broker_batch_t.sections; broker_section_names holds their names in the config.
typedef enum {
    BROKER_SECTION_EARLY_TERMINATION,
    BROKER_SECTION_TELEMETRY,
    BROKER_SECTION_ARTIFACTS,
    BROKER_SECTION_COUNT
} broker_section_t;
extern const char *const broker_section_names[BROKER_SECTION_COUNT];

typedef struct {
    char id[BROKER_ID_SIZE];
    char *name;
    char *submitted_by; //  who submitted it (POST /jobs submitted_by), or NULL
    char *token_name;   //  the API token it was submitted with, or NULL (no auth)
    char *engine;
    char *simulation_name;
    char *simulation_version;
    char *sampling_method;
    double duration_minutes;
    int64_t created_at_ms;
    int64_t total_jobs;
    int64_t max_parallel_jobs; //  0: no limit
    uint64_t seed;
    char config_hash[48];
    char generated_at[LYNX_TIME_RFC3339_SIZE]; //  created_at as the run config shows it
    int64_t counts[LYNX_JOB_STATE_COUNT];
    lynx_batch_state_t status;
    bool cancelled;  //  an operator cancelled it: it ends Cancelled
    char **required; //  compute.required_capabilities
    size_t required_count;
    bool gpu;         //  compute.gpu
    int64_t priority; //  compute.priority (>= 1)
    double pass;      //  stride scheduling: the lowest pass is served next
    lynx_value_t *sections[BROKER_SECTION_COUNT]; //  config sections every ASSIGN carries, or NULL
    uint64_t declined_round;                      //  no job for declined_by in this dispatch round
    const void *declined_by;
    bool queue_empty;       //  no Pending rows left to fetch (until a retry requeues one)
    zlistx_t *completed_by; //  ids of the runners that completed one of its jobs (owned copies)
    broker_stats_t *stats;  //  throughput and ETA
} broker_batch_t;

//  What a batch record is made from: its validated study and config (whose early_termination
//  and telemetry sections every ASSIGN carries), and what was stored with it.
typedef struct {
    const char *id;
    const char *name;
    const broker_study_t *study;
    const lynx_value_t *config;
    int64_t created_at_ms;
    uint64_t seed;
    const char *config_hash;
    const char *submitted_by; //  or NULL
    const char *token_name;   //  or NULL
} broker_batch_origin_t;

//  A record with its counters at zero and status Pending. NULL on out-of-memory.
broker_batch_t *broker_batch_new(const broker_batch_origin_t *origin);
//  Destroy; sets *batch_p to NULL. NULL-safe.
void broker_batch_destroy(broker_batch_t **batch_p);
//  Jobs not yet ended (Pending, Claimed, Running).
int64_t broker_batch_remaining(const broker_batch_t *batch);
//  Whether runner_id completed one of its jobs: the evidence quarantines are judged on.
bool broker_batch_completed_by(const broker_batch_t *batch, const char *runner_id);

//  Counters and state, as the scheduler moves its jobs.
//  Set every counter, the status and the cancel flag (a new batch, or one loaded from store).
void broker_batch_restore(broker_batch_t *batch, const int64_t counts[LYNX_JOB_STATE_COUNT],
                          lynx_batch_state_t status, bool cancelled);
//  count jobs moved from one state to another.
void broker_batch_move(broker_batch_t *batch, lynx_job_state_t from, lynx_job_state_t to,
                       int64_t count);
void broker_batch_set_status(broker_batch_t *batch, lynx_batch_state_t status);
void broker_batch_set_cancelled(broker_batch_t *batch);
//  Pending rows may be left again (a retry), or none are (a fetch found nothing).
void broker_batch_set_queue_empty(broker_batch_t *batch, bool empty);
//  A job was handed out: the batch's pass advances by 1/priority.
void broker_batch_served(broker_batch_t *batch);
//  A fetch found no job this runner may take in this dispatch round.
void broker_batch_declined(broker_batch_t *batch, uint64_t round, const void *runner);
//  runner_id completed one of its jobs; true when that is new.
bool broker_batch_add_completion(broker_batch_t *batch, const char *runner_id);

typedef struct _broker_batches_t broker_batches_t;

//  An empty set. NULL on out-of-memory.
broker_batches_t *broker_batches_new(void);
//  Destroy every record; sets *self_p to NULL. NULL-safe.
void broker_batches_destroy(broker_batches_t **self_p);
//  Take ownership of *batch_p (set to NULL). Its pass starts at the smallest pass of the
//  batches still waiting: a new batch neither jumps the queue with a backlog of credit nor
//  waits behind the old ones' history. -1 on out-of-memory (the batch stays the caller's).
int broker_batches_add(broker_batches_t *self, broker_batch_t **batch_p);
broker_batch_t *broker_batches_lookup(const broker_batches_t *self, const char *batch_id);
//  Records in submission order: index < broker_batches_count.
size_t broker_batches_count(const broker_batches_t *self);
broker_batch_t *broker_batches_at(const broker_batches_t *self, size_t index);
//  Start a dispatch round; returns its number (a batch declined for a runner is skipped for
//  that runner until the next round).
uint64_t broker_batches_start_round(broker_batches_t *self);
uint64_t broker_batches_round(const broker_batches_t *self);
//  The batch with the lowest pass among those for which can_start(batch, arg) is true, or NULL.
typedef bool(broker_batches_filter_fn)(const broker_batch_t *batch, void *arg);
broker_batch_t *broker_batches_next(const broker_batches_t *self,
                                    broker_batches_filter_fn *can_start, void *arg);

#endif
