//  broker_runners: the runner registry. It owns every runner record this broker process has
//  seen (by id and in admission order), which ids an operator drained (persisted), and each
//  runner id's health record (broker_health, which outlives a connection). Records are read
//  by the dispatch modules; they change only through the functions here.
#ifndef BROKER_RUNNERS_H_INCLUDED
#define BROKER_RUNNERS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker_health.h"
#include "broker_store.h"
#include "lynx_err.h"
#include "lynx_state.h"
#include "lynx_value.h"

//  A runner known to this broker process. Read-only outside broker_runners.c.
typedef struct {
    char *id;
    char *name;
    zframe_t *routing_id;
    lynx_value_t *capabilities;
    lynx_value_t *engines;
    int64_t max_concurrent_jobs;
    int64_t active_jobs;
    int64_t last_seen_ms;          //  monotonic
    int64_t heartbeat_interval_ms; //  as the runner declared it
    int64_t jobs_completed;
    int64_t jobs_failed;
    char *hostname;
    int64_t pid;
    bool online;
    bool draining;           //  Maintenance: keeps its jobs, gets no new ones
    broker_health_t *health; //  failure streak and quarantine (owned by the registry)
} broker_runner_t;

typedef struct _broker_runners_t broker_runners_t;

//  An empty registry: heartbeat_interval_ms is the default a runner that declares none gets,
//  a runner silent for heartbeat_misses of its intervals is Offline, and quarantine_after
//  failures in a row make it judgeable (0: never). NULL on out-of-memory.
broker_runners_t *broker_runners_new(int64_t heartbeat_interval_ms, int64_t heartbeat_misses,
                                     int64_t quarantine_after);
//  Destroy every record; sets *self_p to NULL. NULL-safe.
void broker_runners_destroy(broker_runners_t **self_p);
//  Remember the runners the store says an operator drained. 0 or -1 (see the store's error).
int broker_runners_load_drained(broker_runners_t *self, broker_store_t *store);

//  Records in admission order, for loops that may nest: index < broker_runners_count.
size_t broker_runners_count(const broker_runners_t *self);
broker_runner_t *broker_runners_at(const broker_runners_t *self, size_t index);
//  By id, or NULL.
broker_runner_t *broker_runners_lookup(const broker_runners_t *self, const char *runner_id);
//  The online runner behind a ROUTER routing id, or NULL.
broker_runner_t *broker_runners_by_route(const broker_runners_t *self, zframe_t *routing_id);
//  The health record of a runner id, created when first asked for (a quarantine the store kept
//  exists before its runner registers). NULL on out-of-memory.
broker_health_t *broker_runners_health_of(broker_runners_t *self, const char *runner_id);
int64_t broker_runners_quarantine_after(const broker_runners_t *self);

//  A REGISTER on runner_socket from routing_id: the runner record, created or updated (a
//  restarted runner takes its id over), or NULL after answering ERROR on runner_socket (bad
//  capabilities, an id in use by a connected runner of another process).
broker_runner_t *broker_runners_admit(broker_runners_t *self, zsock_t *runner_socket,
                                      zframe_t *routing_id, const lynx_value_t *body);

//  Idle, Busy, Offline, Maintenance or Quarantined.
const char *broker_runners_status(const broker_runner_t *runner);
//  True when the runner may be given new work.
bool broker_runners_available(const broker_runner_t *runner);
//  True when an online runner has been silent for heartbeat_misses of its intervals.
bool broker_runners_silent(const broker_runners_t *self, const broker_runner_t *runner,
                           int64_t now_mono_ms);

//  The runner is alive (any message from it).
void broker_runners_touch(broker_runner_t *runner);
//  An attempt is now the runner's (attach) or no longer is without having ended (release: an
//  unclaimed job, a reconciliation). detach ends one and counts it: completed, else failed
//  unless it was not charged (the runner was stopped).
void broker_runners_attach(broker_runner_t *runner);
void broker_runners_release(broker_runner_t *runner);
void broker_runners_detach(broker_runner_t *runner, lynx_job_state_t outcome, bool charged);
//  Offline: its heartbeats stopped (logged with how long), or it said it is leaving.
void broker_runners_went_offline(broker_runner_t *runner);
void broker_runners_left(broker_runner_t *runner);
//  Drain (Maintenance) or resume; the choice is stored first and survives a broker restart.
//  -1 with err when the store failed.
int broker_runners_set_draining(broker_runners_t *self, broker_store_t *store,
                                broker_runner_t *runner, bool draining, lynx_err_t *err);

#endif
