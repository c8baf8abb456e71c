//  broker: the actor that owns the broker's sockets, loop and state.
#include "broker.h"

#include <sys/random.h>

#include "broker_core.h"
#include "broker_collect.h"
#include "broker_protocol.h"
#include "broker_quarantine.h"
#include "broker_study.h"
#include "lynx_actor.h"
#include "lynx_time.h"

#define BROKER_TICK_MS 250
#define BROKER_TURN_MESSAGES 512 //  runner messages handled per group commit

typedef struct {
    broker_options_t options;
    broker_core_t core;
    bool terminated;
} s_broker_t;

//  Rebuild the in-memory record of a stored batch. Its config was valid when accepted; if it
//  no longer validates (a newer broker is stricter) the batch is still served, with defaults.
static int s_load_batch(const lynx_value_t *stored, const int64_t *counts, void *arg)
{
    broker_core_t *core = (broker_core_t *)arg;
    int64_t total = lynx_value_get_int(stored, "total_jobs", 0);
    lynx_value_t *errors = lynx_value_array();
    broker_study_t *study = broker_study_new(lynx_value_get(stored, "config"), total, errors, NULL);
    const char *id = lynx_value_get_string(stored, "id", "");
    if (!study) {
        zsys_error("broker: stored batch no longer validates batch=%s: %s", id,
                   lynx_value_get_string(lynx_value_at(errors, 0), "message", "?"));
        lynx_value_destroy(&errors);
        return 0;
    }
    lynx_value_destroy(&errors);
    int status = lynx_batch_state_parse(lynx_value_get_string(stored, "status", ""));
    broker_batch_origin_t origin = {
        .id = id,
        .name = lynx_value_get_string(stored, "name", ""),
        .study = study,
        .config = lynx_value_get(stored, "config"),
        .created_at_ms = lynx_value_get_int(stored, "created_at_ms", 0),
        .seed = (uint64_t)lynx_value_get_int(stored, "seed", 0),
        .config_hash = lynx_value_get_string(stored, "config_hash", ""),
        .submitted_by = lynx_value_get_string(stored, "submitted_by", NULL),
        .token_name = lynx_value_get_string(stored, "token_name", NULL),
    };
    broker_batch_t *batch = broker_batch_new(&origin);
    broker_study_destroy(&study);
    if (!batch) {
        zsys_error("broker: out of memory loading batch=%s", id);
        return -1;
    }
    broker_batch_restore(batch, counts,
                         status < 0 ? LYNX_BATCH_PENDING : (lynx_batch_state_t)status,
                         lynx_value_get_bool(stored, "cancelled", false));
    broker_sched_add_batch(core, &batch);
    return 0;
}

typedef void s_handler_fn(broker_core_t *core, zframe_t *routing_id, lynx_msg_t *msg);

//  Receive one message from a socket and hand it to handler. A malformed one is answered with
//  protocol_error when the sender can be addressed, logged, and dropped.
static void s_serve_one(broker_core_t *core, zsock_t *socket, const char *peer,
                        s_handler_fn *handler)
{
    lynx_err_t err;
    zframe_t *routing_id = NULL;
    lynx_msg_t *msg = lynx_msg_recv(zsock_resolve(socket), &routing_id, &err);
    if (msg)
        handler(core, routing_id, msg);
    else {
        zsys_warning("broker: malformed message dropped peer=%s: %s", peer, err.message);
        if (routing_id)
            broker_send_error(socket, routing_id, 0, &err, NULL);
    }
    lynx_msg_destroy(&msg);
    zframe_destroy(&routing_id);
}

//  A burst of runner messages is one turn: everything they change is committed together
//  (group commit), then the ACKs and ASSIGNs they caused go out. Bounded so a flood cannot
//  starve the API socket.
static int s_on_runner_message(zloop_t *loop, zsock_t *socket, void *arg)
{
    (void)loop;
    broker_core_t *core = (broker_core_t *)arg;
    broker_outbox_hold(core->outbox, broker_store_turn_begin(core->store) == 0);
    for (int count = 0; count < BROKER_TURN_MESSAGES; count++) {
        if (count > 0 && !(zsock_events(socket) & ZMQ_POLLIN))
            break;
        s_serve_one(core, socket, "runner", broker_protocol_handle);
    }
    broker_sched_dispatch(core);
    if (broker_outbox_holding(core->outbox)) {
        broker_outbox_hold(core->outbox, false);
        if (broker_store_turn_commit(core->store)) {
            //  Memory is now ahead of the disk. Nothing was promised yet (the outbox holds
            //  every ACK and ASSIGN): stop, and let a restart recover the last durable state.
            zsys_error("broker: cannot commit, stopping: %s", broker_store_error(core->store));
            broker_outbox_discard(core->outbox);
            core->fatal = true;
            return -1;
        }
    }
    broker_outbox_flush(core->outbox);
    return 0;
}

static int s_on_api_message(zloop_t *loop, zsock_t *socket, void *arg)
{
    (void)loop;
    s_serve_one((broker_core_t *)arg, socket, "api", broker_api_handle);
    return 0;
}

//  Runners publish heartbeats (and, later, telemetry) to our SUB socket. Nothing can be
//  answered there; malformed frames are counted in the log and dropped.
static int s_on_event_message(zloop_t *loop, zsock_t *socket, void *arg)
{
    (void)loop;
    broker_core_t *core = (broker_core_t *)arg;
    lynx_err_t err;
    lynx_msg_t *msg = lynx_msg_recv(zsock_resolve(socket), NULL, &err);
    if (!msg)
        zsys_warning("broker: malformed event dropped: %s", err.message);
    else if (lynx_msg_id(msg) == LYNX_MSG_HEARTBEAT)
        broker_protocol_published(core, msg);
    else if (lynx_msg_id(msg) == LYNX_MSG_TELEMETRY) {
        if (broker_security_admit_telemetry(core, msg))
            broker_telemetry_ingest(core->telemetry, lynx_msg_body(msg), NULL);
        else
            zsys_debug("broker: telemetry dropped: not from the runner of job=%s",
                       lynx_value_get_string(lynx_msg_body(msg), "job_id", ""));
    } else
        zsys_warning("broker: unexpected %s on the events socket", lynx_msg_command(msg));
    lynx_msg_destroy(&msg);
    return 0;
}

//  A CURVE handshake waits for our answer (ZAP): who may connect, and as which runner.
static int s_on_zap(zloop_t *loop, zsock_t *socket, void *arg)
{
    (void)loop, (void)socket;
    broker_keys_handle_zap(((broker_core_t *)arg)->keys);
    return 0;
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    broker_core_t *core = (broker_core_t *)arg;
    broker_storage_check(core);
    broker_protocol_expire(core, lynx_time_mono_ms());
    broker_sched_tick(core);
    broker_collect_tick(core, lynx_time_mono_ms());
    broker_retention_sweep(core, false);
    broker_telemetry_flush_due(core->telemetry, lynx_time_mono_ms());
    broker_security_tick(core);
    return 0;
}

static void s_core_destroy(broker_core_t *core)
{
    broker_submissions_destroy(&core->submissions);
    broker_outbox_destroy(&core->outbox);
    broker_telemetry_destroy(&core->telemetry);
    broker_artifacts_destroy(&core->artifacts);
    zloop_destroy(&core->loop);
    broker_queue_destroy(&core->queue);
    broker_ids_destroy(&core->ids);
    zsock_destroy(&core->events_socket);
    broker_runners_destroy(&core->runners);
    broker_batches_destroy(&core->batches);
    zsock_destroy(&core->runner_socket);
    zsock_destroy(&core->api_socket);
    broker_store_destroy(&core->store);
    broker_keys_destroy(&core->keys);
}

//  Bind a socket; with keys it is a CURVE server whose handshakes ZAP checks in domain.
static zsock_t *s_bind(int type, const char *endpoint, char *resolved, broker_keys_t *keys,
                       const char *domain, lynx_err_t *err)
{
    zsock_t *socket = zsock_new(type);
    if (!socket) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "create socket for %s: %s", endpoint,
                     zmq_strerror(errno));
        return NULL;
    }
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory(socket, 1); //  report unroutable sends, don't drop them
    //  A peer cannot make us allocate more than the codec would ever decode.
    zsock_set_maxmsgsize(socket, (int64_t)LYNX_MSG_MAX_BYTES + 1024);
    zsock_set_sndhwm(socket, 100000);
    zsock_set_rcvhwm(socket, 100000);
    if (keys)
        broker_keys_serve(keys, socket, domain);
    if (zsock_bind(socket, "%s", endpoint) < 0) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind %s: %s", endpoint, zmq_strerror(errno));
        zsock_destroy(&socket);
        return NULL;
    }
    snprintf(resolved, 256, "%s", zsock_endpoint(socket) ? zsock_endpoint(socket) : endpoint);
    return socket;
}

//  The endpoint on endpoint's host with any free port: "tcp://10.0.0.5:5555" -> ":*".
static void s_any_port(const char *endpoint, char *out, size_t size)
{
    const char *colon = strrchr(endpoint, ':');
    int host_len = colon ? (int)(colon - endpoint) : 0;
    snprintf(out, size, "%.*s:*", host_len, endpoint);
}

static int s_core_setup(s_broker_t *self, char *runner_ep, char *api_ep, char *events_ep,
                        lynx_err_t *err)
{
    broker_core_t *core = &self->core;
    core->heartbeat_interval_ms = self->options.heartbeat_interval_ms;
    core->heartbeat_misses = self->options.heartbeat_misses;
    int grace_secs = self->options.timeout_grace_secs > 0 ? self->options.timeout_grace_secs : 30;
    core->timeout_grace_ms = (int64_t)grace_secs * 1000;
    core->artifact_retention_days = self->options.artifact_retention_days;
    snprintf(core->data_dir, sizeof core->data_dir, "%s", self->options.data_dir);
    core->min_free_bytes = (int64_t)self->options.min_free_mb << 20;
    core->started_mono_ms = lynx_time_mono_ms();
    uint64_t id_seed = 0;
    if (getrandom(&id_seed, sizeof id_seed, 0) != (ssize_t)sizeof id_seed)
        id_seed = (uint64_t)lynx_time_now_ms() ^ ((uint64_t)getpid() << 32);
    core->ids = broker_ids_new(id_seed);
    if (!core->ids)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    core->batches = broker_batches_new();
    if (!core->batches)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    core->submissions = broker_submissions_new();
    if (!core->submissions)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    //  0 asks for the default, a negative number for never.
    int quarantine_after = self->options.quarantine_after;
    core->runners = broker_runners_new(core->heartbeat_interval_ms, core->heartbeat_misses,
                                       quarantine_after == 0  ? 5
                                       : quarantine_after < 0 ? 0
                                                              : quarantine_after);
    if (!core->runners)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    core->queue = broker_queue_new();
    if (!core->queue)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    core->store = broker_store_new(self->options.data_dir, err);
    if (!core->store)
        return -1; //  Telemetry before the batches: loading each batch tells the store about it.
    char telemetry_default[256];
    const char *telemetry_endpoint = self->options.telemetry_endpoint;
    if (!telemetry_endpoint || !*telemetry_endpoint) {
        s_any_port(self->options.runner_endpoint, telemetry_default, sizeof telemetry_default);
        telemetry_endpoint = telemetry_default;
    }
    if (self->options.curve) {
        char keys_dir[4200];
        snprintf(keys_dir, sizeof keys_dir, "%s/keys", self->options.data_dir);
        if (!(core->keys = broker_keys_new(keys_dir, err)))
            return -1;
        if (self->options.public_key_out)
            snprintf(self->options.public_key_out, 64, "%s", broker_keys_public(core->keys));
    } else
        zsys_warning("broker: INSECURE: CURVE is off; anyone who reaches the runner, events or "
                     "telemetry port is trusted (a runner receives every job's run config)");
    core->telemetry =
        broker_telemetry_new(self->options.data_dir, telemetry_endpoint, core->keys, err);
    if (!core->telemetry)
        return -1;
    core->artifacts = broker_artifacts_new(self->options.data_dir, err);
    if (!core->artifacts)
        return -1;
    if (self->options.telemetry_endpoint_out)
        snprintf(self->options.telemetry_endpoint_out, 256, "%s",
                 broker_telemetry_endpoint(core->telemetry));
    int64_t discarded = broker_store_discard_incomplete(core->store);
    if (discarded < 0)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
    if (discarded > 0)
        zsys_notice("broker: removed batches left half-written by a crash count=%" PRId64,
                    discarded);
    if (broker_store_foreach_batch(core->store, s_load_batch, core))
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
    if (broker_sched_recover(core, err))
        return -1;
    if (broker_runners_load_drained(core->runners, core->store) || broker_quarantine_load(core))
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
    core->runner_socket = s_bind(ZMQ_ROUTER, self->options.runner_endpoint, runner_ep, core->keys,
                                 BROKER_KEYS_DOMAIN_RUNNERS, err);
    if (!core->runner_socket)
        return -1;
    core->outbox =
        broker_outbox_new(core->runner_socket, broker_telemetry_republish(core->telemetry));
    if (!core->outbox)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    core->api_socket = s_bind(ZMQ_ROUTER, self->options.api_endpoint, api_ep, NULL, NULL, err);
    if (!core->api_socket)
        return -1;
    //  By default the events socket listens where runners already reach us, on any port: they
    //  learn it from REGISTERED.
    char derived[256];
    const char *events_endpoint = self->options.events_endpoint;
    if (!events_endpoint || !*events_endpoint) {
        s_any_port(self->options.runner_endpoint, derived, sizeof derived);
        events_endpoint = derived;
    }
    core->events_socket =
        s_bind(ZMQ_SUB, events_endpoint, events_ep, core->keys, BROKER_KEYS_DOMAIN_RUNNERS, err);
    if (!core->events_socket)
        return -1;
    zsock_set_subscribe(core->events_socket, "");
    const char *port = strrchr(events_ep, ':');
    core->events_port = port ? atoi(port + 1) : 0;
    core->loop = zloop_new();
    zloop_reader(core->loop, core->runner_socket, s_on_runner_message, core);
    zloop_reader(core->loop, core->api_socket, s_on_api_message, core);
    zloop_reader(core->loop, core->events_socket, s_on_event_message, core);
    zloop_timer(core->loop, BROKER_TICK_MS, 0, s_on_tick, core);
    if (core->keys)
        zloop_reader(core->loop, broker_keys_zap_socket(core->keys), s_on_zap, core);
    zsys_info("broker: started data_dir=%s batches=%zu runner_endpoint=%s api_endpoint=%s",
              self->options.data_dir, broker_batches_count(core->batches), runner_ep, api_ep);
    zsys_info("broker: runners publish heartbeats to events_endpoint=%s", events_ep);
    return 0;
}

static void s_broker_actor(zsock_t *pipe, void *args)
{
    s_broker_t *self = (s_broker_t *)args;
    zsock_signal(pipe, 0);
    char runner_ep[256] = "", api_ep[256] = "", events_ep[256] = "";
    lynx_err_t err;
    lynx_err_clear(&err);
    if (s_core_setup(self, runner_ep, api_ep, events_ep, &err)) {
        zstr_sendx(pipe, "ERROR", err.message, NULL);
        //  Stay until the owner destroys us, as zactor expects.
        char *command = zstr_recv(pipe);
        zstr_free(&command);
    } else {
        zstr_sendx(pipe, "OK", runner_ep, api_ep, NULL);
        zloop_reader(self->core.loop, pipe, lynx_actor_on_pipe, NULL);
        zloop_start(self->core.loop);
        if (self->core.fatal) {
            //  Tell the owner, then wait for its $TERM as zactor expects.
            zstr_sendx(pipe, "FATAL", "the store failed; see the log", NULL);
            char *command = zstr_recv(pipe);
            zstr_free(&command);
        }
    }
    s_core_destroy(&self->core);
    free(self);
}

zactor_t *broker_start(const broker_options_t *options, char *runner_endpoint_out,
                       char *api_endpoint_out, lynx_err_t *err)
{
    s_broker_t *self = (s_broker_t *)calloc(1, sizeof *self);
    self->options = *options;
    zactor_t *actor = zactor_new(s_broker_actor, self);
    char *status = NULL, *first = NULL, *second = NULL;
    zstr_recvx(actor, &status, &first, &second, NULL);
    bool ok = status && streq(status, "OK");
    if (ok) {
        snprintf(runner_endpoint_out, 256, "%s", first);
        snprintf(api_endpoint_out, 256, "%s", second ? second : "");
    } else {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", first ? first : "broker failed to start");
        zactor_destroy(&actor);
    }
    zstr_free(&status);
    zstr_free(&first);
    zstr_free(&second);
    return actor;
}
