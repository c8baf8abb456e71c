//  lynx_token: API tokens and roles as the gateway, the broker and the CLI all see them.
//
//  A token is "lynx_<id>_<secret>": id is 12 lowercase hex digits that name the token's row
//  (public: logs and listings show it), secret 64 hex digits from the OS's random source.
//  Only the SHA-256 of the whole token is stored; a presented token is hashed and its digest
//  compared in constant time with the stored one.
#ifndef LYNX_TOKEN_H_INCLUDED
#define LYNX_TOKEN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "lynx_digest.h"
#include "lynx_err.h"

#define LYNX_TOKEN_ID_SIZE 13   //  12 hex digits and the NUL
#define LYNX_TOKEN_TEXT_SIZE 83 //  "lynx_" + 12 + "_" + 64 + NUL

//  What a token may do. Ordered: each role may do everything the ones before it may.
typedef enum {
    LYNX_ROLE_NONE = 0, //  no token needed (GET /healthz)
    LYNX_ROLE_READ,     //  every GET
    LYNX_ROLE_SUBMIT,   //  also POST /jobs, cancel its own batches, ask to enroll a runner
    LYNX_ROLE_ADMIN,    //  everything: drain, enroll, revoke, cancel any batch
} lynx_role_t;

//  "read", "submit", "admin" ("none" for LYNX_ROLE_NONE).
const char *lynx_role_name(lynx_role_t role);
//  Inverse of lynx_role_name for the three token roles; -1 for anything else.
int lynx_role_parse(const char *name, lynx_role_t *role);

//  A new random token into text (LYNX_TOKEN_TEXT_SIZE bytes) and its id. -1 with err when the
//  OS has no randomness to give.
int lynx_token_generate(char text[LYNX_TOKEN_TEXT_SIZE], char id[LYNX_TOKEN_ID_SIZE],
                        lynx_err_t *err);
//  True when text has a token's shape; copies its id. Says nothing of whether it is valid.
bool lynx_token_parse(const char *text, char id[LYNX_TOKEN_ID_SIZE]);
//  SHA-256 of text as 64 lowercase hex digits.
void lynx_token_hash(const char *text, char hex[LYNX_DIGEST_HEX_SIZE]);
//  Compare two digests in constant time (for equal lengths): true when equal.
bool lynx_token_digest_equal(const char *a, const char *b);

//  The token in an Authorization header value ("Bearer <token>", scheme case-insensitive,
//  surrounding blanks ignored), copied into token (size bytes). -1 when header is NULL, names
//  another scheme, or holds no token or one that does not fit.
int lynx_token_from_bearer(const char *header, char *token, size_t size);

#endif
