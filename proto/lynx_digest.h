//  lynx_digest: SHA-256 over a stream of bytes (OpenSSL's libcrypto), written as 64 lowercase hex
//  digits: what runner and broker compute over each artifact as its chunks pass, so a file is
//  checked end to end without being read twice.
#ifndef LYNX_DIGEST_H_INCLUDED
#define LYNX_DIGEST_H_INCLUDED

#include <stddef.h>

#define LYNX_DIGEST_HEX_SIZE 65 //  64 hex digits and the NUL

//  A digest in progress, on the caller's stack or in its struct.
typedef struct {
    unsigned char state[128]; //  SHA256_CTX (112 bytes), opaque here
} lynx_digest_t;

void lynx_digest_init(lynx_digest_t *self);
void lynx_digest_update(lynx_digest_t *self, const void *data, size_t size);
//  Finish into hex (LYNX_DIGEST_HEX_SIZE bytes); self must be initialised again before reuse.
void lynx_digest_final_hex(lynx_digest_t *self, char hex[LYNX_DIGEST_HEX_SIZE]);
//  True for 64 lowercase hex digits.
int lynx_digest_is_hex(const char *text);

#endif
