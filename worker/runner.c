//  runner: the actor behind lynx-runner. One zloop owns the DEALER to the broker (with a
//  monitor on it that notices reconnections), the PUB that heartbeats and telemetry go out on,
//  the heartbeat timer, and what each running job (runner_job) watches on it. Here: the broker
//  link, registration, heartbeats, and the messages that start, kill and acknowledge jobs.
#include "runner.h"
#include "lynx_fsm.h"

#include <unistd.h>

#include "lynx_actor.h"
#include "lynx_msg.h"
#include "lynx_time.h"
#include "runner_artifacts.h"
#include "runner_job.h"
#include "runner_keys.h"

//  Retry a refused CURVE handshake after this long, doubling up to the maximum.
#define RUNNER_REFUSED_RETRY_MIN_MS 200
#define RUNNER_REFUSED_RETRY_MAX_MS 10000
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
//  A runner with no answer from its broker says so on stderr after this long, then again every
//  RUNNER_SILENCE_REPEAT_MS: a wrong endpoint must not look like an idle grid.
#define RUNNER_SILENCE_FIRST_MS 5000
#define RUNNER_SILENCE_REPEAT_MS 30000

//  A FINISHED body the broker has not acknowledged yet.
typedef struct {
    lynx_value_t *body;
    int64_t sent_ms; //  monotonic time of the last send
} s_pending_t;

typedef struct {
    runner_config_t *config;
    zsock_t *pipe;
    zsock_t *broker;
    zsock_t *monitor; //  PAIR: the DEALER's connect/disconnect events
    zsock_t *events;  //  PUB heartbeats go out on; NULL: they go on the DEALER (older broker)
    zcert_t *cert;    //  our CURVE keypair; NULL when insecure
    int64_t last_refused_log_ms;
    //  libzmq does not retry a handshake the broker refused (a key not enrolled yet): we do,
    //  at this monotonic time (0: nothing to retry), backing off to RUNNER_REFUSED_RETRY_MAX_MS.
    int64_t reconnect_at_ms;
    int64_t reconnect_backoff_ms;
    char events_endpoint[512]; //  what events is connected to, or ""
    zloop_t *loop;
    zhashx_t *jobs;                //  job_id -> runner_job_t, running now
    zlistx_t *unacked;             //  s_pending_t, oldest first
    runner_artifacts_t *artifacts; //  the files of unacknowledged attempts, served on FETCH
    bool registered;
    bool announced;           //  READY sent to the owner
    bool was_connected;       //  the DEALER has been connected before: a new connection is a return
    bool link_down;           //  the DEALER's connection dropped and has not come back yet
    int64_t waiting_since_ms; //  monotonic: since when we have had no answer, or 0
    int64_t next_warning_ms;  //  how long waited when the next silence warning is due
    int64_t heartbeat_ms;
    int64_t last_register_ms;
    char hostname[256];
    char *pythonpath; //  scenarios' "PYTHONPATH=<telemetry client dir>[:inherited]", or NULL
    runner_job_host_t job_host; //  what every job borrows from us
    const char *command;        //  the message or event being handled, for logs
} s_runner_t;

static void s_run(s_runner_t *self, runner_link_event_t event, lynx_msg_t *msg, lynx_value_t *body);

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

static lynx_value_t *s_attempt_entry(const char *job_id, int64_t attempt)
{
    lynx_value_t *entry = lynx_value_map();
    lynx_value_set_string(entry, "job_id", job_id);
    lynx_value_set_int(entry, "attempt", attempt);
    return entry;
}

static void s_register(s_runner_t *self)
{
    runner_config_t *config = self->config;
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REGISTER);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "runner_id", config->runner_id);
    lynx_value_set_string(body, "name", config->name);
    lynx_value_set_owned(body, "capabilities", s_capabilities(self));
    lynx_value_t *engines = lynx_value_array();
    for (size_t i = 0; i < config->engine_count; i++)
        lynx_value_append_owned(engines, lynx_value_string(config->engines[i]));
    lynx_value_set_owned(body, "engines", engines);
    //  What we still run and what we finished without an ACK, so a restarted broker reconciles.
    lynx_value_t *active = lynx_value_array();
    for (runner_job_t *job = (runner_job_t *)zhashx_first(self->jobs); job;
         job = (runner_job_t *)zhashx_next(self->jobs))
        lynx_value_append_owned(active,
                                s_attempt_entry(runner_job_id(job), runner_job_attempt(job)));
    lynx_value_set_owned(body, "active_jobs", active);
    lynx_value_t *finished = lynx_value_array();
    for (s_pending_t *held = (s_pending_t *)zlistx_first(self->unacked); held;
         held = (s_pending_t *)zlistx_next(self->unacked))
        lynx_value_append_owned(finished,
                                s_attempt_entry(lynx_value_get_string(held->body, "job_id", ""),
                                                lynx_value_get_int(held->body, "attempt", 0)));
    lynx_value_set_owned(body, "finished_jobs", finished);
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

//  Waiting starts when we are unregistered or the link drops, and ends with REGISTERED (or the
//  link back while registered).
static void s_update_waiting(s_runner_t *self)
{
    bool waiting = !self->registered || self->link_down;
    if (waiting && !self->waiting_since_ms) {
        self->waiting_since_ms = lynx_time_mono_ms();
        self->next_warning_ms = RUNNER_SILENCE_FIRST_MS;
    } else if (!waiting && self->waiting_since_ms) {
        int64_t waited_ms = lynx_time_mono_ms() - self->waiting_since_ms;
        if (waited_ms >= RUNNER_SILENCE_FIRST_MS)
            zsys_notice("runner: broker answered after %" PRId64 " s broker=%s", waited_ms / 1000,
                        self->config->broker_endpoint);
        self->waiting_since_ms = 0;
    }
}

//  Say on stderr, first after a few seconds and then periodically, that the broker does not
//  answer: the endpoint, how long, and what to check.
static void s_warn_if_silent(s_runner_t *self)
{
    s_update_waiting(self);
    if (!self->waiting_since_ms)
        return;
    int64_t waited_ms = lynx_time_mono_ms() - self->waiting_since_ms;
    if (waited_ms < self->next_warning_ms)
        return;
    self->next_warning_ms = waited_ms + RUNNER_SILENCE_REPEAT_MS;
    const char *endpoint = self->config->broker_endpoint;
    if (self->registered)
        zsys_warning("runner: broker unreachable for %" PRId64 " s broker=%s; running jobs go on "
                     "and their results are held until it is back",
                     waited_ms / 1000, endpoint);
    else
        zsys_warning("runner: no answer from a broker at %s after %" PRId64 " s, not registered. "
                     "Check that lynx-broker runs there and that this is its runner endpoint "
                     "(its READY line prints runner_endpoint=...); set it with --broker, "
                     "LYNX_RUNNER_BROKER_ENDPOINT or broker_endpoint in the config file. "
                     "`lynx-runner --check` tests the connection.",
                     endpoint, waited_ms / 1000);
}

//  TICK while unregistered: REGISTER again, unless the last one is recent (an answer may come).
static void s_retry_register(s_runner_t *self, lynx_value_t *body)
{
    (void)body;
    if (lynx_time_mono_ms() - self->last_register_ms >= RUNNER_REGISTER_RETRY_MS)
        s_register(self);
}

//  TICK while registered: a HEARTBEAT (on the PUB when the broker has an events socket), and
//  FINISHED results still waiting for their ACK.
static void s_heartbeat(s_runner_t *self, lynx_value_t *body)
{
    (void)body;
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
        if (self->events && self->cert)
            runner_keys_secure(self->events, self->cert, self->config->broker_public_key);
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
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        //  Try again later: an enrollment approved meanwhile lets the next handshake in.
        int64_t now = lynx_time_mono_ms();
        self->reconnect_backoff_ms = self->reconnect_backoff_ms ? self->reconnect_backoff_ms * 2
                                                                : RUNNER_REFUSED_RETRY_MIN_MS;
        if (self->reconnect_backoff_ms > RUNNER_REFUSED_RETRY_MAX_MS)
            self->reconnect_backoff_ms = RUNNER_REFUSED_RETRY_MAX_MS;
        self->reconnect_at_ms = now + self->reconnect_backoff_ms;
        if (now - self->last_refused_log_ms >= 30000) {
            zsys_warning("runner: the broker refused our key (not enrolled yet, or revoked); "
                         "retrying runner=%s public_key=%s",
                         self->config->runner_id, self->cert ? zcert_public_txt(self->cert) : "-");
            self->last_refused_log_ms = now;
        }
    } else if (event == ZMQ_EVENT_DISCONNECTED)
        s_run(self, RUNNER_LINK_DOWN, NULL, NULL);
    else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
        self->reconnect_backoff_ms = 0;
    else if (event == ZMQ_EVENT_CONNECTED)
        s_run(self, RUNNER_LINK_UP, NULL, NULL);
    return 0;
}

// --------------------------------------------------------------------------------------------
//  Jobs

//  A job's outcome (runner_job_finished_fn): send FINISHED, keep it until the broker's ACK, and
//  forget the job.
static void s_on_job_finished(runner_job_t *job, lynx_value_t **finished_p, void *arg)
{
    s_runner_t *self = (s_runner_t *)arg;
    //  Offered before FINISHED goes out: the broker's first FETCH may follow at once.
    const lynx_value_t *files = lynx_value_get(lynx_value_get(*finished_p, "artifacts"), "files");
    if (lynx_value_size(files) &&
        runner_artifacts_offer(self->artifacts, runner_job_id(job), runner_job_attempt(job),
                               runner_job_output_dir(job), files) != 0)
        zsys_error("runner: out of memory offering the files of job=%s", runner_job_id(job));
    s_send_copy(self, LYNX_MSG_FINISHED, *finished_p);
    s_pending_t *held = (s_pending_t *)calloc(1, sizeof *held);
    if (held) {
        held->body = *finished_p;
        *finished_p = NULL;
        held->sent_ms = lynx_time_mono_ms();
        zlistx_add_end(self->unacked, held);
    } else
        zsys_error("runner: out of memory holding the result of job=%s", runner_job_id(job));
    zhashx_delete(self->jobs, runner_job_id(job)); //  destroys the job
}

static void s_on_assign(s_runner_t *self, lynx_value_t *body)
{
    const char *job_id = lynx_value_get_string(body, "job_id", "");
    int64_t attempt = lynx_value_get_int(body, "attempt", 0);
    if (zhashx_lookup(self->jobs, job_id)) {
        zsys_warning("runner: ASSIGN for a job already running job=%s attempt=%" PRId64, job_id,
                     attempt);
        return;
    }
    runner_job_t *job = runner_job_new(&self->job_host, body);
    if (!job) {
        zsys_error("runner: out of memory starting job=%s attempt=%" PRId64, job_id, attempt);
        return;
    }
    zhashx_insert(self->jobs, runner_job_id(job), job);
    lynx_err_t err;
    lynx_err_clear(&err);
    if ((int64_t)zhashx_size(self->jobs) > self->config->max_concurrent_jobs)
        lynx_err_set(&err, LYNX_ECONFLICT, NULL, "runner has no free slot (max %d)",
                     self->config->max_concurrent_jobs);
    else
        runner_job_launch(job, &err);
    if (err.code != LYNX_OK) {
        runner_job_abandon(job, err.message); //  reports, and we forget the job
        return;
    }
    zsys_info("runner: job started job=%s attempt=%" PRId64 " pid=%d", job_id, attempt,
              (int)runner_job_pid(job));
    lynx_msg_t *started = lynx_msg_new(LYNX_MSG_STARTED);
    lynx_value_set_string(lynx_msg_body(started), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(started), "attempt", attempt);
    lynx_value_set_int(lynx_msg_body(started), "pid", (int64_t)runner_job_pid(job));
    s_send(self, &started);
    runner_job_watch(job); //  last: a job that already exited is reported and forgotten
}

static void s_on_kill(s_runner_t *self, lynx_value_t *body)
{
    runner_job_t *job =
        (runner_job_t *)zhashx_lookup(self->jobs, lynx_value_get_string(body, "job_id", ""));
    if (job && runner_job_attempt(job) == lynx_value_get_int(body, "attempt", -1))
        runner_job_cancel(job, lynx_value_get_string(body, "reason", ""));
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
            runner_artifacts_forget(self->artifacts, job_id, attempt,
                                    !self->config->keep_local_outputs);
            return;
        }
}

//  FETCH: a range of a file of an attempt we hold, answered with a CHUNK (which says why when
//  it cannot be served).
static void s_on_fetch(s_runner_t *self, lynx_value_t *body)
{
    lynx_value_t *chunk = runner_artifacts_read(self->artifacts, body);
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_CHUNK);
    if (chunk && msg && lynx_msg_set_body(msg, &chunk) == 0)
        s_send(self, &msg);
    else
        zsys_error("runner: out of memory answering FETCH job=%s",
                   lynx_value_get_string(body, "job_id", ""));
    lynx_value_destroy(&chunk);
    lynx_msg_destroy(&msg);
}

//  ERROR not_found while registered: the broker restarted or wrote us off. Register again,
//  reporting what we hold.
static void s_register_again(s_runner_t *self, lynx_value_t *body)
{
    zsys_notice("runner: broker does not know us, registering again: %s",
                lynx_value_get_string(body, "message", ""));
    self->registered = false;
    s_register(self);
}

//  ERROR not_found while unregistered: after a broker restart every message queued meanwhile
//  earns one; a REGISTER already on its way will do.
static void s_register_unless_sent(s_runner_t *self, lynx_value_t *body)
{
    if (lynx_time_mono_ms() - self->last_register_ms >= RUNNER_REGISTER_RETRY_MS)
        s_register_again(self, body);
}

//  ERROR invalid or conflict to our REGISTER: asking again cannot change it (a bad capability,
//  a duplicate runner id).
static void s_give_up(s_runner_t *self, lynx_value_t *body)
{
    const char *message = lynx_value_get_string(body, "message", "");
    zsys_error("runner: the broker refused us for good: %s: %s",
               lynx_value_get_string(body, "code", ""), message);
    zstr_sendx(self->pipe, "FATAL", message, NULL);
}

static void s_warn(s_runner_t *self, lynx_value_t *body)
{
    (void)self;
    zsys_warning("runner: broker error %s: %s", lynx_value_get_string(body, "code", ""),
                 lynx_value_get_string(body, "message", ""));
}

static void s_warn_unexpected(s_runner_t *self, lynx_value_t *body)
{
    (void)body;
    zsys_warning("runner: unexpected %s from broker", self->command);
}

static void s_ignore(s_runner_t *self, lynx_value_t *body)
{
    (void)self, (void)body;
}

static void s_link_down(s_runner_t *self, lynx_value_t *body)
{
    (void)body;
    zsys_warning("runner: broker connection lost broker=%s", self->config->broker_endpoint);
    self->link_down = true;
    s_update_waiting(self);
}

//  The link is up: the first time, REGISTER is already on its way; after a drop, the broker
//  may have restarted, so register again.
static void s_link_up(s_runner_t *self, lynx_value_t *body)
{
    (void)body;
    self->link_down = false;
    if (self->was_connected) {
        zsys_notice("runner: broker connection back, registering again broker=%s",
                    self->config->broker_endpoint);
        self->registered = false;
        s_register(self);
    }
    self->was_connected = true;
    s_update_waiting(self);
}

//  The answer to our REGISTER. (A REGISTERED while registered is a repeat, or the broker
//  probing whether we are still connected, and changes nothing: the table ignores it.)
static void s_on_registered(s_runner_t *self, lynx_value_t *body)
{
    self->registered = true;
    s_update_waiting(self);
    zsys_info("runner: registered runner=%s", self->config->runner_id);
    s_use_events(self, body);
    if (!self->announced) {
        self->announced = true;
        zstr_send(self->pipe, "READY");
    }
    s_resend_unacked(self, 0);
}

// --------------------------------------------------------------------------------------------
//  The protocol table: link state x event -> action

typedef void(s_action_fn)(s_runner_t *self, lynx_value_t *body);

LYNX_FSM_ACTION_TYPE(s_action_t, s_action_fn);

#define A(fn) LYNX_FSM_ACTION(fn)

static const s_action_t s_table[RUNNER_LINK_STATE_COUNT][RUNNER_LINK_EVENT_COUNT] = {
    //  REGISTERED, ASSIGN, KILL, ACK, FETCH, ERROR_NOT_FOUND, ERROR_REFUSED, ERROR_DENIED,
    //  ERROR_OTHER, LINK_UP, LINK_DOWN, TICK, OTHER
    [RUNNER_LINK_UNREGISTERED] = {A(s_on_registered), A(s_on_assign), A(s_on_kill), A(s_on_ack),
                                  A(s_on_fetch), A(s_register_unless_sent), A(s_give_up),
                                  A(s_give_up), A(s_warn), A(s_link_up), A(s_link_down),
                                  A(s_retry_register), A(s_warn_unexpected)},
    [RUNNER_LINK_REGISTERED] = {A(s_ignore), A(s_on_assign), A(s_on_kill), A(s_on_ack),
                                A(s_on_fetch), A(s_register_again), A(s_warn), A(s_give_up),
                                A(s_warn), A(s_link_up), A(s_link_down), A(s_heartbeat),
                                A(s_warn_unexpected)},
};

#undef A

static const char *const s_state_names[RUNNER_LINK_STATE_COUNT] = {"UNREGISTERED", "REGISTERED"};
static const char *const s_event_names[RUNNER_LINK_EVENT_COUNT] = {
    "REGISTERED",      "ASSIGN",        "KILL",         "ACK",         "FETCH",
    "ERROR_NOT_FOUND", "ERROR_REFUSED", "ERROR_DENIED", "ERROR_OTHER", "LINK_UP",
    "LINK_DOWN",       "TICK",          "OTHER"};

static runner_link_event_t s_event_of(lynx_msg_t *msg)
{
    switch (lynx_msg_id(msg)) {
    case LYNX_MSG_REGISTERED:
        return RUNNER_LINK_REGISTERED_MSG;
    case LYNX_MSG_ASSIGN:
        return RUNNER_LINK_ASSIGN;
    case LYNX_MSG_KILL:
        return RUNNER_LINK_KILL;
    case LYNX_MSG_ACK:
        return RUNNER_LINK_ACK;
    case LYNX_MSG_FETCH:
        return RUNNER_LINK_FETCH;
    case LYNX_MSG_ERROR: {
        lynx_code_t code =
            lynx_code_from_name(lynx_value_get_string(lynx_msg_body(msg), "code", ""));
        return code == LYNX_ENOTFOUND                                  ? RUNNER_LINK_ERROR_NOT_FOUND
               : code == LYNX_EINVALID || code == LYNX_ECONFLICT       ? RUNNER_LINK_ERROR_REFUSED
               : code == LYNX_EUNAUTHORIZED || code == LYNX_EFORBIDDEN ? RUNNER_LINK_ERROR_DENIED
                                                                       : RUNNER_LINK_ERROR_OTHER;
    }
    default:
        return RUNNER_LINK_OTHER;
    }
}

static void s_run(s_runner_t *self, runner_link_event_t event, lynx_msg_t *msg, lynx_value_t *body)
{
    runner_link_state_t state =
        self->registered ? RUNNER_LINK_REGISTERED : RUNNER_LINK_UNREGISTERED;
    self->command = msg ? lynx_msg_command(msg) : runner_protocol_event_name(event);
    s_table[state][event].run(self, body);
    self->command = NULL;
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
    s_run(self, s_event_of(msg), msg, lynx_msg_body(msg));
    lynx_msg_destroy(&msg);
    return 0;
}

//  A refused handshake's retry is due: connect again (the same socket; queued messages stay).
static void s_retry_refused(s_runner_t *self)
{
    if (!self->reconnect_at_ms || lynx_time_mono_ms() < self->reconnect_at_ms)
        return;
    self->reconnect_at_ms = 0;
    const char *endpoint = self->config->broker_endpoint;
    zsock_disconnect(self->broker, "%s", endpoint);
    if (zsock_connect(self->broker, "%s", endpoint) != 0)
        zsys_warning("runner: connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
}

static int s_on_refused_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    s_retry_refused((s_runner_t *)arg);
    return 0;
}

static int s_on_heartbeat(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    s_runner_t *self = (s_runner_t *)arg;
    s_warn_if_silent(self);
    s_run(self, RUNNER_LINK_TICK, NULL, NULL);
    return 0;
}

const char *runner_protocol_state_name(runner_link_state_t state)
{
    return lynx_fsm_name(s_state_names, RUNNER_LINK_STATE_COUNT, (size_t)state);
}

const char *runner_protocol_event_name(runner_link_event_t event)
{
    return lynx_fsm_name(s_event_names, RUNNER_LINK_EVENT_COUNT, (size_t)event);
}

const char *runner_protocol_action_name(runner_link_state_t state, runner_link_event_t event)
{
    return lynx_fsm_action_name(s_table, sizeof s_table[0][0], RUNNER_LINK_STATE_COUNT,
                                RUNNER_LINK_EVENT_COUNT, (size_t)state, (size_t)event);
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
    if (self->cert)
        runner_keys_secure(self->broker, self->cert, self->config->broker_public_key);
    zsock_set_maxmsgsize(self->broker, (int)LYNX_MSG_MAX_BYTES);
    zsock_set_heartbeat_ivl(self->broker, (int)(link_timeout_ms / RUNNER_LINK_MISSES));
    zsock_set_heartbeat_timeout(self->broker, (int)link_timeout_ms);
    zsock_set_heartbeat_ttl(self->broker, (int)link_timeout_ms);

    char monitor_endpoint[64];
    snprintf(monitor_endpoint, sizeof monitor_endpoint, "inproc://lynx-runner-monitor-%p",
             (void *)self);
    if (zmq_socket_monitor(zsock_resolve(self->broker), monitor_endpoint,
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) ==
        0)
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

//  Tell the broker we are leaving, so it requeues what we just killed now rather than after a
//  heartbeat timeout. The DEALER's linger gives the message its chance to leave.
static void s_disconnect(s_runner_t *self, size_t killed)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_DISCONNECT);
    lynx_value_set_string(lynx_msg_body(msg), "runner_id", self->config->runner_id);
    lynx_value_set_string(lynx_msg_body(msg), "reason", "lynx-runner stopped");
    s_send(self, &msg);
    zsys_info("runner: disconnected from broker killed_jobs=%zu", killed);
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
    zhashx_set_destructor(self.jobs, (zhashx_destructor_fn *)runner_job_destroy);
    self.unacked = zlistx_new();
    zlistx_set_destructor(self.unacked, (zlistx_destructor_fn *)s_pending_destroy);
    self.artifacts = runner_artifacts_new();
    assert(self.artifacts); //  as zhashx_new and zlistx_new: czmq aborts on out-of-memory too
    self.loop = zloop_new();
    self.job_host = (runner_job_host_t){.config = self.config,
                                        .loop = self.loop,
                                        .events_p = &self.events,
                                        .pythonpath = self.pythonpath,
                                        .finished = s_on_job_finished,
                                        .finished_arg = &self};
    zloop_reader(self.loop, pipe, lynx_actor_on_pipe, &self);
    char reason[600];
    lynx_err_t key_err;
    lynx_err_clear(&key_err);
    //  main checked the key file and resolved broker_public_key to Z85 already.
    if (!self.config->insecure)
        self.cert = runner_keys_load(self.config->key_file, true, &key_err);
    if (!self.config->insecure && !self.cert) {
        snprintf(reason, sizeof reason, "%s", key_err.message);
        zsys_error("runner: %s", reason);
        zstr_sendx(pipe, "FATAL", reason, NULL);
    } else if (s_connect_broker(&self, reason, sizeof reason) == 0) {
        zloop_reader(self.loop, self.broker, s_on_broker, &self);
        if (self.monitor)
            zloop_reader(self.loop, self.monitor, s_on_monitor, &self);
        zloop_timer(self.loop, (size_t)self.heartbeat_ms, 0, s_on_heartbeat, &self);
        if (self.cert)
            zloop_timer(self.loop, RUNNER_REFUSED_RETRY_MIN_MS / 2, 0, s_on_refused_timer, &self);
        s_update_waiting(&self);
        s_register(&self);
    } else {
        zsys_error("runner: %s", reason);
        zstr_sendx(pipe, "FATAL", reason, NULL);
    }
    zloop_start(self.loop); //  until $TERM

    size_t killed = zhashx_size(self.jobs);
    zhashx_destroy(&self.jobs); //  kills what still runs; their telemetry leaves the loop
    if (self.registered)
        s_disconnect(&self, killed);
    zloop_destroy(&self.loop);
    zlistx_destroy(&self.unacked);
    runner_artifacts_destroy(&self.artifacts);
    if (self.monitor)
        zmq_socket_monitor(zsock_resolve(self.broker), NULL, 0);
    zsock_destroy(&self.monitor);
    zsock_destroy(&self.events);
    zsock_destroy(&self.broker);
    zcert_destroy(&self.cert);
    zstr_free(&self.pythonpath);
}

zactor_t *runner_start(runner_config_t *config)
{
    return zactor_new(s_runner_actor, config);
}
