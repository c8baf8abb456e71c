//  broker_protocol: runner messages through the state x event table (see the header).
#include "broker_protocol.h"
#include "broker_collect.h"
#include "lynx_fsm.h"

//  What an action gets: the message (NULL for EXPIRY), its route (NULL when published or for
//  EXPIRY) and the runner the state was found for (NULL when UNKNOWN).
typedef struct {
    broker_core_t *core;
    zframe_t *routing_id;
    lynx_msg_t *msg;
    lynx_value_t *body;
    broker_runner_t *runner;
} s_event_t;

typedef void(s_action_fn)(s_event_t *event);

// --------------------------------------------------------------------------------------------
//  Actions

static void s_error(broker_core_t *core, zframe_t *routing_id, lynx_code_t code, const char *field,
                    const char *message)
{
    lynx_err_t err;
    lynx_err_set(&err, code, field, "%s", message);
    broker_send_error(core->runner_socket, routing_id, 0, &err, NULL);
}

//  Registration, first or again (a restart takes its id over; a duplicate is refused).
static void s_register(s_event_t *event)
{
    broker_runner_t *runner = broker_runners_admit(event->core->runners, event->core->runner_socket,
                                                   event->routing_id, event->body);
    if (runner)
        broker_sched_welcome(event->core, runner, event->body);
}

//  Still alive.
static void s_touch(s_event_t *event)
{
    broker_runners_touch(event->runner);
}

//  A HEARTBEAT on the runner socket must name the runner registered on that route.
static void s_beat(s_event_t *event)
{
    if (strcmp(lynx_value_get_string(event->body, "runner_id", ""), event->runner->id) == 0)
        s_touch(event);
    else
        s_error(event->core, event->routing_id, LYNX_ENOTFOUND, "runner_id",
                "runner is not registered; register again");
}

//  We restarted or wrote it off: it must register again (reporting what it holds).
static void s_tell_register(s_event_t *event)
{
    s_error(event->core, event->routing_id, LYNX_ENOTFOUND, NULL,
            "runner is not registered; register again");
}

//  Declared Offline (a network hiccup) but alive: register again so its jobs are reconciled.
static void s_tell_reregister(s_event_t *event)
{
    if (event->runner->routing_id)
        s_error(event->core, event->runner->routing_id, LYNX_ENOTFOUND, "runner_id",
                "runner was declared offline; register again");
}

static void s_started(s_event_t *event)
{
    s_touch(event);
    broker_sched_started(event->core, event->runner, event->body);
}

static void s_finish(s_event_t *event)
{
    s_touch(event);
    broker_collect_finished(event->core, event->runner, event->routing_id, event->body);
}

static void s_chunk(s_event_t *event)
{
    s_touch(event);
    broker_collect_chunk(event->core, event->runner, event->routing_id, event->body);
}

static void s_leave(s_event_t *event)
{
    broker_artifacts_drop_runner(event->core->artifacts, event->runner->id);
    broker_sched_runner_left(event->core, event->runner, event->body);
}

//  A runner's --check: answer anyone, register no one.
static void s_pong(s_event_t *event)
{
    lynx_msg_t *pong = lynx_msg_new(LYNX_MSG_PONG);
    lynx_value_set_int(lynx_msg_body(pong), "nonce", lynx_value_get_int(event->body, "nonce", 0));
    lynx_value_set_string(lynx_msg_body(pong), "version", LYNX_VERSION);
    broker_outbox_send_now(event->core->outbox, event->routing_id, &pong);
}

//  Silent too long: Offline. Its jobs wait one more heartbeat timeout (broker_sched_tick).
static void s_expire(s_event_t *event)
{
    broker_runners_went_offline(event->runner);
    broker_artifacts_drop_runner(event->core->artifacts, event->runner->id);
}

static void s_refuse(s_event_t *event)
{
    char message[128];
    snprintf(message, sizeof message, "unexpected command %s from a runner",
             lynx_msg_command(event->msg));
    s_error(event->core, event->routing_id, LYNX_EPROTOCOL, NULL, message);
}

static void s_ignore(s_event_t *event)
{
    (void)event;
}

// --------------------------------------------------------------------------------------------
//  The table

LYNX_FSM_ACTION_TYPE(s_action_t, s_action_fn);

#define A(fn) LYNX_FSM_ACTION(fn)

static const s_action_t s_table[BROKER_LINK_STATE_COUNT][BROKER_LINK_EVENT_COUNT] = {
    //  REGISTER, HEARTBEAT, PUBLISHED_HEARTBEAT, STARTED, FINISHED, CHUNK, DISCONNECT, PING,
    //  EXPIRY, OTHER
    [BROKER_LINK_UNKNOWN] = {A(s_register), A(s_tell_register), A(s_ignore), A(s_tell_register),
                             A(s_tell_register), A(s_tell_register), A(s_ignore), A(s_pong),
                             A(s_ignore), A(s_tell_register)},
    [BROKER_LINK_ONLINE] = {A(s_register), A(s_beat), A(s_touch), A(s_started), A(s_finish),
                            A(s_chunk), A(s_leave), A(s_pong), A(s_expire), A(s_refuse)},
    [BROKER_LINK_OFFLINE] = {A(s_register), A(s_tell_register), A(s_tell_reregister),
                             A(s_tell_register), A(s_tell_register), A(s_tell_register),
                             A(s_ignore), A(s_pong), A(s_ignore), A(s_tell_register)},
};

#undef A

static const char *const s_state_names[BROKER_LINK_STATE_COUNT] = {"UNKNOWN", "ONLINE", "OFFLINE"};
static const char *const s_event_names[BROKER_LINK_EVENT_COUNT] = {
    "REGISTER", "HEARTBEAT", "PUBLISHED_HEARTBEAT", "STARTED",
    "FINISHED", "CHUNK",     "DISCONNECT",          "PING",
    "EXPIRY",   "OTHER"};

static broker_link_event_t s_event_of(lynx_msg_id_t id)
{
    switch (id) {
    case LYNX_MSG_REGISTER:
        return BROKER_LINK_REGISTER;
    case LYNX_MSG_HEARTBEAT:
        return BROKER_LINK_HEARTBEAT;
    case LYNX_MSG_STARTED:
        return BROKER_LINK_STARTED;
    case LYNX_MSG_FINISHED:
        return BROKER_LINK_FINISHED;
    case LYNX_MSG_CHUNK:
        return BROKER_LINK_CHUNK;
    case LYNX_MSG_DISCONNECT:
        return BROKER_LINK_DISCONNECT;
    case LYNX_MSG_PING:
        return BROKER_LINK_PING;
    default:
        return BROKER_LINK_OTHER;
    }
}

static broker_link_state_t s_state_of(const broker_runner_t *runner)
{
    return !runner          ? BROKER_LINK_UNKNOWN
           : runner->online ? BROKER_LINK_ONLINE
                            : BROKER_LINK_OFFLINE;
}

static void s_run(s_event_t *event, broker_link_event_t what)
{
    const s_action_t *action = &s_table[s_state_of(event->runner)][what];
    action->run(event);
}

void broker_protocol_handle(broker_core_t *core, zframe_t *routing_id, lynx_msg_t *msg)
{
    //  On the runner socket the route says who it is: only a live registration counts, so a
    //  route whose runner was declared Offline is UNKNOWN until it registers again.
    if (!broker_security_admit(core, routing_id, msg, lynx_msg_body(msg)))
        return;
    s_event_t event = {core, routing_id, msg, lynx_msg_body(msg),
                       broker_runners_by_route(core->runners, routing_id)};
    s_run(&event, s_event_of(lynx_msg_id(msg)));
}

void broker_protocol_published(broker_core_t *core, lynx_msg_t *msg)
{
    //  Published heartbeats name their runner; a restarted broker does not know it yet, and
    //  that runner notices the restart through its own link.
    lynx_value_t *body = lynx_msg_body(msg);
    if (!broker_security_admit(core, NULL, msg, body))
        return;
    broker_runner_t *runner =
        broker_runners_lookup(core->runners, lynx_value_get_string(body, "runner_id", ""));
    s_event_t event = {core, NULL, msg, body, runner};
    s_run(&event, BROKER_LINK_PUBLISHED_HEARTBEAT);
}

void broker_protocol_expire(broker_core_t *core, int64_t now_mono_ms)
{
    for (size_t i = 0; i < broker_runners_count(core->runners); i++) {
        broker_runner_t *runner = broker_runners_at(core->runners, i);
        if (broker_runners_silent(core->runners, runner, now_mono_ms)) {
            s_event_t event = {core, NULL, NULL, NULL, runner};
            s_run(&event, BROKER_LINK_EXPIRY);
        }
    }
}

const char *broker_protocol_state_name(broker_link_state_t state)
{
    return lynx_fsm_name(s_state_names, BROKER_LINK_STATE_COUNT, (size_t)state);
}

const char *broker_protocol_event_name(broker_link_event_t event)
{
    return lynx_fsm_name(s_event_names, BROKER_LINK_EVENT_COUNT, (size_t)event);
}

const char *broker_protocol_action_name(broker_link_state_t state, broker_link_event_t event)
{
    return lynx_fsm_action_name(s_table, sizeof s_table[0][0], BROKER_LINK_STATE_COUNT,
                                BROKER_LINK_EVENT_COUNT, (size_t)state, (size_t)event);
}
