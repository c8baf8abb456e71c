//  lynx_digest: SHA-256 in hex (see the header).
#include "lynx_digest.h"

#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(((lynx_digest_t *)0)->state),
               "lynx_digest_t too small for libsodium's state");

static crypto_hash_sha256_state *s_state(lynx_digest_t *self)
{
    return (crypto_hash_sha256_state *)(void *)self->state;
}

void lynx_digest_init(lynx_digest_t *self)
{
    crypto_hash_sha256_init(s_state(self));
}

void lynx_digest_update(lynx_digest_t *self, const void *data, size_t size)
{
    if (size)
        crypto_hash_sha256_update(s_state(self), (const unsigned char *)data, size);
}

void lynx_digest_final_hex(lynx_digest_t *self, char hex[LYNX_DIGEST_HEX_SIZE])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(s_state(self), digest);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof digest; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * sizeof digest] = '\0';
}

int lynx_digest_is_hex(const char *text)
{
    if (!text || strlen(text) != 2 * crypto_hash_sha256_BYTES)
        return 0;
    for (const char *at = text; *at; at++)
        if (!((*at >= '0' && *at <= '9') || (*at >= 'a' && *at <= 'f')))
            return 0;
    return 1;
}
