//  runner_job: one job attempt, from a fresh output directory to the FINISHED body. On the
//  runner's zloop it owns a pidfd poller (or, without pidfds, a reap timer), a timeout timer, a
//  kill grace timer and, through runner_telemetry, the intake's sockets and check timer.
#include "runner_job.h"

#include <ctype.h>
#include <sys/stat.h>

#include "lynx_json.h"
#include "lynx_time.h"
#include "runner_artifacts.h"
#include "runner_engine.h"
#include "runner_fs.h"
#include "runner_proc.h"
#include "runner_telemetry.h"

#define RUNNER_KILL_GRACE_MS 5000
#define RUNNER_STDERR_TAIL_LINES 10
//  Without pidfds, how often exited scenarios are looked for.
#define RUNNER_REAP_INTERVAL_MS 100
//  After a scenario exits, how long its telemetry connections may take to close (their last
//  frames are read until then).
#define RUNNER_SETTLE_MS 250
#define RUNNER_EARLY_TERMINATION "EarlyTermination"

struct _runner_job_t {
    const runner_job_host_t *host;
    char *job_id;
    int64_t attempt;
    lynx_value_t *assign; //  the ASSIGN body
    runner_proc_t *proc;
    runner_telemetry_t *telemetry;
    int exit_fd;
    int reap_timer;     //  -1 when none
    int timeout_timer;  //  -1 when none
    int grace_timer;    //  -1 when none
    bool exited;        //  reaped; the result waits for telemetry still in flight
    const char *ending; //  NULL, or why we are killing it: "Timeout", "Cancelled",
                        //  RUNNER_EARLY_TERMINATION
    char output_dir[4096];
    char entrypoint[4096];
};

runner_job_t *runner_job_new(const runner_job_host_t *host, const lynx_value_t *assign)
{
    runner_job_t *self = (runner_job_t *)calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->host = host;
    self->job_id = strdup(lynx_value_get_string(assign, "job_id", ""));
    self->attempt = lynx_value_get_int(assign, "attempt", 0);
    self->assign = lynx_value_dup(assign);
    self->exit_fd = self->reap_timer = self->timeout_timer = self->grace_timer = -1;
    if (!self->job_id || !self->assign)
        runner_job_destroy(&self);
    return self;
}

static void s_end_timer(runner_job_t *self, int *timer_p)
{
    if (*timer_p >= 0)
        zloop_timer_end(self->host->loop, *timer_p);
    *timer_p = -1;
}

//  The scenario is gone (or never ran): no more exit poller, reap timer, timeout or grace period.
static void s_end_process_watch(runner_job_t *self)
{
    if (self->exit_fd >= 0) {
        zmq_pollitem_t item = {NULL, self->exit_fd, ZMQ_POLLIN, 0};
        zloop_poller_end(self->host->loop, &item);
    }
    self->exit_fd = -1;
    s_end_timer(self, &self->reap_timer);
    s_end_timer(self, &self->timeout_timer);
    s_end_timer(self, &self->grace_timer);
}

void runner_job_destroy(runner_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    runner_job_t *self = *self_p;
    s_end_process_watch(self);
    runner_proc_destroy(&self->proc);
    runner_telemetry_destroy(&self->telemetry); //  leaves the loop
    lynx_value_destroy(&self->assign);
    free(self->job_id);
    free(self);
    *self_p = NULL;
}

const char *runner_job_id(const runner_job_t *self)
{
    return self->job_id;
}

int64_t runner_job_attempt(const runner_job_t *self)
{
    return self->attempt;
}

pid_t runner_job_pid(const runner_job_t *self)
{
    return self->proc ? runner_proc_pid(self->proc) : -1;
}

bool runner_job_exited(const runner_job_t *self)
{
    return self->exited;
}

const char *runner_job_output_dir(const runner_job_t *self)
{
    return self->output_dir;
}

// --------------------------------------------------------------------------------------------
//  The result

//  The result (JobResult) of the attempt; output_files are scan's, the documented absolute
//  paths on this runner.
static lynx_value_t *s_result(runner_job_t *self, bool success, const char *error_message,
                              lynx_value_t *scan)
{
    const lynx_value_t *run_config = lynx_value_get(self->assign, "run_config");
    lynx_value_t *result = lynx_value_map();
    lynx_value_set_string(result, "job_id", self->job_id);
    lynx_value_set_bool(result, "success", success);
    lynx_value_set_double(result, "execution_time_secs",
                          self->proc ? runner_proc_elapsed_secs(self->proc) : 0.0);
    lynx_value_t *files = lynx_value_dup(lynx_value_get(scan, "output_files"));
    lynx_value_set_owned(result, "output_files", files ? files : lynx_value_array());
    lynx_value_t *telemetry = runner_telemetry_summary(self->telemetry);
    if (telemetry)
        lynx_value_set_owned(result, "telemetry_data", telemetry);
    else
        lynx_value_set_null(result, "telemetry_data");
    lynx_value_t *metadata = lynx_value_map();
    lynx_value_set_string(metadata, "engine", lynx_value_get_string(self->assign, "engine", ""));
    lynx_value_set_string(
        metadata, "simulation_name",
        lynx_value_get_string(lynx_value_get(run_config, "metadata"), "simulation_name", ""));
    lynx_value_set_string(metadata, "entrypoint", self->entrypoint);
    lynx_value_set_string(metadata, "runner_id", self->host->config->runner_id);
    char run_id[32];
    snprintf(run_id, sizeof run_id, "%" PRId64, lynx_value_get_int(run_config, "run_id", 0));
    lynx_value_set_string(metadata, "run_id", run_id);
    lynx_value_set_int(metadata, "attempt", self->attempt);
    lynx_value_set_owned(result, "metadata", metadata);
    lynx_value_set_string(result, "error_message", success ? NULL : error_message);
    return result;
}

//  Hand the attempt's outcome to the runner, which sends it and keeps it until the broker's
//  ACK. A failure a retry cannot help (an early termination) says retryable: false.
static void s_report(runner_job_t *self, const char *status, bool success,
                     const char *error_message, bool retryable)
{
    s_end_process_watch(self);
    lynx_value_t *body = lynx_value_map();
    lynx_value_set_string(body, "job_id", self->job_id);
    lynx_value_set_int(body, "attempt", self->attempt);
    lynx_value_set_string(body, "status", status);
    //  What the broker will fetch (PROTOCOL.md, FETCH): the files config.artifacts collects,
    //  and what was skipped and why.
    lynx_value_t *scan =
        *self->output_dir
            ? runner_artifacts_scan(self->output_dir, lynx_value_get(self->assign, "artifacts"))
            : NULL;
    lynx_value_set_owned(body, "result", s_result(self, success, error_message, scan));
    if (scan) {
        lynx_value_t *artifacts = lynx_value_map();
        lynx_value_set_owned(artifacts, "files", lynx_value_dup(lynx_value_get(scan, "files")));
        lynx_value_set_owned(artifacts, "skipped", lynx_value_dup(lynx_value_get(scan, "skipped")));
        lynx_value_set_owned(body, "artifacts", artifacts);
    }
    lynx_value_destroy(&scan);
    if (!retryable)
        lynx_value_set_bool(body, "retryable", false);
    //  How the scenario ended, for the job's attempt history (absent when it never started).
    if (self->proc && self->exited) {
        if (runner_proc_exit_code(self->proc) >= 0)
            lynx_value_set_int(body, "exit_code", runner_proc_exit_code(self->proc));
        else if (runner_proc_term_signal(self->proc) > 0)
            lynx_value_set_int(body, "exit_signal", runner_proc_term_signal(self->proc));
    }
    zsys_info("runner: job %s job=%s attempt=%" PRId64 "%s%s", status, self->job_id, self->attempt,
              error_message ? " reason=" : "", error_message ? error_message : "");
    self->host->finished(self, &body, self->host->finished_arg);
    lynx_value_destroy(&body);
}

void runner_job_abandon(runner_job_t *self, const char *reason)
{
    char message[1024];
    snprintf(message, sizeof message, "cannot start scenario: %s", reason);
    s_report(self, "Failed", false, message, true);
}

//  Report the outcome of an exited scenario. A rule that fired (while it ran, or on its last
//  frames) makes it Failed for good, unless it was timed out or cancelled first.
static void s_finish(runner_job_t *self)
{
    const char *status = "Completed";
    char message[4096] = "";
    const lynx_value_t *trigger = runner_telemetry_trigger(self->telemetry);
    if (trigger && !self->ending)
        self->ending = RUNNER_EARLY_TERMINATION;
    bool success = runner_proc_exit_code(self->proc) == 0 && !self->ending;
    bool early = self->ending && strcmp(self->ending, RUNNER_EARLY_TERMINATION) == 0;
    if (early) {
        status = "Failed";
        snprintf(message, sizeof message, "early termination: %s",
                 lynx_value_get_string(trigger, "rule_name", ""));
    } else if (self->ending && strcmp(self->ending, "Timeout") == 0) {
        status = "Timeout";
        snprintf(message, sizeof message, "timed out after %" PRId64 " s (%s)",
                 lynx_value_get_int(self->assign, "timeout_secs", 0),
                 runner_proc_exit_description(self->proc));
    } else if (self->ending) {
        status = "Cancelled";
        snprintf(message, sizeof message, "cancelled (%s)",
                 runner_proc_exit_description(self->proc));
    } else if (!success) {
        status = "Failed";
        char stderr_path[4200];
        snprintf(stderr_path, sizeof stderr_path, "%s/stderr.log", self->output_dir);
        char *tail = runner_proc_file_tail(stderr_path, RUNNER_STDERR_TAIL_LINES, 2048);
        for (size_t len = tail ? strlen(tail) : 0;
             len > 0 && isspace((unsigned char)tail[len - 1]);)
            tail[--len] = '\0';
        snprintf(message, sizeof message, "scenario failed: %s%s%s",
                 runner_proc_exit_description(self->proc), tail && *tail ? "; stderr: " : "",
                 tail ? tail : "");
        free(tail);
    }
    s_report(self, status, success, success ? NULL : message, !early);
}

// --------------------------------------------------------------------------------------------
//  Exit, timeout and kill

//  The exited scenario's last frames are in.
static void s_on_settled(void *arg)
{
    s_finish((runner_job_t *)arg);
}

//  The scenario exited: its last frames may still be on the way, and its result waits for them.
static void s_on_exit(runner_job_t *self)
{
    self->exited = true;
    s_end_process_watch(self);
    if (self->telemetry)
        runner_telemetry_settle(self->telemetry, RUNNER_SETTLE_MS, s_on_settled);
    else
        s_finish(self);
}

static int s_on_exit_fd(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop, (void)item;
    runner_job_t *self = (runner_job_t *)arg;
    if (runner_proc_reap(self->proc))
        s_on_exit(self);
    return 0;
}

//  Without pidfds: look for the exit on a timer.
static int s_on_reap_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    runner_job_t *self = (runner_job_t *)arg;
    if (!self->exited && runner_proc_reap(self->proc))
        s_on_exit(self);
    return 0;
}

static int s_on_grace_over(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    runner_job_t *self = (runner_job_t *)arg;
    self->grace_timer = -1;
    runner_proc_signal(self->proc, SIGKILL);
    return 0;
}

//  Ask the whole process group to stop, then force it after a grace period.
static void s_stop(runner_job_t *self, const char *ending, int signal)
{
    if (!self->ending)
        self->ending = ending;
    runner_proc_signal(self->proc, signal);
    if (signal != SIGKILL && self->grace_timer < 0)
        self->grace_timer =
            zloop_timer(self->host->loop, RUNNER_KILL_GRACE_MS, 1, s_on_grace_over, self);
}

static int s_on_timeout(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    runner_job_t *self = (runner_job_t *)arg;
    self->timeout_timer = -1;
    zsys_warning("runner: job timed out job=%s", self->job_id);
    s_stop(self, "Timeout", SIGTERM);
    return 0;
}

//  A rule fired: kill the scenario's process group at once (SIGKILL: the run is worthless and
//  every moment costs compute). Its exit reports the trigger.
static void s_on_fired(void *arg)
{
    runner_job_t *self = (runner_job_t *)arg;
    const lynx_value_t *trigger = runner_telemetry_trigger(self->telemetry);
    zsys_notice("runner: early termination job=%s attempt=%" PRId64
                " rule=\"%s\" elapsed_secs=%.3f seq=%" PRId64,
                self->job_id, self->attempt, lynx_value_get_string(trigger, "rule_name", ""),
                lynx_value_get_double(trigger, "elapsed_seconds", 0),
                lynx_value_get_int(trigger, "seq", 0));
    if (!self->exited)
        s_stop(self, RUNNER_EARLY_TERMINATION, SIGKILL);
}

void runner_job_cancel(runner_job_t *self, const char *reason)
{
    if (self->exited)
        return;
    zsys_notice("runner: killing job=%s reason=\"%s\"", self->job_id, reason);
    s_stop(self, "Cancelled", SIGKILL);
}

// --------------------------------------------------------------------------------------------
//  Starting

//  A fresh, empty output directory: a retried attempt must not see the last one's files. Other
//  runners may be creating the same parents at this moment (a shared output root).
static int s_prepare_dir(const char *path, lynx_err_t *err)
{
    if (runner_fs_mkdir_p(path, 0755, err))
        return -1;
    return runner_fs_empty_dir(path, err);
}

int runner_job_launch(runner_job_t *self, lynx_err_t *err)
{
    const runner_config_t *config = self->host->config;
    const char *engine = lynx_value_get_string(self->assign, "engine", "");
    runner_command_t command;
    if (runner_engine_command(engine, config, &command, err))
        return -1;
    snprintf(self->entrypoint, sizeof self->entrypoint, "%s", command.entrypoint);
    snprintf(self->output_dir, sizeof self->output_dir, "%s/%s", config->output_root, self->job_id);
    if (s_prepare_dir(self->output_dir, err))
        return -1;
    //  The run config lives beside, not inside, the output dir: it is not an artifact.
    char config_dir[4200], config_path[4400];
    snprintf(config_dir, sizeof config_dir, "%s/.lynx-run-configs", config->output_root);
    if (runner_fs_mkdir_p(config_dir, 0755, err))
        return -1;
    snprintf(config_path, sizeof config_path, "%s/%s.json", config_dir, self->job_id);
    if (lynx_json_write_file(lynx_value_get(self->assign, "run_config"), config_path, err))
        return -1;
    self->telemetry =
        runner_telemetry_new(self->job_id, lynx_value_get_string(self->assign, "batch_id", ""),
                             lynx_value_get(self->assign, "early_termination"),
                             lynx_value_get(self->assign, "telemetry"), lynx_time_mono_ms(), err);
    if (!self->telemetry)
        return -1;

    char env_config[4500], env_output[4200], env_job[128], env_runner[512], env_url[128];
    snprintf(env_config, sizeof env_config, "TETRYX_RUN_CONFIG=%s", config_path);
    snprintf(env_output, sizeof env_output, "TETRYX_OUTPUT_DIR=%s", self->output_dir);
    snprintf(env_job, sizeof env_job, "LYNX_JOB_ID=%s", self->job_id);
    snprintf(env_runner, sizeof env_runner, "LYNX_RUNNER_ID=%s", config->runner_id);
    snprintf(env_url, sizeof env_url, "TETRYX_TELEMETRY_URL=%s",
             runner_telemetry_endpoint(self->telemetry));
    const char *env[] = {
        env_config, env_output, env_job, env_runner, env_url, self->host->pythonpath, NULL};
    char stdout_path[4200], stderr_path[4200];
    snprintf(stdout_path, sizeof stdout_path, "%s/stdout.log", self->output_dir);
    snprintf(stderr_path, sizeof stderr_path, "%s/stderr.log", self->output_dir);
    runner_proc_spec_t spec = {
        .argv = command.argv,
        .working_directory = config->working_directory,
        .stdout_path = stdout_path,
        .stderr_path = stderr_path,
        .extra_env = env,
    };
    self->proc = runner_proc_start(&spec, err);
    return self->proc ? 0 : -1;
}

void runner_job_watch(runner_job_t *self)
{
    zloop_t *loop = self->host->loop;
    self->exit_fd = runner_proc_exit_fd(self->proc);
    if (self->exit_fd >= 0) {
        zmq_pollitem_t item = {NULL, self->exit_fd, ZMQ_POLLIN, 0};
        zloop_poller(loop, &item, s_on_exit_fd, self);
    } else
        self->reap_timer = zloop_timer(loop, RUNNER_REAP_INTERVAL_MS, 0, s_on_reap_timer, self);
    int64_t timeout_secs = lynx_value_get_int(self->assign, "timeout_secs", 0);
    if (timeout_secs > 0)
        self->timeout_timer =
            zloop_timer(loop, (size_t)(timeout_secs * 1000), 1, s_on_timeout, self);
    if (runner_telemetry_watch(self->telemetry, loop, self->host->events_p, s_on_fired, self))
        zsys_error("runner: cannot poll the telemetry of job=%s", self->job_id);
    //  A child may exit before the poller exists; reap once now to not miss it.
    if (runner_proc_reap(self->proc))
        s_on_exit(self);
}
