//  gateway: the actor that joins the HTTP server and the broker DEALER in one zloop.
#include "gateway.h"

#include "gateway_auth.h"
#include "gateway_http.h"
#include "gateway_routes.h"
#include "gateway_archive.h"
#include "gateway_stream.h"
#include "lynx_actor.h"
#include "lynx_json.h"
#include "lynx_msg.h"
#include "lynx_time.h"

#define GATEWAY_TICK_MS 50
#define GATEWAY_PING_MS 500

typedef struct {
    gateway_request_t *request; //  answered with the reply, or
    gateway_waiter_t waiter;    //  a download's, which takes the reply (waiter.target set)
    int64_t deadline_ms;        //  monotonic
    int success_status;
    int timeout_ms;
    int64_t sent_ms; //  monotonic
} s_pending_t;

typedef struct {
    gateway_options_t options;
    gateway_http_t *http;
    zsock_t *broker;
    zloop_t *loop;
    gateway_auth_t *auth;
    zhashx_t *pending; //  corr (as text) -> s_pending_t
    int64_t next_corr;
    int64_t last_heard_ms; //  monotonic time of the broker's last message
    int64_t last_ping_ms;
} s_gateway_t;

static void s_respond_json(gateway_request_t *request, int status, char *json)
{
    const char *body = json ? json : "{}";
    gateway_request_respond(request, status, "application/json", body, strlen(body));
    free(json);
}

static void s_respond_error(gateway_request_t *request, const lynx_err_t *err,
                            const lynx_value_t *errors)
{
    char allowed[64] = "";
    if (err->code == LYNX_EMETHOD)
        gateway_routes_allowed(gateway_request_path(request), allowed, sizeof allowed);
    const char *headers[] = {"Allow", allowed, NULL};
    gateway_routes_respond_error(request, err, errors, allowed[0] ? headers : NULL);
}

static void s_add_pending(s_gateway_t *self, int64_t corr, gateway_request_t *request,
                          const gateway_waiter_t *waiter, int timeout_ms, int success_status)
{
    s_pending_t *pending = (s_pending_t *)calloc(1, sizeof *pending);
    assert(pending);
    pending->request = request;
    if (waiter)
        pending->waiter = *waiter;
    pending->deadline_ms = lynx_time_mono_ms() + timeout_ms;
    pending->timeout_ms = timeout_ms;
    pending->sent_ms = lynx_time_mono_ms();
    pending->success_status = success_status;
    char key[32];
    snprintf(key, sizeof key, "%" PRId64, corr);
    zhashx_insert(self->pending, key, pending);
}

//  Send op with *args_p (taken) as a REQUEST, with the client's Idempotency-Key (or NULL) and
//  the token it was checked with (or NULL); its corr, or -1 with err.
static int64_t s_send_request(s_gateway_t *self, const char *op, lynx_value_t **args_p,
                              const char *idempotency_key, const gateway_principal_t *principal,
                              int timeout_ms, lynx_err_t *err)
{
    int64_t corr = ++self->next_corr;
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REQUEST);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_int(body, "corr", corr);
    lynx_value_set_string(body, "op", op);
    //  The broker drops a request it sees after this instant: the client got its 503 already.
    lynx_value_set_int(body, "deadline_ms", lynx_time_now_ms() + timeout_ms);
    if (idempotency_key)
        lynx_value_set_string(body, "idempotency_key", idempotency_key);
    if (principal && principal->name) {
        lynx_value_t *who = lynx_value_map();
        lynx_value_set_string(who, "name", principal->name);
        lynx_value_set_string(who, "role", lynx_role_name(principal->role));
        if (lynx_value_set(body, "principal", &who))
            lynx_value_destroy(&who);
    }
    if (lynx_value_set(body, "args", args_p))
        lynx_value_destroy(args_p);
    if (lynx_msg_send(&msg, zsock_resolve(self->broker), NULL, err)) {
        lynx_err_set(err, LYNX_EUNAVAILABLE, NULL, "broker unreachable at %s",
                     self->options.broker_endpoint);
        return -1;
    }
    return corr;
}

//  gateway_ask_fn: a download's next question.
static int s_ask(void *arg, const char *op, lynx_value_t **args_p, const gateway_waiter_t *waiter,
                 lynx_err_t *err)
{
    s_gateway_t *self = (s_gateway_t *)arg;
    int timeout_ms = self->options.broker_timeout_ms;
    int64_t corr = s_send_request(self, op, args_p, NULL, NULL, timeout_ms, err);
    if (corr < 0)
        return -1;
    s_add_pending(self, corr, NULL, waiter, timeout_ms, 200);
    return 0;
}

//  A matched route waiting for its token to be checked.
typedef struct {
    s_gateway_t *self;
    gateway_call_t call;
    const char *idempotency_key; //  borrowed from the request's headers, or NULL
} s_call_t;

static void s_proceed(gateway_request_t *request, const gateway_principal_t *principal, void *arg);

//  gateway_routes_lookup_fn over the request's query string and headers.
static const char *s_query(void *request, const char *name)
{
    return gateway_request_query((gateway_request_t *)request, name);
}

static const char *s_header(void *request, const char *name)
{
    return gateway_request_header((gateway_request_t *)request, name);
}

static void s_on_request(gateway_request_t *request, void *arg)
{
    s_gateway_t *self = (s_gateway_t *)arg;
    gateway_call_t call = {0};
    lynx_err_t err;
    lynx_err_clear(&err);
    if (gateway_routes_match(gateway_request_method(request), gateway_request_path(request),
                             gateway_request_header(request, "Content-Type"),
                             gateway_request_body(request), gateway_request_body_len(request),
                             &call, &err)) {
        s_respond_error(request, &err, NULL);
        return;
    }
    const char *key = NULL; //  the Idempotency-Key of a POST
    if (gateway_routes_complete(&call, gateway_request_method(request), s_query, s_header, request,
                                &key, &err)) {
        s_respond_error(request, &err, NULL);
        return;
    }
    s_call_t *pending = (s_call_t *)calloc(1, sizeof *pending);
    if (!pending) {
        lynx_value_destroy(&call.args);
        lynx_err_set(&err, LYNX_EINTERNAL, NULL, "out of memory");
        s_respond_error(request, &err, NULL);
        return;
    }
    pending->self = self;
    pending->call = call;
    pending->idempotency_key = key;
    gateway_auth_check(self->auth, request, call.role, s_proceed, pending);
}

//  gateway_auth_proceed_fn: the token allows it (principal), or the request was refused.
static void s_proceed(gateway_request_t *request, const gateway_principal_t *principal, void *arg)
{
    s_call_t *pending = (s_call_t *)arg;
    s_gateway_t *self = pending->self;
    gateway_call_t call = pending->call;
    const char *key = pending->idempotency_key;
    free(pending);
    if (!principal) {
        lynx_value_destroy(&call.args);
        return;
    }
    lynx_err_t err;
    lynx_err_clear(&err);
    if (call.stream) { //  a file: streamed chunk by chunk
        if (streq(call.op, "batch.artifact_index"))
            gateway_archive_start(request, &call.args, s_ask, self);
        else
            gateway_stream_start(request, &call.args, s_ask, self);
        return;
    }
    //  Writing a big batch takes the broker a while; everything else is quick.
    int timeout_ms = streq(call.op, "batch.submit") ? self->options.submit_timeout_ms
                                                    : self->options.broker_timeout_ms;
    int64_t corr = s_send_request(self, call.op, &call.args, key, principal, timeout_ms, &err);
    if (corr < 0) {
        s_respond_error(request, &err, NULL);
        return;
    }
    s_add_pending(self, corr, request, NULL, timeout_ms, call.success_status);
}

//  Take the pending entry for corr out of the table; false when unknown (already timed out).
static bool s_take_pending(s_gateway_t *self, int64_t corr, s_pending_t *taken)
{
    char key[32];
    snprintf(key, sizeof key, "%" PRId64, corr);
    s_pending_t *pending = (s_pending_t *)zhashx_lookup(self->pending, key);
    if (!pending)
        return false;
    *taken = *pending;
    zhashx_delete(self->pending, key);
    return true;
}

static int s_on_broker(zloop_t *loop, zsock_t *socket, void *arg)
{
    (void)loop;
    s_gateway_t *self = (s_gateway_t *)arg;
    lynx_err_t err;
    lynx_msg_t *msg = lynx_msg_recv(zsock_resolve(socket), NULL, &err);
    if (!msg) {
        zsys_warning("gateway: malformed message from broker dropped: %s", err.message);
        return 0;
    }
    self->last_heard_ms = lynx_time_mono_ms();
    lynx_value_t *body = lynx_msg_body(msg);
    s_pending_t taken = {0};
    s_take_pending(self, lynx_value_get_int(body, "corr", 0), &taken);
    gateway_request_t *request = taken.request;
    int status = taken.success_status;
    if (taken.waiter.target)
        taken.waiter.on_answer(taken.waiter.target, msg);
    const lynx_value_t *reply = lynx_value_get(body, "body");
    //  A reply of {content_type, text} is sent as is (CSV exports); anything else as JSON.
    const char *raw_type = lynx_value_get_string(reply, "content_type", NULL);
    const lynx_value_t *raw_text = lynx_value_get(reply, "text");
    if (request && lynx_msg_id(msg) == LYNX_MSG_REPLY && raw_type &&
        lynx_value_type(raw_text) == LYNX_VALUE_STRING)
        gateway_request_respond(request, status, raw_type, lynx_value_as_string(raw_text),
                                lynx_value_string_len(raw_text));
    else if (request && lynx_msg_id(msg) == LYNX_MSG_REPLY)
        s_respond_json(request, status, lynx_json_dump(reply, 0));
    else if (request && lynx_msg_id(msg) == LYNX_MSG_ERROR) {
        lynx_err_set(&err, lynx_code_from_name(lynx_value_get_string(body, "code", "")),
                     lynx_value_get_string(body, "field", NULL), "%s",
                     lynx_value_get_string(body, "message", ""));
        s_respond_error(request, &err, lynx_value_get(body, "errors"));
    } else if (request) {
        lynx_err_set(&err, LYNX_EINTERNAL, NULL, "unexpected %s from broker",
                     lynx_msg_command(msg));
        s_respond_error(request, &err, NULL);
    }
    lynx_msg_destroy(&msg);
    gateway_http_run(self->http); //  send what we just answered
    return 0;
}

static int s_on_http(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop, (void)item;
    gateway_http_run(((s_gateway_t *)arg)->http);
    return 0;
}

//  Ask the broker for its health now and then, so a long request (writing a big batch) can
//  tell a busy broker, which still answers pings between chunks, from a dead one. Pings use
//  corr 0, which no client request has.
static void s_ping(s_gateway_t *self, int64_t now)
{
    if (now - self->last_ping_ms < GATEWAY_PING_MS)
        return;
    self->last_ping_ms = now;
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REQUEST);
    lynx_value_set_int(lynx_msg_body(msg), "corr", 0);
    lynx_value_set_string(lynx_msg_body(msg), "op", "health");
    lynx_value_set_int(lynx_msg_body(msg), "deadline_ms", lynx_time_now_ms() + GATEWAY_PING_MS);
    lynx_err_t err;
    lynx_msg_send(&msg, zsock_resolve(self->broker), NULL, &err);
}

//  A request fails with 503 at its deadline, or earlier when the broker has been silent (no
//  answer to pings either) for the short broker timeout since the request was sent.
static bool s_expired(const s_gateway_t *self, const s_pending_t *pending, int64_t now)
{
    int64_t silence_limit = self->options.broker_timeout_ms;
    bool broker_silent =
        now - self->last_heard_ms > silence_limit && now - pending->sent_ms > silence_limit;
    return now >= pending->deadline_ms || broker_silent;
}

//  Requests the broker did not answer in time get a 503; MHD gets its periodic run.
static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    s_gateway_t *self = (s_gateway_t *)arg;
    int64_t now = lynx_time_mono_ms();
    s_ping(self, now);
    zlistx_t *expired = zlistx_new();
    for (s_pending_t *pending = (s_pending_t *)zhashx_first(self->pending); pending;
         pending = (s_pending_t *)zhashx_next(self->pending))
        if (s_expired(self, pending, now))
            zlistx_add_end(expired, (void *)zhashx_cursor(self->pending));
    for (const char *key = (const char *)zlistx_first(expired); key;
         key = (const char *)zlistx_next(expired)) {
        s_pending_t *pending = (s_pending_t *)zhashx_lookup(self->pending, key);
        lynx_err_t err;
        int64_t waited_ms = now - pending->sent_ms;
        lynx_err_set(&err, LYNX_EUNAVAILABLE, NULL,
                     "broker at %s did not answer within %" PRId64 " ms",
                     self->options.broker_endpoint, waited_ms);
        gateway_waiter_t waiter = pending->waiter;
        if (pending->request)
            s_respond_error(pending->request, &err, NULL);
        zhashx_delete(self->pending, key);
        if (waiter.target)
            waiter.on_timeout(waiter.target, &err);
    }
    zlistx_destroy(&expired);
    gateway_http_run(self->http);
    return 0;
}

static void s_pending_destroy(s_pending_t **pending_p)
{
    free(*pending_p);
    *pending_p = NULL;
}

static int s_setup(s_gateway_t *self, lynx_err_t *err)
{
    self->pending = zhashx_new();
    zhashx_set_destructor(self->pending, (zhashx_destructor_fn *)s_pending_destroy);
    self->auth = gateway_auth_new(self->options.auth_required, s_ask, self);
    if (!self->auth)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    const gateway_options_t *o = &self->options;
    gateway_http_options_t http = {
        .bind_address = o->bind_address,
        .port = o->port,
        .max_body_bytes = o->max_body_bytes,
        .max_connections = o->max_connections,
        .max_connections_per_client = o->max_connections_per_client,
        .request_deadline_ms = o->request_deadline_ms,
        .tls_cert_file = o->tls_cert_file,
        .tls_key_file = o->tls_key_file,
    };
    self->http = gateway_http_new(&http, s_on_request, self, err);
    if (!self->http)
        return -1;
    self->broker = zsock_new(ZMQ_DEALER);
    //  Requests queue while the broker connects (a restart, our own start-up) and are answered
    //  503 at their deadline if it never comes; each carries deadline_ms so a broker that
    //  comes back late drops them instead of acting for a client that already gave up. A full
    //  queue (send would block) is a 503 at once.
    zsock_set_sndtimeo(self->broker, 0);
    zsock_set_linger(self->broker, 0);
    if (zsock_connect(self->broker, "%s", self->options.broker_endpoint) < 0)
        return lynx_err_set(err, LYNX_EINVALID, NULL, "connect %s: %s",
                            self->options.broker_endpoint, zmq_strerror(errno));
    self->last_heard_ms = lynx_time_mono_ms();
    self->loop = zloop_new();
    zloop_reader(self->loop, self->broker, s_on_broker, self);
    zmq_pollitem_t item = {NULL, gateway_http_fd(self->http), ZMQ_POLLIN, 0};
    zloop_poller(self->loop, &item, s_on_http, self);
    zloop_timer(self->loop, GATEWAY_TICK_MS, 0, s_on_tick, self);
    return 0;
}

static void s_gateway_actor(zsock_t *pipe, void *args)
{
    s_gateway_t *self = (s_gateway_t *)args;
    zsock_signal(pipe, 0);
    lynx_err_t err;
    lynx_err_clear(&err);
    if (s_setup(self, &err)) {
        zstr_sendx(pipe, "ERROR", err.message, NULL);
        char *command = zstr_recv(pipe);
        zstr_free(&command);
    } else {
        char port[16];
        snprintf(port, sizeof port, "%u", gateway_http_port(self->http));
        zstr_sendx(pipe, "OK", port, NULL);
        zloop_reader(self->loop, pipe, lynx_actor_on_pipe, NULL);
        zloop_start(self->loop);
    }
    zloop_destroy(&self->loop);
    //  Downloads waiting for the broker end now (their connections close with the server).
    lynx_err_t gone;
    lynx_err_set(&gone, LYNX_EUNAVAILABLE, NULL, "gateway stopping");
    for (s_pending_t *pending = (s_pending_t *)zhashx_first(self->pending); pending;
         pending = (s_pending_t *)zhashx_next(self->pending))
        if (pending->waiter.target)
            pending->waiter.on_timeout(pending->waiter.target, &gone);
    zhashx_destroy(&self->pending);
    gateway_auth_destroy(&self->auth);
    gateway_http_destroy(&self->http);
    zsock_destroy(&self->broker);
    free(self);
}

zactor_t *gateway_start(const gateway_options_t *options, uint16_t *port_out, lynx_err_t *err)
{
    s_gateway_t *self = (s_gateway_t *)calloc(1, sizeof *self);
    self->options = *options;
    zactor_t *actor = zactor_new(s_gateway_actor, self);
    char *status = NULL, *detail = NULL;
    zstr_recvx(actor, &status, &detail, NULL);
    if (status && streq(status, "OK"))
        *port_out = (uint16_t)atoi(detail);
    else {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", detail ? detail : "gateway failed to start");
        zactor_destroy(&actor);
    }
    zstr_free(&status);
    zstr_free(&detail);
    return actor;
}
