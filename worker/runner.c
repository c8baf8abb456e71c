//  runner: the actor behind lynx-runner. One zloop owns the DEALER to the broker (with a
//  monitor on it that notices reconnections), the PUB that heartbeats and telemetry go out on,
//  per job a pidfd poller, a timeout timer and the telemetry intake's sockets and check timer
//  (runner_telemetry), and the heartbeat timer.
#include "runner.h"

#include <ctype.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lynx_json.h"
#include "lynx_msg.h"
#include "lynx_time.h"
#include "runner_engine.h"
#include "runner_proc.h"
#include "runner_telemetry.h"

#define RUNNER_KILL_GRACE_MS 5000
#define RUNNER_STDERR_TAIL_LINES 10
//  While unregistered, REGISTER is repeated no more often than this (reconnections and ERROR
//  not_found send it at once; this only covers a lost answer).
#define RUNNER_REGISTER_RETRY_MS 5000
//  The DEALER's ZMTP pings: a broker link silent for this many heartbeat intervals (and at
//  least RUNNER_LINK_TIMEOUT_MIN_MS) is dropped and reconnected, on both sides.
#define RUNNER_LINK_MISSES 3
#define RUNNER_LINK_TIMEOUT_MIN_MS 2000
//  The PUB's queue: heartbeats and forwarded telemetry. Sends never wait; a full queue refuses
//  them (ZMQ_XPUB_NODROP), and a refused heartbeat goes on the DEALER instead.
#define RUNNER_EVENTS_SNDHWM 1000
//  After a scenario exits, how long its telemetry connections may take to close (their last
//  frames are read until then).
#define RUNNER_SETTLE_MS 250
#define RUNNER_EARLY_TERMINATION "EarlyTermination"

typedef struct _s_runner_t s_runner_t;

typedef struct {
    s_runner_t *runner;
    char *job_id;
    int64_t attempt;
    lynx_value_t *assign; //  the ASSIGN body
    runner_proc_t *proc;
    runner_telemetry_t *telemetry;
    int exit_fd;
    int timeout_timer;  //  -1 when none
    int grace_timer;    //  -1 when none
    bool exited;        //  reaped; the result waits for telemetry still in flight
    const char *ending; //  NULL, or why we are killing it: "Timeout", "Cancelled",
                        //  RUNNER_EARLY_TERMINATION
    char output_dir[4096];
    char entrypoint[4096];
} s_job_t;

//  A FINISHED body the broker has not acknowledged yet.
typedef struct {
    lynx_value_t *body;
    int64_t sent_ms; //  monotonic time of the last send
} s_pending_t;

struct _s_runner_t {
    runner_config_t *config;
    zsock_t *pipe;
    zsock_t *broker;
    zsock_t *monitor; //  PAIR: the DEALER's connect/disconnect events
    zsock_t *events;  //  PUB heartbeats go out on; NULL: they go on the DEALER (older broker)
    char events_endpoint[512]; //  what events is connected to, or ""
    zloop_t *loop;
    zhashx_t *jobs;    //  job_id -> s_job_t, running now
    zlistx_t *unacked; //  s_pending_t, oldest first
    bool registered;
    bool announced;     //  READY sent to the owner
    bool was_connected; //  the DEALER has been connected before: a new connection is a return
    int64_t heartbeat_ms;
    int64_t last_register_ms;
    char hostname[256];
    char *pythonpath; //  scenarios' "PYTHONPATH=<telemetry client dir>[:inherited]", or NULL
};

static void s_job_destroy(s_job_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    s_job_t *job = *job_p;
    runner_proc_destroy(&job->proc);
    runner_telemetry_destroy(&job->telemetry);
    lynx_value_destroy(&job->assign);
    free(job->job_id);
    free(job);
    *job_p = NULL;
}

static void s_pending_destroy(s_pending_t **pending_p)
{
    if (!pending_p || !*pending_p)
        return;
    lynx_value_destroy(&(*pending_p)->body);
    free(*pending_p);
    *pending_p = NULL;
}

//  Sends never block the loop (the DEALER's send timeout is 0): a full queue drops the message
//  with a warning, and what matters (REGISTER, FINISHED) is sent again later.
static void s_send(s_runner_t *self, lynx_msg_t **msg_p)
{
    lynx_err_t err;
    if (lynx_msg_send(msg_p, zsock_resolve(self->broker), NULL, &err))
        zsys_warning("runner: send to broker failed: %s", err.message);
}

static void s_send_copy(s_runner_t *self, lynx_msg_id_t id, const lynx_value_t *body)
{
    lynx_msg_t *msg = lynx_msg_new(id);
    lynx_value_t *copy = lynx_value_dup(body);
    if (lynx_msg_set_body(msg, &copy))
        lynx_value_destroy(&copy);
    s_send(self, &msg);
}

// --------------------------------------------------------------------------------------------
//  Registration and liveness

static lynx_value_t *s_capabilities(s_runner_t *self)
{
    runner_config_t *config = self->config;
    lynx_value_t *capabilities = lynx_value_map();
    lynx_value_set_int(capabilities, "max_concurrent_jobs", config->max_concurrent_jobs);
    lynx_value_t *types = lynx_value_array();
    const char *const *names = NULL;
    size_t count = runner_config_simulation_types(config, &names);
    for (size_t i = 0; i < count; i++) {
        lynx_value_t *name = lynx_value_string(names[i]);
        if (lynx_value_append(types, &name))
            lynx_value_destroy(&name);
    }
    if (lynx_value_set(capabilities, "supported_simulation_types", &types))
        lynx_value_destroy(&types);
    lynx_value_set_bool(capabilities, "gpu_available", config->gpu_available);
    lynx_value_set_double(capabilities, "memory_gb", config->memory_gb);
    lynx_value_set_int(capabilities, "cpu_cores", config->cpu_cores);
    return capabilities;
}

static void s_set_owned(lynx_value_t *map, const char *key, lynx_value_t *child)
{
    if (lynx_value_set(map, key, &child))
        lynx_value_destroy(&child);
}

static lynx_value_t *s_attempt_entry(const char *job_id, int64_t attempt)
{
    lynx_value_t *entry = lynx_value_map();
    lynx_value_set_string(entry, "job_id", job_id);
    lynx_value_set_int(entry, "attempt", attempt);
    return entry;
}

static void s_append_owned(lynx_value_t *array, lynx_value_t *item)
{
    if (lynx_value_append(array, &item))
        lynx_value_destroy(&item);
}

static void s_register(s_runner_t *self)
{
    runner_config_t *config = self->config;
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REGISTER);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "runner_id", config->runner_id);
    lynx_value_set_string(body, "name", config->name);
    s_set_owned(body, "capabilities", s_capabilities(self));
    lynx_value_t *engines = lynx_value_array();
    for (size_t i = 0; i < config->engine_count; i++)
        s_append_owned(engines, lynx_value_string(config->engines[i]));
    s_set_owned(body, "engines", engines);
    //  What we still run and what we finished without an ACK, so a restarted broker reconciles.
    lynx_value_t *active = lynx_value_array();
    for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); job;
         job = (s_job_t *)zhashx_next(self->jobs))
        s_append_owned(active, s_attempt_entry(job->job_id, job->attempt));
    s_set_owned(body, "active_jobs", active);
    lynx_value_t *finished = lynx_value_array();
    for (s_pending_t *held = (s_pending_t *)zlistx_first(self->unacked); held;
         held = (s_pending_t *)zlistx_next(self->unacked))
        s_append_owned(finished, s_attempt_entry(lynx_value_get_string(held->body, "job_id", ""),
                                                 lynx_value_get_int(held->body, "attempt", 0)));
    s_set_owned(body, "finished_jobs", finished);
    lynx_value_set_string(body, "hostname", self->hostname);
    lynx_value_set_int(body, "pid", (int64_t)getpid());
    lynx_value_set_int(body, "heartbeat_interval_ms",
                       (int64_t)(config->heartbeat_interval_secs * 1000.0));
    self->last_register_ms = lynx_time_mono_ms();
    s_send(self, &msg);
}

//  Send again every FINISHED not acknowledged and last sent at least min_age_ms ago.
static void s_resend_unacked(s_runner_t *self, int64_t min_age_ms)
{
    int64_t now_ms = lynx_time_mono_ms();
    for (s_pending_t *held = (s_pending_t *)zlistx_first(self->unacked); held;
         held = (s_pending_t *)zlistx_next(self->unacked))
        if (now_ms - held->sent_ms >= min_age_ms) {
            s_send_copy(self, LYNX_MSG_FINISHED, held->body);
            held->sent_ms = now_ms;
        }
}

//  Every interval: a HEARTBEAT (on the PUB when the broker has an events socket), FINISHED
//  results still waiting for their ACK, or, while unregistered, REGISTER again.
static int s_on_heartbeat(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    s_runner_t *self = (s_runner_t *)arg;
    if (!self->registered) {
        if (lynx_time_mono_ms() - self->last_register_ms >= RUNNER_REGISTER_RETRY_MS)
            s_register(self);
        return 0;
    }
    //  A PUB full of telemetry the broker has not taken yet must not cost us a heartbeat.
    for (int publish = self->events != NULL; publish >= 0; publish--) {
        lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_HEARTBEAT);
        lynx_value_set_string(lynx_msg_body(msg), "runner_id", self->config->runner_id);
        lynx_value_set_int(lynx_msg_body(msg), "active_jobs", (int64_t)zhashx_size(self->jobs));
        lynx_err_t err;
        if (!publish)
            s_send(self, &msg);
        else if (lynx_msg_send(&msg, zsock_resolve(self->events), NULL, &err) == 0)
            break;
    }
    s_resend_unacked(self, self->heartbeat_ms);
    return 0;
}

//  tcp://ws-host:5555 and port 41003 give tcp://ws-host:41003. -1 when broker has no port to
//  replace (ipc://, inproc://, a malformed endpoint).
static int s_derive_endpoint(const char *broker, int64_t port, char *out, size_t size)
{
    const char *scheme = strstr(broker, "://");
    const char *colon = strrchr(broker, ':');
    if (!scheme || colon == scheme || strchr(colon, ']') || port < 1 || port > 65535)
        return -1;
    snprintf(out, size, "%.*s:%" PRId64, (int)(colon - broker), broker, port);
    return 0;
}

//  Follow the REGISTERED answer: publish heartbeats to the events endpoint when the broker
//  names an events_port, else (an older broker) send them on the DEALER. A restarted broker
//  may bind a new port, so the PUB is rebuilt whenever the endpoint changes.
static void s_use_events(s_runner_t *self, const lynx_value_t *registered)
{
    const char *configured = self->config->events_endpoint;
    const lynx_value_t *port_value = lynx_value_get(registered, "events_port");
    int64_t port = lynx_value_as_int(port_value);
    char endpoint[sizeof self->events_endpoint] = "";
    if (port_value && (port < 1 || port > 65535))
        zsys_warning("runner: ignoring events_port=%" PRId64 " from broker", port);
    else if (port_value && configured)
        snprintf(endpoint, sizeof endpoint, "%s", configured);
    else if (port_value &&
             s_derive_endpoint(self->config->broker_endpoint, port, endpoint, sizeof endpoint))
        zsys_warning("runner: cannot derive events endpoint from broker=%s; set events_endpoint",
                     self->config->broker_endpoint);
    if (strcmp(endpoint, self->events_endpoint) == 0)
        return;
    zsock_destroy(&self->events);
    self->events_endpoint[0] = '\0';
    if (*endpoint) {
        self->events = zsock_new(ZMQ_PUB);
        int nodrop = 1;
        if (self->events) {
            zsock_set_linger(self->events, 0); //  a heartbeat is worthless once late
            zsock_set_sndhwm(self->events, RUNNER_EVENTS_SNDHWM);
            zsock_set_sndtimeo(self->events, 0);
            zmq_setsockopt(zsock_resolve(self->events), ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
        }
        if (self->events && zsock_connect(self->events, "%s", endpoint) == 0)
            snprintf(self->events_endpoint, sizeof self->events_endpoint, "%s", endpoint);
        else {
            zsys_warning("runner: connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
            zsock_destroy(&self->events);
        }
    }
    zsys_info("runner: heartbeats go to %s", self->events ? self->events_endpoint : "the broker");
    if (!self->events)
        zsys_info("runner: telemetry is not forwarded (no events socket)");
}

//  The DEALER's socket monitor. libzmq reconnects by itself after a broker restart, but the
//  new broker does not know us, and with heartbeats on the PUB nothing would tell us: a
//  connection that follows an earlier one is a cue to register again.
static int s_on_monitor(zloop_t *loop, zsock_t *socket, void *arg)
{
    (void)loop;
    s_runner_t *self = (s_runner_t *)arg;
    zmsg_t *msg = zmsg_recv(socket);
    zframe_t *frame = zmsg_first(msg);
    uint16_t event = 0;
    if (frame && zframe_size(frame) >= sizeof event)
        memcpy(&event, zframe_data(frame), sizeof event);
    zmsg_destroy(&msg);
    if (event == ZMQ_EVENT_DISCONNECTED)
        zsys_warning("runner: broker connection lost broker=%s", self->config->broker_endpoint);
    else if (event == ZMQ_EVENT_CONNECTED) {
        if (self->was_connected) {
            zsys_notice("runner: broker connection back, registering again broker=%s",
                        self->config->broker_endpoint);
            self->registered = false;
            s_register(self);
        }
        self->was_connected = true;
    }
    return 0;
}

// --------------------------------------------------------------------------------------------
//  Finishing a job

static lynx_value_t *s_result(s_runner_t *self, s_job_t *job, bool success,
                              const char *error_message)
{
    const lynx_value_t *run_config = lynx_value_get(job->assign, "run_config");
    lynx_value_t *result = lynx_value_map();
    lynx_value_set_string(result, "job_id", job->job_id);
    lynx_value_set_bool(result, "success", success);
    lynx_value_set_double(result, "execution_time_secs",
                          job->proc ? runner_proc_elapsed_secs(job->proc) : 0.0);
    lynx_value_t *files = runner_proc_list_files(job->output_dir);
    s_set_owned(result, "output_files", files ? files : lynx_value_array());
    lynx_value_t *telemetry = runner_telemetry_summary(job->telemetry);
    if (telemetry)
        s_set_owned(result, "telemetry_data", telemetry);
    else
        lynx_value_set_null(result, "telemetry_data");
    lynx_value_t *metadata = lynx_value_map();
    lynx_value_set_string(metadata, "engine", lynx_value_get_string(job->assign, "engine", ""));
    lynx_value_set_string(
        metadata, "simulation_name",
        lynx_value_get_string(lynx_value_get(run_config, "metadata"), "simulation_name", ""));
    lynx_value_set_string(metadata, "entrypoint", job->entrypoint);
    lynx_value_set_string(metadata, "runner_id", self->config->runner_id);
    char run_id[32];
    snprintf(run_id, sizeof run_id, "%" PRId64, lynx_value_get_int(run_config, "run_id", 0));
    lynx_value_set_string(metadata, "run_id", run_id);
    lynx_value_set_int(metadata, "attempt", job->attempt);
    s_set_owned(result, "metadata", metadata);
    lynx_value_set_string(result, "error_message", success ? NULL : error_message);
    return result;
}

//  Report the attempt's outcome and keep it until the broker's ACK. A failure a retry cannot
//  help (an early termination) says retryable: false.
static void s_report(s_runner_t *self, s_job_t *job, const char *status, bool success,
                     const char *error_message, bool retryable)
{
    lynx_value_t *body = lynx_value_map();
    lynx_value_set_string(body, "job_id", job->job_id);
    lynx_value_set_int(body, "attempt", job->attempt);
    lynx_value_set_string(body, "status", status);
    s_set_owned(body, "result", s_result(self, job, success, error_message));
    if (!retryable)
        lynx_value_set_bool(body, "retryable", false);
    zsys_info("runner: job %s job=%s attempt=%" PRId64 "%s%s", status, job->job_id, job->attempt,
              error_message ? " reason=" : "", error_message ? error_message : "");
    s_send_copy(self, LYNX_MSG_FINISHED, body);
    s_pending_t *held = (s_pending_t *)calloc(1, sizeof *held);
    if (!held) {
        zsys_error("runner: out of memory holding the result of job=%s", job->job_id);
        lynx_value_destroy(&body);
        return;
    }
    held->body = body;
    held->sent_ms = lynx_time_mono_ms();
    zlistx_add_end(self->unacked, held);
}

static void s_end_timer(s_runner_t *self, int *timer_p)
{
    if (*timer_p >= 0)
        zloop_timer_end(self->loop, *timer_p);
    *timer_p = -1;
}

//  The scenario is gone (or never ran): no more exit poller, timeout or grace period.
static void s_end_process_watch(s_runner_t *self, s_job_t *job)
{
    if (job->exit_fd >= 0) {
        zmq_pollitem_t item = {NULL, job->exit_fd, ZMQ_POLLIN, 0};
        zloop_poller_end(self->loop, &item);
    }
    job->exit_fd = -1;
    s_end_timer(self, &job->timeout_timer);
    s_end_timer(self, &job->grace_timer);
}

static void s_forget_job(s_runner_t *self, s_job_t *job)
{
    s_end_process_watch(self, job);
    zhashx_delete(self->jobs, job->job_id); //  destroying the telemetry leaves the loop
}

//  Report the outcome of an exited scenario and forget the job. A rule that fired (while it
//  ran, or on its last frames) makes it Failed for good, unless it was timed out or cancelled
//  first.
static void s_finish(s_runner_t *self, s_job_t *job)
{
    const char *status = "Completed";
    char message[4096] = "";
    const lynx_value_t *trigger = runner_telemetry_trigger(job->telemetry);
    if (trigger && !job->ending)
        job->ending = RUNNER_EARLY_TERMINATION;
    bool success = runner_proc_exit_code(job->proc) == 0 && !job->ending;
    bool early = job->ending && strcmp(job->ending, RUNNER_EARLY_TERMINATION) == 0;
    if (early) {
        status = "Failed";
        snprintf(message, sizeof message, "early termination: %s",
                 lynx_value_get_string(trigger, "rule_name", ""));
    } else if (job->ending && strcmp(job->ending, "Timeout") == 0) {
        status = "Timeout";
        snprintf(message, sizeof message, "timed out after %" PRId64 " s (%s)",
                 lynx_value_get_int(job->assign, "timeout_secs", 0),
                 runner_proc_exit_description(job->proc));
    } else if (job->ending) {
        status = "Cancelled";
        snprintf(message, sizeof message, "cancelled (%s)",
                 runner_proc_exit_description(job->proc));
    } else if (!success) {
        status = "Failed";
        char stderr_path[4200];
        snprintf(stderr_path, sizeof stderr_path, "%s/stderr.log", job->output_dir);
        char *tail = runner_proc_file_tail(stderr_path, RUNNER_STDERR_TAIL_LINES, 2048);
        for (size_t len = tail ? strlen(tail) : 0;
             len > 0 && isspace((unsigned char)tail[len - 1]);)
            tail[--len] = '\0';
        snprintf(message, sizeof message, "scenario failed: %s%s%s",
                 runner_proc_exit_description(job->proc), tail && *tail ? "; stderr: " : "",
                 tail ? tail : "");
        free(tail);
    }
    s_report(self, job, status, success, success ? NULL : message, !early);
    s_forget_job(self, job);
}

static void s_on_exit(s_runner_t *self, s_job_t *job);

static int s_on_job_exit(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    s_runner_t *self = (s_runner_t *)arg;
    for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); job;
         job = (s_job_t *)zhashx_next(self->jobs))
        if (job->exit_fd == item->fd) {
            if (runner_proc_reap(job->proc))
                s_on_exit(self, job);
            break;
        }
    return 0;
}

//  Without pidfds: look for exited children on a timer.
static int s_on_reap_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    s_runner_t *self = (s_runner_t *)arg;
    zlistx_t *exited = zlistx_new();
    for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); job;
         job = (s_job_t *)zhashx_next(self->jobs))
        if (job->exit_fd < 0 && !job->exited && runner_proc_reap(job->proc))
            zlistx_add_end(exited, job);
    for (s_job_t *job = (s_job_t *)zlistx_first(exited); job; job = (s_job_t *)zlistx_next(exited))
        s_on_exit(self, job);
    zlistx_destroy(&exited);
    return 0;
}

static s_job_t *s_job_by_timer(s_runner_t *self, int timer_id)
{
    for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); job;
         job = (s_job_t *)zhashx_next(self->jobs))
        if (job->timeout_timer == timer_id || job->grace_timer == timer_id)
            return job;
    return NULL;
}

static int s_on_grace_over(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    s_job_t *job = s_job_by_timer((s_runner_t *)arg, timer_id);
    if (job) {
        job->grace_timer = -1;
        runner_proc_signal(job->proc, SIGKILL);
    }
    return 0;
}

//  Ask the whole process group to stop, then force it after a grace period.
static void s_stop_job(s_runner_t *self, s_job_t *job, const char *ending, int signal)
{
    if (!job->ending)
        job->ending = ending;
    runner_proc_signal(job->proc, signal);
    if (signal != SIGKILL && job->grace_timer < 0)
        job->grace_timer = zloop_timer(self->loop, RUNNER_KILL_GRACE_MS, 1, s_on_grace_over, self);
}

static int s_on_timeout(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    s_runner_t *self = (s_runner_t *)arg;
    s_job_t *job = s_job_by_timer(self, timer_id);
    if (job) {
        job->timeout_timer = -1;
        zsys_warning("runner: job timed out job=%s", job->job_id);
        s_stop_job(self, job, "Timeout", SIGTERM);
    }
    return 0;
}

// --------------------------------------------------------------------------------------------
//  Telemetry and the watchdog

//  A rule fired: kill the scenario's process group at once (SIGKILL: the run is worthless and
//  every moment costs compute). Its exit reports the trigger.
static void s_on_fired(void *arg)
{
    s_job_t *job = (s_job_t *)arg;
    const lynx_value_t *trigger = runner_telemetry_trigger(job->telemetry);
    zsys_notice("runner: early termination job=%s attempt=%" PRId64
                " rule=\"%s\" elapsed_secs=%.3f seq=%" PRId64,
                job->job_id, job->attempt, lynx_value_get_string(trigger, "rule_name", ""),
                lynx_value_get_double(trigger, "elapsed_seconds", 0),
                lynx_value_get_int(trigger, "seq", 0));
    if (!job->exited)
        s_stop_job(job->runner, job, RUNNER_EARLY_TERMINATION, SIGKILL);
}

//  The exited scenario's last frames are in.
static void s_on_settled(void *arg)
{
    s_job_t *job = (s_job_t *)arg;
    s_finish(job->runner, job);
}

//  The scenario exited: its last frames may still be on the way, and its result waits for them.
static void s_on_exit(s_runner_t *self, s_job_t *job)
{
    job->exited = true;
    s_end_process_watch(self, job);
    if (job->telemetry)
        runner_telemetry_settle(job->telemetry, RUNNER_SETTLE_MS, s_on_settled);
    else
        s_finish(self, job);
}

// --------------------------------------------------------------------------------------------
//  Starting a job

static int s_remove_entry(const char *path, const struct stat *stat, int flag, struct FTW *ftw)
{
    (void)stat, (void)flag;
    if (ftw->level > 0)
        remove(path);
    return 0;
}

//  A fresh, empty output directory: a retried attempt must not see the last one's files.
static int s_prepare_dir(const char *path, lynx_err_t *err)
{
    char buffer[4096];
    snprintf(buffer, sizeof buffer, "%s", path);
    for (char *slash = strchr(buffer + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash)
            *slash = '\0';
        if (mkdir(buffer, 0755) != 0 && errno != EEXIST)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "mkdir %s: %s", buffer, strerror(errno));
        if (!slash)
            break;
        *slash = '/';
    }
    nftw(path, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int s_launch(s_runner_t *self, s_job_t *job, lynx_err_t *err)
{
    runner_config_t *config = self->config;
    const char *engine = lynx_value_get_string(job->assign, "engine", "");
    runner_command_t command;
    if (runner_engine_command(engine, config, &command, err))
        return -1;
    snprintf(job->entrypoint, sizeof job->entrypoint, "%s", command.entrypoint);
    snprintf(job->output_dir, sizeof job->output_dir, "%s/%s", config->output_root, job->job_id);
    if (s_prepare_dir(job->output_dir, err))
        return -1;
    //  The run config lives beside, not inside, the output dir: it is not an artifact.
    char config_dir[4200], config_path[4400];
    snprintf(config_dir, sizeof config_dir, "%s/.lynx-run-configs", config->output_root);
    if (mkdir(config_dir, 0755) != 0 && errno != EEXIST)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "mkdir %s: %s", config_dir, strerror(errno));
    snprintf(config_path, sizeof config_path, "%s/%s.json", config_dir, job->job_id);
    if (lynx_json_write_file(lynx_value_get(job->assign, "run_config"), config_path, err))
        return -1;
    job->telemetry =
        runner_telemetry_new(job->job_id, lynx_value_get_string(job->assign, "batch_id", ""),
                             lynx_value_get(job->assign, "early_termination"),
                             lynx_value_get(job->assign, "telemetry"), lynx_time_mono_ms(), err);
    if (!job->telemetry)
        return -1;

    char env_config[4500], env_output[4200], env_job[128], env_runner[512], env_url[128];
    snprintf(env_config, sizeof env_config, "TETRYX_RUN_CONFIG=%s", config_path);
    snprintf(env_output, sizeof env_output, "TETRYX_OUTPUT_DIR=%s", job->output_dir);
    snprintf(env_job, sizeof env_job, "LYNX_JOB_ID=%s", job->job_id);
    snprintf(env_runner, sizeof env_runner, "LYNX_RUNNER_ID=%s", config->runner_id);
    snprintf(env_url, sizeof env_url, "TETRYX_TELEMETRY_URL=%s",
             runner_telemetry_endpoint(job->telemetry));
    const char *env[] = {env_config, env_output,       env_job, env_runner,
                         env_url,    self->pythonpath, NULL};
    char stdout_path[4200], stderr_path[4200];
    snprintf(stdout_path, sizeof stdout_path, "%s/stdout.log", job->output_dir);
    snprintf(stderr_path, sizeof stderr_path, "%s/stderr.log", job->output_dir);
    runner_proc_spec_t spec = {
        .argv = command.argv,
        .working_directory = config->working_directory,
        .stdout_path = stdout_path,
        .stderr_path = stderr_path,
        .extra_env = env,
    };
    job->proc = runner_proc_start(&spec, err);
    return job->proc ? 0 : -1;
}

static void s_on_assign(s_runner_t *self, lynx_value_t *body)
{
    const char *job_id = lynx_value_get_string(body, "job_id", "");
    int64_t attempt = lynx_value_get_int(body, "attempt", 0);
    s_job_t *running = (s_job_t *)zhashx_lookup(self->jobs, job_id);
    if (running) {
        zsys_warning("runner: ASSIGN for a job already running job=%s attempt=%" PRId64, job_id,
                     attempt);
        return;
    }
    s_job_t *job = (s_job_t *)calloc(1, sizeof *job);
    job->runner = self;
    job->job_id = strdup(job_id);
    job->attempt = attempt;
    job->assign = lynx_value_dup(body);
    job->exit_fd = job->timeout_timer = job->grace_timer = -1;
    zhashx_insert(self->jobs, job->job_id, job);
    lynx_err_t err;
    lynx_err_clear(&err);
    if ((int64_t)zhashx_size(self->jobs) > self->config->max_concurrent_jobs)
        lynx_err_set(&err, LYNX_ECONFLICT, NULL, "runner has no free slot (max %d)",
                     self->config->max_concurrent_jobs);
    else
        s_launch(self, job, &err);
    if (err.code != LYNX_OK) {
        char message[1024];
        snprintf(message, sizeof message, "cannot start scenario: %s", err.message);
        s_report(self, job, "Failed", false, message, true);
        s_forget_job(self, job);
        return;
    }
    zsys_info("runner: job started job=%s attempt=%" PRId64 " pid=%d", job_id, attempt,
              (int)runner_proc_pid(job->proc));
    lynx_msg_t *started = lynx_msg_new(LYNX_MSG_STARTED);
    lynx_value_set_string(lynx_msg_body(started), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(started), "attempt", attempt);
    lynx_value_set_int(lynx_msg_body(started), "pid", (int64_t)runner_proc_pid(job->proc));
    s_send(self, &started);

    job->exit_fd = runner_proc_exit_fd(job->proc);
    if (job->exit_fd >= 0) {
        zmq_pollitem_t item = {NULL, job->exit_fd, ZMQ_POLLIN, 0};
        zloop_poller(self->loop, &item, s_on_job_exit, self);
    }
    int64_t timeout_secs = lynx_value_get_int(body, "timeout_secs", 0);
    if (timeout_secs > 0)
        job->timeout_timer =
            zloop_timer(self->loop, (size_t)(timeout_secs * 1000), 1, s_on_timeout, self);
    if (runner_telemetry_watch(job->telemetry, self->loop, &self->events, s_on_fired, job))
        zsys_error("runner: cannot poll the telemetry of job=%s", job->job_id);
    //  A child may exit before the poller exists; reap once now to not miss it.
    if (runner_proc_reap(job->proc))
        s_on_exit(self, job);
}

static void s_on_kill(s_runner_t *self, lynx_value_t *body)
{
    s_job_t *job = (s_job_t *)zhashx_lookup(self->jobs, lynx_value_get_string(body, "job_id", ""));
    if (job && !job->exited && job->attempt == lynx_value_get_int(body, "attempt", -1)) {
        zsys_notice("runner: killing job=%s reason=\"%s\"", job->job_id,
                    lynx_value_get_string(body, "reason", ""));
        s_stop_job(self, job, "Cancelled", SIGKILL);
    }
}

static void s_on_ack(s_runner_t *self, lynx_value_t *body)
{
    const char *job_id = lynx_value_get_string(body, "job_id", "");
    int64_t attempt = lynx_value_get_int(body, "attempt", -1);
    for (s_pending_t *held = (s_pending_t *)zlistx_first(self->unacked); held;
         held = (s_pending_t *)zlistx_next(self->unacked))
        if (strcmp(lynx_value_get_string(held->body, "job_id", ""), job_id) == 0 &&
            lynx_value_get_int(held->body, "attempt", -2) == attempt) {
            zlistx_delete(self->unacked, zlistx_cursor(self->unacked));
            return;
        }
}

static void s_on_error(s_runner_t *self, lynx_value_t *body)
{
    const char *code = lynx_value_get_string(body, "code", "");
    const char *message = lynx_value_get_string(body, "message", "");
    lynx_code_t parsed = lynx_code_from_name(code);
    if (parsed == LYNX_ENOTFOUND) {
        //  The broker restarted or wrote us off: register again, reporting what we hold. After
        //  a restart every message queued meanwhile earns a not_found; one REGISTER will do.
        if (!self->registered &&
            lynx_time_mono_ms() - self->last_register_ms < RUNNER_REGISTER_RETRY_MS)
            return;
        zsys_notice("runner: broker does not know us, registering again: %s", message);
        self->registered = false;
        s_register(self);
    } else if (!self->registered && (parsed == LYNX_EINVALID || parsed == LYNX_ECONFLICT)) {
        //  Refusals that asking again cannot change (a bad capability, a duplicate runner id).
        zsys_error("runner: registration refused: %s: %s", code, message);
        zstr_sendx(self->pipe, "FATAL", message, NULL);
    } else
        zsys_warning("runner: broker error %s: %s", code, message);
}

//  Only the answer to our REGISTER counts: a REGISTERED while registered is a repeat (or the
//  broker probing whether we are still connected) and changes nothing.
static void s_on_registered(s_runner_t *self, lynx_value_t *body)
{
    if (self->registered)
        return;
    self->registered = true;
    zsys_info("runner: registered runner=%s", self->config->runner_id);
    s_use_events(self, body);
    if (!self->announced) {
        self->announced = true;
        zstr_send(self->pipe, "READY");
    }
    s_resend_unacked(self, 0);
}

static int s_on_broker(zloop_t *loop, zsock_t *socket, void *arg)
{
    (void)loop;
    s_runner_t *self = (s_runner_t *)arg;
    lynx_err_t err;
    lynx_msg_t *msg = lynx_msg_recv(zsock_resolve(socket), NULL, &err);
    if (!msg) {
        zsys_warning("runner: malformed message from broker dropped: %s", err.message);
        return 0;
    }
    lynx_value_t *body = lynx_msg_body(msg);
    switch (lynx_msg_id(msg)) {
    case LYNX_MSG_REGISTERED:
        s_on_registered(self, body);
        break;
    case LYNX_MSG_ASSIGN:
        s_on_assign(self, body);
        break;
    case LYNX_MSG_KILL:
        s_on_kill(self, body);
        break;
    case LYNX_MSG_ACK:
        s_on_ack(self, body);
        break;
    case LYNX_MSG_ERROR:
        s_on_error(self, body);
        break;
    default:
        zsys_warning("runner: unexpected %s from broker", lynx_msg_command(msg));
    }
    lynx_msg_destroy(&msg);
    return 0;
}

static int s_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop, (void)arg;
    char *command = zstr_recv(pipe);
    bool terminate = !command || streq(command, "$TERM");
    zstr_free(&command);
    return terminate ? -1 : 0;
}

//  The DEALER to the broker: sends never block, oversized frames are dropped by libzmq, and
//  ZMTP pings find a dead link even while no Lynx traffic flows on it (heartbeats go on the
//  PUB). The monitor is attached before connecting so the first connection is seen too.
static int s_connect_broker(s_runner_t *self, char *reason, size_t size)
{
    const char *endpoint = self->config->broker_endpoint;
    int64_t link_timeout_ms = self->heartbeat_ms * RUNNER_LINK_MISSES;
    if (link_timeout_ms < RUNNER_LINK_TIMEOUT_MIN_MS)
        link_timeout_ms = RUNNER_LINK_TIMEOUT_MIN_MS;
    if (link_timeout_ms > 6000000)
        link_timeout_ms = 6000000; //  ZMQ_HEARTBEAT_TTL's ceiling is 6553.5 s
    self->broker = zsock_new(ZMQ_DEALER);
    if (!self->broker) {
        snprintf(reason, size, "create socket: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    zsock_set_linger(self->broker, 1000);
    zsock_set_sndtimeo(self->broker, 0);
    zsock_set_maxmsgsize(self->broker, (int)LYNX_MSG_MAX_BYTES);
    zsock_set_heartbeat_ivl(self->broker, (int)(link_timeout_ms / RUNNER_LINK_MISSES));
    zsock_set_heartbeat_timeout(self->broker, (int)link_timeout_ms);
    zsock_set_heartbeat_ttl(self->broker, (int)link_timeout_ms);

    char monitor_endpoint[64];
    snprintf(monitor_endpoint, sizeof monitor_endpoint, "inproc://lynx-runner-monitor-%p",
             (void *)self);
    if (zmq_socket_monitor(zsock_resolve(self->broker), monitor_endpoint,
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) == 0)
        self->monitor = zsock_new_pair(monitor_endpoint); //  connects
    if (!self->monitor)
        zsys_warning("runner: cannot monitor the broker connection (%s); after a broker restart "
                     "only an ERROR not_found makes us register again",
                     zmq_strerror(zmq_errno()));

    if (zsock_connect(self->broker, "%s", endpoint) != 0) {
        snprintf(reason, size, "connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static void s_runner_actor(zsock_t *pipe, void *args)
{
    s_runner_t self = {.config = (runner_config_t *)args, .pipe = pipe};
    //  Scenarios get the telemetry client first on their path, what we were given after it;
    //  read before runner_start returns, as the environment is not ours to read later.
    const char *clients_dir = self.config->clients_dir, *inherited = getenv("PYTHONPATH");
    if (clients_dir) {
        self.pythonpath =
            zsys_sprintf("PYTHONPATH=%s%s%s", clients_dir, inherited && *inherited ? ":" : "",
                         inherited ? inherited : "");
        zsys_info("runner: scenarios import lynx_telemetry_client from %s", clients_dir);
    } else
        zsys_warning("runner: the Python telemetry client was not found; set clients_dir for "
                     "scenarios to import lynx_telemetry_client");
    zsock_signal(pipe, 0);
    gethostname(self.hostname, sizeof self.hostname - 1);
    self.heartbeat_ms = (int64_t)(self.config->heartbeat_interval_secs * 1000.0);
    if (self.heartbeat_ms < 1)
        self.heartbeat_ms = 1;
    self.jobs = zhashx_new();
    zhashx_set_destructor(self.jobs, (zhashx_destructor_fn *)s_job_destroy);
    self.unacked = zlistx_new();
    zlistx_set_destructor(self.unacked, (zlistx_destructor_fn *)s_pending_destroy);
    self.loop = zloop_new();
    zloop_reader(self.loop, pipe, s_on_pipe, &self);
    char reason[600];
    if (s_connect_broker(&self, reason, sizeof reason) == 0) {
        zloop_reader(self.loop, self.broker, s_on_broker, &self);
        if (self.monitor)
            zloop_reader(self.loop, self.monitor, s_on_monitor, &self);
        zloop_timer(self.loop, (size_t)self.heartbeat_ms, 0, s_on_heartbeat, &self);
        zloop_timer(self.loop, 100, 0, s_on_reap_timer, &self);
        s_register(&self);
    } else {
        zsys_error("runner: %s", reason);
        zstr_sendx(pipe, "FATAL", reason, NULL);
    }
    zloop_start(self.loop); //  until $TERM

    zhashx_destroy(&self.jobs); //  kills what still runs; their telemetry leaves the loop
    zloop_destroy(&self.loop);
    zlistx_destroy(&self.unacked);
    if (self.monitor)
        zmq_socket_monitor(zsock_resolve(self.broker), NULL, 0);
    zsock_destroy(&self.monitor);
    zsock_destroy(&self.events);
    zsock_destroy(&self.broker);
    zstr_free(&self.pythonpath);
}

zactor_t *runner_start(runner_config_t *config)
{
    return zactor_new(s_runner_actor, config);
}
