//  broker_tokens: API tokens kept in the store. Created, listed and revoked by
//  `lynx-broker token` (broker_token_command.c), checked by the gateway through the broker's
//  token.verify operation. Only a token's SHA-256 is stored.
#ifndef BROKER_TOKENS_H_INCLUDED
#define BROKER_TOKENS_H_INCLUDED

#include "broker_store.h"
#include "lynx_err.h"
#include "lynx_token.h"

//  Create a token named name (1 to 64 of [A-Za-z0-9._-], unique among live tokens) with
//  role ("read", "submit", "admin"); the token text (shown once, never stored) into text.
//  -1 with err naming the field (--name, --role) or the store's failure.
int broker_tokens_create(broker_store_t *store, const char *name, const char *role,
                         char text[LYNX_TOKEN_TEXT_SIZE], lynx_err_t *err);

//  Check a presented token by its id and SHA-256 (hex): 0 with *token filled when it exists,
//  is not revoked and the digest matches (compared in constant time); -1 with err
//  LYNX_EUNAUTHORIZED otherwise (the same message whatever the reason), or LYNX_EINTERNAL on a
//  store failure. Records the use at most once a minute.
int broker_tokens_verify(broker_store_t *store, const char *id, const char *hash,
                         broker_token_rec_t *token, lynx_err_t *err);

//  Revoke the live tokens named name: how many (0 when none), or -1 with err.
int64_t broker_tokens_revoke(broker_store_t *store, const char *name, lynx_err_t *err);

#endif
