//  broker_outbox: what the broker tells runners and subscribers, held back while a turn's
//  changes are not yet durable. During a turn (broker_outbox_hold) ASSIGNs, ACKs and KILLs wait
//  here, and so do job and runner events; once the turn commits broker_outbox_flush sends and
//  publishes them in order; if it cannot commit, broker_outbox_discard drops them, so nothing
//  is promised that the disk does not hold. Outside a turn everything goes out at once.
#ifndef BROKER_OUTBOX_H_INCLUDED
#define BROKER_OUTBOX_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#include "broker_republish.h"
#include "broker_store.h"
#include "lynx_msg.h"

typedef struct _broker_outbox_t broker_outbox_t;

//  An empty outbox sending on the runner ROUTER socket and publishing on republish (both
//  borrowed; they must outlive it). NULL on out-of-memory.
broker_outbox_t *broker_outbox_new(zsock_t *runner_socket, broker_republish_t *republish);
//  Destroy, dropping what is held; sets *self_p to NULL. NULL-safe.
void broker_outbox_destroy(broker_outbox_t **self_p);

//  Start (true) or end (false) a turn: while held, posts and events wait for the flush.
void broker_outbox_hold(broker_outbox_t *self, bool hold);
bool broker_outbox_holding(const broker_outbox_t *self);

//  Send msg to the runner behind routing_id (borrowed) now, held or not: answers that promise
//  nothing stored (PONG, ERROR). Destroys *msg_p. -1 (logged) when the socket refused it.
int broker_outbox_send_now(broker_outbox_t *self, zframe_t *routing_id, lynx_msg_t **msg_p);
//  Send msg to routing_id, or hold it until the flush while a turn is open. Takes *msg_p.
int broker_outbox_post(broker_outbox_t *self, zframe_t *routing_id, lynx_msg_t **msg_p);

//  A job entered status (with its attempt, runner, error and early-termination trigger):
//  published on "event.<batch>.<job>" once durable.
void broker_outbox_job_event(broker_outbox_t *self, const broker_job_rec_t *rec,
                             lynx_job_state_t status, const char *error_message,
                             const lynx_value_t *trigger);
//  A runner's status changed: published on "runner.<id>" with the fields of *extra_p (a map,
//  taken; NULL for none) once durable.
void broker_outbox_runner_event(broker_outbox_t *self, const char *runner_id, const char *status,
                                lynx_value_t **extra_p);

//  Publish the held events and send the held messages, in the order they came.
void broker_outbox_flush(broker_outbox_t *self);
//  Drop everything held (the turn could not commit).
void broker_outbox_discard(broker_outbox_t *self);

//  Send an ERROR built from err (with corr, 0 when unknown, and the {field, message} list
//  *errors_p, taken, NULL for none) to routing_id on socket, a runner or API ROUTER, at once:
//  a refusal promises nothing stored. A failed send is logged.
void broker_send_error(zsock_t *socket, zframe_t *routing_id, int64_t corr, const lynx_err_t *err,
                       lynx_value_t **errors_p);
//  Send a REPLY with corr and *body_p (taken) to an API client at once. A failed send is
//  logged.
void broker_send_reply(zsock_t *socket, zframe_t *routing_id, int64_t corr, lynx_value_t **body_p);

#endif
