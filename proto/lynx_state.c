#include "lynx_state.h"

#include <string.h>

static const char *s_job_names[LYNX_JOB_STATE_COUNT] = {
    "Pending", "Claimed", "Running", "Completed", "Failed", "Timeout", "Cancelled",
};

static const char *s_batch_names[LYNX_BATCH_STATE_COUNT] = {
    "Pending", "Running", "Completed", "Failed", "Cancelled",
};

//  allowed[from][to]. A failed attempt with retries left goes back to Pending straight from
//  Claimed or Running (the runner was lost, or the scenario failed), never via Failed: a job
//  that reached Failed is terminal.
static const bool s_allowed[LYNX_JOB_STATE_COUNT][LYNX_JOB_STATE_COUNT] = {
    [LYNX_JOB_PENDING] = {[LYNX_JOB_CLAIMED] = true, [LYNX_JOB_CANCELLED] = true},
    [LYNX_JOB_CLAIMED] =
        {[LYNX_JOB_RUNNING] = true, [LYNX_JOB_CANCELLED] = true, [LYNX_JOB_PENDING] = true},
    [LYNX_JOB_RUNNING] = {[LYNX_JOB_COMPLETED] = true,
                          [LYNX_JOB_FAILED] = true,
                          [LYNX_JOB_TIMEOUT] = true,
                          [LYNX_JOB_PENDING] = true,
                          [LYNX_JOB_CANCELLED] = true},
};

const char *lynx_job_state_name(lynx_job_state_t state)
{
    return (unsigned)state < LYNX_JOB_STATE_COUNT ? s_job_names[state] : "Unknown";
}

static int s_parse(const char *const *names, int count, const char *name)
{
    for (int index = 0; name && index < count; index++)
        if (strcmp(names[index], name) == 0)
            return index;
    return -1;
}

int lynx_job_state_parse(const char *name)
{
    return s_parse(s_job_names, LYNX_JOB_STATE_COUNT, name);
}

bool lynx_job_state_terminal(lynx_job_state_t state)
{
    return state == LYNX_JOB_COMPLETED || state == LYNX_JOB_FAILED || state == LYNX_JOB_TIMEOUT ||
           state == LYNX_JOB_CANCELLED;
}

bool lynx_job_transition_allowed(lynx_job_state_t from, lynx_job_state_t to)
{
    if ((unsigned)from >= LYNX_JOB_STATE_COUNT || (unsigned)to >= LYNX_JOB_STATE_COUNT)
        return false;
    return s_allowed[from][to];
}

const char *lynx_batch_state_name(lynx_batch_state_t state)
{
    return (unsigned)state < LYNX_BATCH_STATE_COUNT ? s_batch_names[state] : "Unknown";
}

int lynx_batch_state_parse(const char *name)
{
    return s_parse(s_batch_names, LYNX_BATCH_STATE_COUNT, name);
}
