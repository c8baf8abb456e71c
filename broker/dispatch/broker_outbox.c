//  broker_outbox: messages and events held until the turn that caused them is durable.
#include "broker_outbox.h"

typedef struct {
    zframe_t *routing_id;
    lynx_msg_t *msg;
} s_outgoing_t;

struct _broker_outbox_t {
    zsock_t *runner_socket;        //  borrowed
    broker_republish_t *republish; //  borrowed
    zlistx_t *messages;            //  s_outgoing_t, oldest first
    zlistx_t *events;              //  lynx_value maps with a "type", oldest first
    bool holding;
};

static void s_outgoing_destroy(void **item_p)
{
    s_outgoing_t *outgoing = (s_outgoing_t *)*item_p;
    if (outgoing) {
        zframe_destroy(&outgoing->routing_id);
        lynx_msg_destroy(&outgoing->msg);
        free(outgoing);
    }
    *item_p = NULL;
}

static void s_event_destroy(void **item_p)
{
    lynx_value_destroy((lynx_value_t **)item_p);
}

broker_outbox_t *broker_outbox_new(zsock_t *runner_socket, broker_republish_t *republish)
{
    broker_outbox_t *self = (broker_outbox_t *)calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->runner_socket = runner_socket;
    self->republish = republish;
    self->messages = zlistx_new();
    self->events = zlistx_new();
    if (!self->messages || !self->events) {
        broker_outbox_destroy(&self);
        return NULL;
    }
    zlistx_set_destructor(self->messages, s_outgoing_destroy);
    zlistx_set_destructor(self->events, s_event_destroy);
    return self;
}

void broker_outbox_destroy(broker_outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_outbox_t *self = *self_p;
    zlistx_destroy(&self->messages);
    zlistx_destroy(&self->events);
    free(self);
    *self_p = NULL;
}

void broker_outbox_hold(broker_outbox_t *self, bool hold)
{
    self->holding = hold;
}

bool broker_outbox_holding(const broker_outbox_t *self)
{
    return self->holding;
}

int broker_outbox_send_now(broker_outbox_t *self, zframe_t *routing_id, lynx_msg_t **msg_p)
{
    lynx_err_t err;
    if (lynx_msg_send(msg_p, zsock_resolve(self->runner_socket), routing_id, &err)) {
        zsys_warning("broker: send to runner failed: %s", err.message);
        return -1;
    }
    return 0;
}

int broker_outbox_post(broker_outbox_t *self, zframe_t *routing_id, lynx_msg_t **msg_p)
{
    if (!self->holding)
        return broker_outbox_send_now(self, routing_id, msg_p);
    s_outgoing_t *outgoing = (s_outgoing_t *)calloc(1, sizeof *outgoing);
    if (!outgoing || !(outgoing->routing_id = zframe_dup(routing_id))) {
        free(outgoing);
        lynx_msg_destroy(msg_p);
        return -1;
    }
    outgoing->msg = *msg_p;
    *msg_p = NULL;
    zlistx_add_end(self->messages, outgoing);
    return 0;
}

static void s_hold_event(broker_outbox_t *self, lynx_value_t *event)
{
    zlistx_add_end(self->events, event);
    if (!self->holding)
        broker_outbox_flush(self);
}

void broker_outbox_job_event(broker_outbox_t *self, const broker_job_rec_t *rec,
                             lynx_job_state_t status, const char *error_message,
                             const lynx_value_t *trigger)
{
    lynx_value_t *event = lynx_value_map();
    lynx_value_set_string(event, "type", "job");
    lynx_value_set_string(event, "batch_id", rec->batch_id);
    lynx_value_set_string(event, "job_id", rec->id);
    lynx_value_set_string(event, "status", lynx_job_state_name(status));
    lynx_value_set_int(event, "attempt", rec->attempt);
    lynx_value_set_string(event, "runner_id",
                          rec->assigned_runner[0] ? rec->assigned_runner : NULL);
    if (error_message)
        lynx_value_set_string(event, "error_message", error_message);
    lynx_value_t *copy = trigger ? lynx_value_dup(trigger) : NULL;
    if (copy && lynx_value_set(event, "trigger", &copy))
        lynx_value_destroy(&copy);
    s_hold_event(self, event);
}

void broker_outbox_runner_event(broker_outbox_t *self, const char *runner_id, const char *status,
                                lynx_value_t **extra_p)
{
    lynx_value_t *event = extra_p && *extra_p ? *extra_p : lynx_value_map();
    if (extra_p)
        *extra_p = NULL;
    lynx_value_set_string(event, "type", "runner");
    lynx_value_set_string(event, "runner_id", runner_id);
    lynx_value_set_string(event, "status", status);
    s_hold_event(self, event);
}

static void s_publish(broker_outbox_t *self, lynx_value_t *event)
{
    const char *status = lynx_value_get_string(event, "status", "");
    if (strcmp(lynx_value_get_string(event, "type", ""), "runner") == 0) {
        //  Fields beyond type, runner_id and status travel as they are.
        broker_republish_runner_event(self->republish,
                                      lynx_value_get_string(event, "runner_id", ""), status, event);
        return;
    }
    lynx_value_t *extra = lynx_value_map();
    const char *keys[] = {"attempt", "runner_id", "error_message", "trigger"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        lynx_value_t *copy = lynx_value_dup(lynx_value_get(event, keys[i]));
        if (copy && lynx_value_set(extra, keys[i], &copy))
            lynx_value_destroy(&copy);
    }
    broker_republish_job_event(self->republish, lynx_value_get_string(event, "batch_id", ""),
                               lynx_value_get_string(event, "job_id", ""), status, extra);
    lynx_value_destroy(&extra);
}

void broker_outbox_flush(broker_outbox_t *self)
{
    lynx_value_t *event;
    while ((event = (lynx_value_t *)zlistx_detach(self->events, NULL))) {
        s_publish(self, event);
        lynx_value_destroy(&event);
    }
    s_outgoing_t *outgoing;
    while ((outgoing = (s_outgoing_t *)zlistx_detach(self->messages, NULL))) {
        broker_outbox_send_now(self, outgoing->routing_id, &outgoing->msg);
        void *item = outgoing;
        s_outgoing_destroy(&item);
    }
}

void broker_outbox_discard(broker_outbox_t *self)
{
    zlistx_purge(self->messages);
    zlistx_purge(self->events);
}

void broker_send_error(zsock_t *socket, zframe_t *routing_id, int64_t corr, const lynx_err_t *err,
                       lynx_value_t **errors_p)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_ERROR);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "code", lynx_code_name(err->code));
    lynx_value_set_string(body, "message", err->message);
    lynx_value_set_int(body, "corr", corr);
    if (err->field[0])
        lynx_value_set_string(body, "field", err->field);
    if (errors_p && *errors_p && lynx_value_set(body, "errors", errors_p))
        lynx_value_destroy(errors_p);
    lynx_err_t send_err;
    if (lynx_msg_send(&msg, zsock_resolve(socket), routing_id, &send_err))
        zsys_warning("broker: cannot send error reply: %s", send_err.message);
}

void broker_send_reply(zsock_t *socket, zframe_t *routing_id, int64_t corr, lynx_value_t **body_p)
{
    lynx_msg_t *reply = lynx_msg_new(LYNX_MSG_REPLY);
    lynx_value_set_int(lynx_msg_body(reply), "corr", corr);
    if (lynx_value_set(lynx_msg_body(reply), "body", body_p))
        lynx_value_destroy(body_p);
    lynx_err_t err;
    if (lynx_msg_send(&reply, zsock_resolve(socket), routing_id, &err))
        zsys_warning("broker: cannot send reply corr=%" PRId64 ": %s", corr, err.message);
}
