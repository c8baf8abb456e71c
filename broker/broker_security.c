//  broker_security: who may talk to the broker. The gate in front of the runner protocol (a
//  runner speaks only as the runner id its key is enrolled for, and not at all once revoked),
//  the operations behind tokens and enrollment, and revocation: a revoked runner's jobs go
//  back to the queue at once and anything it sends later is refused.
#include <sys/random.h>

#include "broker_core.h"
#include "broker_tokens.h"

//  ---------------------------------------------------------------------------------------
//  The gate

static void s_refuse(broker_core_t *core, zframe_t *routing_id, lynx_code_t code, const char *field,
                     const char *message)
{
    lynx_err_t err;
    lynx_err_set(&err, code, field, "%s", message);
    if (routing_id)
        broker_send_error(core->runner_socket, routing_id, 0, &err, NULL);
}

bool broker_security_admit(broker_core_t *core, zframe_t *routing_id, const lynx_msg_t *msg,
                           lynx_value_t *body)
{
    if (!core->keys)
        return true;
    const char *peer = lynx_msg_peer(msg);
    //  The handshake named the runner the key is enrolled for; a key revoked since then still
    //  has its connection: refuse what it says.
    if (!peer || !broker_keys_key_of(core->keys, peer)) {
        s_refuse(core, routing_id, LYNX_EUNAUTHORIZED, NULL, "runner key revoked");
        return false;
    }
    const char *claimed = lynx_value_get_string(body, "runner_id", NULL);
    bool names_runner =
        lynx_msg_id(msg) == LYNX_MSG_REGISTER || lynx_msg_id(msg) == LYNX_MSG_HEARTBEAT;
    if (names_runner && claimed && strcmp(claimed, peer) != 0) {
        zsys_warning("broker: runner id refused runner=%s enrolled_as=%s", claimed, peer);
        s_refuse(core, routing_id, LYNX_EFORBIDDEN, "runner_id",
                 "runner_id: this runner's key is enrolled for another runner id");
        return false;
    }
    return true;
}

bool broker_security_admit_telemetry(broker_core_t *core, const lynx_msg_t *msg)
{
    if (!core->keys)
        return true;
    //  While an attempt runs, only its runner speaks for its job: an enrolled runner cannot
    //  write into another's series. (Frames that arrive just after the attempt ended, on
    //  the PUB while FINISHED took the DEALER, are taken from any enrolled runner.)
    const char *peer = lynx_msg_peer(msg);
    if (!peer || !broker_keys_key_of(core->keys, peer))
        return false;
    const char *job_id = lynx_value_get_string(lynx_msg_body((lynx_msg_t *)msg), "job_id", "");
    broker_inflight_t *inflight = broker_queue_lookup(core->queue, job_id);
    return !inflight || !inflight->runner || strcmp(inflight->runner->id, peer) == 0;
}

//  ---------------------------------------------------------------------------------------
//  Revocation

static void s_revoked(const char *runner_id, void *arg)
{
    broker_core_t *core = (broker_core_t *)arg;
    broker_runner_t *runner = broker_runners_lookup(core->runners, runner_id);
    if (!runner || !runner->online)
        return;
    zframe_t *route = runner->routing_id ? zframe_dup(runner->routing_id) : NULL;
    lynx_value_t *why = lynx_value_map();
    lynx_value_set_string(why, "reason", "key revoked");
    broker_artifacts_drop_runner(core->artifacts, runner->id);
    broker_sched_runner_left(core, runner, why);
    lynx_value_destroy(&why);
    //  Tell it, so an honest runner stops instead of retrying forever.
    s_refuse(core, route, LYNX_EUNAUTHORIZED, NULL, "runner key revoked");
    zframe_destroy(&route);
    broker_sched_dispatch(core);
}

void broker_security_tick(broker_core_t *core)
{
    if (!core->keys)
        return;
    broker_keys_on_revoked(core->keys, s_revoked, core);
    broker_keys_refresh(core->keys);
}

//  ---------------------------------------------------------------------------------------
//  Operations

static lynx_value_t *s_need_keys(broker_core_t *core, lynx_err_t *err)
{
    if (!core->keys)
        lynx_err_set(err, LYNX_ECONFLICT, NULL,
                     "the broker runs with --insecure: runners need no keys or enrollment");
    return NULL;
}

//  token.verify {token_id, token_sha256} -> {name, role}: the gateway's question.
lynx_value_t *broker_security_op_token_verify(broker_core_t *core, const broker_request_t *request,
                                              const lynx_value_t *args, lynx_err_t *err,
                                              lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    broker_token_rec_t token;
    if (broker_tokens_verify(core->store, lynx_value_get_string(args, "token_id", ""),
                             lynx_value_get_string(args, "token_sha256", ""), &token, err))
        return NULL;
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "name", token.name);
    lynx_value_set_string(reply, "role", token.role);
    return reply;
}

static lynx_value_t *s_enrollment_view(const broker_enrollment_rec_t *enrollment)
{
    lynx_value_t *view = lynx_value_map();
    char text[LYNX_TIME_RFC3339_SIZE];
    lynx_value_set_string(view, "id", enrollment->id);
    lynx_value_set_string(view, "runner_id", enrollment->runner_id);
    lynx_value_set_string(view, "public_key", enrollment->public_key);
    lynx_value_set_string(view, "host", enrollment->host[0] ? enrollment->host : NULL);
    lynx_value_set_string(view, "status", enrollment->status);
    lynx_value_set_string(view, "requested_by",
                          enrollment->token_name[0] ? enrollment->token_name : NULL);
    lynx_value_set_string(view, "created_at", lynx_time_rfc3339(enrollment->created_at_ms, text));
    lynx_value_set_string(
        view, "decided_at",
        enrollment->decided_at_ms ? lynx_time_rfc3339(enrollment->decided_at_ms, text) : NULL);
    return view;
}

static lynx_value_t *s_store_failed(broker_core_t *core, lynx_err_t *err)
{
    lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
    return NULL;
}

typedef struct {
    const char *runner_id, *public_key;
    broker_enrollment_rec_t *found;
} s_same_t;

static int s_find_same(const broker_enrollment_rec_t *enrollment, void *arg)
{
    s_same_t *same = (s_same_t *)arg;
    if (strcmp(enrollment->runner_id, same->runner_id) != 0 ||
        strcmp(enrollment->public_key, same->public_key) != 0 ||
        strcmp(enrollment->status, "rejected") == 0)
        return 0;
    *same->found = *enrollment;
    return 1;
}

//  enrollment.create {runner_id, public_key, host?}: a runner asks to join. Asking again with
//  the same id and key returns the first request (pending or approved).
lynx_value_t *broker_security_op_enroll(broker_core_t *core, const broker_request_t *request,
                                        const lynx_value_t *args, lynx_err_t *err,
                                        lynx_value_t **errors_p)
{
    (void)errors_p;
    if (!core->keys)
        return s_need_keys(core, err);
    const char *runner_id = lynx_value_get_string(args, "runner_id", NULL);
    const char *public_key = lynx_value_get_string(args, "public_key", NULL);
    const char *host = lynx_value_get_string(args, "host", "");
    if (!runner_id || !*runner_id || strlen(runner_id) > 120) {
        lynx_err_set(err, LYNX_EINVALID, "runner_id", "runner_id: required, 1 to 120 characters");
        return NULL;
    }
    if (!broker_keys_is_z85(public_key)) {
        lynx_err_set(err, LYNX_EINVALID, "public_key",
                     "public_key: must be a Z85-encoded CURVE public key (40 characters)");
        return NULL;
    }
    broker_enrollment_rec_t enrollment = {0};
    s_same_t same = {runner_id, public_key, &enrollment};
    if (broker_store_foreach_enrollment(core->store, NULL, s_find_same, &same))
        return s_store_failed(core, err);
    if (!enrollment.id[0]) {
        const char *held = broker_keys_key_of(core->keys, runner_id);
        if (held && strcmp(held, public_key) != 0) {
            lynx_err_set(err, LYNX_ECONFLICT, "runner_id",
                         "runner_id: '%s' is enrolled with another key; an admin must revoke "
                         "it first (DELETE /runners/%s/key)",
                         runner_id, runner_id);
            return NULL;
        }
        uint32_t random = 0;
        if (getrandom(&random, sizeof random, 0) != (ssize_t)sizeof random)
            random = (uint32_t)lynx_time_now_ms();
        snprintf(enrollment.id, sizeof enrollment.id, "enr-%08x", random);
        snprintf(enrollment.runner_id, sizeof enrollment.runner_id, "%s", runner_id);
        snprintf(enrollment.public_key, sizeof enrollment.public_key, "%s", public_key);
        snprintf(enrollment.host, sizeof enrollment.host, "%s", host ? host : "");
        snprintf(enrollment.status, sizeof enrollment.status, "%s", held ? "approved" : "pending");
        snprintf(enrollment.token_name, sizeof enrollment.token_name, "%s",
                 request->principal ? request->principal : "");
        enrollment.created_at_ms = lynx_time_now_ms();
        if (broker_store_put_enrollment(core->store, &enrollment))
            return s_store_failed(core, err);
        zsys_notice("broker: enrollment requested id=%s runner=%s host=%s by=%s", enrollment.id,
                    runner_id, host ? host : "", request->principal ? request->principal : "-");
    }
    lynx_value_t *view = s_enrollment_view(&enrollment);
    lynx_value_set_string(view, "broker_public_key", broker_keys_public(core->keys));
    return view;
}

static int s_add_view(const broker_enrollment_rec_t *enrollment, void *arg)
{
    lynx_value_t *view = s_enrollment_view(enrollment);
    lynx_value_append((lynx_value_t *)arg, &view);
    return 0;
}

//  enrollment.list {status?} -> {enrollments: [...]}, newest first.
lynx_value_t *broker_security_op_enrollments(broker_core_t *core, const broker_request_t *request,
                                             const lynx_value_t *args, lynx_err_t *err,
                                             lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    const char *status = lynx_value_get_string(args, "status", NULL);
    if (status && strcmp(status, "pending") != 0 && strcmp(status, "approved") != 0 &&
        strcmp(status, "rejected") != 0) {
        lynx_err_set(err, LYNX_EINVALID, "status",
                     "status: must be pending, approved or rejected, got '%.32s'", status);
        return NULL;
    }
    lynx_value_t *list = lynx_value_array();
    if (broker_store_foreach_enrollment(core->store, status, s_add_view, list)) {
        lynx_value_destroy(&list);
        return s_store_failed(core, err);
    }
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set(reply, "enrollments", &list);
    return reply;
}

//  approve or reject a pending enrollment.
static lynx_value_t *s_decide(broker_core_t *core, const lynx_value_t *args, bool approve,
                              lynx_err_t *err)
{
    if (!core->keys)
        return s_need_keys(core, err);
    const char *id = lynx_value_get_string(args, "enrollment_id", "");
    broker_enrollment_rec_t enrollment;
    int found = broker_store_get_enrollment(core->store, id, &enrollment);
    if (found < 0)
        return s_store_failed(core, err);
    if (found > 0) {
        lynx_err_set(err, LYNX_ENOTFOUND, "enrollment_id", "enrollment '%.64s' not found", id);
        return NULL;
    }
    if (strcmp(enrollment.status, "pending") != 0) {
        lynx_err_set(err, LYNX_ECONFLICT, NULL, "enrollment %s is %s already", id,
                     enrollment.status);
        return NULL;
    }
    if (approve &&
        broker_keys_admit_runner(core->keys, enrollment.runner_id, enrollment.public_key, err))
        return NULL;
    snprintf(enrollment.status, sizeof enrollment.status, "%s", approve ? "approved" : "rejected");
    enrollment.decided_at_ms = lynx_time_now_ms();
    if (broker_store_put_enrollment(core->store, &enrollment))
        return s_store_failed(core, err);
    zsys_notice("broker: enrollment %s id=%s runner=%s", enrollment.status, id,
                enrollment.runner_id);
    return s_enrollment_view(&enrollment);
}

lynx_value_t *broker_security_op_approve(broker_core_t *core, const broker_request_t *request,
                                         const lynx_value_t *args, lynx_err_t *err,
                                         lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    return s_decide(core, args, true, err);
}

lynx_value_t *broker_security_op_reject(broker_core_t *core, const broker_request_t *request,
                                        const lynx_value_t *args, lynx_err_t *err,
                                        lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    return s_decide(core, args, false, err);
}

//  runner.revoke_key {runner_id}: the runner is disconnected, its jobs retried elsewhere.
lynx_value_t *broker_security_op_revoke(broker_core_t *core, const broker_request_t *request,
                                        const lynx_value_t *args, lynx_err_t *err,
                                        lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    if (!core->keys)
        return s_need_keys(core, err);
    const char *runner_id = lynx_value_get_string(args, "runner_id", "");
    int revoked = broker_keys_revoke_runner(core->keys, runner_id, err);
    if (revoked < 0)
        return NULL;
    if (revoked == 0) {
        lynx_err_set(err, LYNX_ENOTFOUND, "runner_id", "runner '%.64s' has no enrolled key",
                     runner_id);
        return NULL;
    }
    s_revoked(runner_id, core);
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "runner_id", runner_id);
    lynx_value_set_bool(reply, "revoked", true);
    return reply;
}
