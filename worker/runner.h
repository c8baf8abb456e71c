//  runner: the lynx-runner actor. Registers with the broker (again after every reconnection),
//  publishes heartbeats to the broker's events socket, runs assigned jobs as scenario
//  subprocesses (one engine table entry per kind of scenario), reports their outcome and keeps
//  each result until the broker acknowledges it. See proto/PROTOCOL.md.
#ifndef RUNNER_H_INCLUDED
#define RUNNER_H_INCLUDED

#include <czmq.h>

#include "runner_config.h"

//  Start the runner actor; it borrows config, which must outlive it. The actor sends "READY"
//  on its pipe once the broker accepted the registration, and "FATAL <reason>" when the broker
//  refused it for good (invalid_argument, conflict) or the broker endpoint cannot be used.
zactor_t *runner_start(runner_config_t *config);

//  The runner's side of the protocol is a table, link state x event -> action (runner.c);
//  proto/PROTOCOL.md prints it and runner_test checks that both agree.
typedef enum {
    RUNNER_LINK_UNREGISTERED, //  REGISTER sent (or about to be), no REGISTERED yet
    RUNNER_LINK_REGISTERED,
    RUNNER_LINK_STATE_COUNT
} runner_link_state_t;

typedef enum {
    RUNNER_LINK_REGISTERED_MSG, //  REGISTERED from the broker
    RUNNER_LINK_ASSIGN,
    RUNNER_LINK_KILL,
    RUNNER_LINK_ACK,
    RUNNER_LINK_FETCH,           //  FETCH: the broker wants a range of a finished attempt's file
    RUNNER_LINK_ERROR_NOT_FOUND, //  ERROR not_found: the broker does not know us
    RUNNER_LINK_ERROR_REFUSED,   //  ERROR invalid_argument or conflict
    RUNNER_LINK_ERROR_DENIED,    //  ERROR unauthorized or forbidden: our key is revoked or
                                 //  enrolled for another runner id
    RUNNER_LINK_ERROR_OTHER,
    RUNNER_LINK_UP,   //  the DEALER connected (again)
    RUNNER_LINK_DOWN, //  the DEALER's connection dropped
    RUNNER_LINK_TICK, //  the heartbeat timer
    RUNNER_LINK_OTHER,
    RUNNER_LINK_EVENT_COUNT
} runner_link_event_t;

//  The table's words: state and event names ("REGISTERED", "TICK") and the action ("heartbeat").
const char *runner_protocol_state_name(runner_link_state_t state);
const char *runner_protocol_event_name(runner_link_event_t event);
const char *runner_protocol_action_name(runner_link_state_t state, runner_link_event_t event);

#endif
