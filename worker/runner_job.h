//  runner_job: one job attempt on a runner. It prepares a fresh output directory and writes the
//  run config beside it, launches the engine's command (runner_proc) with the scenario's
//  environment, hooks the telemetry intake and watchdog (runner_telemetry) onto the runner's
//  zloop, enforces the timeout (SIGTERM, then SIGKILL after a grace period), kills on
//  cancellation or a fired rule, and once the scenario has exited and its last frames are in,
//  builds the FINISHED body. Sending it, holding it until the ACK and forgetting the job are
//  the runner's (runner.c): it is handed over through the finished callback.
#ifndef RUNNER_JOB_H_INCLUDED
#define RUNNER_JOB_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "lynx_err.h"
#include "lynx_value.h"
#include "runner_config.h"

typedef struct _runner_job_t runner_job_t;

//  The outcome of an attempt: *finished_p is the FINISHED body {job_id, attempt, status, result,
//  [retryable: false]}, which the callee takes (and sets to NULL). Called once per job; the
//  callee may destroy the job (and normally does).
typedef void(runner_job_finished_fn)(runner_job_t *job, lynx_value_t **finished_p, void *arg);

//  What jobs borrow from the runner that owns them; it must outlive every job.
typedef struct {
    const runner_config_t *config;
    zloop_t *loop;
    zsock_t **events_p;     //  the PUB telemetry is forwarded to, read at each wake-up (or NULL)
    const char *pythonpath; //  "PYTHONPATH=..." for scenarios, or NULL: inherited as is
    runner_job_finished_fn *finished;
    void *finished_arg;
} runner_job_host_t;

//  A job for the ASSIGN body assign (copied), not started yet. NULL on out-of-memory.
runner_job_t *runner_job_new(const runner_job_host_t *host, const lynx_value_t *assign);
//  Destroy: stops watching the scenario on the loop, kills its process group if it still runs
//  and closes its telemetry sockets; sets *self_p to NULL. NULL-safe. Reports nothing.
void runner_job_destroy(runner_job_t **self_p);

//  The ASSIGN's job_id and attempt.
const char *runner_job_id(const runner_job_t *self);
int64_t runner_job_attempt(const runner_job_t *self);
//  The scenario's pid once launched, else -1.
pid_t runner_job_pid(const runner_job_t *self);
//  The attempt's output directory ("" before the launch prepared it).
const char *runner_job_output_dir(const runner_job_t *self);
//  True once the scenario has been reaped (its result may still wait for telemetry).
bool runner_job_exited(const runner_job_t *self);

//  Prepare the output directory and run config, bind the telemetry intake and launch the
//  scenario. -1 with err (naming the path, engine or config field) when any step fails; then
//  report it with runner_job_abandon.
int runner_job_launch(runner_job_t *self, lynx_err_t *err);
//  Report that the attempt never ran: Failed, "cannot start scenario: <reason>", retryable.
//  Calls finished, which may destroy self.
void runner_job_abandon(runner_job_t *self, const char *reason);
//  After a successful launch: watch for the exit (a pidfd poller, else a reap timer), arm the
//  timeout and the telemetry watchdog. May call finished before it returns when the scenario
//  already exited.
void runner_job_watch(runner_job_t *self);
//  The broker cancelled the attempt: SIGKILL its process group (unless it already exited); the
//  exit reports Cancelled.
void runner_job_cancel(runner_job_t *self, const char *reason);

#endif
