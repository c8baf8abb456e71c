//  broker_protocol: the broker's side of the runner protocol as one table, state x event ->
//  action, as malamute's brokers are written. The state is what the broker knows of the peer
//  behind a message: UNKNOWN (no registered runner on that route: never registered, a broker
//  restart, or written off), ONLINE (registered and live), OFFLINE (known by id, declared
//  Offline after its heartbeats stopped). Each action is a short function here or a call into
//  the module owning what it changes (broker_runners for registration and liveness,
//  broker_sched for job transitions, which lynx_job_transition_allowed still rules).
//  proto/PROTOCOL.md prints the same table, and broker_protocol_test checks they agree.
#ifndef BROKER_PROTOCOL_H_INCLUDED
#define BROKER_PROTOCOL_H_INCLUDED

#include "broker_core.h"

typedef enum {
    BROKER_LINK_UNKNOWN,
    BROKER_LINK_ONLINE,
    BROKER_LINK_OFFLINE,
    BROKER_LINK_STATE_COUNT
} broker_link_state_t;

typedef enum {
    BROKER_LINK_REGISTER,            //  REGISTER on the runner socket
    BROKER_LINK_HEARTBEAT,           //  HEARTBEAT on the runner socket
    BROKER_LINK_PUBLISHED_HEARTBEAT, //  HEARTBEAT on the events socket (by runner id)
    BROKER_LINK_STARTED,
    BROKER_LINK_FINISHED,
    BROKER_LINK_CHUNK, //  a piece of a finished attempt's file (broker_collect)
    BROKER_LINK_DISCONNECT,
    BROKER_LINK_PING,
    BROKER_LINK_EXPIRY, //  the tick found it silent for heartbeat_misses intervals
    BROKER_LINK_OTHER,  //  any other command from a runner
    BROKER_LINK_EVENT_COUNT
} broker_link_event_t;

//  Handle one decoded message from the runner socket (routing_id borrowed). The caller
//  dispatches afterwards, once per burst of messages.
void broker_protocol_handle(broker_core_t *core, zframe_t *routing_id, lynx_msg_t *msg);
//  Handle a HEARTBEAT published on the events socket (no route to answer on but the runner's).
void broker_protocol_published(broker_core_t *core, lynx_msg_t *msg);
//  The tick: ONLINE runners silent for heartbeat_misses of their intervals meet EXPIRY.
void broker_protocol_expire(broker_core_t *core, int64_t now_mono_ms);

//  The table's words, for PROTOCOL.md's copy and its test: the state's and event's names
//  ("ONLINE", "FINISHED"), and the action taken ("finish").
const char *broker_protocol_state_name(broker_link_state_t state);
const char *broker_protocol_event_name(broker_link_event_t event);
const char *broker_protocol_action_name(broker_link_state_t state, broker_link_event_t event);

#endif
