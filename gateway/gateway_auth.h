//  gateway_auth: API tokens at the door. Every route but /healthz needs
//  "Authorization: Bearer <token>" whose role covers the route's (gateway_routes); the broker
//  says whether a token is valid (token.verify) and the answer is remembered for a few seconds,
//  so a busy client costs one question per token, not per request, and a revoked token stops
//  working within GATEWAY_AUTH_CACHE_MS. Refusals are our JSON error with WWW-Authenticate:
//  401 without a token or with a bad one, 403 when its role may not.
#ifndef GATEWAY_AUTH_H_INCLUDED
#define GATEWAY_AUTH_H_INCLUDED

#include <stdbool.h>

#include "gateway_http.h"
#include "gateway_stream.h"
#include "lynx_token.h"

#define GATEWAY_AUTH_CACHE_MS 5000

typedef struct _gateway_auth_t gateway_auth_t;

//  required false: --auth none, every request proceeds as a trusted caller. ask sends the
//  broker questions (as downloads do). NULL on out-of-memory.
gateway_auth_t *gateway_auth_new(bool required, gateway_ask_fn *ask, void *ask_arg);
//  Free; checks still waiting for the broker are answered 503 by the caller's timeout
//  (their waiters are cancelled). Sets *self_p to NULL. NULL-safe.
void gateway_auth_destroy(gateway_auth_t **self_p);

//  Who a request acts for, once checked: the token's name (NULL with --auth none) and role.
typedef struct {
    const char *name;
    lynx_role_t role;
} gateway_principal_t;

//  Called once per check: with the principal when the request may go on, with NULL when it
//  was refused (already answered; only free arg).
typedef void(gateway_auth_proceed_fn)(gateway_request_t *request,
                                      const gateway_principal_t *principal, void *arg);

//  Check that request carries a token whose role is at least needed; proceed now (a token seen
//  recently) or when the broker answers.
void gateway_auth_check(gateway_auth_t *self, gateway_request_t *request, lynx_role_t needed,
                        gateway_auth_proceed_fn *proceed, void *arg);

#endif
