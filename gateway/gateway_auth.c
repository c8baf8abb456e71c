#include "gateway_auth.h"

#include <czmq.h>

#include "gateway_routes.h"
#include "lynx_time.h"

#define S_CACHE_MAX 10000 //  entries; a flood of made-up tokens empties the cache, not memory

typedef struct {
    bool valid;
    char name[72];
    lynx_role_t role;
    int64_t expires_mono_ms;
} s_entry_t;

struct _gateway_auth_t {
    bool required;
    gateway_ask_fn *ask;
    void *ask_arg;
    zhashx_t *cache;  //  SHA-256 of the token -> s_entry_t
    zlistx_t *checks; //  s_check_t waiting for the broker (so destroy can cancel them)
};

//  One request waiting for token.verify.
typedef struct {
    gateway_auth_t *auth; //  NULL once the auth module is gone
    gateway_request_t *request;
    lynx_role_t needed;
    char hash[LYNX_DIGEST_HEX_SIZE];
    gateway_auth_proceed_fn *proceed;
    void *arg;
    void *handle; //  in auth->checks
} s_check_t;

gateway_auth_t *gateway_auth_new(bool required, gateway_ask_fn *ask, void *ask_arg)
{
    gateway_auth_t *self = (gateway_auth_t *)calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->required = required;
    self->ask = ask;
    self->ask_arg = ask_arg;
    self->cache = zhashx_new();
    self->checks = zlistx_new();
    if (!self->cache || !self->checks) {
        gateway_auth_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->cache, (zhashx_destructor_fn *)zstr_free);
    return self;
}

void gateway_auth_destroy(gateway_auth_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_auth_t *self = *self_p;
    for (s_check_t *check = self->checks ? (s_check_t *)zlistx_first(self->checks) : NULL; check;
         check = (s_check_t *)zlistx_next(self->checks))
        check->auth = NULL; //  the waiter still owns it; its timeout frees it
    zlistx_destroy(&self->checks);
    zhashx_destroy(&self->cache);
    free(self);
    *self_p = NULL;
}

static void s_refuse(gateway_request_t *request, lynx_code_t code, const char *challenge,
                     const char *message)
{
    lynx_err_t err;
    lynx_err_set(&err, code, NULL, "%s", message);
    const char *headers[] = {"WWW-Authenticate", challenge, NULL};
    gateway_routes_respond_error(request, &err, NULL, headers);
}

//  Let request on with entry's token, or refuse it.
static void s_decide(gateway_request_t *request, const s_entry_t *entry, lynx_role_t needed,
                     gateway_auth_proceed_fn *proceed, void *arg)
{
    if (!entry->valid) {
        s_refuse(request, LYNX_EUNAUTHORIZED, "Bearer realm=\"lynx\", error=\"invalid_token\"",
                 "invalid or revoked token");
        proceed(request, NULL, arg);
        return;
    }
    if (entry->role < needed) {
        char message[160];
        snprintf(message, sizeof message, "token '%s' has role %s; this needs %s", entry->name,
                 lynx_role_name(entry->role), lynx_role_name(needed));
        s_refuse(request, LYNX_EFORBIDDEN, "Bearer realm=\"lynx\", error=\"insufficient_scope\"",
                 message);
        proceed(request, NULL, arg);
        return;
    }
    gateway_principal_t principal = {entry->name, entry->role};
    proceed(request, &principal, arg);
}

static void s_remember(gateway_auth_t *self, const char *hash, const s_entry_t *entry)
{
    if (zhashx_size(self->cache) >= S_CACHE_MAX)
        zhashx_purge(self->cache);
    s_entry_t *copy = (s_entry_t *)malloc(sizeof *copy);
    if (!copy)
        return;
    *copy = *entry;
    zhashx_update(self->cache, hash, copy);
}

static void s_check_free(s_check_t *check)
{
    if (check->auth)
        zlistx_delete(check->auth->checks, check->handle);
    free(check);
}

//  gateway_waiter_t: the broker's verdict on a token.
static void s_on_answer(void *target, const lynx_msg_t *msg)
{
    s_check_t *check = (s_check_t *)target;
    lynx_value_t *body = lynx_msg_body((lynx_msg_t *)msg);
    s_entry_t entry = {.expires_mono_ms = lynx_time_mono_ms() + GATEWAY_AUTH_CACHE_MS};
    if (lynx_msg_id(msg) == LYNX_MSG_REPLY) {
        const lynx_value_t *reply = lynx_value_get(body, "body");
        entry.valid = lynx_role_parse(lynx_value_get_string(reply, "role", ""), &entry.role) == 0;
        snprintf(entry.name, sizeof entry.name, "%s", lynx_value_get_string(reply, "name", "?"));
    } else {
        const char *code = lynx_value_get_string(body, "code", "");
        if (lynx_code_from_name(code) != LYNX_EUNAUTHORIZED) {
            //  The broker could not tell (its store failed): say so, remember nothing.
            lynx_err_t err;
            lynx_err_set(&err, lynx_code_from_name(code), NULL, "cannot check the token: %s",
                         lynx_value_get_string(body, "message", ""));
            gateway_routes_respond_error(check->request, &err, NULL, NULL);
            check->proceed(check->request, NULL, check->arg);
            s_check_free(check);
            return;
        }
    }
    if (check->auth)
        s_remember(check->auth, check->hash, &entry);
    s_decide(check->request, &entry, check->needed, check->proceed, check->arg);
    s_check_free(check);
}

static void s_on_timeout(void *target, const lynx_err_t *err)
{
    s_check_t *check = (s_check_t *)target;
    gateway_routes_respond_error(check->request, err, NULL, NULL);
    check->proceed(check->request, NULL, check->arg);
    s_check_free(check);
}

void gateway_auth_check(gateway_auth_t *self, gateway_request_t *request, lynx_role_t needed,
                        gateway_auth_proceed_fn *proceed, void *arg)
{
    if (!self->required || needed == LYNX_ROLE_NONE) {
        gateway_principal_t trusted = {NULL, LYNX_ROLE_ADMIN};
        proceed(request, &trusted, arg);
        return;
    }
    char token[LYNX_TOKEN_TEXT_SIZE + 1], id[LYNX_TOKEN_ID_SIZE];
    const char *header = gateway_request_header(request, "Authorization");
    if (lynx_token_from_bearer(header, token, sizeof token) != 0) {
        s_refuse(request, LYNX_EUNAUTHORIZED, "Bearer realm=\"lynx\"",
                 header ? "Authorization: expected 'Bearer <token>'"
                        : "Authorization: a token is required (Bearer <token>)");
        proceed(request, NULL, arg);
        return;
    }
    if (!lynx_token_parse(token, id)) {
        s_entry_t invalid = {.valid = false};
        s_decide(request, &invalid, needed, proceed, arg);
        return;
    }
    char hash[LYNX_DIGEST_HEX_SIZE];
    lynx_token_hash(token, hash);
    s_entry_t *known = (s_entry_t *)zhashx_lookup(self->cache, hash);
    if (known && known->expires_mono_ms > lynx_time_mono_ms()) {
        s_decide(request, known, needed, proceed, arg);
        return;
    }
    s_check_t *check = (s_check_t *)calloc(1, sizeof *check);
    if (!check) {
        s_refuse(request, LYNX_EINTERNAL, "Bearer realm=\"lynx\"", "out of memory");
        proceed(request, NULL, arg);
        return;
    }
    *check = (s_check_t){self, request, needed, "", proceed, arg, NULL};
    memcpy(check->hash, hash, sizeof hash);
    check->handle = zlistx_add_end(self->checks, check);
    lynx_value_t *args = lynx_value_map();
    lynx_value_set_string(args, "token_id", id);
    lynx_value_set_string(args, "token_sha256", hash);
    gateway_waiter_t waiter = {s_on_answer, s_on_timeout, check};
    lynx_err_t err;
    lynx_err_clear(&err);
    if (self->ask(self->ask_arg, "token.verify", &args, &waiter, &err)) {
        s_on_timeout(check, &err);
        return;
    }
}
