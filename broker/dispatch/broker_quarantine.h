//  broker_quarantine: black-hole runners are stopped. A runner whose last K attempts all
//  failed while other runners completed jobs of the same batches is quarantined (HTCondor's and
//  Slurm's node health checks do the same): it gets no work until an operator resumes it, and
//  the retries its failures cost are given back to the jobs that can still use them.
//
//  A broken runner fails fast, often before any other runner has completed anything, so a
//  runner whose streak reached K without that evidence yet is *suspect* (broker_health): the
//  scheduler gives it no work a healthy runner could take, and the first completion elsewhere
//  quarantines it. With no other runner it keeps working: without evidence the batch, not the
//  runner, may be what fails. The facts live in each runner's broker_health record.
#ifndef BROKER_QUARANTINE_H_INCLUDED
#define BROKER_QUARANTINE_H_INCLUDED

#include "broker_core.h"

//  How a runner reported an attempt (FINISHED): what the rules judge.
typedef struct {
    const char *job_id;
    const char *batch_id;
    int64_t attempt;
    lynx_job_state_t outcome; //  as the runner reported it
    bool retryable;
    bool cancelled; //  cancel was requested: not the runner's fault, whatever it says
    const char *error_message;
} broker_attempt_end_t;

//  Count the attempt in runner's streak; quarantine it (durably, within the open turn, and
//  giving back the retries its failures cost) once the streak is full and other runners
//  completed jobs of the same batches. A completion may quarantine other, suspect runners.
void broker_quarantine_attempt_ended(broker_core_t *core, broker_runner_t *runner,
                                     const broker_attempt_end_t *end);
//  Restore the quarantines the store kept. 0 or -1 (see the store's error).
int broker_quarantine_load(broker_core_t *core);
//  An operator resumed the runner: its quarantine (lifted in the store) and streak are
//  forgotten. Returns true when a quarantine was lifted.
bool broker_quarantine_lift(broker_core_t *core, broker_runner_t *runner);

#endif
