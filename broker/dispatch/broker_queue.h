//  broker_queue: the jobs in flight (Claimed or Running), an entry each with the attempt's job
//  record, its batch and its runner. Pending jobs stay on disk (the store); only what moves is
//  here. Entries are read by the dispatch modules; they change only through the functions
//  here.
#ifndef BROKER_QUEUE_H_INCLUDED
#define BROKER_QUEUE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#include "broker_batches.h"
#include "broker_runners.h"
#include "broker_store.h"

//  A job that is Claimed or Running. Read-only outside broker_queue.c.
typedef struct {
    broker_job_rec_t rec;
    broker_batch_t *batch;
    broker_runner_t *runner; //  NULL while its runner is unknown (recovered at start-up)
    bool cancel_requested;   //  KILL sent; the attempt ends Cancelled unless it completed
    broker_exit_t exit;      //  how its scenario ended, once the runner said (FINISHED)
} broker_inflight_t;

typedef struct _broker_queue_t broker_queue_t;

//  An empty queue. NULL on out-of-memory.
broker_queue_t *broker_queue_new(void);
//  Destroy every entry; sets *self_p to NULL. NULL-safe.
void broker_queue_destroy(broker_queue_t **self_p);

//  Track the job of rec (copied) of batch on runner (NULL: not known yet). The entry, or NULL
//  on out-of-memory.
broker_inflight_t *broker_queue_add(broker_queue_t *self, const broker_job_rec_t *rec,
                                    broker_batch_t *batch, broker_runner_t *runner);
broker_inflight_t *broker_queue_lookup(const broker_queue_t *self, const char *job_id);
//  Forget a job's entry (its attempt ended or was undone). Unknown ids are fine.
void broker_queue_remove(broker_queue_t *self, const char *job_id);
size_t broker_queue_count(const broker_queue_t *self);

//  The entries filter(entry, arg) accepts, in a new list of borrowed entries the caller
//  destroys: a snapshot that stays valid while entries are removed (until the entry itself
//  is). filter NULL: every entry.
typedef bool(broker_queue_filter_fn)(const broker_inflight_t *inflight, const void *arg);
zlistx_t *broker_queue_select(const broker_queue_t *self, broker_queue_filter_fn *filter,
                              const void *arg);
//  The filter for the entries of one runner (arg: the broker_runner_t).
bool broker_queue_on_runner(const broker_inflight_t *inflight, const void *arg);

//  The attempt's record after a durable change (status, times, retries).
void broker_inflight_update(broker_inflight_t *inflight, const broker_job_rec_t *rec);
//  The runner the attempt is attached to (NULL: detached).
void broker_inflight_set_runner(broker_inflight_t *inflight, broker_runner_t *runner);
//  A KILL was sent: the attempt ends Cancelled unless it completed.
void broker_inflight_request_cancel(broker_inflight_t *inflight);
//  How the scenario ended, as FINISHED said.
void broker_inflight_set_exit(broker_inflight_t *inflight, broker_exit_t exit);

#endif
