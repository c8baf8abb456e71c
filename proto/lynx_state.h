//  lynx_state: job and batch states, their names on the wire and in JSON, and the one table of
//  legal job transitions (lynx-docs/job-lifecycle.txt). Every job change is checked here.
#ifndef LYNX_STATE_H_INCLUDED
#define LYNX_STATE_H_INCLUDED

#include <stdbool.h>

typedef enum {
    LYNX_JOB_PENDING,
    LYNX_JOB_CLAIMED,
    LYNX_JOB_RUNNING,
    LYNX_JOB_COMPLETED,
    LYNX_JOB_FAILED,
    LYNX_JOB_TIMEOUT,
    LYNX_JOB_CANCELLED,
    LYNX_JOB_STATE_COUNT
} lynx_job_state_t;

typedef enum {
    LYNX_BATCH_PENDING,
    LYNX_BATCH_RUNNING,
    LYNX_BATCH_COMPLETED,
    LYNX_BATCH_FAILED,
    LYNX_BATCH_CANCELLED,
    LYNX_BATCH_STATE_COUNT
} lynx_batch_state_t;

//  "Pending", "Claimed", ... as the docs spell them.
const char *lynx_job_state_name(lynx_job_state_t state);
//  Parse a name; returns -1 for an unknown one.
int lynx_job_state_parse(const char *name);
//  Completed, Failed, Timeout and Cancelled are terminal.
bool lynx_job_state_terminal(lynx_job_state_t state);
//  True when from -> to is a legal transition. Failed -> Pending is legal only as a retry, which
//  the broker decides before recording Failed, so it is modelled as Running -> Pending here.
bool lynx_job_transition_allowed(lynx_job_state_t from, lynx_job_state_t to);

const char *lynx_batch_state_name(lynx_batch_state_t state);
int lynx_batch_state_parse(const char *name);

#endif
