#include "broker_tokens.h"

#include <stdio.h>
#include <string.h>

#include "lynx_time.h"

#define S_NAME_MAX 64
#define S_TOUCH_INTERVAL_MS 60000

static int s_check_name(const char *name, lynx_err_t *err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > S_NAME_MAX)
        return lynx_err_set(err, LYNX_EINVALID, "--name", "--name: must be 1 to %d characters",
                            S_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return lynx_err_set(err, LYNX_EINVALID, "--name",
                                "--name: only letters, digits, '.', '_' and '-', got '%.64s'",
                                name);
    }
    return 0;
}

static int s_store_failed(broker_store_t *store, lynx_err_t *err)
{
    return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(store));
}

int broker_tokens_create(broker_store_t *store, const char *name, const char *role,
                         char text[LYNX_TOKEN_TEXT_SIZE], lynx_err_t *err)
{
    lynx_role_t parsed;
    if (s_check_name(name, err))
        return -1;
    if (lynx_role_parse(role, &parsed))
        return lynx_err_set(err, LYNX_EINVALID, "--role",
                            "--role: must be read, submit or admin, got '%.32s'", role ? role : "");
    int64_t live = broker_store_count_live_tokens(store, name);
    if (live < 0)
        return s_store_failed(store, err);
    if (live > 0)
        return lynx_err_set(err, LYNX_ECONFLICT, "--name",
                            "--name: a token named '%s' exists; revoke it first", name);
    broker_token_rec_t token = {.created_at_ms = lynx_time_now_ms()};
    if (lynx_token_generate(text, token.id, err))
        return -1;
    snprintf(token.name, sizeof token.name, "%s", name);
    snprintf(token.role, sizeof token.role, "%s", lynx_role_name(parsed));
    lynx_token_hash(text, token.hash);
    if (broker_store_put_token(store, &token))
        return s_store_failed(store, err);
    return 0;
}

int broker_tokens_verify(broker_store_t *store, const char *id, const char *hash,
                         broker_token_rec_t *token, lynx_err_t *err)
{
    int found = broker_store_get_token(store, id ? id : "", token);
    if (found < 0)
        return s_store_failed(store, err);
    //  Compare even for an unknown id, so timing does not tell ids that exist.
    static const char s_nothing[] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    bool match = lynx_token_digest_equal(found == 0 ? token->hash : s_nothing, hash ? hash : "");
    if (found != 0 || !match || token->revoked_at_ms != 0)
        return lynx_err_set(err, LYNX_EUNAUTHORIZED, NULL, "invalid or revoked token");
    int64_t now = lynx_time_now_ms();
    if (now - token->last_used_at_ms >= S_TOUCH_INTERVAL_MS) {
        token->last_used_at_ms = now;
        broker_store_touch_token(store, token->id, now); //  bookkeeping: a failure is not a denial
    }
    return 0;
}

int64_t broker_tokens_revoke(broker_store_t *store, const char *name, lynx_err_t *err)
{
    int64_t count = broker_store_revoke_tokens(store, name ? name : "", lynx_time_now_ms());
    if (count < 0)
        s_store_failed(store, err);
    return count;
}
