//  broker_idempotency: Idempotency-Key. A mutating request (submit, cancel, drain, resume) sent
//  again with the key of an earlier one gets the earlier answer, whatever happened in between,
//  for 24 hours: a client that was told 503 may retry without running the study twice. The
//  same key with another request is refused. A submit's answer is recorded in the transaction
//  that makes its batch visible (broker_submit), so a batch and its key never part; the other
//  operations record theirs right after they ran.
#include "broker_core.h"

#include <inttypes.h>

#include "lynx_digest.h"
#include "lynx_msgpack.h"

#define S_KEEP_MS (24 * 3600 * 1000LL)

static const char *const s_mutating[] = {"batch.submit", "batch.cancel",  "job.cancel",
                                         "runner.drain", "runner.resume", NULL};

bool broker_idempotency_applies(const char *op, const lynx_value_t *args)
{
    if (strcmp(op, "batch.submit") == 0 && lynx_value_get_bool(args, "dry_run", false))
        return false; //  a dry run changes nothing
    for (size_t i = 0; s_mutating[i]; i++)
        if (strcmp(s_mutating[i], op) == 0)
            return true;
    return false;
}

void broker_idempotency_hash(const char *op, const lynx_value_t *args,
                             char hash[LYNX_DIGEST_HEX_SIZE])
{
    lynx_digest_t digest;
    lynx_digest_init(&digest);
    lynx_digest_update(&digest, op, strlen(op) + 1);
    unsigned char *data = NULL;
    size_t size = 0;
    if (args && lynx_msgpack_pack(args, &data, &size) == 0)
        lynx_digest_update(&digest, data, size);
    free(data);
    lynx_digest_final_hex(&digest, hash);
}

bool broker_idempotency_replay(broker_core_t *core, const broker_request_t *request, const char *op)
{
    const char *key = request->idempotency_key;
    broker_answer_t answer;
    int rc = broker_store_get_answer(core->store, key, &answer);
    lynx_err_t err;
    if (rc < 0) {
        lynx_err_set(&err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
        broker_send_error(core->api_socket, request->routing_id, request->corr, &err, NULL);
        return true;
    }
    if (rc == 1) {
        if (strcmp(op, "batch.submit") != 0 || !broker_submissions_has_key(core->submissions, key))
            return false; //  a first request: run it
        lynx_err_set(&err, LYNX_EUNAVAILABLE, "Idempotency-Key",
                     "the first request with this Idempotency-Key is still being written; "
                     "retry in a moment");
        broker_send_error(core->api_socket, request->routing_id, request->corr, &err, NULL);
        return true;
    }
    if (strcmp(answer.op, op) != 0 || strcmp(answer.request_hash, request->request_hash) != 0) {
        lynx_err_set(&err, LYNX_ECONFLICT, "Idempotency-Key",
                     "this Idempotency-Key was used for another request (%s); use a new key",
                     answer.op);
        broker_send_error(core->api_socket, request->routing_id, request->corr, &err, NULL);
    } else if (answer.is_error) {
        lynx_err_set(&err, lynx_code_from_name(lynx_value_get_string(answer.answer, "code", "")),
                     lynx_value_get_string(answer.answer, "field", NULL), "%s",
                     lynx_value_get_string(answer.answer, "message", ""));
        lynx_value_t *errors = lynx_value_dup(lynx_value_get(answer.answer, "errors"));
        broker_send_error(core->api_socket, request->routing_id, request->corr, &err, &errors);
        lynx_value_destroy(&errors);
    } else {
        lynx_value_t *reply = lynx_value_dup(answer.answer);
        broker_send_reply(core->api_socket, request->routing_id, request->corr, &reply);
        lynx_value_destroy(&reply);
    }
    zsys_info("broker: repeated request answered as the first op=%s key=%.64s", op, key);
    lynx_value_destroy(&answer.owned);
    return true;
}

void broker_idempotency_record(broker_core_t *core, const broker_request_t *request, const char *op,
                               const lynx_value_t *reply, const lynx_err_t *err,
                               const lynx_value_t *errors)
{
    //  A failure worth retrying (the store, a peer) is not the answer to keep.
    if (!reply && (err->code == LYNX_EINTERNAL || err->code == LYNX_EUNAVAILABLE))
        return;
    lynx_value_t *error = NULL;
    if (!reply) {
        error = lynx_value_map();
        lynx_value_set_string(error, "code", lynx_code_name(err->code));
        lynx_value_set_string(error, "message", err->message);
        lynx_value_set_string(error, "field", err->field[0] ? err->field : NULL);
        if (errors)
            lynx_value_set_owned(error, "errors", lynx_value_dup(errors));
    }
    broker_answer_t answer = {.key = request->idempotency_key,
                              .op = op,
                              .request_hash = request->request_hash,
                              .answer = reply ? reply : error,
                              .is_error = !reply,
                              .created_at_ms = lynx_time_now_ms()};
    if (answer.answer && broker_store_put_answer(core->store, &answer) != 0)
        zsys_error("broker: cannot record the answer of op=%s key=%.64s: %s", op,
                   request->idempotency_key, broker_store_error(core->store));
    lynx_value_destroy(&error);
}

void broker_idempotency_expire(broker_core_t *core)
{
    if (broker_store_expire_answers(core->store, lynx_time_now_ms() - S_KEEP_MS) != 0)
        zsys_error("broker: cannot expire idempotency answers: %s",
                   broker_store_error(core->store));
}
